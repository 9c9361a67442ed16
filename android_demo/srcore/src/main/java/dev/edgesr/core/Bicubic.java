package dev.edgesr.core;

/**
 * Integer-factor upscaling of one uint8 plane with MATLAB's bicubic {@code imresize}, as
 * {@code edge_sr.data.imresize} does it (cubic kernel a = −0.5, symmetric borders, height then width, each pass
 * rounded half up to uint8): how {@code python -m edge_sr.upscale} upscales an alpha channel, which the network
 * never sees.
 */
public final class Bicubic {
    private Bicubic() {}

    /** The {@code scale}× upscale of a {@code width}×{@code height} plane (row-major bytes). */
    public static byte[] upscale(byte[] plane, int width, int height, int scale) {
        if (scale < 1) {
            throw new IllegalArgumentException("the scale must be a positive integer, not " + scale);
        }
        if (plane.length != width * height) {
            throw new IllegalArgumentException("expected " + width + "×" + height + " values, not " + plane.length);
        }
        int outHeight = scale * height;
        int outWidth = scale * width;
        Taps rowTaps = taps(height, outHeight, scale);
        byte[] tall = new byte[outHeight * width];
        for (int y = 0; y < outHeight; y++) {
            for (int x = 0; x < width; x++) {
                double sum = 0;
                for (int k = 0; k < Taps.COUNT; k++) {
                    sum += rowTaps.weights[y][k] * (plane[rowTaps.indices[y][k] * width + x] & 0xff);
                }
                tall[y * width + x] = roundUint8(sum);
            }
        }
        Taps colTaps = taps(width, outWidth, scale);
        byte[] out = new byte[outHeight * outWidth];
        for (int y = 0; y < outHeight; y++) {
            for (int x = 0; x < outWidth; x++) {
                double sum = 0;
                for (int k = 0; k < Taps.COUNT; k++) {
                    sum += colTaps.weights[x][k] * (tall[y * width + colTaps.indices[x][k]] & 0xff);
                }
                out[y * outWidth + x] = roundUint8(sum);
            }
        }
        return out;
    }

    private static final class Taps {
        static final int COUNT = 6; // ceil(kernel width 4) + 2, as MATLAB takes them
        final int[][] indices;
        final double[][] weights;

        Taps(int outLength) {
            indices = new int[outLength][COUNT];
            weights = new double[outLength][COUNT];
        }
    }

    /** MATLAB's {@code contributions} for upscaling (no antialiasing): input indices and weights per output. */
    private static Taps taps(int inLength, int outLength, int scale) {
        Taps taps = new Taps(outLength);
        for (int o = 0; o < outLength; o++) {
            double u = (o + 1) / (double) scale + 0.5 * (1 - 1.0 / scale); // 1-based input coordinate
            double left = Math.floor(u - 2.0);
            double total = 0;
            for (int k = 0; k < Taps.COUNT; k++) {
                double index = left + k;
                taps.weights[o][k] = cubic(u - index);
                total += taps.weights[o][k];
                int zeroBased = Math.floorMod((int) index - 1, 2 * inLength);
                taps.indices[o][k] = zeroBased < inLength ? zeroBased : 2 * inLength - 1 - zeroBased;
            }
            for (int k = 0; k < Taps.COUNT; k++) {
                taps.weights[o][k] /= total;
            }
        }
        return taps;
    }

    private static double cubic(double x) {
        double ax = Math.abs(x);
        double ax2 = ax * ax;
        double ax3 = ax * ax * ax;
        if (ax <= 1) {
            return 1.5 * ax3 - 2.5 * ax2 + 1.0;
        }
        if (ax <= 2) {
            return -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0;
        }
        return 0;
    }

    private static byte roundUint8(double value) {
        return (byte) (int) Math.floor(Math.max(0, Math.min(255, value)) + 0.5);
    }
}
