package dev.edgesr.core;

/** The element types an edge_sr model's image tensors may have (the sidecar's "io"). */
public enum TensorType {
    FLOAT32("float32", 4, 0, 0),
    UINT8("uint8", 1, 0, 255),
    INT8("int8", 1, -128, 127);

    /** The name edge_sr's sidecar uses. */
    public final String jsonName;
    public final int bytes;
    /** The integer range (unused for FLOAT32). */
    public final int min;
    public final int max;

    TensorType(String jsonName, int bytes, int min, int max) {
        this.jsonName = jsonName;
        this.bytes = bytes;
        this.min = min;
        this.max = max;
    }

    /** The type called {@code name} in the sidecar, or null. */
    public static TensorType fromJsonName(String name) {
        for (TensorType type : values()) {
            if (type.jsonName.equals(name)) {
                return type;
            }
        }
        return null;
    }
}
