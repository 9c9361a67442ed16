"""`benchmark onnx`: one PyTorch EDSR to int8 TFLite two ways, onnx2tf (ONNX) and edge_sr (DOBI/2DQuant W8A8)."""

from pathlib import Path

import numpy as np

from edge_sr.bench.common import lr_image, machine_description, time_alternating
from edge_sr.runtime.timing import summarize
from edge_sr.tables import format_table


def benchmark_onnx(args):
    from dataclasses import asdict

    from converters.onnx import convert_onnx, require, torch_to_onnx

    torch = require("torch")  # before converters.torch_edsr, which needs it
    from converters.pytorch import model_from_checkpoint
    from converters.torch_edsr import EDSR, edsr_from_checkpoint
    from edge_sr.data import open_benchmark, write_image
    from edge_sr.data.metrics import psnr
    from edge_sr.export.int8 import export_int8
    from edge_sr.methods.calibration import CalibrationConfig, run_calibration
    from edge_sr.models.rundir import clear_run_dir
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import to_uint8, upscale
    from models_tf import save_model

    out = Path(args.out)
    if args.checkpoint:
        module = edsr_from_checkpoint(args.checkpoint)
        source = Path(args.checkpoint).name
    else:
        torch.manual_seed(args.seed)
        module = EDSR(args.scale, args.blocks, args.features).eval()
        source = f"EDSR {args.blocks}×{args.features}, random weights (seed {args.seed})"
    scale = module.scale
    onnx_path = torch_to_onnx(module, out / "edsr.onnx")
    # onnx2tf int8: the ONNX path, calibrated on the same images as edge_sr's.
    onnx2tf_path = out / "onnx2tf_int8.tflite"
    _, onnx_check = convert_onnx(onnx_path, onnx2tf_path, "int8", calibration=args.calibration, scale=scale,
                                 patches=args.patches, patch=args.patch)  # fmt: skip
    # edge_sr: the same weights into the Keras EDSR, W8A8 calibration, full-integer export.
    keras_path = out / "edsr.keras"
    save_model(model_from_checkpoint(module.state_dict()), keras_path)
    config = CalibrationConfig(
        method=args.method, bits=8, per_channel=True, iterations=args.iterations, batch_size=args.batch_size,
        init_batch_size=args.patches, lr_patch=args.patch,
    )  # fmt: skip
    run = {
        "kind": "calibrate",
        "model": str(keras_path),
        "scale": scale,
        "calibrate": asdict(config),
        "data": {"calibration": args.calibration, "val": args.val or args.calibration[0], "calibration_batches": 1},
    }
    run_dir = out / f"w8a8-{args.method}"
    clear_run_dir(run_dir)
    run_calibration(run, run_dir, validate_every=max(args.iterations, 1), checkpoint_every=max(args.iterations, 1))
    edge_sr_path = out / f"edge_sr_{args.method}_int8.tflite"
    export_int8(run_dir, edge_sr_path)

    files = {"onnx2tf int8": onnx2tf_path, f"edge_sr {args.method} W8A8": edge_sr_path}
    eval_folders = args.eval
    if not eval_folders:  # scikit-image's bundled photos, as a bare HR folder
        from skimage import data

        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            write_image(out / "photos" / f"{name}.png", getattr(data, name)())
        eval_folders = [out / "photos"]
    models = {label: TFLiteModel(path, args.threads) for label, path in files.items()}
    scores = {label: {} for label in ["PyTorch FP32", *files]}
    for folder in eval_folders:
        rows = {label: [] for label in scores}
        for _, lr, hr in open_benchmark(folder, scale):
            with torch.no_grad():
                fp = to_uint8(module(torch.from_numpy(np.float32(lr)).permute(2, 0, 1)[None])[0].permute(1, 2, 0))
            rows["PyTorch FP32"].append((float("inf"), psnr(fp, hr, shave=scale)))
            for label, model in models.items():
                sr = upscale(model, lr)
                rows[label].append((psnr(sr, fp, shave=scale), psnr(sr, hr, shave=scale)))
        for label, values in rows.items():
            scores[label][Path(folder).name] = np.mean(values, axis=0).tolist()

    image = lr_image(args.size)
    calls = [lambda model=model: upscale(model, image) for model in models.values()]
    times = dict(zip(files, time_alternating(calls, args.runs, args.warmup), strict=True))
    baseline = times[f"edge_sr {args.method} W8A8"]
    sets = [Path(folder).name for folder in eval_folders]
    table, results = [], []
    for label in scores:
        timing = summarize(times[label]) if label in times else None
        ratio = float(np.median(np.divide(times[label], baseline))) if label in times else None
        results.append({"model": label, "psnr": scores[label], **(timing or {}), "ratio_to_edge_sr": ratio})
        table.append(
            (
                label,
                *(f"{scores[label][n][0]:.2f}" if label in files else "-" for n in sets),
                *(f"{scores[label][n][1]:.2f}" for n in sets),
                "-" if timing is None else f"{timing['median_s'] * 1e3:.1f}",
                "-" if ratio is None else f"{ratio:.2f}",
            )
        )
    height, width = args.size
    print(
        f"{source}, ×{scale}; calibrated on {', '.join(args.calibration)} ({args.patches} LR patches of "
        f"{args.patch}×{args.patch}); onnx2tf's file against onnxruntime: {onnx_check['psnr']:.2f} dB. LiteRT "
        f"{args.threads} threads, {width}×{height} LR, median of {args.runs} alternating rounds; "
        f"{machine_description()}"
    )
    headers = ["model", *(f"{n} PSNR vs FP" for n in sets), *(f"{n} PSNR vs HR" for n in sets), "median ms",
               "× edge_sr"]  # fmt: skip
    print(format_table(headers, table))
    return {"source": source, "onnx2tf_vs_onnxruntime": onnx_check, "rows": results}
