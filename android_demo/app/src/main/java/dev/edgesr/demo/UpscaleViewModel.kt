package dev.edgesr.demo

import android.app.Application
import android.graphics.Bitmap
import android.net.Uri
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import dev.edgesr.core.Bicubic
import dev.edgesr.core.Pixels
import dev.edgesr.core.TiledUpscaler
import dev.edgesr.core.Tiling
import kotlin.coroutines.coroutineContext
import kotlin.math.max
import kotlin.math.min
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** The result's size limit: inputs are decoded smaller when their ×scale result would exceed it. */
const val MAX_OUTPUT_MEGAPIXELS = 24
private const val DISPLAY_SIZE = 1600 // longest side of the whole-photo comparison
private const val DETAIL_SIZE = 512 // side of the 1:1 crop

/** What one upscale measured. */
class RunStats(
    val inputWidth: Int,
    val inputHeight: Int,
    val outputWidth: Int,
    val outputHeight: Int,
    val tiles: Int,
    val modelInput: IntArray,
    val overlap: Int,
    val tileMedianMs: Double,
    val tileMinMs: Double,
    val tileMaxMs: Double,
    val totalMs: Double,
    val threads: Int,
    val accelerator: String,
)

/** Before/after pairs at display size, the full result and its statistics. */
class UpscaleResult(
    val output: Bitmap,
    val wholeBefore: Bitmap,
    val wholeAfter: Bitmap,
    val detailBefore: Bitmap,
    val detailAfter: Bitmap,
    val stats: RunStats,
    val fileName: String,
)

data class UiState(
    val models: List<BundledModel> = emptyList(),
    val modelProblems: List<String> = emptyList(),
    val selected: Int = 0,
    val threads: Int = 1,
    val maxThreads: Int = 1,
    val useGpu: Boolean = false,
    val tile: Int = 256,
    val photo: Photo? = null,
    val preview: Bitmap? = null,
    val loading: Boolean = false,
    val running: Boolean = false,
    val tilesDone: Int = 0,
    val tileCount: Int = 0,
    val result: UpscaleResult? = null,
    /** What went wrong, for the user. */
    val error: String? = null,
    /** What happened (saved, cancelled). */
    val notice: String? = null,
) {
    val model: BundledModel? get() = models.getOrNull(selected)
}

class UpscaleViewModel(application: Application) : AndroidViewModel(application) {
    private val app = application
    private val _state: MutableStateFlow<UiState>
    val state: StateFlow<UiState>
    private var photoUri: Uri? = null
    private var job: Job? = null

    init {
        val (models, problems) = BundledModel.all(application)
        val cores = Runtime.getRuntime().availableProcessors()
        _state = MutableStateFlow(
            UiState(models = models, modelProblems = problems, threads = min(4, cores), maxThreads = cores),
        )
        state = _state.asStateFlow()
    }

    fun selectModel(index: Int) {
        val scale = _state.value.models.getOrNull(index)?.metadata?.scale
        val scaleChanges = scale != _state.value.model?.metadata?.scale
        _state.update { it.copy(selected = index, result = null) }
        photoUri?.takeIf { scaleChanges }?.let(::openPhoto) // the size limit follows the scale
    }

    fun setThreads(threads: Int) = _state.update { it.copy(threads = threads) }

    fun setGpu(useGpu: Boolean) = _state.update { it.copy(useGpu = useGpu) }

    fun setTile(tile: Int) = _state.update { it.copy(tile = tile) }

    fun openPhoto(uri: Uri) {
        val scale = _state.value.model?.metadata?.scale ?: 1
        photoUri = uri
        _state.update { it.copy(loading = true, result = null, error = null, notice = null) }
        viewModelScope.launch {
            try {
                val (photo, preview) = withContext(Dispatchers.IO) {
                    val photo = Photos.decode(app, uri, MAX_OUTPUT_MEGAPIXELS * 1_000_000L / (scale * scale))
                    photo to scaled(argbBitmap(photo), DISPLAY_SIZE, true)
                }
                _state.update { it.copy(photo = photo, preview = preview, loading = false) }
            } catch (e: Exception) {
                if (e is CancellationException) throw e
                _state.update { it.copy(loading = false, error = "Cannot read the photo: ${e.message}") }
            } catch (e: OutOfMemoryError) {
                _state.update { it.copy(loading = false, error = "Not enough memory to open this photo") }
            }
        }
    }

    fun upscale() {
        val current = _state.value
        val model = current.model ?: return
        val photo = current.photo ?: return
        _state.update {
            it.copy(running = true, tilesDone = 0, tileCount = 0, result = null, error = null, notice = null)
        }
        job = viewModelScope.launch {
            try {
                val result = withContext(Dispatchers.Default) {
                    upscaleTiled(model, photo, current.threads, current.useGpu, current.tile)
                }
                _state.update { it.copy(running = false, result = result) }
            } catch (e: CancellationException) {
                _state.update { it.copy(running = false, notice = app.getString(R.string.cancelled)) }
                throw e
            } catch (e: Exception) {
                _state.update { it.copy(running = false, error = e.message ?: e.toString()) }
            } catch (e: OutOfMemoryError) {
                _state.update {
                    it.copy(running = false, error = "Not enough memory for the result; pick a smaller photo")
                }
            }
        }
    }

