package dev.edgesr.core;

import java.nio.ByteBuffer;

/**
 * Pixels (float32 RGB on the [0, 255] scale) to and from a model's image tensor, as {@code edge_sr.runtime.litert}
 * converts them: integer tensors hold {@code clip(round_half_even(v / scale + zeroPoint))}, and are read back as
 * {@code (q - zeroPoint) * scale}, both computed in float32; a scale of 0 means the raw values. Rounding the
 * model's float output to a pixel is {@link #toUint8}.
 */
public final class TensorCodec {
    public final TensorType type;
    public final float scale;
    public final int zeroPoint;

    public TensorCodec(TensorType type, float scale, int zeroPoint) {
        if (type == null) {
            throw new IllegalArgumentException("a tensor type is needed");
        }
        if (!(scale >= 0) || Float.isInfinite(scale)) {
            throw new IllegalArgumentException("the quantization scale must be finite and non-negative, not " + scale);
        }
        this.type = type;
        this.scale = scale;
        this.zeroPoint = zeroPoint;
    }

    /** The integer a pixel value becomes in a uint8/int8 tensor (Python's {@code _quantize}). */
    public int quantize(float value) {
        float q = value;
        if (scale != 0) {
            q = (float) Math.rint(value / scale + zeroPoint); // numpy's round: half to even
        }
        if (Float.isNaN(q)) {
            return zeroPoint;
        }
        return (int) Math.max(type.min, Math.min(type.max, q));
    }

    /** The pixel value a uint8/int8 tensor element stands for (Python's {@code _dequantize}). */
    public float dequantize(int q) {
        return scale != 0 ? ((float) q - zeroPoint) * scale : q;
    }

    /** Write {@code count} pixel values from {@code values} into {@code tensor} at its position (native order). */
    public void encode(float[] values, int count, ByteBuffer tensor) {
        for (int i = 0; i < count; i++) {
            switch (type) {
                case FLOAT32:
                    tensor.putFloat(values[i]);
                    break;
                case UINT8:
                case INT8:
                    tensor.put((byte) quantize(values[i]));
                    break;
                default:
                    throw new AssertionError(type);
            }
        }
    }

    /** Read {@code count} elements of {@code tensor} from its position as pixel values into {@code values}. */
    public void decode(ByteBuffer tensor, int count, float[] values) {
        for (int i = 0; i < count; i++) {
            switch (type) {
                case FLOAT32:
                    values[i] = tensor.getFloat();
                    break;
                case UINT8:
                    values[i] = dequantize(tensor.get() & 0xff);
                    break;
                case INT8:
                    values[i] = dequantize(tensor.get());
                    break;
                default:
                    throw new AssertionError(type);
            }
        }
    }

    /** A model's float output as a pixel: clipped to [0, 255], rounded half up ({@code edge_sr.runtime.tiling.to_uint8}). */
    public static int toUint8(float value) {
        if (Float.isNaN(value)) {
            return 0;
        }
        float rounded = (float) Math.floor(value + 0.5f);
        return (int) Math.max(0f, Math.min(255f, rounded));
    }
}
