package dev.edgesr.core;

import java.util.Arrays;

/**
 * Super-resolution of an image of any size, tile by tile, in bounded memory: {@code edge_sr.runtime.upscale_tiled}
 * in Java, with the same tiles, the same reflect padding of fixed-size tiles and the same float32 blending.
 *
 * <p>Rows are finished one row of tiles at a time and handed to a {@link StripSink}: besides the caller's result,
 * memory holds one tile, its SR and one row of tiles' SR ({@code scale * tileHeight} rows of the output width).
 */
public final class TiledUpscaler {
    /** Reads LR pixels. */
    public interface PixelSource {
        /** Fill {@code rgb} with the {@code width}×{@code height} block at ({@code x}, {@code y}): H×W×3, [0, 255]. */
        void read(int x, int y, int width, int height, float[] rgb);
    }

    /** The network: one LR tile to its SR. */
    public interface TileModel {
        /** The SR of the H×W×3 tile {@code rgb} ([0, 255]): exactly (scale·H)×(scale·W)×3 values. */
        float[] upscale(float[] rgb, int height, int width);
    }

    /** Receives finished SR rows, top to bottom. */
    public interface StripSink {
        /** SR rows {@code firstRow} to {@code firstRow + rows - 1}: the first {@code rows · outWidth · 3} values of
         * {@code rgb}, which is reused for the next strip. */
        void accept(int firstRow, int rows, float[] rgb);
    }

    /** Told after each tile. */
    public interface Progress {
        void tileDone(int done, int total);
    }

    public final int height;
    public final int width;
    public final int scale;
    /** Whether the model takes exactly tile-sized input, so tiles cut from a smaller image are reflect-padded. */
    public final boolean fixed;
    public final Tiling.Axis rows;
    public final Tiling.Axis cols;
    private final int tileHeight;
    private final int tileWidth;

