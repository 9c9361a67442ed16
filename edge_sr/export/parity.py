"""The parity gate: an int8 file is run (LiteRT, XNNPACK) beside the Keras fake-quant model it was converted
from, and written only if both score the same PSNR on a benchmark folder."""

from edge_sr.errors import EdgeSRError
from edge_sr.export.int8 import export_int8
from edge_sr.runtime.metadata import check_tflite_path, sidecar_path, write_tflite

# The parity gate is the PSNR difference. The share of output values within 1 LSB is reported, not gated: the
# reference computes the integer kernels' requantisations and biases (a small EDSR agrees on >= 99 % at W8 and
# W4), but it accumulates convolutions in float, in another order, which decides the few values within float
# rounding of a rounding boundary; in a deep graph those flips spread (the idealo RDN: 31-60 %, at equal PSNR).
PARITY_MAX_DPSNR = 0.02


def export_int8_checked(run_dir, path, val, io="uint8", tile=None, force=False):
    """`export_int8` gated by `check_parity` on the benchmark folder `val`: returns (metadata, parity).

    The file is exported and checked under a temporary name beside `path`, and moved to `path` only if it passes;
    with `force` a failing file is moved there too, its sidecar recording the failure (which the tools warn of).
    """
    path = check_tflite_path(path)
    trial = path.with_name(f".{path.stem}.unchecked.tflite")
    try:
        metadata, deployed = export_int8(run_dir, trial, io=io, tile=tile)
        parity = check_parity(deployed, trial, val, metadata["scale"])
        if not parity["ok"]:
            if not force:
                raise EdgeSRError(
                    f"the int8 file scores {parity['delta_psnr']:+.3f} dB off its fake-quant reference (the limit is "
                    f"±{PARITY_MAX_DPSNR} dB), so {path} was not written; pass --force to write it anyway"
                )
            metadata["parity"] = {"ok": False, "delta_psnr": parity["delta_psnr"], "limit": PARITY_MAX_DPSNR}
        write_tflite(path, trial.read_bytes(), metadata)
    finally:
        trial.unlink(missing_ok=True)
        sidecar_path(trial).unlink(missing_ok=True)
    return metadata, parity


def check_parity(deployed, path, folder, scale):
    """Run the exported file (LiteRT, XNNPACK) and its Keras fake-quant reference on a benchmark folder.

    Returns {"psnr_keras", "psnr_tflite", "delta_psnr", "within_1_lsb"} (PSNR as the evaluation protocol
    measures it, the share of output pixel values that differ by at most 1) and `ok`: |ΔPSNR| ≤ PARITY_MAX_DPSNR.
    """
    import numpy as np

    from edge_sr.data.datasets import open_benchmark
    from edge_sr.data.metrics import psnr
    from edge_sr.runtime.upscalers import KerasUpscaler, TFLiteUpscaler

    exported = TFLiteUpscaler(path, scale)
    reference = KerasUpscaler(deployed, "reference", scale, tile=exported.model.input_size)  # SwinIR: its tiles
    psnrs, within, total = [], 0, 0
    for _, lr, hr in open_benchmark(folder, scale):
        a, b = reference(lr), exported(lr)
        psnrs.append((psnr(a, hr, shave=scale), psnr(b, hr, shave=scale)))
        within += int(np.sum(np.abs(a.astype(np.int16) - b) <= 1))
        total += a.size
    psnr_keras, psnr_tflite = np.mean(psnrs, axis=0)
    result = {
        "psnr_keras": float(psnr_keras),
        "psnr_tflite": float(psnr_tflite),
        "delta_psnr": float(psnr_tflite - psnr_keras),
        "within_1_lsb": within / total,
    }
    result["ok"] = abs(result["delta_psnr"]) <= PARITY_MAX_DPSNR
    return result
