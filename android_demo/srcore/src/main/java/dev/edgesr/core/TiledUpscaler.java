package dev.edgesr.core;

import java.util.Arrays;

/**
 * Super-resolution of an image of any size, tile by tile, in bounded memory: {@code edge_sr.runtime.tiling.upscale_tiled}
 * in Java, with the same tiles, the same reflect padding of fixed-size tiles and the same float32 blending (each
 * SR value is the same sequence of float32 operations as in Python, so the results agree to the bit).
 *
 * <p>Memory does not grow with the image beyond one strip of partial sums: {@link #run} holds one LR tile, the
 * model's SR of it, a window of one tile's SR size where the current tile is blended, and the sums of the SR
 * rows the current row of tiles shares with the next one (the vertical overlap, across the output width). A
 * block is normalised in place and handed to a {@link RegionSink} as soon as no later tile reaches it, so the
 * caller never needs a row of tiles' worth of output either. {@link #peakBytes} says what a plan will hold, and
 * {@link #fit} picks the largest tile whose plan fits a budget.
 */
public final class TiledUpscaler {
    /** Reads LR pixels. */
    public interface PixelSource {
        /** Fill {@code rgb} with the {@code width}×{@code height} block at ({@code x}, {@code y}): H×W×3, [0, 255]. */
        void read(int x, int y, int width, int height, float[] rgb);
    }

    /** The network: one LR tile to its SR. */
    public interface TileModel {
        /**
         * Write the SR of the H×W×3 tile {@code rgb} ([0, 255]) into {@code sr}, which holds exactly
         * (scale·H)×(scale·W)×3 values and is reused for every tile; return how many values the model produced.
         */
        int upscale(float[] rgb, int height, int width, float[] sr);
    }

    /** Receives finished SR blocks; every SR pixel arrives in exactly one block. */
    public interface RegionSink {
        /**
         * The finished {@code cols}×{@code rows} SR block at ({@code left}, {@code top}): its pixel (r, c) is
         * {@code rgb[(r * stride + c) * 3 + channel]}. {@code rgb} is reused for the next block.
         */
        void accept(int top, int left, int rows, int cols, float[] rgb, int stride);
    }

    /** Told after each tile. */
    public interface Progress {
        void tileDone(int done, int total);
    }

    /** Tiles {@link #fit} tries no smaller than this: below it the overlap costs more than the tile computes. */
    public static final int MIN_FIT_TILE = 64;

    public final int height;
    public final int width;
    public final int scale;
    /** Whether the model takes exactly tile-sized input, so tiles cut from a smaller image are reflect-padded. */
    public final boolean fixed;
    public final Tiling.Axis rows;
    public final Tiling.Axis cols;
    private final int tileHeight;
    private final int tileWidth;
    private final int overlap;
    /** Bytes of the buffers the last {@link #run} allocated, counted as it allocated them. */
    private long allocated;

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
        this.overlap = tiling == null ? 0 : tiling.overlap;
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

    /** Bytes of the plan's weight arrays, which this object holds. */
    public long planBytes() {
        long floats = rows.norm.length + cols.norm.length;
        for (float[] weight : rows.weights) {
            floats += weight.length;
        }
        for (float[] weight : cols.weights) {
            floats += weight.length;
        }
        return 4 * floats;
    }

    /** Bytes of the buffers the last {@link #run} allocated (0 before one), as it counted them. */
    public long allocatedBytes() {
        return allocated;
    }

    /** The most bytes this plan holds at once: its weights and every buffer {@link #run} allocates. */
    public long peakBytes() {
        return peakBytes(height, width, scale, tileHeight, tileWidth, overlap, fixed);
    }

    /** {@link #peakBytes()} of a plan, without making it. */
    static long peakBytes(int height, int width, int scale, int tileHeight, int tileWidth, int overlap,
            boolean fixed) {
        int[] rowStarts = Tiling.starts(height, tileHeight, overlap);
        int[] colStarts = Tiling.starts(width, tileWidth, overlap);
        long sizeRows = Math.min(tileHeight, height);
        long sizeCols = Math.min(tileWidth, width);
        long inputRows = fixed ? tileHeight : sizeRows;
        long inputCols = fixed ? tileWidth : sizeCols;
        long weights = scale * (rowStarts.length * sizeRows + colStarts.length * sizeCols + height + width);
        long carry = (long) scale * shared(rowStarts, (int) sizeRows) * scale * width * 3;
        long window = scale * sizeRows * scale * sizeCols * 3;
        long piece = sizeRows * sizeCols * 3;
        long padded = fixed && (inputRows != sizeRows || inputCols != sizeCols) ? inputRows * inputCols * 3 : 0;
        long sr = scale * inputRows * scale * inputCols * 3;
        return 4 * (weights + carry + window + piece + padded + sr);
    }

    /** The most LR pixels any tile shares with the next one along an axis. */
    private static int shared(int[] starts, int size) {
        int most = 0;
        for (int i = 0; i + 1 < starts.length; i++) {
            most = Math.max(most, starts[i] + size - starts[i + 1]);
        }
        return most;
    }

    /**
     * The tiling for a model that takes any size: the largest square tile from {@code tile} down to
     * {@link #MIN_FIT_TILE} whose plan's {@link #peakBytes} fit {@code budgetBytes},
     * with the default overlap. How much a plan holds depends on tile × scale and on how far neighbouring rows of
     * tiles overlap, which is not monotonic in the tile, so every size is tried.
     */
    public static Tiling fit(int height, int width, int scale, int tile, long budgetBytes) {
        int smallest = Math.min(tile, MIN_FIT_TILE);
        long least = Long.MAX_VALUE;
        for (int t = tile; t >= smallest; t--) {
            Tiling tiling = Tiling.choose(0, 0, t, t, -1);
            long bytes = peakBytes(height, width, scale, t, t, tiling.overlap, false);
            if (bytes <= budgetBytes) {
                return tiling;
            }
            least = Math.min(least, bytes);
        }
        throw new IllegalArgumentException("upscaling " + width + "×" + height + " pixels ×" + scale + " needs at "
                + "least " + megabytes(least) + " MB of tile buffers with tiles of " + smallest + " to " + tile
                + " pixels, more than the " + megabytes(budgetBytes) + " MB this device allows; pick a smaller photo");
    }

