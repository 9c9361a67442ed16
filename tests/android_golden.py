"""The golden file that ties the Android app's Java core (android_demo/srcore) to the Python pipeline.

    .venv/bin/python tests/android_golden.py    # rewrites GOLDEN after a deliberate change in edge_sr

For small fixed inputs it holds what edge_sr computes: `edge_sr.runtime.tiling.upscale_tiled` with a stand-in model at
a dynamic, a non-square ×3 and a fixed-tile (reflect-padded) setting, float32 and uint8; the runtime's uint8/int8
tensor conversions and output rounding; EXIF orientation as `read_picture` applies it; the bicubic alpha upscale
of `python -m edge_sr.upscale`; and sidecars that `read_metadata` accepts or rejects. tests/test_android_golden.py
checks that the committed file is what the code produces now; the JUnit tests check that Java computes the same.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from edge_sr.atomic import atomic_write
from edge_sr.data import imresize
from edge_sr.runtime.litert import _dequantize, _quantize
from edge_sr.runtime.metadata import build_metadata
from edge_sr.runtime.tiling import _axis_plan, to_uint8, upscale_tiled

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "android_demo/srcore/src/test/resources/dev/edgesr/core/python_golden.json"

TILINGS = [  # (tile as (h, w), overlap, scale, fixed) on a 9×13 image
    ((8, 8), 2, 2, False),  # 2×2 tiles
    ((5, 9), 2, 3, False),  # 3×2 non-square tiles whose two shared bands overlap inside each middle tile
    ((24, 8), 4, 2, True),  # rows reflect-padded past one reflection (9 → 24); columns start at round(2.5) = 2
]


def box_nearest(tile, scale):
    """The stand-in model: 3×3 mean (edge-replicated border), then nearest-neighbour ×scale, in float32.

    It reads neighbouring pixels, so tile borders and blending change the result. The nine-term sum of integers is
    exact in float32 in any order; the one rounding is the division, so Java computes the same bits.
    """
    padded = np.pad(np.asarray(tile, np.float32), ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = tile.shape[:2]
    total = np.zeros((height, width, 3), np.float32)
    for dy in range(3):
        for dx in range(3):
            total += padded[dy : dy + height, dx : dx + width]
    mean = total / np.float32(9)
    return np.repeat(np.repeat(mean, scale, axis=0), scale, axis=1)


def _floats(values):
    """float32 values as their shortest decimal form, which Java's Float.parseFloat reads back exactly."""
    return [float(str(np.float32(v))) for v in np.asarray(values, np.float32).ravel()]


def _ints(values):
    return [int(v) for v in np.asarray(values).ravel()]


def tiling_cases(image):
    cases = []
    for tile, overlap, scale, fixed in TILINGS:
        shapes = set()

        def model(piece, scale=scale, shapes=shapes):
            shapes.add(piece.shape[:2])
            return box_nearest(piece, scale)

        sr = upscale_tiled(model, image, scale, tile, overlap, fixed=fixed)
        sr_uint8 = upscale_tiled(model, image, scale, tile, overlap, fixed=fixed, uint8=True)
        assert len(shapes) == 1, shapes  # every tile of a plan has one size
        cases.append(
            {
                "tile": list(tile),
                "overlap": overlap,
                "scale": scale,
                "fixed": fixed,
                "model_input": list(shapes.pop()),
                "row_starts": [start for start, _, _ in _axis_plan(image.shape[0], tile[0], overlap, scale)[0]],
                "col_starts": [start for start, _, _ in _axis_plan(image.shape[1], tile[1], overlap, scale)[0]],
                "float32": _floats(sr),
                "uint8": _ints(sr_uint8),
            }
        )
    return cases


CONVERSION_VALUES = [-3, -0.5, 0, 0.5, 1.5, 2.5, 3.49, 17.25, 99.75, 127.5, 128.5, 254.5, 255, 255.5, 300]
TENSORS = [  # (type, scale, zero point): pixels as uint8 and int8 models take them, an odd scale, raw values
    ("uint8", 1.0, 0),
    ("int8", 1.0, -128),
    ("uint8", float(np.float32(0.7)), 5),
    ("int8", 2.5, -3),
    ("uint8", 0.0, 0),
]


