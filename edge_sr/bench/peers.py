"""The tools users pick instead of edge_sr, each through its public API, beside edge_sr's own int8 file: one FP
model, one batch of calibration patches for all, scored with edge_sr's evaluation and timed in alternating
rounds (`python -m edge_sr.benchmark peers`).

Each pitfall is handled as a user would be told to:
- litert-quantizer's calibration keeps a moving average (0.95) of each tensor's min/max over the samples, which
  clips the bright pixels most patches lack. Its "global min/max" rows calibrate each patch alone and merge the
  ranges with its own `qsv_utils.min_max_update`.
- litert-torch does not convert dynamic shapes, so its files take a fixed tile (`tile`) and are run tile by tile;
  PT2E calibrates the module exported with dynamic height and width, on the same patches as every other tool.
- litert-torch's static file puts dense-block concatenations on the ReLU branch's range, clipping the negative
  half of the block's input; its API has no way around that, so the row shows it as it is.
The peers are an optional extra (requirements-peers.txt, `make peers-venv`): a peer that is not installed is a
row that says so.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_sr.bench.common import machine_description
from edge_sr.errors import EdgeSRError
from edge_sr.tables import format_table

NOT_INSTALLED = "not installed (pip install -r requirements-peers.txt)"


@dataclass
class Row:
    key: str  # what --skip names
    label: str
    path: Path | None = None  # None: not made (see note)
    note: str = ""


ROWS = {
    "fp32": "fp32",
    "edge_sr": "edge_sr DOBI W8 per-channel → convert --int8",
    "tflite-ptq": "TFLite converter PTQ",
    "lq-a8w8": "litert-quantizer static a8w8, its default calibration",
    "lq-a8w8-minmax": "litert-quantizer static a8w8, global min/max",
    "lq-a16w8": "litert-quantizer a16w8, global min/max",
    "lq-weight-only": "litert-quantizer weight-only int8",
    "lq-dynamic": "litert-quantizer dynamic int8",
    "lt-static": "litert-torch PT2E static a8w8 (fixed tile)",
    "lt-dynamic": "litert-torch PT2E dynamic (fixed tile)",
}


def calibration_patches(folders, scale, patch, count):
    """The LR patches every tool calibrates on: the batch DOBI's stage 1 draws with these sizes."""
    from edge_sr.data import PatchSampler

    return PatchSampler(folders, scale, patch * scale, count, progress=False).batch(0, stream=1)[0]


def edge_sr_file(model_spec, scale, calibration, patches, val, out):
    """edge_sr's recipe: DOBI W8A8 per-channel ranges from `patches`, exported by `convert --int8`'s code."""
    from dataclasses import asdict

    from edge_sr.export.int8 import export_int8
    from edge_sr.methods.calibration import CalibrationConfig, run_calibration
    from edge_sr.models.rundir import clear_run_dir

    config = CalibrationConfig(method="dobi", bits=8, per_channel=True, batch_size=len(patches),
                               init_batch_size=len(patches), lr_patch=patches.shape[1])  # fmt: skip
    run = {
        "kind": "calibrate",
        "model": model_spec,
        "scale": scale,
        "calibrate": asdict(config),
        # DOBI takes no steps: the validation folder scores its one result and picks nothing
        "data": {"calibration": list(calibration), "val": val, "calibration_batches": 1},
    }
    run_dir = Path(out) / "w8a8-dobi-pc"
    clear_run_dir(run_dir)
    run_calibration(run, run_dir, validate_every=1, checkpoint_every=1, show_progress=False)
    path = Path(out) / "edge_sr_dobi_w8_pc.tflite"
    export_int8(run_dir, path, calibration=[patches])
    return path


def litert_quantizer_files(fp32_path, patches, out, keys):
    """litert-quantizer's recipes on the fp32 file: {key: path} for the `keys` asked (lq-*)."""
    from litert_quantizer import Quantizer, recipe
    from litert_quantizer.utils import qsv_utils

    recipes = {
        "lq-a8w8": (recipe.static_wi8_ai8, "default"),
        "lq-a8w8-minmax": (recipe.static_wi8_ai8, "minmax"),
        "lq-a16w8": (recipe.static_wi8_ai16, "minmax"),
        "lq-weight-only": (recipe.weight_only_wi8_afp32, None),
        "lq-dynamic": (recipe.dynamic_wi8_afp32, None),
    }
    signature, image = _signature_input(fp32_path)
    samples = [{image: patch[None]} for patch in patches]
    files = {}
    for key in (k for k in recipes if k in keys):
        make_recipe, calibration = recipes[key]
        quantizer = Quantizer(str(fp32_path), make_recipe())
        ranges = None
        if calibration == "default":
            ranges = quantizer.calibrate({signature: samples})
        elif calibration == "minmax":
            ranges = {}
            for sample in samples:
                for tensor, qsv in quantizer.calibrate({signature: [sample]}).items():
                    ranges[tensor] = qsv_utils.min_max_update(ranges.get(tensor, {}), qsv)
        path = Path(out) / f"{key}.tflite"
        path.write_bytes(quantizer.quantize(ranges, enable_progress_report=False).quantized_model)
        files[key] = path
    return files


