package dev.edgesr.demo

import android.app.ActivityManager
import android.app.Application
import android.content.Context
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
private const val MAX_TILE_BUFFER_MB = 64 // the most the tiled upscaler's buffers may hold, on any phone
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
    /** Whether the bundled models are still being listed (assets are read off the main thread). */
    val listingModels: Boolean = true,
    val photo: Photo? = null,
    /** The scale [photo] was decoded for: its size limit depends on it. */
    val photoScale: Int = 0,
    val preview: Bitmap? = null,
    val loading: Boolean = false,
    val running: Boolean = false,
    val tilesDone: Int = 0,
    val tileCount: Int = 0,
    val result: UpscaleResult? = null,
    val saving: Boolean = false,
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
    private var photoJob: Job? = null

    /** Bytes the tiled upscaler may hold: a quarter of this app's heap, at most [MAX_TILE_BUFFER_MB]. */
    private val tileBufferBudget: Long

    init {
        val cores = Runtime.getRuntime().availableProcessors()
        _state = MutableStateFlow(UiState(threads = min(4, cores), maxThreads = cores))
        state = _state.asStateFlow()
        val heapMb = (application.getSystemService(Context.ACTIVITY_SERVICE) as ActivityManager).memoryClass
        tileBufferBudget = min(MAX_TILE_BUFFER_MB, heapMb / 4) * 1024L * 1024L
        viewModelScope.launch {
            val (models, problems) = withContext(Dispatchers.IO) { BundledModel.all(app) }
            _state.update { it.copy(models = models, modelProblems = problems, listingModels = false) }
        }
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

    /** Decode [uri] for the selected model's scale; a later photo or scale change cancels this one. */
    fun openPhoto(uri: Uri) {
        val scale = _state.value.model?.metadata?.scale ?: 1
        photoUri = uri
        photoJob?.cancel()
        // The previous photo goes at once: it was decoded for another size limit, and must not meet this model.
        _state.update {
            it.copy(photo = null, preview = null, loading = true, result = null, error = null, notice = null)
        }
        photoJob = viewModelScope.launch {
            try {
                val (photo, preview) = withContext(Dispatchers.IO) {
                    val photo = Photos.decode(app, uri, MAX_OUTPUT_MEGAPIXELS * 1_000_000L / (scale * scale))
                    photo to scaled(argbBitmap(photo), DISPLAY_SIZE, true)
                }
                _state.update { it.copy(photo = photo, photoScale = scale, preview = preview, loading = false) }
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
        if (current.loading || current.photoScale != model.metadata.scale) return // a decode for this model is due
        _state.update {
            it.copy(running = true, tilesDone = 0, tileCount = 0, result = null, error = null, notice = null)
        }
        job = viewModelScope.launch {
            try {
                val result = withContext(Dispatchers.Default) {
                    upscaleTiled(model, photo, current.threads, current.useGpu && model.gpuCapable, current.tile)
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
        val current = _state.value
        val result = current.result ?: return
        if (current.saving) return // a second tap during a long write would save a second copy
        _state.update { it.copy(saving = true) }
        viewModelScope.launch {
            try {
                val where = withContext(Dispatchers.IO) { Photos.savePng(app, result.output, result.fileName) }
                _state.update { it.copy(saving = false, notice = app.getString(R.string.saved, where), error = null) }
            } catch (e: Exception) {
                _state.update { it.copy(saving = false) }
                if (e is CancellationException) throw e
                _state.update { it.copy(error = "Saving failed: ${e.message}") }
            }
        }
    }

    /**
     * The tiled upscale, on a background thread: tiles through LiteRT, finished blocks straight into the result.
     * The tile is the largest up to the chosen one whose buffers fit [tileBufferBudget] (TiledUpscaler.fit).
     */
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
                TiledUpscaler.fit(photo.height, photo.width, scale, tile, tileBufferBudget)
            }
            val upscaler = TiledUpscaler(photo.height, photo.width, scale, tiling, fixed != null)
            if (upscaler.peakBytes() > tileBufferBudget) { // a fixed tile cannot shrink
                val input = upscaler.modelInput()
                throw IllegalStateException(
                    "Upscaling this photo in ${input[1]}×${input[0]} tiles needs " +
                        "${upscaler.peakBytes() shr 20} MB of buffers, more than the ${tileBufferBudget shr 20} MB " +
                        "this phone allows; pick a smaller photo",
                )
            }
            val outWidth = upscaler.outputWidth()
            val output = Bitmap.createBitmap(outWidth, upscaler.outputHeight(), Bitmap.Config.ARGB_8888)
            output.setHasAlpha(photo.alpha != null)
            // Alpha never goes through the network: MATLAB bicubic, as python -m edge_sr.upscale does it.
            val alpha = photo.alpha?.let { Bicubic.upscale(it, photo.width, photo.height, scale) }
            val block = IntArray(scale * upscaler.rows.size * scale * upscaler.cols.size) // the largest finished block
            val started = System.nanoTime()
            upscaler.run(
                Pixels.source(photo.pixels, photo.width),
                { rgb, height, width, sr ->
                    context.ensureActive()
                    engine.upscaleTile(rgb, height, width, sr)
                },
                { top, left, rows, cols, rgb, stride ->
                    Pixels.toArgb(rgb, stride, rows, cols, alpha, top * outWidth + left, outWidth, block)
                    output.setPixels(block, 0, cols, left, top, cols, rows)
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
