package dev.edgesr.core;

/**
 * Where tiles go and how they are weighted: the plan of {@code edge_sr.runtime.tiling} ({@code tiling},
 * {@code _axis_plan}, {@code _fade_in}), reproduced operation for operation in float32 so that Java and Python
 * blend to the same values.
 *
 * <p>Along each axis, tiles of {@code min(tile, length)} LR pixels are spread evenly so that neighbours share at
 * least {@code overlap} pixels. Across each shared band a tile's SR weight is 0 on the outer quarter, a linear
 * ramp on the middle half and 1 on the inner quarter; a pixel's value is the weighted sum over the tiles that
 * cover it, divided by the sum of their weights. Weights are separable: a tile's weight at (row, column) is
 * {@code rowWeight[row] * colWeight[column]}, and the normaliser is {@code rowNorm[row] * colNorm[column]}.
 */
public final class Tiling {
    /** LR pixels shared by neighbouring tiles by default (at most a quarter of the tile). */
    public static final int DEFAULT_OVERLAP = 32;

    public final int tileHeight;
    public final int tileWidth;
    public final int overlap;

    private Tiling(int tileHeight, int tileWidth, int overlap) {
        this.tileHeight = tileHeight;
        this.tileWidth = tileWidth;
        this.overlap = overlap;
    }

    /**
     * The tiling {@code edge_sr.runtime.tiling} picks: a fixed-input model's own size ({@code fixedHeight} and
     * {@code fixedWidth}, 0 for a model that takes any size), else the requested tile; {@code overlap} < 0 means
     * the default, {@code min(DEFAULT_OVERLAP, min(tile) / 4)}. Null when a dynamic model gets no tile: the whole
     * image in one go.
     */
    public static Tiling choose(int fixedHeight, int fixedWidth, Integer tileHeight, Integer tileWidth, int overlap) {
        boolean requested = tileHeight != null || tileWidth != null;
        if (requested && (tileHeight == null || tileWidth == null)) {
            throw new IllegalArgumentException("give both the tile height and width, or neither");
        }
        if (requested) {
            checkTile(tileHeight, tileWidth);
        }
        int height;
        int width;
        if (fixedHeight > 0 && fixedWidth > 0) {
            if (requested && (tileHeight != fixedHeight || tileWidth != fixedWidth)) {
                throw new IllegalArgumentException("the model was exported for " + fixedWidth + "×" + fixedHeight
                        + " tiles; it cannot take " + tileWidth + "×" + tileHeight + " tiles");
            }
            height = fixedHeight;
            width = fixedWidth;
        } else if (requested) {
            height = tileHeight;
            width = tileWidth;
        } else {
            return null;
        }
        if (overlap < 0) {
            overlap = Math.min(DEFAULT_OVERLAP, Math.min(height, width) / 4);
        }
        checkOverlap(height, width, overlap);
        return new Tiling(height, width, overlap);
    }

    static void checkTile(int tileHeight, int tileWidth) {
        if (Math.min(tileHeight, tileWidth) < 1) {
            throw new IllegalArgumentException(
                    "tiles must be at least 1 pixel, not " + tileWidth + "×" + tileHeight);
        }
    }

    static void checkOverlap(int tileHeight, int tileWidth, int overlap) {
        if (overlap < 0 || overlap > Math.min(tileHeight, tileWidth) / 2) {
            throw new IllegalArgumentException("tiles of " + tileWidth + "×" + tileHeight
                    + " need an overlap from 0 to half the tile, not " + overlap);
        }
    }

    /** The tiles along one axis of {@code length} LR pixels and their SR weights. */
    public static final class Axis {
        /** The first LR pixel of each tile. */
        public final int[] starts;
        /** Every tile's extent in LR pixels: {@code min(tile, length)}. */
        public final int size;
        /** Per tile, its weight on each of its {@code scale * size} SR pixels. */
        public final float[][] weights;
        /** Per SR pixel, the sum of the weights of the tiles that cover it. */
        public final float[] norm;

        private Axis(int[] starts, int size, float[][] weights, float[] norm) {
            this.starts = starts;
            this.size = size;
            this.weights = weights;
            this.norm = norm;
        }
    }

    /** {@code edge_sr.runtime.tiling._axis_plan}. */
    public static Axis axis(int length, int tile, int overlap, int scale) {
        if (length < 1 || tile < 1 || scale < 1) {
            throw new IllegalArgumentException(
                    "length, tile and scale must be positive, not " + length + ", " + tile + ", " + scale);
        }
        if (overlap < 0 || overlap > tile / 2) {
            throw new IllegalArgumentException(
                    "a tile of " + tile + " needs an overlap from 0 to half the tile, not " + overlap);
        }
        int[] starts = starts(length, tile, overlap);
        int size = Math.min(tile, length);
        float[][] weights = new float[starts.length][];
        float[] norm = new float[scale * length];
        for (int i = 0; i < starts.length; i++) {
            float[] weight = new float[scale * size];
            java.util.Arrays.fill(weight, 1f);
            if (i > 0) { // the band shared with the previous tile
                int band = scale * (starts[i - 1] + size - starts[i]);
                float[] fade = fadeIn(band);
                for (int k = 0; k < band; k++) {
                    weight[k] *= fade[k];
                }
            }
            if (i + 1 < starts.length) { // the band shared with the next tile
                int band = scale * (starts[i] + size - starts[i + 1]);
                float[] fade = fadeIn(band);
                for (int k = 0; k < band; k++) {
                    weight[scale * size - band + k] *= fade[band - 1 - k];
                }
            }
            weights[i] = weight;
            for (int k = 0; k < weight.length; k++) {
                norm[scale * starts[i] + k] += weight[k];
            }
        }
        return new Axis(starts, size, weights, norm);
    }

    /** The first LR pixel of each tile along an axis of {@code length} pixels (checked arguments). */
    static int[] starts(int length, int tile, int overlap) {
        if (length <= tile) {
            return new int[] {0};
        }
        int count = -Math.floorDiv(-(length - overlap), tile - overlap); // ceiling division
        int[] starts = new int[count];
        for (int i = 0; i < count; i++) {
            // Python's round(): half to even, of the true quotient (exact in double for these magnitudes)
            starts[i] = (int) Math.rint((double) i * (length - tile) / (count - 1));
        }
        return starts;
    }

    /** Weights across a shared band of {@code band} SR pixels, from the tile's edge inwards. */
    static float[] fadeIn(int band) {
        int margin = band / 4;
        int ramp = band - 2 * margin;
        float[] fade = new float[band];
        for (int k = 0; k < ramp; k++) {
            fade[margin + k] = (float) ((k + 0.5) / ramp); // numpy: float64, then cast to float32
        }
        for (int k = margin + ramp; k < band; k++) {
            fade[k] = 1f;
        }
        return fade;
    }
}
