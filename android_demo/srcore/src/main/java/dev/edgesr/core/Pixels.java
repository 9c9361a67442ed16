package dev.edgesr.core;

/** Packed ARGB pixels (Android's Bitmap layout) to and from the H×W×3 float RGB that tiles and models use. */
public final class Pixels {
    private Pixels() {}

    /** A PixelSource over an H×W×3 float image {@code width} pixels wide. */
    public static TiledUpscaler.PixelSource source(float[] rgb, int width) {
        return (x, y, w, h, out) -> {
            for (int r = 0; r < h; r++) {
                System.arraycopy(rgb, ((y + r) * width + x) * 3, out, r * w * 3, w * 3);
            }
        };
    }

    /** A PixelSource over packed ARGB pixels {@code width} pixels wide (alpha ignored: it is upscaled apart). */
    public static TiledUpscaler.PixelSource source(int[] argb, int width) {
        return (x, y, w, h, out) -> {
            for (int r = 0; r < h; r++) {
                int from = (y + r) * width + x;
                for (int c = 0; c < w; c++) {
                    int pixel = argb[from + c];
                    int at = (r * w + c) * 3;
                    out[at] = (pixel >>> 16) & 0xff;
                    out[at + 1] = (pixel >>> 8) & 0xff;
                    out[at + 2] = pixel & 0xff;
                }
            }
        };
    }

    /** Whether any pixel is not fully opaque. */
    public static boolean hasTransparency(int[] argb) {
        for (int pixel : argb) {
            if ((pixel >>> 24) != 0xff) {
                return true;
            }
        }
        return false;
    }

    /** The alpha plane of packed ARGB pixels. */
    public static byte[] alpha(int[] argb) {
        byte[] alpha = new byte[argb.length];
        for (int i = 0; i < argb.length; i++) {
            alpha[i] = (byte) (argb[i] >>> 24);
        }
        return alpha;
    }

    /**
     * Pack {@code count} float RGB pixels (model output: clipped and rounded by {@link TensorCodec#toUint8}) into
     * {@code out}, with alpha from {@code alpha} at {@code alphaOffset}, or opaque when {@code alpha} is null.
     */
    public static void toArgb(float[] rgb, int count, byte[] alpha, int alphaOffset, int[] out) {
        for (int i = 0; i < count; i++) {
            int a = alpha == null ? 0xff : alpha[alphaOffset + i] & 0xff;
            out[i] = a << 24 | TensorCodec.toUint8(rgb[3 * i]) << 16 | TensorCodec.toUint8(rgb[3 * i + 1]) << 8
                    | TensorCodec.toUint8(rgb[3 * i + 2]);
        }
    }
}