    /** The plan for a {@code width}×{@code height} LR image; {@code tiling} null: the whole image as one tile. */
    public TiledUpscaler(int height, int width, int scale, Tiling tiling, boolean fixed) {
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("an image needs at least one pixel, not " + width + "×" + height);
        }
        if (tiling == null && fixed) {
            throw new IllegalArgumentException("a fixed-input model needs its tiling");
        }
        this.height = height;
        this.width = width;
        this.scale = scale;
        this.fixed = fixed;
        this.tileHeight = tiling == null ? height : tiling.tileHeight;
        this.tileWidth = tiling == null ? width : tiling.tileWidth;
        int overlap = tiling == null ? 0 : tiling.overlap;
        this.rows = Tiling.axis(height, tileHeight, overlap, scale);
        this.cols = Tiling.axis(width, tileWidth, overlap, scale);
    }

    public int tileCount() {
        return rows.starts.length * cols.starts.length;
    }

    /** The {height, width} of every input the model gets. */
    public int[] modelInput() {
        return fixed ? new int[] {tileHeight, tileWidth} : new int[] {rows.size, cols.size};
    }

    public int outputWidth() {
        return scale * width;
    }

    public int outputHeight() {
        return scale * height;
    }

    /** Upscale {@code source} through {@code model} into {@code sink}; {@code progress} may be null. */
    public void run(PixelSource source, TileModel model, StripSink sink, Progress progress) {
        int outWidth = scale * width;
        int bandRows = scale * rows.size; // SR rows of one row of tiles
        float[] pending = new float[bandRows * outWidth * 3]; // weighted sums of the SR rows from `done` down
        float[] finished = new float[bandRows * outWidth * 3];
        float[] piece = new float[rows.size * cols.size * 3];
        int[] input = modelInput();
        float[] padded = fixed && (input[0] != rows.size || input[1] != cols.size)
                ? new float[input[0] * input[1] * 3] : null;
        int srWidth = scale * input[1];
        int expected = scale * input[0] * srWidth * 3;
        int done = 0;
        int tilesDone = 0;
        for (int i = 0; i < rows.starts.length; i++) {
            int start = scale * rows.starts[i];
            if (start > done) { // no later tile reaches above `start`
                int count = start - done;
                normalise(pending, count, done, finished);
                sink.accept(done, count, finished);
                System.arraycopy(pending, count * outWidth * 3, pending, 0, (bandRows - count) * outWidth * 3);
                Arrays.fill(pending, (bandRows - count) * outWidth * 3, pending.length, 0f);
                done = start;
            }
            float[] rowWeight = rows.weights[i];
            for (int j = 0; j < cols.starts.length; j++) {
                int left = cols.starts[j];
                source.read(left, rows.starts[i], cols.size, rows.size, piece);
                float[] tile = padded == null ? piece : reflectPad(piece, rows.size, cols.size, padded, input);
                float[] sr = model.upscale(tile, input[0], input[1]);
                if (sr == null || sr.length != expected) {
                    throw new IllegalStateException("the model returned " + (sr == null ? 0 : sr.length)
                            + " values for a " + input[1] + "×" + input[0] + " tile; a ×" + scale + " model returns "
                            + expected);
                }
                float[] colWeight = cols.weights[j];
                for (int r = 0; r < bandRows; r++) {
                    int out = (r * outWidth + scale * left) * 3;
                    int in = r * srWidth * 3;
                    for (int c = 0; c < colWeight.length; c++) {
                        float window = rowWeight[r] * colWeight[c];
                        for (int ch = 0; ch < 3; ch++) {
                            pending[out + 3 * c + ch] += sr[in + 3 * c + ch] * window;
                        }
                    }
                }
                tilesDone++;
                if (progress != null) {
                    progress.tileDone(tilesDone, tileCount());
                }
            }
        }
        normalise(pending, bandRows, done, finished);
        sink.accept(done, bandRows, finished);
    }

    /** The first {@code count} pending rows (SR rows from {@code firstRow}) divided by their weight sums. */
    private void normalise(float[] pending, int count, int firstRow, float[] out) {
        int outWidth = scale * width;
        for (int r = 0; r < count; r++) {
            float rowNorm = rows.norm[firstRow + r];
            for (int c = 0; c < outWidth; c++) {
                float colNorm = cols.norm[c];
                int at = (r * outWidth + c) * 3;
                for (int ch = 0; ch < 3; ch++) {
                    out[at + ch] = pending[at + ch] / rowNorm / colNorm;
                }
            }
        }
    }

    /** numpy's {@code np.pad(piece, ((0, H - h), (0, W - w), (0, 0)), mode="reflect")}. */
    static float[] reflectPad(float[] piece, int height, int width, float[] out, int[] size) {
        for (int r = 0; r < size[0]; r++) {
            int sourceRow = reflect(r, height);
            for (int c = 0; c < size[1]; c++) {
                System.arraycopy(piece, (sourceRow * width + reflect(c, width)) * 3, out, (r * size[1] + c) * 3, 3);
            }
        }
        return out;
    }

    /** Index {@code i} of a reflection (edge not repeated) of {@code 0..length-1}, repeated as often as needed. */
    static int reflect(int i, int length) {
        if (length == 1) {
            return 0;
        }
        int period = 2 * (length - 1);
        int k = Math.floorMod(i, period);
        return k < length ? k : period - k;
    }

    /** The whole SR of an H×W×3 float image (for images that fit in memory, and for tests). */
    public float[] upscale(float[] image, TileModel model) {
        if (image.length != height * width * 3) {
            throw new IllegalArgumentException("expected " + width + "×" + height + "×3 values, not " + image.length);
        }
        float[] out = new float[outputHeight() * outputWidth() * 3];
        run(Pixels.source(image, width), model,
                (firstRow, count, rgb) -> System.arraycopy(rgb, 0, out, firstRow * outputWidth() * 3,
                        count * outputWidth() * 3),
                null);
        return out;
    }
}
