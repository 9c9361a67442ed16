"""Where an FP model comes from: `--model` values shared by evaluate, train, calibrate and convert.

zoo:NAME                 a pretrained zoo model (pulled and cached on first use)
path/to/model.keras      a model saved by edge_sr
path/to/weights.pt|.pth  an official PyTorch checkpoint (EDSR-PyTorch, BasicSR, SwinIR); needs torch
path/to/weights.h5       idealo ISR / UpscalerJS weights (model.json beside it), or a TF.js model.json
path/to/run_dir          a `train` or `calibrate` run: its best quantized (or FP) model
PRESET                   a models_tf preset with random weights (edsr-baseline, rdn, swinir-light, ...)
"""

from pathlib import Path

from edge_sr.errors import EdgeSRError
from edge_sr.models.rundir import RUN_FILE, read_run, restore_best


def load_source_model(spec, scale=None):
    """The FP keras model `spec` names; `scale` is required for presets and checked for everything else."""
    from models_tf import build_preset, load_model, preset_names

    path = Path(spec)
    if spec.startswith("zoo:"):
        from edge_sr.models.zoo import load_zoo_model

        model = load_zoo_model(spec[4:])
    elif (path / "run.json").is_file():
        model = load_run_model(path)
    elif spec in preset_names():
        if scale is None:
            raise EdgeSRError(f"preset {spec} needs a --scale")
        return build_preset(spec, scale=scale)
    elif path.suffix in (".keras", ".pt", ".pth", ".h5") or path.name.endswith("model.json"):
        if not path.is_file():
            raise EdgeSRError(f"model file not found: {spec}")
        if path.suffix == ".keras":
            model = load_model(path)
        elif path.suffix in (".pt", ".pth"):
            from converters.pytorch import model_from_checkpoint

            model = model_from_checkpoint(path)
        else:
            from converters.idealo import load_idealo

            model = load_idealo(path)
    else:
        raise EdgeSRError(
            f"unknown model {spec!r}; use zoo:NAME, a .keras/.pt/.pth/.h5 file, a run directory or a preset "
            f"({', '.join(preset_names())})"
        )
    _check_image_model(model, spec)
    model_scale = getattr(model, "edge_sr_config", {}).get("scale")
    if scale is not None and model_scale is not None and model_scale != scale:
        raise EdgeSRError(f"{spec} is a ×{model_scale} model, not ×{scale}; use --scale {model_scale}")
    return model


def _check_image_model(model, spec):
    """An SR model maps one RGB image [1, H, W, 3] to one; anything else (a classifier, ...) is refused here."""
    shapes = [tuple(tensor.shape) for tensor in (*model.inputs, *model.outputs)]
    if len(model.inputs) != 1 or len(model.outputs) != 1 or any(len(s) != 4 or s[3] != 3 for s in shapes):
        raise EdgeSRError(
            f"{spec} maps {shapes[: len(model.inputs)]} to {shapes[len(model.inputs) :]}, not one RGB image "
            "[N, H, W, 3] to another: it is not a super-resolution model"
        )


def load_run_model(run_dir):
    """The model a `train` or `calibrate` run produced: its source rebuilt, quantized as the run was, best weights
    and ranges restored."""
    from edge_sr.quant.placement import quantize_model

    run = read_run(run_dir)
    if "quantization" not in run or "model" not in run:
        raise EdgeSRError(f"{run_dir}/{RUN_FILE} does not say which model it trained; was it written by edge_sr?")
    model = load_source_model(run["model"], run.get("scale"))
    if run["quantization"]:
        # Runs from before the mid-rise weight grid and the qkv split: the narrow grid, one qkv linear.
        model = quantize_model(model, **{"weight_grid": "narrow", "split_qkv": False, **run["quantization"]})
    restore_best(run_dir, model)
    return model
