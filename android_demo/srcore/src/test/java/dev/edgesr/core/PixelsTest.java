package dev.edgesr.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PixelsTest {
    @Test
    void argbBlocksBecomeRgbAndBack() {
        int[] argb = {0xff010203, 0x80040506, 0x00070809, 0xff0a0b0c};
        float[] block = new float[6];
        Pixels.source(argb, 2).read(0, 1, 2, 1, block); // the second row
        assertArrayEquals(new float[] {7, 8, 9, 10, 11, 12}, block);
        assertTrue(Pixels.hasTransparency(argb));
        assertFalse(Pixels.hasTransparency(new int[] {0xff000000}));
        byte[] alpha = Pixels.alpha(argb);
        assertEquals(0x80, alpha[1] & 0xff);
        int[] out = new int[2];
        Pixels.toArgb(new float[] {6.6f, 300f, -2f, 1f, 2f, 3f}, 2, 1, 2, alpha, 1, 2, out);
        assertArrayEquals(new int[] {0x8007ff00, 0x00010203}, out);
        Pixels.toArgb(new float[] {1f, 2f, 3f}, 1, 1, 1, null, 0, 0, out);
        assertEquals(0xff010203, out[0]);
        // the left column of a 2×2 block (stride 2) under the right column of a 2×2 alpha plane
        float[] twoByTwo = {1f, 1f, 1f, 9f, 9f, 9f, 2f, 2f, 2f, 9f, 9f, 9f};
        Pixels.toArgb(twoByTwo, 2, 2, 1, new byte[] {0, 0x11, 0, 0x22}, 1, 2, out);
        assertArrayEquals(new int[] {0x11010101, 0x22020202}, out);
    }

    @Test
    void orientationLeavesUnknownTagsAloneAndChecksSizes() {
        int[] pixels = {1, 2, 3, 4, 5, 6};
        assertSame(pixels, Orientation.apply(pixels, 3, 2, 1));
        assertSame(pixels, Orientation.apply(pixels, 3, 2, 0));
        assertSame(pixels, Orientation.apply(pixels, 3, 2, 9));
        assertArrayEquals(new int[] {4, 1, 5, 2, 6, 3}, Orientation.apply(pixels, 3, 2, 6)); // 90° clockwise
        assertThrows(IllegalArgumentException.class, () -> Orientation.apply(pixels, 4, 2, 6));
    }

    @Test
    void bicubicKeepsFlatAlphaFlat() {
        byte[] opaque = new byte[12];
        java.util.Arrays.fill(opaque, (byte) 255);
        for (byte value : Bicubic.upscale(opaque, 4, 3, 3)) {
            assertEquals(255, value & 0xff);
        }
        assertThrows(IllegalArgumentException.class, () -> Bicubic.upscale(opaque, 4, 3, 0));
    }
}