    fun cancel() {
        job?.cancel()
    }

    fun save() {
        val result = _state.value.result ?: return
        viewModelScope.launch {
            try {
                val where = withContext(Dispatchers.IO) { Photos.savePng(app, result.output, result.fileName) }
                _state.update { it.copy(notice = app.getString(R.string.saved, where), error = null) }
            } catch (e: Exception) {
                if (e is CancellationException) throw e
                _state.update { it.copy(error = "Saving failed: ${e.message}") }
            }
        }
    }

    /** The tiled upscale, on a background thread: tiles through LiteRT, finished rows straight into the result. */
    private suspend fun upscaleTiled(
        model: BundledModel,
        photo: Photo,
        threads: Int,
        useGpu: Boolean,
        tile: Int,
    ): UpscaleResult {
        val context = coroutineContext
        val scale = model.metadata.scale
        return SrEngine(app, model, threads, useGpu).use { engine ->
            val fixed = engine.fixedInput
            val tiling = if (fixed != null) {
                Tiling.choose(fixed[0], fixed[1], null, null, -1)
            } else {
                Tiling.choose(0, 0, tile, tile, -1)
            }
            val upscaler = TiledUpscaler(photo.height, photo.width, scale, tiling, fixed != null)
            val outWidth = upscaler.outputWidth()
            val output = Bitmap.createBitmap(outWidth, upscaler.outputHeight(), Bitmap.Config.ARGB_8888)
            output.setHasAlpha(photo.alpha != null)
            // Alpha never goes through the network: MATLAB bicubic, as python -m edge_sr.upscale does it.
            val alpha = photo.alpha?.let { Bicubic.upscale(it, photo.width, photo.height, scale) }
            val rows = IntArray(outWidth * scale * upscaler.rows.size)
            val started = System.nanoTime()
            upscaler.run(
                Pixels.source(photo.pixels, photo.width),
                { rgb, height, width ->
                    context.ensureActive()
                    engine.upscaleTile(rgb, height, width)
                },
                { firstRow, count, rgb ->
                    Pixels.toArgb(rgb, count * outWidth, alpha, firstRow * outWidth, rows)
                    output.setPixels(rows, 0, outWidth, 0, firstRow, outWidth, count)
                },
                { done, total -> _state.update { it.copy(tilesDone = done, tileCount = total) } },
            )
            val totalMs = (System.nanoTime() - started) / 1e6
            val times = engine.tileMillis.sorted()
            val stats = RunStats(
                inputWidth = photo.width,
                inputHeight = photo.height,
                outputWidth = outWidth,
                outputHeight = upscaler.outputHeight(),
                tiles = upscaler.tileCount(),
                modelInput = upscaler.modelInput(),
                overlap = tiling.overlap,
                tileMedianMs = times[times.size / 2],
                tileMinMs = times.first(),
                tileMaxMs = times.last(),
                totalMs = totalMs,
                threads = engine.threads,
                accelerator = engine.accelerator,
            )
            comparisons(photo, output, scale, stats)
        }
    }

    private fun comparisons(photo: Photo, output: Bitmap, scale: Int, stats: RunStats): UpscaleResult {
        val input = argbBitmap(photo)
        val wholeAfter = scaled(output, DISPLAY_SIZE, true)
        val wholeBefore = Bitmap.createScaledBitmap(input, wholeAfter.width, wholeAfter.height, true)
        // 1:1 crop of the centre of the result, against the same input pixels enlarged without smoothing.
        val cropIn = max(1, min(DETAIL_SIZE / scale, min(photo.width, photo.height)))
        val left = (photo.width - cropIn) / 2
        val top = (photo.height - cropIn) / 2
        val detailAfter = Bitmap.createBitmap(output, scale * left, scale * top, scale * cropIn, scale * cropIn)
        val detailBefore = Bitmap.createScaledBitmap(
            Bitmap.createBitmap(input, left, top, cropIn, cropIn), scale * cropIn, scale * cropIn, false,
        )
        val stem = photo.name.substringBeforeLast('.')
        return UpscaleResult(output, wholeBefore, wholeAfter, detailBefore, detailAfter, stats, "${stem}_x$scale.png")
    }

    private fun argbBitmap(photo: Photo): Bitmap =
        Bitmap.createBitmap(photo.pixels, photo.width, photo.height, Bitmap.Config.ARGB_8888)

    /** [bitmap] shrunk so that its longer side is at most [size] (itself when it already fits). */
    private fun scaled(bitmap: Bitmap, size: Int, filter: Boolean): Bitmap {
        val longest = max(bitmap.width, bitmap.height)
        if (longest <= size) return bitmap
        val width = max(1, bitmap.width * size / longest)
        val height = max(1, bitmap.height * size / longest)
        return Bitmap.createScaledBitmap(bitmap, width, height, filter)
    }
}
