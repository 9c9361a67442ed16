package dev.edgesr.core;

/**
 * The EXIF orientation tag (1–8) applied to pixels, as Pillow's {@code ImageOps.exif_transpose} applies it when
 * {@code edge_sr.data.read_picture} reads a photo: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90°
 * clockwise, 7 transverse, 8 rotate 90° counter-clockwise. Any other value leaves the pixels as they are.
 */
public final class Orientation {
    private Orientation() {}

    /** Whether the tag swaps width and height. */
    public static boolean swapsAxes(int orientation) {
        return orientation >= 5 && orientation <= 8;
    }

    /** The upright pixels of a {@code width}×{@code height} image stored with EXIF {@code orientation}. */
    public static int[] apply(int[] pixels, int width, int height, int orientation) {
        if (pixels.length != width * height) {
            throw new IllegalArgumentException(
                    "expected " + width + "×" + height + " pixels, not " + pixels.length);
        }
        if (orientation < 2 || orientation > 8) {
            return pixels;
        }
        int outWidth = swapsAxes(orientation) ? height : width;
        int outHeight = swapsAxes(orientation) ? width : height;
        int[] out = new int[pixels.length];
        for (int y = 0; y < outHeight; y++) {
            for (int x = 0; x < outWidth; x++) {
                int sx;
                int sy;
                switch (orientation) {
                    case 2: sx = width - 1 - x; sy = y; break;
                    case 3: sx = width - 1 - x; sy = height - 1 - y; break;
                    case 4: sx = x; sy = height - 1 - y; break;
                    case 5: sx = y; sy = x; break;
                    case 6: sx = y; sy = height - 1 - x; break;
                    case 7: sx = width - 1 - y; sy = height - 1 - x; break;
                    default: sx = width - 1 - y; sy = x; break; // 8
                }
                out[y * outWidth + x] = pixels[sy * width + sx];
            }
        }
        return out;
    }
}
