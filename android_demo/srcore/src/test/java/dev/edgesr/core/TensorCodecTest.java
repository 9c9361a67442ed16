package dev.edgesr.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class TensorCodecTest {
    private static float[] pixels() {
        float[] values = new float[256];
        for (int i = 0; i < 256; i++) {
            values[i] = i;
        }
        return values;
    }

    private static float[] roundTrip(TensorCodec codec, float[] values) {
        ByteBuffer tensor = ByteBuffer.allocateDirect(values.length * codec.type.bytes).order(ByteOrder.nativeOrder());
        codec.encode(values, values.length, tensor);
        assertEquals(tensor.capacity(), tensor.position(), "one element per value");
        tensor.flip();
        float[] back = new float[values.length];
        codec.decode(tensor, values.length, back);
        return back;
    }

    @Test
    void everyPixelSurvivesTheTensorTypesModelsUse() {
        float[] values = pixels();
        TensorCodec[] codecs = {
            new TensorCodec(TensorType.UINT8, 1f, 0), // edge_sr's int8 export with uint8 I/O
            new TensorCodec(TensorType.INT8, 1f, -128), // --io int8
            new TensorCodec(TensorType.FLOAT32, 0f, 0),
        };
        for (TensorCodec codec : codecs) {
            float[] back = roundTrip(codec, values);
            for (int i = 0; i < values.length; i++) {
                assertEquals(values[i], back[i], 0f, codec.type + " " + values[i]);
                assertEquals(i, TensorCodec.toUint8(back[i]));
            }
        }
    }

    @Test
    void coarseScalesRoundTripWithinHalfAStep() {
        float[] values = new float[1000];
        for (int i = 0; i < values.length; i++) {
            values[i] = i * 0.255f;
        }
        for (TensorCodec codec : new TensorCodec[] {
            new TensorCodec(TensorType.UINT8, 1.25f, 3), new TensorCodec(TensorType.INT8, 1.1f, -110)}) {
            float[] back = roundTrip(codec, values);
            for (int i = 0; i < values.length; i++) {
                assertTrue(Math.abs(back[i] - values[i]) <= codec.scale / 2 + 1e-4f, codec.type + " " + values[i]);
            }
        }
    }

    @Test
    void integersAreClampedToTheirType() {
        TensorCodec uint8 = new TensorCodec(TensorType.UINT8, 1f, 0);
        assertEquals(0, uint8.quantize(-20f));
        assertEquals(255, uint8.quantize(1e6f));
        TensorCodec int8 = new TensorCodec(TensorType.INT8, 1f, 0);
        assertEquals(-128, int8.quantize(-1000f));
        assertEquals(127, int8.quantize(200f));
        assertEquals(-5, int8.dequantize(-5), 0f);
    }

    @Test
    void outputsAreClampedNotStretched() {
        assertEquals(0, TensorCodec.toUint8(-40f));
        assertEquals(255, TensorCodec.toUint8(300f));
        assertEquals(128, TensorCodec.toUint8(127.5f));
        assertEquals(0, TensorCodec.toUint8(Float.NaN));
    }

    @Test
    void badQuantizationIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new TensorCodec(TensorType.UINT8, -1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new TensorCodec(TensorType.UINT8, Float.NaN, 0));
        assertThrows(IllegalArgumentException.class, () -> new TensorCodec(null, 1f, 0));
    }
}
