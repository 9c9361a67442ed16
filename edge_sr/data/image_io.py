"""Reading and writing images: whatever Pillow opens becomes RGB uint8, with any alpha kept aside.

Conversion rule (applied after the EXIF orientation):
- RGB stays; grayscale (L, 1-bit) is copied to all three channels; palette images are expanded through their
  palette; CMYK, YCbCr, LAB and HSV go through Pillow's conversion to RGB.
- 16-bit images (grayscale `I;16*`/`I`) keep their top 8 bits by rounding value / 257; Pillow already reduces
  16-bit RGB PNGs to 8 bits per channel. 32-bit float images are refused (their range is ambiguous).
- A file of several frames (an animated GIF or PNG, a multi-page TIFF) is refused rather than cut to one frame.
- An alpha channel (RGBA, LA, PA, or a palette/RGB transparency entry) is returned separately as H×W uint8 so
  `upscale` can resize it and put it back; the RGB under a transparent pixel is used as stored.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge_sr.atomic import atomic_write
from edge_sr.errors import EdgeSRError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Picture:
    rgb: np.ndarray  # H×W×3 uint8
    alpha: np.ndarray | None  # H×W uint8, or None when the file has no transparency


def _to_rgb_and_alpha(image):
    mode = image.mode
    if mode == "P" or (mode in ("RGB", "L") and "transparency" in image.info):
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        gray = np.floor(np.clip(values, 0, 65535) / 257 + 0.5).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode == "F":
        raise EdgeSRError("32-bit float images are not supported; save the image as 8- or 16-bit")
    alpha = None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.uint8).copy()
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy(), alpha


def read_picture(path):
    """Read any image Pillow understands as RGB uint8 plus optional alpha (see the module doc for the rule)."""
    path = Path(path)
    if not path.is_file():
        raise EdgeSRError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                raise EdgeSRError(f"{path} holds {frames} frames (an animation or a multi-page file); save the one "
                                  "to upscale as a PNG")  # fmt: skip
            image.load()  # decode now so a truncated file fails here, not later
            image = ImageOps.exif_transpose(image)
            rgb, alpha = _to_rgb_and_alpha(image)
    except Image.DecompressionBombError:
        raise EdgeSRError(
            f"{path} declares more than {2 * Image.MAX_IMAGE_PIXELS} pixels, too many to decode safely; split or "
            "downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise EdgeSRError(f"{path} is not an image Pillow can read (PNG, JPEG, BMP, TIFF, WebP)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise EdgeSRError(f"{path} is damaged or truncated ({error}); re-export or remove it") from None
    return Picture(rgb, alpha)


def read_rgb(path):
    """Read an image as H×W×3 uint8 RGB (alpha dropped)."""
    return read_picture(path).rgb


def write_image(path, rgb, alpha=None):
    """Write an H×W×3 uint8 image (with optional H×W alpha) atomically; the format follows the suffix."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise EdgeSRError(f"write_image expects H×W×3 uint8, got {rgb.dtype} {rgb.shape}")
    image = Image.fromarray(rgb, "RGB")
    if alpha is not None:
        image.putalpha(Image.fromarray(np.asarray(alpha, dtype=np.uint8), "L"))
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise EdgeSRError(f"cannot write {path}: use one of {', '.join(IMAGE_SUFFIXES)}")
    if alpha is not None and suffix in (".jpg", ".jpeg", ".bmp"):
        image = image.convert("RGB")  # these formats have no alpha
    image_format = Image.registered_extensions()[suffix]
    atomic_write(path, lambda tmp: image.save(tmp, format=image_format))


def list_images(folder):
    """Image files directly in `folder`, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