def conversion_cases():
    values = np.asarray(CONVERSION_VALUES, np.float32)
    cases = []
    for dtype, scale, zero_point in TENSORS:
        tensor = {"dtype": np.dtype(dtype).type, "quantization": (scale, zero_point)}
        quantized = _quantize(values, tensor)
        cases.append(
            {
                "type": dtype,
                "scale": scale,
                "zero_point": zero_point,
                "values": _floats(values),
                "quantized": _ints(quantized),
                "dequantized": _floats(_dequantize(quantized, tensor)),
            }
        )
    rounding = np.asarray([-1, 0.49999997, 0.5, 1.5, 2.5, 127.49, 254.5, 255.4, 256, 1e9], np.float32)
    return cases, {"values": _floats(rounding), "uint8": _ints(to_uint8(rounding))}


def orientation_cases():
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    cases = []
    for orientation in range(1, 9):
        image = Image.fromarray(pixels, "L")
        image.getexif()[0x0112] = orientation  # the EXIF Orientation tag
        upright = np.asarray(ImageOps.exif_transpose(image))
        cases.append({"orientation": orientation, "width": upright.shape[1], "pixels": _ints(upright)})
    return {"width": pixels.shape[1], "height": pixels.shape[0], "pixels": _ints(pixels), "cases": cases}


def alpha_cases(rng):
    alpha = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    return {
        "width": alpha.shape[1],
        "height": alpha.shape[0],
        "alpha": _ints(alpha),
        "upscaled": {str(scale): _ints(imresize(alpha, scale=scale)) for scale in (2, 3, 4)},
    }


def sidecar_cases():
    """Sidecar texts: as `convert` writes them, and broken ones that read_metadata must refuse."""
    int8 = build_metadata(
        {"arch": "isr-rdn", "scale": 2}, "int8", {"weights": 8, "activations": 8}, "uint8", method="dobi",
        source="runs/dobi-w8",
    )  # fmt: skip
    swinir = build_metadata(
        {"arch": "swinir", "scale": 4}, "fp16", {"weights": 16, "activations": 32}, "float32", tile=64,
        source="swinir.keras",
    )  # fmt: skip
    valid = [json.dumps(int8, indent=2) + "\n", json.dumps(swinir, indent=2) + "\n"]

    def changed(**fields):
        return json.dumps({**int8, **fields}, indent=2)

    without_io = {key: value for key, value in int8.items() if key != "io"}
    invalid = [
        ("empty file", ""),
        ("truncated", valid[0][:40]),
        ("trailing comma", valid[0].replace('"source": "runs/dobi-w8"', '"source": "runs/dobi-w8",')),
        ("single quotes", valid[0].replace('"arch"', "'arch'")),
        ("a comment", "// edge_sr\n" + valid[0]),
        ("not an object", "[]"),
        ("missing io", json.dumps(without_io)),
        ("another format", changed(format="edge_sr.other")),
        ("another version", changed(version=2)),
        ("unknown precision", changed(precision="int4")),
        ("scale 0", changed(scale=0)),
        ("scale as a string", changed(scale="2")),
        ("fractional scale", changed(scale=2.5)),
        ("scale true", changed(scale=True)),
        ("scale NaN", changed(scale=math.nan)),
        ("tile 0", changed(tile=0)),
        ("negative tile", changed(tile=-64)),
        ("unknown io", changed(io="float16")),
        ("bits without activations", changed(bits={"weights": 8})),
        ("bits as a list", changed(bits=[8, 8])),
    ]
    return {"valid": valid, "invalid": [{"why": why, "text": text} for why, text in invalid]}


def golden():
    """The golden file's contents."""
    rng = np.random.default_rng(8)
    image = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    conversions, rounding = conversion_cases()
    sections = {
        "format": "edge_sr.srcore-golden",
        "version": 1,
        "made_by": "tests/android_golden.py",
        "image": {"height": image.shape[0], "width": image.shape[1], "rgb": _ints(image)},
        "tiling": tiling_cases(image),
        "conversions": conversions,
        "to_uint8": rounding,
        "orientation": orientation_cases(),
        "alpha": alpha_cases(rng),
        "sidecars": sidecar_cases(),
    }
    # One line per section (and per list entry of the larger ones) keeps diffs readable.
    lines = []
    for key, value in sections.items():
        if isinstance(value, list):
            items = ",\n".join("  " + json.dumps(item, separators=(",", ":")) for item in value)
            lines.append(f'"{key}": [\n{items}\n]')
        else:
            lines.append(f'"{key}": {json.dumps(value, separators=(",", ":"))}')
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main():
    atomic_write(GOLDEN, lambda tmp: Path(tmp).write_text(golden()))
    print(f"wrote {GOLDEN.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
