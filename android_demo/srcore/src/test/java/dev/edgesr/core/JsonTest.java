package dev.edgesr.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void readsEveryKindOfValue() {
        Object value = Json.parse(" {\"a\": [1, -2.5e3, 0.1], \"b\": {\"t\": true, \"f\": false, \"n\": null},"
                + " \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"} \n");
        Map<?, ?> map = (Map<?, ?>) value;
        List<?> a = (List<?>) map.get("a");
        assertEquals(1L, ((Json.Number) a.get(0)).longValue());
        assertTrue(((Json.Number) a.get(0)).isInteger());
        assertFalse(((Json.Number) a.get(1)).isInteger());
        assertEquals(-2500.0, ((Json.Number) a.get(1)).doubleValue());
        assertEquals(0.1f, ((Json.Number) a.get(2)).floatValue());
        Map<?, ?> b = (Map<?, ?>) map.get("b");
        assertEquals(Boolean.TRUE, b.get("t"));
        assertEquals(Boolean.FALSE, b.get("f"));
        assertTrue(b.containsKey("n"));
        assertNull(b.get("n"));
        assertEquals("q\"\\/\b\f\n\r\t\u00e9\ud83d\ude00", map.get("s"));
        assertEquals(List.of(), Json.parse("[]"));
        assertEquals(Map.of(), Json.parse("{}"));
    }

    @Test
    void rejectsWhatIsNotJson() {
        String[] broken = {
            "", " ", "{", "[1, 2", "{\"a\": 1,}", "[1,]", "[1 2]", "{\"a\" 1}", "{a: 1}", "{'a': 1}", "01", "1.",
            ".5", "-", "+1", "1e", "NaN", "Infinity", "-Infinity", "tru", "nul", "\"open", "\"bad \\x escape\"",
            "\"\\u12\"", "\"tab\tinside\"", "// comment\n1", "1 2", "{\"a\": 1} x", "{\"a\": 1, \"a\": 2}",
            "\ufeff{}",
        };
        for (String text : broken) {
            assertThrows(JsonException.class, () -> Json.parse(text), () -> "accepted: " + text);
        }
        JsonException where = assertThrows(JsonException.class, () -> Json.parse("{\n  \"a\": [1,,2]\n}"));
        assertTrue(where.getMessage().contains("line 2, column 11"), where.getMessage());
    }

    @Test
    void rejectsInvalidUtf8AndDeepNesting() {
        assertThrows(JsonException.class, () -> Json.parse(new byte[] {'"', (byte) 0xff, '"'}));
        assertEquals("é", Json.parse(new byte[] {'"', (byte) 0xc3, (byte) 0xa9, '"'}));
        assertThrows(JsonException.class, () -> Json.parse("[".repeat(100) + "]".repeat(100)));
        assertEquals(1, ((List<?>) Json.parse("[".repeat(50) + "]".repeat(50))).size());
    }

    @Test
    void integersOutOfRangeAreErrorsNotWrappedValues() {
        Json.Number big = (Json.Number) Json.parse("123456789012345678901234567890");
        assertThrows(JsonException.class, big::longValue);
        assertThrows(JsonException.class, ((Json.Number) Json.parse("2.0"))::longValue);
    }
}
