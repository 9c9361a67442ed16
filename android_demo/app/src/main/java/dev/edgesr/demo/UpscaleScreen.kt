package dev.edgesr.demo

import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.Image
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Slider
import androidx.compose.material3.Switch
import androidx.compose.material3.Text
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.layout.ContentScale
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import java.util.Locale
import kotlin.math.roundToInt

private val TILES = listOf(128, 192, 256, 384, 512)

@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun UpscaleScreen(viewModel: UpscaleViewModel) {
    val state by viewModel.state.collectAsStateWithLifecycle()
    val picker = rememberLauncherForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        uri?.let(viewModel::openPhoto)
    }
    Scaffold(topBar = { TopAppBar(title = { Text(stringResource(R.string.app_name)) }) }) { padding ->
        Column(
            Modifier
                .fillMaxSize()
                .padding(padding)
                .verticalScroll(rememberScrollState())
                .padding(16.dp),
            verticalArrangement = Arrangement.spacedBy(12.dp),
        ) {
            ModelCard(state, viewModel)
            val model = state.model
            if (model != null) {
                SettingsCard(state, viewModel)
                Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                    OutlinedButton(
                        onClick = {
                            picker.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
                        },
                        enabled = !state.running,
                    ) { Text(stringResource(R.string.pick)) }
                    if (state.running) {
                        Button(onClick = viewModel::cancel) { Text(stringResource(R.string.cancel)) }
                    } else {
                        Button(onClick = viewModel::upscale, enabled = state.photo != null && !state.loading) {
                            Text(stringResource(R.string.upscale))
                        }
                    }
                    if (state.result != null && !state.running) {
                        OutlinedButton(onClick = viewModel::save, enabled = !state.saving) {
                            Text(stringResource(R.string.save))
                        }
                    }
                }
            }
            if (state.loading) {
                LinearProgressIndicator(Modifier.fillMaxWidth())
            }
            if (state.running) {
                val fraction = if (state.tileCount == 0) 0f else state.tilesDone.toFloat() / state.tileCount
                LinearProgressIndicator(progress = { fraction }, modifier = Modifier.fillMaxWidth())
                Text(stringResource(R.string.progress, state.tilesDone, state.tileCount))
            }
            state.error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
            state.notice?.let { Text(it) }
            PhotoInfo(state)
            val result = state.result
            if (result != null) {
                ResultView(result, model?.metadata?.scale ?: 1)
            } else {
                state.preview?.let {
                    Image(
                        it.asImageBitmap(),
                        contentDescription = state.photo?.name,
                        modifier = Modifier.fillMaxWidth(),
                        contentScale = ContentScale.FillWidth,
                    )
                }
            }
        }
    }
}

@Composable
private fun ModelCard(state: UiState, viewModel: UpscaleViewModel) {
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(12.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
            Text(stringResource(R.string.model), style = MaterialTheme.typography.titleMedium)
            if (state.models.isEmpty() && !state.listingModels) {
                Text(stringResource(R.string.no_model))
            }
            state.models.forEachIndexed { index, model ->
                FilterChip(
                    selected = index == state.selected,
                    onClick = { viewModel.selectModel(index) },
                    enabled = !state.running,
                    label = { Text(model.fileName) },
                )
            }
            state.model?.let { Text(it.metadata.summary(), style = MaterialTheme.typography.bodyMedium) }
            state.modelProblems.forEach { Text(it, color = MaterialTheme.colorScheme.error) }
        }
    }
}

@Composable
private fun SettingsCard(state: UiState, viewModel: UpscaleViewModel) {
    val metadata = state.model?.metadata ?: return
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(12.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
            Text(stringResource(R.string.settings), style = MaterialTheme.typography.titleMedium)
            Text(stringResource(R.string.threads, state.threads))
            if (state.maxThreads > 1) {
                Slider(
                    value = state.threads.toFloat(),
                    onValueChange = { viewModel.setThreads(it.roundToInt()) },
                    valueRange = 1f..state.maxThreads.toFloat(),
                    steps = state.maxThreads - 2,
                    enabled = !state.running,
                )
            }
            val gpuCapable = state.model?.gpuCapable == true
            Row(verticalAlignment = Alignment.CenterVertically, horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                Switch(
                    checked = state.useGpu && gpuCapable,
                    onCheckedChange = viewModel::setGpu,
                    enabled = !state.running && gpuCapable,
                )
                Text(stringResource(R.string.gpu))
            }
            Text(
                stringResource(if (gpuCapable) R.string.gpu_hint else R.string.gpu_fixed_only),
                style = MaterialTheme.typography.bodySmall,
            )
            val fixedTile = metadata.tile
            if (fixedTile != null) {
                Text(stringResource(R.string.tile_fixed, fixedTile, fixedTile))
            } else {
                Text(stringResource(R.string.tile))
                Row(horizontalArrangement = Arrangement.spacedBy(6.dp)) {
                    TILES.forEach { tile ->
                        FilterChip(
                            selected = tile == state.tile,
                            onClick = { viewModel.setTile(tile) },
                            enabled = !state.running,
                            label = { Text("$tile") },
                        )
                    }
                }
            }
        }
    }
}

@Composable
private fun PhotoInfo(state: UiState) {
    val photo = state.photo ?: return
    val scale = state.model?.metadata?.scale ?: 1
    var text = stringResource(R.string.photo, photo.name, photo.width, photo.height)
    if (photo.sampleSize > 1) {
        text += "; " + stringResource(
            R.string.downsampled, photo.sampleSize, photo.storedWidth, photo.storedHeight, scale, MAX_OUTPUT_MEGAPIXELS,
        )
    }
    Text(text, style = MaterialTheme.typography.bodyMedium)
}

@Composable
private fun ResultView(result: UpscaleResult, scale: Int) {
    var detail by remember { mutableStateOf(false) }
    val s = result.stats
    Card(Modifier.fillMaxWidth()) {
        Text(
            String.format(
                Locale.ROOT,
                "%d×%d → %d×%d in %.2f s\n%d tiles of %d×%d (overlap %d): " +
                    "%.0f ms per tile (median; min %.0f, max %.0f)\n%d threads, %s",
                s.inputWidth, s.inputHeight, s.outputWidth, s.outputHeight, s.totalMs / 1000, s.tiles,
                s.modelInput[1], s.modelInput[0], s.overlap, s.tileMedianMs, s.tileMinMs, s.tileMaxMs, s.threads,
                s.accelerator,
            ),
            modifier = Modifier.padding(12.dp),
            style = MaterialTheme.typography.bodyMedium,
        )
    }
    Row(horizontalArrangement = Arrangement.spacedBy(6.dp)) {
        FilterChip(selected = !detail, onClick = { detail = false }, label = { Text(stringResource(R.string.whole)) })
        FilterChip(selected = detail, onClick = { detail = true }, label = { Text(stringResource(R.string.detail)) })
    }
    val before = if (detail) result.detailBefore else result.wholeBefore
    val after = if (detail) result.detailAfter else result.wholeAfter
    BeforeAfter(
        before = before.asImageBitmap(),
        after = after.asImageBitmap(),
        beforeLabel = stringResource(R.string.input),
        afterLabel = stringResource(R.string.output, scale),
    )
    Text(stringResource(R.string.drag_hint), style = MaterialTheme.typography.bodySmall)
}
