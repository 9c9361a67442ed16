import numpy as np
import pytest
from PIL import Image

from edge_sr.data import read_picture, read_rgb, write_image
from edge_sr.errors import EdgeSRError


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_formats_round_trip(tmp_path, photo, suffix):
    rgb = photo[:40, :50]
    path = tmp_path / f"img{suffix}"
    if suffix == ".webp":
        Image.fromarray(rgb).save(path, lossless=True)
    else:
        write_image(path, rgb)
    assert np.array_equal(read_rgb(path), rgb)


def test_jpeg_reads_close_to_the_original(tmp_path, photo):
    path = tmp_path / "img.jpg"
    Image.fromarray(photo).save(path, quality=95)
    assert np.abs(read_rgb(path).astype(int) - photo).mean() < 3


def test_exif_orientation_is_applied(tmp_path, photo):
    rgb = photo[:30, :60]  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(rgb).save(path, exif=exif, quality=100)
    shown = read_rgb(path)
    assert shown.shape == (60, 30, 3)
    assert np.abs(shown.astype(int) - np.rot90(rgb, k=-1)).mean() < 4


def test_grayscale_palette_and_16_bit_become_rgb(tmp_path, photo):
    gray = photo[:20, :20, 0]
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    assert np.array_equal(read_rgb(tmp_path / "gray.png"), np.repeat(gray[..., None], 3, axis=2))

    palette = Image.fromarray(photo[:20, :20]).quantize(16)
    palette.save(tmp_path / "palette.png")
    assert np.array_equal(read_rgb(tmp_path / "palette.png"), np.asarray(palette.convert("RGB")))

    deep = (gray.astype(np.uint16) * 257 + 100).astype(np.uint16)  # 16-bit values just above 8-bit ones
    Image.fromarray(deep).save(tmp_path / "deep.png")
    expected = np.floor(deep / 257 + 0.5).astype(np.uint8)
    assert np.array_equal(read_rgb(tmp_path / "deep.png")[..., 1], expected)


def test_alpha_is_kept_aside(tmp_path, photo):
    rgb = photo[:16, :16]
    alpha = np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))
    write_image(tmp_path / "rgba.png", rgb, alpha)
    picture = read_picture(tmp_path / "rgba.png")
    assert np.array_equal(picture.rgb, rgb)
    assert np.array_equal(picture.alpha, alpha)
    assert read_picture(tmp_path / "rgba.png").rgb.shape == (16, 16, 3)
    write_image(tmp_path / "plain.png", rgb)
    assert read_picture(tmp_path / "plain.png").alpha is None


def test_bad_files_are_clear_errors(tmp_path, photo):
    with pytest.raises(EdgeSRError, match="not found"):
        read_rgb(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(EdgeSRError, match="not an image"):
        read_rgb(tmp_path / "notes.png")
    write_image(tmp_path / "whole.png", photo)
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgeSRError, match="damaged or truncated"):
        read_rgb(tmp_path / "cut.png")
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(tmp_path / "float.tiff")
    with pytest.raises(EdgeSRError, match="float"):
        read_rgb(tmp_path / "float.tiff")
