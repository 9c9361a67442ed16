package dev.edgesr.demo

import android.content.Context
import dev.edgesr.core.InvalidMetadataException
import dev.edgesr.core.ModelMetadata
import dev.edgesr.core.TensorCodec
import dev.edgesr.core.TensorType
import java.io.Closeable
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate

/** A model bundled in assets/: NAME.tflite and the sidecar NAME.tflite.json that edge_sr.convert wrote with it. */
class BundledModel(val fileName: String, val metadata: ModelMetadata) {
    /**
     * Whether the GPU delegate may run it: only an export at a fixed tile (python -m edge_sr.convert --tile). The
     * delegate compiles its shaders for the shapes it is given; a dynamic-size model resized per tile makes it
     * prepare again, which it often cannot do (TensorFlow issues 38036 and 60814).
     */
    val gpuCapable: Boolean get() = metadata.tile != null

    /** The model file, memory-mapped from the APK (assets of type tflite are stored uncompressed). */
    fun map(context: Context): MappedByteBuffer =
        context.assets.openFd(fileName).use { descriptor ->
            FileInputStream(descriptor.fileDescriptor).channel.use { channel ->
                channel.map(FileChannel.MapMode.READ_ONLY, descriptor.startOffset, descriptor.declaredLength)
            }
        }

    companion object {
        /** The bundled models, and one line per .tflite that cannot be used (missing or broken sidecar). */
        fun all(context: Context): Pair<List<BundledModel>, List<String>> {
            val names = context.assets.list("").orEmpty().filter { it.endsWith(".tflite") }.sorted()
            val models = mutableListOf<BundledModel>()
            val problems = mutableListOf<String>()
            for (name in names) {
                val sidecar = "$name.json"
                try {
                    val bytes = context.assets.open(sidecar).use { it.readBytes() }
                    models += BundledModel(name, ModelMetadata.parse(bytes, sidecar))
                } catch (e: IOException) {
                    problems += "$name has no $sidecar beside it in assets/: copy both files that python -m " +
                        "edge_sr.convert writes"
                } catch (e: InvalidMetadataException) {
                    problems += e.message.orEmpty()
                }
            }
            return models to problems
        }
    }
}

/**
 * One LiteRT Interpreter for a bundled model: XNNPACK on with [threads] CPU threads, the GPU delegate on top when
 * [useGpu] (fixed-size models only, see [BundledModel.gpuCapable]). [upscaleTile] runs one LR tile and records its
 * latency. Use it on one thread and close it there (the GPU delegate is bound to the thread that created it).
 */
class SrEngine(context: Context, private val model: BundledModel, val threads: Int, useGpu: Boolean) : Closeable {
    private val scale = model.metadata.scale
    private val gpuHint = if (useGpu) "; turn the GPU delegate off to run it with XNNPACK" else ""
    private val gpuDelegate: GpuDelegate? = if (useGpu) createGpuDelegate() else null
    private val interpreter: Interpreter
    private val inputCodec: TensorCodec
    private val outputCodec: TensorCodec
    private var inputShape = IntArray(0)
    private var input: ByteBuffer = ByteBuffer.allocateDirect(0)
    private var output: ByteBuffer = ByteBuffer.allocateDirect(0)

    /** The fixed {height, width} the model takes, or null when it takes any size. */
    val fixedInput: IntArray?

    /** Milliseconds LiteRT spent on each tile so far (tensor allocation excluded). */
    val tileMillis = mutableListOf<Double>()
    val accelerator = if (useGpu) "GPU delegate + XNNPACK" else "XNNPACK (CPU)"

