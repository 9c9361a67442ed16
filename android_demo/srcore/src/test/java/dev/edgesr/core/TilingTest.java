package dev.edgesr.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The tiling plan and its blending, for sizes, tiles, overlaps and scales well beyond the golden file's. */
class TilingTest {
    @Test
    void tilesCoverEveryPixelAndBlendedWeightsSumToOne() {
        int plans = 0;
        for (int scale = 1; scale <= 4; scale++) {
            for (int tile = 1; tile <= 24; tile++) {
                for (int overlap = 0; overlap <= tile / 2; overlap++) {
                    for (int length = 1; length <= 70; length++) {
                        checkAxis(length, tile, overlap, scale);
                        plans++;
                    }
                }
            }
        }
        assertTrue(plans > 10_000);
    }

    private static void checkAxis(int length, int tile, int overlap, int scale) {
        String name = "length " + length + ", tile " + tile + ", overlap " + overlap + ", ×" + scale;
        Tiling.Axis axis = Tiling.axis(length, tile, overlap, scale);
        assertEquals(Math.min(tile, length), axis.size, name);
        assertEquals(0, axis.starts[0], name);
        assertEquals(length, axis.starts[axis.starts.length - 1] + axis.size, name + ": the last tile ends the image");
        for (int i = 1; i < axis.starts.length; i++) {
            int shared = axis.starts[i - 1] + axis.size - axis.starts[i];
            assertTrue(axis.starts[i] > axis.starts[i - 1] && shared >= overlap, name + ": tiles " + (i - 1) + ", " + i);
        }
        // Every SR pixel: its tiles' weights are non-negative, divided by the normaliser they sum to 1.
        double[] sum = new double[scale * length];
        for (int i = 0; i < axis.starts.length; i++) {
            for (int k = 0; k < scale * axis.size; k++) {
                float weight = axis.weights[i][k];
                assertTrue(weight >= 0 && weight <= 1, name);
                sum[scale * axis.starts[i] + k] += weight / axis.norm[scale * axis.starts[i] + k];
            }
        }
        for (int p = 0; p < sum.length; p++) {
            assertTrue(axis.norm[p] > 0, name + ": pixel " + p + " has no weight");
            assertEquals(1.0, sum[p], 1e-6, name + ": pixel " + p);
        }
    }

    @Test
    void aPointwiseModelGivesTheWholeImageResultAndEveryPixelArrivesOnce() {
        Random random = new Random(7);
        int[][] sizes = {{1, 1}, {7, 5}, {30, 64}, {65, 130}, {97, 33}};
        for (int[] size : sizes) {
            for (boolean fixed : new boolean[] {false, true}) {
                int height = size[0];
                int width = size[1];
                float[] image = new float[height * width * 3];
                for (int i = 0; i < image.length; i++) {
                    image[i] = random.nextFloat() * 255;
                }
                Tiling tiling = fixed ? Tiling.choose(16, 24, null, null, 6) : Tiling.choose(0, 0, 16, 24, 6);
                TiledUpscaler upscaler = new TiledUpscaler(height, width, 3, tiling, fixed);
                TiledUpscaler.TileModel nearest = (rgb, h, w, sr) -> {
                    if (fixed) {
                        assertArrayEquals(new int[] {16, 24}, new int[] {h, w}, "a fixed model gets whole tiles");
                    } else {
                        assertArrayEquals(new int[] {Math.min(16, height), Math.min(24, width)}, new int[] {h, w});
                    }
                    return into(nearest(rgb, h, w, 3), sr);
                };
                int outWidth = 3 * width;
                int[] arrivals = new int[3 * height * outWidth];
                float[] tiled = new float[9 * image.length];
                upscaler.run(Pixels.source(image, width), nearest, (top, left, rows, cols, rgb, stride) -> {
                    for (int r = 0; r < rows; r++) {
                        System.arraycopy(rgb, r * stride * 3, tiled, ((top + r) * outWidth + left) * 3, cols * 3);
                        for (int c = 0; c < cols; c++) {
                            arrivals[(top + r) * outWidth + left + c]++;
                        }
                    }
                }, null);
                for (int count : arrivals) {
                    assertEquals(1, count, "every SR pixel arrives once");
                }
                float[] whole = nearest(image, height, width, 3);
                for (int i = 0; i < whole.length; i++) {
                    assertEquals(whole[i], tiled[i], 1e-6f * 255, size[0] + "×" + size[1] + " fixed " + fixed);
                }
                assertEquals(upscaler.peakBytes(), upscaler.allocatedBytes() + upscaler.planBytes());
            }
        }
    }

