package dev.edgesr.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The upscaler's memory: what {@link TiledUpscaler#run} allocates is counted as it allocates (not the JVM heap),
 * equals {@link TiledUpscaler#peakBytes}, and stays within {@link #BUDGET} for the largest results the app makes
 * (24 MP) in any shape, with the tiles {@link TiledUpscaler#fit} picks.
 */
class MemoryBoundTest {
    /** The budget the app gives the upscaler on a phone with a 256 MB heap (a quarter of the memory class). */
    static final long BUDGET = 64L << 20;

    @Test
    void a24MegapixelResultAtX4StaysWithinTheBudget() {
        runWithinBudget(2000, 3000, 4, 512); // landscape 6 MP to 12000×8000
        runWithinBudget(3000, 2000, 4, 512); // portrait
    }

    @Test
    void aPanoramaStaysWithinTheBudget() {
        runWithinBudget(300, 20000, 2, 256); // 40000×600: one row of 256-pixel tiles would overlap the next by 212
        runWithinBudget(300, 20000, 2, 512); // one row of tiles: nothing carried to the next
    }

    @Test
    void aFixedSizeModelsPlanIsCountedToo() {
        TiledUpscaler upscaler = new TiledUpscaler(2000, 3000, 4, Tiling.choose(64, 64, null, null, -1), true);
        assertTrue(upscaler.peakBytes() <= BUDGET, upscaler.peakBytes() + " bytes");
    }

    @Test
    void fitPrefersTheRequestedTileAndSaysWhenNothingFits() {
        assertEquals(256, TiledUpscaler.fit(1000, 1000, 2, 256, BUDGET).tileHeight);
        Tiling smaller = TiledUpscaler.fit(2000, 3000, 4, 512, BUDGET);
        assertTrue(smaller.tileHeight < 512 && smaller.tileHeight >= TiledUpscaler.MIN_FIT_TILE);
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> TiledUpscaler.fit(2000, 3000, 4, 512, 1L << 20));
        assertTrue(error.getMessage().contains("more than the 1 MB this device allows"), error.getMessage());
    }

    /**
     * Upscale a {@code width}×{@code height} image whose pixels are made on the fly through a pointwise ×scale
     * model, with the tile {@code fit} picks for {@code tile}; check every SR pixel and the bytes held.
     */
    private static void runWithinBudget(int height, int width, int scale, int tile) {
        Tiling tiling = TiledUpscaler.fit(height, width, scale, tile, BUDGET);
        TiledUpscaler upscaler = new TiledUpscaler(height, width, scale, tiling, false);
        TiledUpscaler.PixelSource source = (x, y, w, h, out) -> {
            for (int r = 0; r < h; r++) {
                for (int c = 0; c < w; c++) {
                    Arrays.fill(out, (r * w + c) * 3, (r * w + c) * 3 + 3, value(x + c, y + r));
                }
            }
        };
        TiledUpscaler.TileModel nearest = (rgb, h, w, sr) -> {
            for (int y = 0; y < scale * h; y++) {
                for (int x = 0; x < scale * w; x++) {
                    System.arraycopy(rgb, ((y / scale) * w + x / scale) * 3, sr, (y * scale * w + x) * 3, 3);
                }
            }
            return scale * h * scale * w * 3;
        };
        long[] pixels = new long[1];
        upscaler.run(source, nearest, (top, left, rows, cols, rgb, stride) -> {
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    float expected = value((left + c) / scale, (top + r) / scale);
                    float got = rgb[(r * stride + c) * 3];
                    if (Math.abs(got - expected) > 1e-2f) {
                        throw new AssertionError("SR pixel (" + (left + c) + ", " + (top + r) + ") is " + got
                                + ", not " + expected);
                    }
                }
            }
            pixels[0] += (long) rows * cols;
        }, null);
        String name = width + "×" + height + " ×" + scale + " in " + tiling.tileHeight + "-pixel tiles";
        assertEquals((long) upscaler.outputWidth() * upscaler.outputHeight(), pixels[0], name);
        long held = upscaler.allocatedBytes() + upscaler.planBytes();
        assertEquals(upscaler.peakBytes(), held, name + ": the plan's estimate is what run allocated");
        assertTrue(held <= BUDGET, name + " held " + held + " bytes");
    }

    private static float value(int x, int y) {
        return (x * 7 + y * 13) % 256;
    }
}
