package dev.edgesr.demo

import android.content.ContentValues
import android.content.Context
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import android.os.Environment
import android.provider.MediaStore
import android.provider.OpenableColumns
import androidx.exifinterface.media.ExifInterface
import dev.edgesr.core.Orientation
import dev.edgesr.core.Pixels
import java.io.IOException

/**
 * A photo ready to upscale: upright (EXIF orientation applied) packed ARGB pixels, the alpha plane when any pixel
 * is not opaque, and how it was decoded.
 */
class Photo(
    val name: String,
    val pixels: IntArray,
    val width: Int,
    val height: Int,
    /** null when the photo is opaque */
    val alpha: ByteArray?,
    /** The power-of-two factor the decoder shrank the photo by to bound the result's size (1: full size). */
    val sampleSize: Int,
    val storedWidth: Int,
    val storedHeight: Int,
)

object Photos {
    /**
     * Decode [uri] so that it has at most [maxPixels] pixels, with its EXIF orientation applied. BitmapFactory
     * never applies EXIF itself, so the tag is read with ExifInterface and applied by the Java core exactly as
     * Pillow's exif_transpose does for the Python tools.
     */
    fun decode(context: Context, uri: Uri, maxPixels: Long): Photo {
        val resolver = context.contentResolver
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        val stream = resolver.openInputStream(uri) ?: throw IOException("cannot open the picked photo")
        stream.use { BitmapFactory.decodeStream(it, null, bounds) } // only fills in the bounds: returns null
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) {
            throw IOException("Android cannot decode this file as an image (JPEG, PNG, WebP, HEIF, GIF or BMP)")
        }
        // Decoders may round a subsampled side up (JPEG does), so the bound uses the rounded-up size.
        var sample = 1
        while (ceilDiv(bounds.outWidth, sample).toLong() * ceilDiv(bounds.outHeight, sample) > maxPixels) {
            sample *= 2
        }
        val options = BitmapFactory.Options().apply {
            inSampleSize = sample
            inPreferredConfig = Bitmap.Config.ARGB_8888
        }
        val bitmap = resolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw IOException("the photo is damaged or truncated")
        val width = bitmap.width
        val height = bitmap.height
        val stored = IntArray(width * height)
        bitmap.getPixels(stored, 0, width, 0, 0, width, height) // un-premultiplied ARGB
        bitmap.recycle()
        val orientation = exifOrientation(context, uri)
        val pixels = Orientation.apply(stored, width, height, orientation)
        val swap = Orientation.swapsAxes(orientation)
        return Photo(
            name = displayName(context, uri),
            pixels = pixels,
            width = if (swap) height else width,
            height = if (swap) width else height,
            alpha = if (Pixels.hasTransparency(pixels)) Pixels.alpha(pixels) else null,
            sampleSize = sample,
            storedWidth = bounds.outWidth,
            storedHeight = bounds.outHeight,
        )
    }

    private fun ceilDiv(size: Int, divisor: Int): Int = (size + divisor - 1) / divisor

    private fun exifOrientation(context: Context, uri: Uri): Int =
        try {
            context.contentResolver.openInputStream(uri)?.use {
                ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
            } ?: ExifInterface.ORIENTATION_NORMAL
        } catch (e: IOException) {
            ExifInterface.ORIENTATION_NORMAL // a format without EXIF
        }

    private fun displayName(context: Context, uri: Uri): String =
        context.contentResolver.query(uri, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)?.use { cursor ->
            if (cursor.moveToFirst()) cursor.getString(0) else null
        } ?: "photo"

    /**
     * Save [bitmap] as a PNG in Pictures/EdgeSR; the entry stays pending (hidden) until the file is complete.
     * Returns where it went, as the media store named it (it renames rather than overwrite: NAME (1).png).
     */
    fun savePng(context: Context, bitmap: Bitmap, displayName: String): String {
        val resolver = context.contentResolver
        val values = ContentValues().apply {
            put(MediaStore.Images.Media.DISPLAY_NAME, displayName)
            put(MediaStore.Images.Media.MIME_TYPE, "image/png")
            put(MediaStore.Images.Media.RELATIVE_PATH, "${Environment.DIRECTORY_PICTURES}/EdgeSR")
            put(MediaStore.Images.Media.IS_PENDING, 1)
        }
        val collection = MediaStore.Images.Media.getContentUri(MediaStore.VOLUME_EXTERNAL_PRIMARY)
        val uri = resolver.insert(collection, values) ?: throw IOException("the media store refused a new picture")
        try {
            val written = resolver.openOutputStream(uri)?.use { bitmap.compress(Bitmap.CompressFormat.PNG, 100, it) }
            if (written != true) {
                throw IOException("writing the PNG failed (is the storage full?)")
            }
            values.clear()
            values.put(MediaStore.Images.Media.IS_PENDING, 0)
            resolver.update(uri, values, null, null)
        } catch (e: Exception) {
            resolver.delete(uri, null, null)
            throw e
        }
        val columns = arrayOf(MediaStore.Images.Media.RELATIVE_PATH, MediaStore.Images.Media.DISPLAY_NAME)
        val saved = resolver.query(uri, columns, null, null, null)?.use { cursor ->
            if (cursor.moveToFirst()) cursor.getString(0).orEmpty().trimEnd('/') + "/" + cursor.getString(1) else null
        }
        return saved ?: "${Environment.DIRECTORY_PICTURES}/EdgeSR/$displayName"
    }
}
