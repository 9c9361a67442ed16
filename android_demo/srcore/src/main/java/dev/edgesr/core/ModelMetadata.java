package dev.edgesr.core;

import java.util.List;
import java.util.Map;

/**
 * The metadata sidecar {@code MODEL.tflite.json} that {@code python -m edge_sr.convert} writes beside each model.
 *
 * <p>The checks are those of {@code edge_sr.runtime.metadata._metadata_problem} (all fields present, format
 * "edge_sr.tflite" version 1, a known precision and I/O type, positive integer scale and bits, a null or positive
 * integer tile), plus the type of the free-text fields and the pixel range [0, 255] that the app's conversions
 * assume.
 */
public final class ModelMetadata {
    public static final String FORMAT = "edge_sr.tflite";
    public static final int VERSION = 1;
    private static final List<String> FIELDS = List.of(
            "format", "version", "arch", "scale", "precision", "bits", "method", "pixel_range", "tile", "io",
            "source");
    private static final List<String> PRECISIONS = List.of("fp32", "fp16", "dynamic", "int8");

    /** The models_tf architecture (edsr, rdn, isr-rdn, swinir), or null. */
    public final String arch;
    public final int scale;
    /** fp32, fp16, dynamic or int8. */
    public final String precision;
    public final int weightBits;
    public final int activationBits;
    /** The quantization method (odm, 2dquant, dobi, ...), or null for float exports. */
    public final String method;
    /** The fixed square input size in LR pixels, or null when the model takes any size. */
    public final Integer tile;
    /** The input and output tensor type. */
    public final TensorType io;
    /** What was exported (zoo:NAME, a .keras file, a run directory), or null. */
    public final String source;

    private ModelMetadata(Map<String, Object> json) {
        arch = (String) json.get("arch");
        scale = (int) ((Json.Number) json.get("scale")).longValue();
        precision = (String) json.get("precision");
        Map<?, ?> bits = (Map<?, ?>) json.get("bits");
        weightBits = (int) ((Json.Number) bits.get("weights")).longValue();
        activationBits = (int) ((Json.Number) bits.get("activations")).longValue();
        method = (String) json.get("method");
        Object tileValue = json.get("tile");
        tile = tileValue == null ? null : (int) ((Json.Number) tileValue).longValue();
        io = TensorType.fromJsonName((String) json.get("io"));
        source = (String) json.get("source");
    }

    /** The checked metadata in the sidecar file's bytes; {@code name} (the file name) goes into the messages. */
    public static ModelMetadata parse(byte[] sidecar, String name) {
        Object json;
        try {
            json = Json.parse(sidecar);
        } catch (JsonException e) {
            throw new InvalidMetadataException(name + " is not valid JSON (" + e.getMessage() + "); re-export the model");
        }
        String problem = problem(json);
        if (problem != null) {
            throw new InvalidMetadataException(
                    name + " is not edge_sr model metadata (" + problem + "); re-export the model with python -m "
                            + "edge_sr.convert");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) json;
        return new ModelMetadata(map);
    }

    /** Why {@code json} is not a valid sidecar, or null. */
    static String problem(Object json) {
        if (!(json instanceof Map)) {
            return "not a JSON object";
        }
        Map<?, ?> map = (Map<?, ?>) json;
        StringBuilder missing = new StringBuilder();
        for (String field : FIELDS) {
            if (!map.containsKey(field)) {
                missing.append(missing.length() == 0 ? "" : ", ").append(field);
            }
        }
        if (missing.length() > 0) {
            return "missing " + missing;
        }
        if (!FORMAT.equals(map.get("format")) || !isInteger(map.get("version"), VERSION)) {
            return "format " + map.get("format") + " version " + map.get("version") + ", expected " + FORMAT + " "
                    + VERSION;
        }
        if (!PRECISIONS.contains(map.get("precision"))) {
            return "precision " + map.get("precision") + " is not one of " + String.join(", ", PRECISIONS);
        }
        if (!isPositiveInt(map.get("scale"))) {
            return "scale " + map.get("scale") + " is not a positive integer";
        }
        if (map.get("tile") != null && !isPositiveInt(map.get("tile"))) {
            return "tile " + map.get("tile") + " is neither null nor a positive integer";
        }
        Object io = map.get("io");
        if (!(io instanceof String) || TensorType.fromJsonName((String) io) == null) {
            return "io " + io + " is not one of float32, uint8, int8";
        }
        Object bits = map.get("bits");
        if (!(bits instanceof Map) || !isPositiveInt(((Map<?, ?>) bits).get("weights"))
                || !isPositiveInt(((Map<?, ?>) bits).get("activations"))) {
            return "bits " + bits + " is not {\"weights\": k, \"activations\": k}";
        }
        for (String field : List.of("arch", "method", "source")) {
            Object value = map.get(field);
            if (value != null && !(value instanceof String)) {
                return field + " " + value + " is neither null nor a string";
            }
        }
        Object range = map.get("pixel_range");
        if (!(range instanceof List) || ((List<?>) range).size() != 2 || !isInteger(((List<?>) range).get(0), 0)
                || !isInteger(((List<?>) range).get(1), 255)) {
            return "pixel_range " + range + " is not [0, 255]";
        }
        return null;
    }

    private static boolean isPositiveInt(Object value) {
        if (!(value instanceof Json.Number) || !((Json.Number) value).isInteger()) {
            return false;
        }
        try {
            long n = ((Json.Number) value).longValue();
            return n > 0 && n <= Integer.MAX_VALUE;
        } catch (JsonException e) {
            return false; // beyond long: no model has that many pixels
        }
    }

    private static boolean isInteger(Object value, long expected) {
        return value instanceof Json.Number && ((Json.Number) value).isInteger()
                && ((Json.Number) value).toString().equals(Long.toString(expected));
    }

    /** One line for the UI: "isr-rdn ×2, int8 (W8A8, dobi), uint8 I/O, any size". */
    public String summary() {
        String bits = precision.equals("int8") ? " (W" + weightBits + "A" + activationBits
                + (method == null ? "" : ", " + method) + ")" : "";
        String size = tile == null ? "any size" : tile + "×" + tile + " tiles";
        return (arch == null ? "model" : arch) + " ×" + scale + ", " + precision + bits + ", " + io.jsonName
                + " I/O, " + size;
    }
}