    /** Copy a model's output into the reused SR buffer, as far as it fits; how many values the model made. */
    static int into(float[] values, float[] sr) {
        System.arraycopy(values, 0, sr, 0, Math.min(values.length, sr.length));
        return values.length;
    }

    static float[] nearest(float[] rgb, int height, int width, int scale) {
        float[] out = new float[scale * scale * rgb.length];
        for (int y = 0; y < scale * height; y++) {
            for (int x = 0; x < scale * width; x++) {
                System.arraycopy(rgb, ((y / scale) * width + x / scale) * 3, out, (y * scale * width + x) * 3, 3);
            }
        }
        return out;
    }

    @Test
    void choiceFollowsTheModelsInputSize() {
        Tiling fixed = Tiling.choose(64, 64, null, null, -1);
        assertEquals(64, fixed.tileHeight);
        assertEquals(16, fixed.overlap); // min(DEFAULT_OVERLAP, 64 / 4)
        Tiling large = Tiling.choose(0, 0, 256, 256, -1);
        assertEquals(Tiling.DEFAULT_OVERLAP, large.overlap);
        assertNull(Tiling.choose(0, 0, null, null, -1), "a dynamic model without a tile runs the whole image");
        IllegalArgumentException other = assertThrows(IllegalArgumentException.class,
                () -> Tiling.choose(64, 64, 128, 128, -1));
        assertTrue(other.getMessage().contains("exported for 64×64 tiles"), other.getMessage());
        IllegalArgumentException overlap = assertThrows(IllegalArgumentException.class,
                () -> Tiling.choose(0, 0, 64, 64, 40));
        assertTrue(overlap.getMessage().contains("overlap from 0 to half the tile"), overlap.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Tiling.choose(0, 0, 0, 8, -1));
        assertThrows(IllegalArgumentException.class, () -> Tiling.choose(0, 0, 8, null, -1));
    }

    @Test
    void wholeImageWithoutTilingIsTheModelOutput() {
        float[] image = {10, 20, 30, 40, 50, 60};
        TiledUpscaler upscaler = new TiledUpscaler(1, 2, 2, null, false);
        assertEquals(1, upscaler.tileCount());
        assertArrayEquals(nearest(image, 1, 2, 2), upscaler.upscale(image, (rgb, h, w, sr) -> into(nearest(rgb, h, w, 2), sr)));
    }

    @Test
    void reflectPaddingIsNumpys() {
        int[] expected = {0, 1, 2, 1, 0, 1, 2, 1, 0, 1}; // np.pad(np.arange(3), (0, 7), mode="reflect")
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], TiledUpscaler.reflect(i, 3));
        }
        assertEquals(0, TiledUpscaler.reflect(5, 1));
    }

    @Test
    void aModelOfTheWrongScaleIsAClearError() {
        TiledUpscaler upscaler = new TiledUpscaler(8, 8, 2, Tiling.choose(0, 0, 4, 4, 1), false);
        IllegalStateException error = assertThrows(IllegalStateException.class,
                () -> upscaler.upscale(new float[8 * 8 * 3], (rgb, h, w, sr) -> into(nearest(rgb, h, w, 3), sr)));
        assertTrue(error.getMessage().contains("a ×2 model returns 192"), error.getMessage());
    }

    @Test
    void progressCountsEveryTile() {
        TiledUpscaler upscaler = new TiledUpscaler(20, 30, 2, Tiling.choose(0, 0, 8, 8, 2), false);
        List<Integer> done = new ArrayList<>();
        upscaler.run(Pixels.source(new float[20 * 30 * 3], 30), (rgb, h, w, sr) -> into(nearest(rgb, h, w, 2), sr),
                (top, left, rows, cols, rgb, stride) -> {}, (n, total) -> {
                    assertEquals(upscaler.tileCount(), total);
                    done.add(n);
                });
        assertEquals(upscaler.tileCount(), done.size());
        assertEquals(upscaler.tileCount(), done.get(done.size() - 1));
    }
}