def _signature_input(path):
    """(signature key, input name) of a one-signature, one-input .tflite file."""
    from ai_edge_litert.interpreter import Interpreter

    ((key, signature),) = Interpreter(model_path=str(path)).get_signature_list().items()
    return key, signature["inputs"][0]


def torch_module(fp_model):
    """A PyTorch module of the Keras model with its weights, or None when edge_sr has no port of its arch."""
    from models_tf import model_config

    if model_config(fp_model).get("arch") != "isr-rdn":
        return None
    from converters.torch_isr_rdn import isr_rdn_from_keras

    return isr_rdn_from_keras(fp_model)


def litert_torch_files(module, patches, tile, out, keys):
    """litert-torch PT2E (XNNPACKQuantizer's symmetric per-channel config), static and dynamic: {key: path}.

    The module is exported with dynamic height and width so that PT2E's observers see the calibration patches
    as they are, then converted at a `tile`×`tile` input: litert-torch does not convert dynamic shapes.
    """
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    nhwc = litert_torch.to_channel_last_io(module, args=[0], outputs=[0]).eval()  # the runtime's [1, H, W, 3]
    side = torch.export.Dim("side", min=8, max=4096)
    patches = torch.from_numpy(np.asarray(patches, np.float32))
    files = {}
    for key, dynamic in (("lt-static", False), ("lt-dynamic", True)):
        if key not in keys:
            continue
        config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(config)
        exported = torch.export.export(nhwc, (patches[:1],), dynamic_shapes=(({1: side, 2: side},),)).module()
        prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for patch in patches:
                prepared(patch[None])
        converted = move_exported_model_to_eval(quantize_pt2e.convert_pt2e(prepared, fold_quantize=False))
        sample = (torch.zeros(1, tile, tile, 3),)
        path = Path(out) / f"{key}.tflite"
        litert_torch.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
        files[key] = path
    return files


