package dev.edgesr.demo

import androidx.compose.foundation.Canvas
import androidx.compose.foundation.Image
import androidx.compose.foundation.background
import androidx.compose.foundation.gestures.detectHorizontalDragGestures
import androidx.compose.foundation.gestures.detectTapGestures
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.aspectRatio
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableFloatStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.AbsoluteAlignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.draw.clipToBounds
import androidx.compose.ui.draw.drawWithContent
import androidx.compose.ui.geometry.Offset
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.FilterQuality
import androidx.compose.ui.graphics.ImageBitmap
import androidx.compose.ui.graphics.drawscope.clipRect
import androidx.compose.ui.input.pointer.pointerInput
import androidx.compose.ui.layout.ContentScale
import androidx.compose.ui.unit.dp

/**
 * The upscaled picture left of a draggable divider, the input right of it, both filling the same box; drag
 * sideways or tap to move the divider. [before] is drawn without smoothing so that its pixels show as they are.
 * Left and right are absolute, as the picture is: the clip, the divider and the labels do not mirror in
 * right-to-left layouts. Only horizontal drags are taken, so a vertical swipe still scrolls the screen.
 */
@Composable
fun BeforeAfter(
    before: ImageBitmap,
    after: ImageBitmap,
    beforeLabel: String,
    afterLabel: String,
    modifier: Modifier = Modifier,
) {
    var split by remember { mutableFloatStateOf(0.5f) }
    Box(
        modifier
            .fillMaxWidth()
            .aspectRatio(after.width.toFloat() / after.height)
            .clipToBounds()
            .pointerInput(Unit) { detectTapGestures { split = (it.x / size.width).coerceIn(0f, 1f) } }
            .pointerInput(Unit) {
                detectHorizontalDragGestures { change, _ ->
                    change.consume()
                    split = (change.position.x / size.width).coerceIn(0f, 1f)
                }
            },
    ) {
        Image(
            bitmap = before,
            contentDescription = beforeLabel,
            modifier = Modifier.fillMaxSize(),
            contentScale = ContentScale.FillBounds,
            filterQuality = FilterQuality.None,
        )
        Image(
            bitmap = after,
            contentDescription = afterLabel,
            modifier = Modifier
                .fillMaxSize()
                .drawWithContent { clipRect(right = size.width * split) { this@drawWithContent.drawContent() } },
            contentScale = ContentScale.FillBounds,
        )
        Canvas(Modifier.fillMaxSize()) {
            val x = size.width * split
            drawLine(Color.White, Offset(x, 0f), Offset(x, size.height), strokeWidth = 2.dp.toPx())
        }
        Label(afterLabel, Modifier.align(AbsoluteAlignment.TopLeft))
        Label(beforeLabel, Modifier.align(AbsoluteAlignment.TopRight))
    }
}

@Composable
private fun Label(text: String, modifier: Modifier) {
    Text(
        text,
        modifier = modifier
            .padding(6.dp)
            .background(Color.Black.copy(alpha = 0.55f))
            .padding(horizontal = 6.dp, vertical = 2.dp),
        color = Color.White,
        style = MaterialTheme.typography.labelMedium,
    )
}