    init {
        val options = Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true)
        gpuDelegate?.let { options.addDelegate(it) }
        try {
            interpreter = Interpreter(model.map(context), options)
        } catch (e: RuntimeException) {
            gpuDelegate?.close()
            throw IllegalStateException("LiteRT cannot run ${model.fileName} (${e.message})$gpuHint", e)
        }
        try {
            val inputTensor = interpreter.getInputTensor(0)
            val outputTensor = interpreter.getOutputTensor(0)
            checkImageTensor(inputTensor, "takes")
            checkImageTensor(outputTensor, "returns")
            inputCodec = codec(inputTensor)
            outputCodec = codec(outputTensor)
            val signature = inputTensor.shapeSignature()
            fixedInput = if (signature[1] > 0 && signature[2] > 0) intArrayOf(signature[1], signature[2]) else null
            val tile = model.metadata.tile
            if (tile != null && !(fixedInput?.contentEquals(intArrayOf(tile, tile)) ?: false)) {
                throw IllegalStateException(
                    "${model.fileName}.json says ${tile}×$tile tiles but the model takes " +
                        (fixedInput?.let { "${it[1]}×${it[0]}" } ?: "any size") + "; re-export it",
                )
            }
            if (fixedInput != null) {
                allocate { interpreter.allocateTensors() } // now, so that the first tile's time is the model's
            }
        } catch (e: RuntimeException) {
            close()
            throw e
        }
    }

    private fun createGpuDelegate(): GpuDelegate {
        if (!model.gpuCapable) {
            throw IllegalStateException(
                "${model.fileName} takes any size, which LiteRT's GPU delegate cannot follow from tile to tile; " +
                    "export it at a fixed tile (python -m edge_sr.convert ... --tile 256) or turn the GPU delegate off",
            )
        }
        return CompatibilityList().use { compatibility ->
            if (!compatibility.isDelegateSupportedOnThisDevice) {
                throw IllegalStateException("LiteRT's GPU delegate does not support this device; turn it off")
            }
            GpuDelegate(compatibility.bestOptionsForThisDevice)
        }
    }

    private fun checkImageTensor(tensor: Tensor, verb: String) {
        val shape = tensor.shapeSignature()
        if (shape.size != 4 || shape[3] != 3) {
            throw IllegalStateException(
                "${model.fileName} $verb a ${shape.contentToString()} tensor, not an RGB image [1, H, W, 3]",
            )
        }
        val type = tensorType(tensor.dataType())
        if (type != model.metadata.io) {
            throw IllegalStateException(
                "${model.fileName} $verb ${tensor.dataType()} tensors but its metadata says " +
                    "${model.metadata.io.jsonName}; re-export it",
            )
        }
    }

    private fun tensorType(type: DataType): TensorType? =
        when (type) {
            DataType.FLOAT32 -> TensorType.FLOAT32
            DataType.UINT8 -> TensorType.UINT8
            DataType.INT8 -> TensorType.INT8
            else -> null
        }

    private fun codec(tensor: Tensor): TensorCodec {
        val quantization = tensor.quantizationParams()
        return TensorCodec(tensorType(tensor.dataType()), quantization.scale, quantization.zeroPoint)
    }

    /** LiteRT's tensor allocation, its errors (a delegate that cannot prepare, an op that cannot resize) explained. */
    private fun allocate(step: () -> Unit) {
        try {
            step()
        } catch (e: RuntimeException) {
            throw IllegalStateException("LiteRT cannot prepare ${model.fileName} (${e.message})$gpuHint", e)
        }
    }

    /**
     * The SR of one H×W×3 LR tile ([0, 255] floats) written to [sr] as (scale·H)×(scale·W)×3 floats; returns how
     * many values that is.
     */
    fun upscaleTile(rgb: FloatArray, height: Int, width: Int, sr: FloatArray): Int {
        val shape = intArrayOf(1, height, width, 3)
        if (!shape.contentEquals(inputShape)) { // re-planning memory is costly: only when the size changes
            if (fixedInput == null) {
                allocate {
                    interpreter.resizeInput(0, shape, true)
                    interpreter.allocateTensors()
                }
            }
            input = ByteBuffer.allocateDirect(height * width * 3 * inputCodec.type.bytes).order(ByteOrder.nativeOrder())
            // Sized from the scale, not from the output tensor: its shape may be known only after a run.
            output = ByteBuffer.allocateDirect(scale * height * scale * width * 3 * outputCodec.type.bytes)
                .order(ByteOrder.nativeOrder())
            inputShape = shape
        }
        input.rewind()
        inputCodec.encode(rgb, rgb.size, input)
        input.rewind()
        output.rewind()
        val started = System.nanoTime()
        try {
            interpreter.run(input, output)
        } catch (e: IllegalArgumentException) {
            // The JNI layer reports a failed invoke as "Internal error: ..."; anything else is a shape mismatch.
            if (e.message.orEmpty().startsWith("Internal error")) {
                throw IllegalStateException("LiteRT failed on ${model.fileName} (${e.message})$gpuHint", e)
            }
            throw IllegalStateException(
                "${model.fileName} did not return a ${scale * width}×${scale * height} image for a " +
                    "${width}×$height tile (${e.message}): is it the ×$scale model its metadata says?",
                e,
            )
        }
        tileMillis += (System.nanoTime() - started) / 1e6
        output.rewind()
        val count = scale * height * scale * width * 3
        outputCodec.decode(output, count, sr)
        return count
    }

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }
}