def make_files(model_spec, scale, calibration, val, out, patch=48, patches=32, tile=128, skip=()):
    """Every row's file from one FP model and one batch of calibration patches: [Row], in ROWS order."""
    from edge_sr.export.tflite import export_default_ptq, export_float
    from edge_sr.models.sources import load_source_model

    unknown = sorted(set(skip) - set(ROWS))
    if unknown or "fp32" in skip:
        raise EdgeSRError(f"--skip takes rows of {', '.join(k for k in ROWS if k != 'fp32')}, not {unknown or 'fp32'}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fp_model = load_source_model(model_spec, scale)
    calibration_batch = calibration_patches(calibration, scale, patch, patches)
    rows = {key: Row(key, label) for key, label in ROWS.items()}
    for key in skip:
        rows[key].note = "skipped (--skip)"
    wanted = [key for key in ROWS if key not in skip]
    rows["fp32"].path = out / "fp32.tflite"
    export_float(fp_model, rows["fp32"].path, source=model_spec)
    if "edge_sr" in wanted:
        rows["edge_sr"].path = edge_sr_file(model_spec, scale, calibration, calibration_batch, val, out)
    if "tflite-ptq" in wanted:
        rows["tflite-ptq"].path = out / "tflite-default-ptq.tflite"
        export_default_ptq(fp_model, calibration_batch, rows["tflite-ptq"].path, source=model_spec)
    quantizer_keys = [key for key in wanted if key.startswith("lq-")]
    if quantizer_keys:
        try:
            made = litert_quantizer_files(rows["fp32"].path, calibration_batch, out, quantizer_keys)
        except ImportError:
            made = {}
            for key in quantizer_keys:
                rows[key].note = f"litert-quantizer {NOT_INSTALLED}"
        for key, path in made.items():
            rows[key].path = path
    torch_keys = [key for key in wanted if key.startswith("lt-")]
    if torch_keys:
        try:
            module = torch_module(fp_model)
            made = {} if module is None else litert_torch_files(module, calibration_batch, tile, out, torch_keys)
            reason = "no PyTorch port of this model in converters/" if module is None else ""
        except ImportError:
            made, reason = {}, f"litert-torch {NOT_INSTALLED}"
        for key in torch_keys:
            rows[key].path, rows[key].note = made.get(key), reason
    return list(rows.values())


def not_delegated(path):
    """The ops of a file that XNNPACK leaves to LiteRT's builtin kernels, as "2× CONCATENATION, ..." or "none"."""
    from edge_sr.runtime.litert import delegation_report

    builtin = delegation_report(path)["builtin"]
    return ", ".join(f"{count}× {name}" for name, count in sorted(builtin.items())) or "none"


def measure(rows, scale, eval_folders, size, threads, runs, warmup):
    """Score every made file on `eval_folders` with edge_sr's evaluation (Y, shave = scale) and time them all in
    alternating rounds on one random `size` LR image: [{row fields, psnr, median_s, ratio, not_delegated}]."""
    from edge_sr.bench.common import lr_image, time_alternating
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import upscale
    from edge_sr.runtime.timing import summarize
    from edge_sr.runtime.upscalers import TFLiteUpscaler

    made = [row for row in rows if row.path is not None]
    results = {row.key: {"key": row.key, "label": row.label, "path": row.path and str(row.path), "note": row.note}
               for row in rows}  # fmt: skip
    for row in made:
        upscaler = TFLiteUpscaler(row.path, scale)
        results[row.key]["psnr"] = {
            Path(folder).name: evaluate_dataset(upscaler, folder, scale, show_progress=False)["psnr"]
            for folder in eval_folders
        }
        results[row.key]["not_delegated"] = not_delegated(row.path)
    image = lr_image(size)
    models = [TFLiteModel(row.path, threads, scale=scale) for row in made]
    calls = [lambda model=model: upscale(model, image) for model in models]
    times = dict(zip((row.key for row in made), time_alternating(calls, runs, warmup), strict=True))
    for key, seconds in times.items():  # paired: the median of the per-round ratios
        ratio = float(np.median(np.divide(seconds, times["fp32"])))
        results[key].update(summarize(seconds), ratio_to_fp32=ratio)
    return list(results.values())


def compare(model_spec, scale, calibration, eval_folders, out, patch=48, patches=32, tile=128, size=(128, 128),
            threads=2, runs=10, warmup=2, skip=(), files=()):  # fmt: skip
    """`benchmark peers`: make every row's file, score and time them all; the rows' results (see `measure`).
    `files`: .tflite files made beforehand (e.g. a trained `--placement integer` run's `convert --int8`), one
    more row each, scored and timed with the rest."""
    if runs < 1 or warmup < 0:
        raise EdgeSRError("--runs must be at least 1 and --warmup at least 0")
    missing = [str(path) for path in files if not Path(path).is_file()]
    if missing:
        raise EdgeSRError(f"--files: no such file {', '.join(missing)}")
    rows = make_files(model_spec, scale, calibration, eval_folders[0], out, patch, patches, tile, skip)
    rows += [Row(f"file:{Path(path).name}", f"{Path(path).name} (given)", Path(path)) for path in files]
    return measure(rows, scale, eval_folders, size, threads, runs, warmup)


def benchmark_peers(args):
    from edge_sr.bench.peers import compare

    results = compare(args.model, args.scale, args.calibration, args.eval, args.out, patch=args.patch,
                      patches=args.patches, tile=args.tile, size=args.size, threads=args.threads, runs=args.runs,
                      warmup=args.warmup, skip=args.skip, files=args.files)  # fmt: skip
    sets = [Path(folder).name for folder in args.eval]
    rows = [
        (r["label"], *(f"{r['psnr'][n]:.2f}" for n in sets), f"{r['ratio_to_fp32']:.3f}", r["not_delegated"])
        if "psnr" in r else (r["label"], *("-" for _ in sets), "-", r["note"])
        for r in results
    ]  # fmt: skip
    height, width = args.size
    print(
        f"{args.model} ×{args.scale}; calibration: {args.patches} LR patches {args.patch}×{args.patch} from "
        f"{', '.join(args.calibration)}, the same for every tool; PSNR on Y, shave {args.scale}; LiteRT + XNNPACK, "
        f"{args.threads} threads, {width}×{height} LR, median of the per-round ratios over {args.runs} alternating "
        f"rounds; {machine_description()}"
    )
    headers = ["tool / recipe", *(f"{n} ×{args.scale}" for n in sets), "× fp32 time", "not in XNNPACK"]
    print(format_table(headers, rows))
    return results
