package dev.edgesr.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Java core against what the Python pipeline computes on the same inputs: python_golden.json, written by
 * tests/android_golden.py (and checked there to be current).
 *
 * <p>Tolerance for the tiled float32 output: {@link #FLOAT_TOLERANCE}. Java and numpy perform the same float32
 * operations in the same order (fade weights, their products, the weighted sums, the two divisions), so the
 * values agree to the bit today; 1e-4 on the [0, 255] scale (about 7 float32 ulps at 255) would still admit a
 * correct implementation that sums the (at most four) overlapping tiles or divides in another order — each step
 * rounds by at most half an ulp — while any wrong weight or misplaced tile moves values by far more. uint8 values
 * must be equal, except by 1 where the float sits within that tolerance of a rounding boundary (k + 0.5).
 */
class PythonGoldenTest {
    static final float FLOAT_TOLERANCE = 1e-4f;
    private static Map<String, Object> golden;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = PythonGoldenTest.class.getResourceAsStream("python_golden.json")) {
            assertTrue(in != null, "python_golden.json is not on the test class path");
            golden = map(Json.parse(in.readAllBytes()));
        }
        assertEquals("edge_sr.srcore-golden", golden.get("format"));
    }

    /** The stand-in model of tests/android_golden.py: 3×3 mean with edge-replicated borders, nearest ×scale. */
    static TiledUpscaler.TileModel boxNearest(int scale) {
        return (rgb, height, width, sr) -> {
            float[] mean = new float[height * width * 3];
            for (int y = 0; y < height; y++) {
                for (int x = 0; x < width; x++) {
                    for (int ch = 0; ch < 3; ch++) {
                        float total = 0f;
                        for (int dy = -1; dy <= 1; dy++) {
                            for (int dx = -1; dx <= 1; dx++) {
                                int sy = Math.max(0, Math.min(height - 1, y + dy));
                                int sx = Math.max(0, Math.min(width - 1, x + dx));
                                total += rgb[(sy * width + sx) * 3 + ch];
                            }
                        }
                        mean[(y * width + x) * 3 + ch] = total / 9f;
                    }
                }
            }
            for (int y = 0; y < scale * height; y++) {
                for (int x = 0; x < scale * width; x++) {
                    System.arraycopy(mean, ((y / scale) * width + x / scale) * 3, sr, (y * scale * width + x) * 3, 3);
                }
            }
            return scale * height * scale * width * 3;
        };
    }

    @Test
    void tiledUpscaleMatchesPython() {
        Map<String, Object> image = map(golden.get("image"));
        int height = integer(image.get("height"));
        int width = integer(image.get("width"));
        float[] rgb = floats(image.get("rgb"));
        List<Object> cases = list(golden.get("tiling"));
        assertEquals(3, cases.size());
        for (Object entry : cases) {
            Map<String, Object> c = map(entry);
            int[] tile = ints(c.get("tile"));
            int scale = integer(c.get("scale"));
            boolean fixed = (Boolean) c.get("fixed");
            String name = "tile " + tile[1] + "×" + tile[0] + (fixed ? " fixed" : "") + " ×" + scale;
            Tiling tiling = fixed
                    ? Tiling.choose(tile[0], tile[1], null, null, integer(c.get("overlap")))
                    : Tiling.choose(0, 0, tile[0], tile[1], integer(c.get("overlap")));
            TiledUpscaler upscaler = new TiledUpscaler(height, width, scale, tiling, fixed);
            assertArrayEquals(ints(c.get("model_input")), upscaler.modelInput(), name);
            assertArrayEquals(ints(c.get("row_starts")), upscaler.rows.starts, name);
            assertArrayEquals(ints(c.get("col_starts")), upscaler.cols.starts, name);
            int[] seen = new int[2];
            TiledUpscaler.TileModel model = boxNearest(scale);
            float[] sr = upscaler.upscale(rgb, (tileRgb, h, w, out) -> {
                seen[0] = h;
                seen[1] = w;
                return model.upscale(tileRgb, h, w, out);
            });
            assertArrayEquals(upscaler.modelInput(), seen, name + ": the model got other tiles than planned");
            float[] expected = floats(c.get("float32"));
            int[] expectedUint8 = ints(c.get("uint8"));
            assertEquals(expected.length, sr.length, name);
            for (int i = 0; i < sr.length; i++) {
                float error = Math.abs(sr[i] - expected[i]);
                assertTrue(error <= FLOAT_TOLERANCE, name + ": value " + i + " is " + sr[i] + ", Python " + expected[i]);
                int pixel = TensorCodec.toUint8(sr[i]);
                if (pixel != expectedUint8[i]) {
                    float boundary = (float) Math.floor(expected[i]) + 0.5f;
                    assertTrue(Math.abs(pixel - expectedUint8[i]) == 1
                                    && Math.abs(expected[i] - boundary) <= FLOAT_TOLERANCE,
                            name + ": uint8 value " + i + " is " + pixel + ", Python " + expectedUint8[i]);
                }
            }
        }
    }

    @Test
    void tensorConversionsMatchPython() {
        for (Object entry : list(golden.get("conversions"))) {
            Map<String, Object> c = map(entry);
            TensorType type = TensorType.fromJsonName((String) c.get("type"));
            TensorCodec codec = new TensorCodec(type, number(c.get("scale")).floatValue(), integer(c.get("zero_point")));
            float[] values = floats(c.get("values"));
            int[] quantized = ints(c.get("quantized"));
            float[] dequantized = floats(c.get("dequantized"));
            ByteBuffer tensor = ByteBuffer.allocateDirect(values.length).order(ByteOrder.nativeOrder());
            codec.encode(values, values.length, tensor);
            tensor.flip();
            float[] decoded = new float[values.length];
            codec.decode(tensor, values.length, decoded);
            for (int i = 0; i < values.length; i++) {
                String name = type.jsonName + " scale " + codec.scale + " zero point " + codec.zeroPoint + ": " + values[i];
                assertEquals(quantized[i], codec.quantize(values[i]), name);
                assertEquals(dequantized[i], codec.dequantize(quantized[i]), 0f, name);
                assertEquals(dequantized[i], decoded[i], 0f, name + " through a tensor");
            }
        }
        Map<String, Object> rounding = map(golden.get("to_uint8"));
        float[] values = floats(rounding.get("values"));
        int[] expected = ints(rounding.get("uint8"));
        for (int i = 0; i < values.length; i++) {
            assertEquals(expected[i], TensorCodec.toUint8(values[i]), "to_uint8(" + values[i] + ")");
        }
    }

    @Test
    void exifOrientationMatchesPillow() {
        Map<String, Object> o = map(golden.get("orientation"));
        int width = integer(o.get("width"));
        int height = integer(o.get("height"));
        int[] pixels = ints(o.get("pixels"));
        for (Object entry : list(o.get("cases"))) {
            Map<String, Object> c = map(entry);
            int orientation = integer(c.get("orientation"));
            assertEquals(Orientation.swapsAxes(orientation) ? height : width, integer(c.get("width")));
            assertArrayEquals(ints(c.get("pixels")), Orientation.apply(pixels, width, height, orientation),
                    "orientation " + orientation);
        }
    }

    @Test
    void alphaUpscaleMatchesPythonImresize() {
        Map<String, Object> a = map(golden.get("alpha"));
        int width = integer(a.get("width"));
        int height = integer(a.get("height"));
        byte[] alpha = bytes(ints(a.get("alpha")));
        for (Map.Entry<String, Object> entry : map(a.get("upscaled")).entrySet()) {
            int scale = Integer.parseInt(entry.getKey());
            int[] expected = ints(entry.getValue());
            byte[] up = Bicubic.upscale(alpha, width, height, scale);
            assertEquals(expected.length, up.length);
            for (int i = 0; i < up.length; i++) {
                // ×2 and ×4 weights are dyadic fractions, so every sum is exact and the results equal; at ×3 the
                // float64 sums may round differently, which matters only at a rounding boundary.
                int tolerance = scale == 3 ? 1 : 0;
                assertTrue(Math.abs((up[i] & 0xff) - expected[i]) <= tolerance,
                        "×" + scale + " value " + i + ": " + (up[i] & 0xff) + ", Python " + expected[i]);
            }
        }
    }

    @Test
    void sidecarsAreAcceptedAndRejectedAsPythonDoes() {
        Map<String, Object> sidecars = map(golden.get("sidecars"));
        List<Object> valid = list(sidecars.get("valid"));
        ModelMetadata int8 = ModelMetadata.parse(utf8(valid.get(0)), "int8.tflite.json");
        assertEquals("isr-rdn", int8.arch);
        assertEquals(2, int8.scale);
        assertEquals("int8", int8.precision);
        assertEquals(8, int8.weightBits);
        assertEquals(8, int8.activationBits);
        assertEquals("dobi", int8.method);
        assertEquals(TensorType.UINT8, int8.io);
        assertNull(int8.tile);
        assertEquals("runs/dobi-w8", int8.source);
        ModelMetadata swinir = ModelMetadata.parse(utf8(valid.get(1)), "swinir.tflite.json");
        assertEquals(Integer.valueOf(64), swinir.tile);
        assertEquals(TensorType.FLOAT32, swinir.io);
        assertEquals(4, swinir.scale);
        assertNull(swinir.method);
        List<Object> invalid = list(sidecars.get("invalid"));
        assertTrue(invalid.size() >= 20);
        for (Object entry : invalid) {
            Map<String, Object> c = map(entry);
            InvalidMetadataException error = assertThrows(InvalidMetadataException.class,
                    () -> ModelMetadata.parse(utf8(c.get("text")), "model.tflite.json"), (String) c.get("why"));
            assertTrue(error.getMessage().startsWith("model.tflite.json is not") && error.getMessage().contains("re-export"),
                    error.getMessage());
        }
    }

    static byte[] utf8(Object text) {
        return ((String) text).getBytes(StandardCharsets.UTF_8);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object value) {
        return (Map<String, Object>) value;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object value) {
        return (List<Object>) value;
    }

    static Json.Number number(Object value) {
        return (Json.Number) value;
    }

    static int integer(Object value) {
        return (int) number(value).longValue();
    }

    static int[] ints(Object value) {
        return list(value).stream().mapToInt(PythonGoldenTest::integer).toArray();
    }

    static float[] floats(Object value) {
        List<Object> values = list(value);
        float[] out = new float[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = number(values.get(i)).floatValue();
        }
        return out;
    }

    static byte[] bytes(int[] values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (byte) values[i];
        }
        return out;
    }
}
