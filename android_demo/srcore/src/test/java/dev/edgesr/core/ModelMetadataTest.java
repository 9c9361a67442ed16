package dev.edgesr.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The checks the app adds to Python's, and what a user sees; PythonGoldenTest covers the shared ones. */
class ModelMetadataTest {
    private static final String VALID = "{\"format\": \"edge_sr.tflite\", \"version\": 1, \"arch\": \"isr-rdn\","
            + " \"scale\": 2, \"precision\": \"int8\", \"bits\": {\"weights\": 4, \"activations\": 4},"
            + " \"method\": \"odm\", \"pixel_range\": [0, 255], \"tile\": null, \"io\": \"int8\", \"source\": null}";

    private static ModelMetadata parse(String text) {
        return ModelMetadata.parse(text.getBytes(StandardCharsets.UTF_8), "rdn.tflite.json");
    }

    private static String reason(String text) {
        return assertThrows(InvalidMetadataException.class, () -> parse(text)).getMessage();
    }

    @Test
    void aValidSidecarReads() {
        ModelMetadata metadata = parse(VALID);
        assertEquals(TensorType.INT8, metadata.io);
        assertEquals("isr-rdn ×2, int8 (W4A4, odm), int8 I/O, any size", metadata.summary());
    }

    @Test
    void whatTheAppReliesOnIsChecked() {
        assertTrue(reason(VALID.replace("[0, 255]", "[0, 1]")).contains("pixel_range"));
        assertTrue(reason(VALID.replace("\"isr-rdn\"", "7")).contains("arch 7 is neither null nor a string"));
        assertTrue(reason(VALID.replace("\"scale\": 2", "\"scale\": 99999999999")).contains("scale"));
        assertTrue(reason(VALID.replace("\"version\": 1", "\"version\": 1.0")).contains("expected edge_sr.tflite 1"));
        String duplicate = reason(VALID.replace("\"tile\": null", "\"tile\": null, \"tile\": 64"));
        assertTrue(duplicate.startsWith("rdn.tflite.json is not valid JSON (duplicate key \"tile\""), duplicate);
    }

    @Test
    void messagesNameTheFileAndTheFix() {
        String missing = reason(VALID.replace(", \"io\": \"int8\"", ""));
        assertEquals("rdn.tflite.json is not edge_sr model metadata (missing io); re-export the model with python -m "
                + "edge_sr.convert", missing);
        String notUtf8 = assertThrows(InvalidMetadataException.class,
                () -> ModelMetadata.parse(new byte[] {(byte) 0xfe, '{', '}'}, "x.tflite.json")).getMessage();
        assertTrue(notUtf8.contains("x.tflite.json is not valid JSON (not UTF-8 text)"), notUtf8);
    }
}
