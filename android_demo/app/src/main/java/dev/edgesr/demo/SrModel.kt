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
 * [useGpu]. [upscaleTile] runs one LR tile and records its latency. Use it on one thread and close it there (the
 * GPU delegate is bound to the thread that created it).
 */
class SrEngine(context: Context, private val model: BundledModel, val threads: Int, useGpu: Boolean) : Closeable {
    private val scale = model.metadata.scale
    private val gpuDelegate: GpuDelegate? = if (useGpu) createGpuDelegate() else null
    private val interpreter: Interpreter
    private val inputCodec: TensorCodec
    private val outputCodec: TensorCodec
    private var inputShape = IntArray(0)
    private var input: ByteBuffer = ByteBuffer.allocateDirect(0)
    private var output: ByteBuffer = ByteBuffer.allocateDirect(0)

    /** The fixed {height, width} the model takes, or null when it takes any size. */
    val fixedInput: IntArray?

    /** Milliseconds LiteRT spent on each tile so far. */
    val tileMillis = mutableListOf<Double>()
    val accelerator = if (useGpu) "GPU delegate + XNNPACK" else "XNNPACK (CPU)"

    init {
        val options = Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true)
        gpuDelegate?.let { options.addDelegate(it) }
        try {
            interpreter = Interpreter(model.map(context), options)
        } catch (e: RuntimeException) {
            gpuDelegate?.close()
            val hint = if (useGpu) "; turn the GPU delegate off to run it with XNNPACK" else ""
            throw IllegalStateException("LiteRT cannot run ${model.fileName} (${e.message})$hint", e)
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
        } catch (e: RuntimeException) {
            close()
            throw e
        }
    }

    private fun createGpuDelegate(): GpuDelegate =
        CompatibilityList().use { compatibility ->
            if (!compatibility.isDelegateSupportedOnThisDevice) {
                throw IllegalStateException("LiteRT's GPU delegate does not support this device; turn it off")
            }
            GpuDelegate(compatibility.bestOptionsForThisDevice)
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

    /** The SR of one H×W×3 LR tile ([0, 255] floats) as (scale·H)×(scale·W)×3 floats. */
    fun upscaleTile(rgb: FloatArray, height: Int, width: Int): FloatArray {
        val shape = intArrayOf(1, height, width, 3)
        if (!shape.contentEquals(inputShape)) { // re-planning memory is costly: only when the size changes
            if (fixedInput == null) {
                interpreter.resizeInput(0, shape, true)
                interpreter.allocateTensors()
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
            throw IllegalStateException(
                "${model.fileName} did not return a ${scale * width}×${scale * height} image for a " +
                    "${width}×$height tile (${e.message}): is it the ×$scale model its metadata says?",
                e,
            )
        }
        tileMillis += (System.nanoTime() - started) / 1e6
        output.rewind()
        val sr = FloatArray(scale * height * scale * width * 3)
        outputCodec.decode(output, sr.size, sr)
        return sr
    }

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }
}
