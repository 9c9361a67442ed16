"""Pretrained models by name: fetched with npm, checked against a recorded sha256, converted, cached as .keras.

    python -m edge_sr.zoo list
    python -m edge_sr.zoo pull isr-rdn-psnr-small-x2 [--from FILE]

npm is the one channel that reaches real SR weights from here (UpscalerJS republishes idealo's). `--from FILE`
registers weights the user already has instead; an entry without a package (the official PyTorch checkpoints,
read by converters/pytorch.py) is pulled only that way. `edsr-small-x2` ships inside the package (edge_sr/assets,
with the command that trained it): it needs no download, so the demo works offline.
"""

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from converters.idealo import load_idealo
from converters.pytorch import model_from_checkpoint
from edge_sr.data import cache_dir
from edge_sr.errors import EdgeSRError
from models_tf import load_model, model_config, save_model
from models_tf.registry import preset_defaults


@dataclass(frozen=True)
class ZooModel:
    description: str
    config: dict  # entries the converted model's edge_sr_config must have: the architecture the weights must be
    convert: Callable  # weights file -> keras.Model
    package: str | None = None  # npm package@version holding the weights; None: only `--from FILE`
    member: str | None = None  # the weights file's path inside the package tarball
    sha256: str | None = None  # of that file, as observed when the entry was added
    bundled: str | None = None  # a .keras file in edge_sr/assets: nothing to fetch or convert


ASSETS = Path(__file__).resolve().parents[1] / "assets"

ZOO = {
    "edsr-small-x2": ZooModel(
        description="EDSR-small ×2 (8 blocks × 32, 0.2M params) trained by edge_sr on BSD68; bundled, no download",
        config={"arch": "edsr", "scale": 2, "num_blocks": 8, "num_features": 32},
        convert=load_model,
        bundled="edsr-small-x2.keras",
    ),
    "isr-rdn-psnr-small-x2": ZooModel(
        description="idealo ISR RDN psnr-small ×2 (C3 D10 G64 G0 64, 2.6M params); Set5 ×2 Y-PSNR 36.65 dB",
        config={
            "arch": "isr-rdn",
            "scale": 2,
            "num_blocks": 10,
            "num_layers": 3,
            "growth_rate": 64,
            "num_features": 64,
            "kernel_size": 3,
            "upscaling": "ups",
        },
        convert=load_idealo,
        package="@upscalerjs/models@0.9.0",
        member="package/models/psnr-small-quant-uint8/image-super-resolution-psnr-small.h5",
        sha256="4ea33850fd8e9f2dd39ef53105a69b98b02705570c76993fafdfdcac5c88b48b",
    ),
}


def _official(preset, scale, source):
    """An official PyTorch release: not downloadable from here, registered with `pull NAME --from FILE`."""
    return ZooModel(
        description=f"{preset} ×{scale} from the official {source} (pull with --from FILE)",
        config={"scale": scale, **preset_defaults(preset)},
        convert=model_from_checkpoint,
    )


OFFICIAL = [
    ("edsr-baseline", (2, 3, 4), "EDSR-PyTorch edsr_baseline_x{s}-*.pt"),
    ("edsr", (2, 3, 4), "EDSR-PyTorch edsr_x{s}-*.pt"),
    ("rdn", (2, 3, 4), "RDN checkpoint in EDSR-PyTorch naming"),
    ("swinir", (2, 3, 4, 8), "SwinIR 001_classicalSR_*_SwinIR-M_x{s}.pth"),
    ("swinir-light", (2, 3, 4), "SwinIR 002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}.pth"),
]
ZOO.update(
    (f"{preset}-x{s}", _official(preset, s, source.format(s=s))) for preset, scales, source in OFFICIAL for s in scales
)


def zoo_names():
    return sorted(ZOO)


def _entry(name):
    if name not in ZOO:
        raise EdgeSRError(f"unknown zoo model {name!r}; available: {', '.join(zoo_names())}")
    return ZOO[name]


def cached_path(name):
    bundled = ZOO[name].bundled if name in ZOO else None
    return ASSETS / bundled if bundled else cache_dir() / "models" / f"{name}.keras"


def _fetch(name, entry, workdir):
    """`npm pack` the entry's package into `workdir`, extract its weights file and verify the checksum."""
    if entry.package is None:
        raise EdgeSRError(f"{name} has no download; pass its weights with `pull {name} --from FILE`")
    npm = shutil.which("npm")
    if npm is None:
        raise EdgeSRError(
            f"npm is not installed: install Node.js (it brings npm), or fetch {entry.member} from the npm package "
            f"{entry.package} yourself and run `python -m edge_sr.zoo pull {name} --from FILE`"
        )
    result = subprocess.run([npm, "pack", entry.package], cwd=workdir, capture_output=True, text=True)
    tarballs = list(workdir.glob("*.tgz"))
    if result.returncode or len(tarballs) != 1:
        lines = result.stderr.strip().splitlines() or ["no output"]
        reason = next((line for line in lines if "error" in line.lower()), lines[-1])
        raise EdgeSRError(f"`npm pack {entry.package}` failed ({reason}); check the network, or use `--from FILE`")
    weights = workdir / Path(entry.member).name
    with tarfile.open(tarballs[0]) as tar:
        try:
            weights.write_bytes(tar.extractfile(entry.member).read())
        except KeyError:
            raise EdgeSRError(f"{entry.package} has no {entry.member}") from None
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != entry.sha256:
        raise EdgeSRError(
            f"checksum mismatch for {entry.member} of {entry.package}: expected sha256 {entry.sha256}, got "
            f"{digest}; the download is damaged or the package changed"
        )
    return weights


def pull(name, source_file=None):
    """Convert NAME's weights (downloaded, or `source_file`) into the cache; returns the .keras path.

    Without `source_file` an existing cache entry is reused; with it, the entry is replaced.
    """
    entry = _entry(name)
    target = cached_path(name)
    if entry.bundled:
        if source_file is not None:
            raise EdgeSRError(f"{name} ships with edge_sr; it takes no --from FILE")
        if not target.is_file():
            raise EdgeSRError(f"{target} is missing from this installation of edge_sr; reinstall it")
        return target
    if source_file is None and target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="edge_sr_zoo_") as workdir:
        weights = _fetch(name, entry, Path(workdir)) if source_file is None else Path(source_file)
        model = entry.convert(weights)
    got, expected = _plain(model_config(model)), _plain(entry.config)
    diffs = [f"{key} {got.get(key)!r} (expected {value!r})" for key, value in expected.items() if got.get(key) != value]
    if diffs:
        raise EdgeSRError(f"{weights} is not {name}: {', '.join(diffs)}")
    save_model(model, target)
    return target


def _plain(config):
    return json.loads(json.dumps(config))  # tuples and lists compare equal


def load_zoo_model(name):
    """NAME as a keras.Model with its `edge_sr_config`, pulled first if it is not cached."""
    return load_model(pull(name))


def listing():
    """(name, state, description) of every model: state is bundled, cached or not cached."""
    return [
        (
            name,
            "bundled" if ZOO[name].bundled else "cached" if cached_path(name).is_file() else "not cached",
            ZOO[name].description,
        )
        for name in zoo_names()
    ]