    static long megabytes(long bytes) {
        return -Math.floorDiv(-bytes, 1L << 20);
    }

    /** Upscale {@code source} through {@code model} into {@code sink}; {@code progress} may be null. */
    public void run(PixelSource source, TileModel model, RegionSink sink, Progress progress) {
        allocated = 0;
        int outWidth = scale * width;
        int bandRows = scale * rows.size; // SR rows of one row of tiles
        int windowCols = scale * cols.size; // SR columns of one tile
        float[] carry = allocate((long) scale * shared(rows.starts, rows.size) * outWidth * 3);
        float[] window = allocate((long) bandRows * windowCols * 3);
        float[] piece = allocate((long) rows.size * cols.size * 3);
        int[] input = modelInput();
        float[] padded = fixed && (input[0] != rows.size || input[1] != cols.size)
                ? allocate((long) input[0] * input[1] * 3) : null;
        int srWidth = scale * input[1];
        int expected = scale * input[0] * srWidth * 3;
        float[] sr = allocate(expected);
        int carried = 0; // rows at the top of this row of tiles whose sums so far are in `carry`
        int tilesDone = 0;
        for (int i = 0; i < rows.starts.length; i++) {
            int top = scale * rows.starts[i];
            // rows above the next row of tiles are finished here; the rest go on in `carry`
            int finished = i + 1 < rows.starts.length ? scale * rows.starts[i + 1] - top : bandRows;
            float[] rowWeight = rows.weights[i];
            int pending = 0; // window columns (from this tile's left edge) that hold sums from earlier tiles
            for (int j = 0; j < cols.starts.length; j++) {
                int left = scale * cols.starts[j];
                for (int r = 0; r < bandRows; r++) { // the columns this tile adds: the sums from above, or 0
                    int at = (r * windowCols + pending) * 3;
                    int count = (windowCols - pending) * 3;
                    if (r < carried) {
                        System.arraycopy(carry, (r * outWidth + left + pending) * 3, window, at, count);
                    } else {
                        Arrays.fill(window, at, at + count, 0f);
                    }
                }
                source.read(cols.starts[j], rows.starts[i], cols.size, rows.size, piece);
                float[] tile = padded == null ? piece : reflectPad(piece, rows.size, cols.size, padded, input);
                int returned = model.upscale(tile, input[0], input[1], sr);
                if (returned != expected) {
                    throw new IllegalStateException("the model returned " + returned + " values for a " + input[1]
                            + "×" + input[0] + " tile; a ×" + scale + " model returns " + expected);
                }
                float[] colWeight = cols.weights[j];
                for (int r = 0; r < bandRows; r++) {
                    int out = r * windowCols * 3;
                    int in = r * srWidth * 3;
                    for (int c = 0; c < windowCols; c++) {
                        float weight = rowWeight[r] * colWeight[c];
                        for (int ch = 0; ch < 3; ch++) {
                            window[out + 3 * c + ch] += sr[in + 3 * c + ch] * weight;
                        }
                    }
                }
                // columns left of the next tile are done in this row of tiles
                int done = j + 1 < cols.starts.length ? scale * cols.starts[j + 1] - left : windowCols;
                for (int r = finished; r < bandRows; r++) {
                    System.arraycopy(window, r * windowCols * 3, carry, ((r - finished) * outWidth + left) * 3,
                            done * 3);
                }
                normalise(window, windowCols, top, finished, left, done);
                sink.accept(top, left, finished, done, window, windowCols);
                pending = windowCols - done;
                for (int r = 0; r < bandRows; r++) {
                    System.arraycopy(window, (r * windowCols + done) * 3, window, r * windowCols * 3, pending * 3);
                }
                tilesDone++;
                if (progress != null) {
                    progress.tileDone(tilesDone, tileCount());
                }
            }
            carried = bandRows - finished;
        }
    }

    private float[] allocate(long floats) {
        if (floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tiling " + width + "×" + height + " pixels ×" + scale + " needs a "
                    + megabytes(4 * floats) + " MB buffer; use smaller tiles or a smaller image");
        }
        allocated += 4 * floats;
        return new float[(int) floats];
    }

    /** The first {@code rows} × {@code cols} sums of {@code window} (SR pixel ({@code left}, {@code top}) on),
     * divided in place by their weight sums. */
    private void normalise(float[] window, int stride, int top, int rowCount, int left, int colCount) {
        for (int r = 0; r < rowCount; r++) {
            float rowNorm = rows.norm[top + r];
            for (int c = 0; c < colCount; c++) {
                float colNorm = cols.norm[left + c];
                int at = (r * stride + c) * 3;
                for (int ch = 0; ch < 3; ch++) {
                    window[at + ch] = window[at + ch] / rowNorm / colNorm;
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
        int outWidth = outputWidth();
        float[] out = new float[outputHeight() * outWidth * 3];
        run(Pixels.source(image, width), model, (top, left, rowCount, colCount, rgb, stride) -> {
            for (int r = 0; r < rowCount; r++) {
                System.arraycopy(rgb, r * stride * 3, out, ((top + r) * outWidth + left) * 3, colCount * 3);
            }
        }, null);
        return out;
    }
}
