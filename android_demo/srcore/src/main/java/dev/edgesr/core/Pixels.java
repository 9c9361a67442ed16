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
     * Pack a {@code cols}×{@code rows} block of float RGB pixels (model output: clipped and rounded by
     * {@link TensorCodec#toUint8}), pixel (r, c) at {@code rgb[(r * stride + c) * 3]}, into {@code out} row by row,
     * with alpha from {@code alpha[alphaOffset + r * alphaStride + c]}, or opaque when {@code alpha} is null.
     */
    public static void toArgb(float[] rgb, int stride, int rows, int cols, byte[] alpha, int alphaOffset,
            int alphaStride, int[] out) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int in = (r * stride + c) * 3;
                int a = alpha == null ? 0xff : alpha[alphaOffset + r * alphaStride + c] & 0xff;
                out[r * cols + c] = a << 24 | TensorCodec.toUint8(rgb[in]) << 16 | TensorCodec.toUint8(rgb[in + 1]) << 8
                        | TensorCodec.toUint8(rgb[in + 2]);
            }
        }
    }
}
