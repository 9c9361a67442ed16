"""`benchmark budget`: where a run's int8 file loses PSNR, tensor by tensor."""

from pathlib import Path

from edge_sr.bench.common import machine_description
from edge_sr.progress import progress
from edge_sr.tables import format_table


def benchmark_budget(args):
    import contextlib

    from edge_sr.export.int8 import deploy_calibration_batches, deployed_run
    from edge_sr.quant.budget import activation_sites, quantizing_only, tensor_errors
    from edge_sr.quant.quantizer import bypass_quantizers
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import KerasUpscaler

    run, model, deployed = deployed_run(args.run_dir)  # what convert --int8 exports
    scale = run["scale"]
    # Other patches of the same images than the ones that set the 8-bit ranges.
    (patches,) = deploy_calibration_batches(run, scale, batch_size=args.patches, lr_patch=args.patch, stream=3)
    weights_only, everything, errors = tensor_errors(deployed, patches)

    def scores(model, mode):
        with mode:  # the quantizer mode holds while the upscaler traces the model
            upscaler = KerasUpscaler(model, "budget", scale, tile=args.tile)
            return {Path(f).name: evaluate_dataset(upscaler, f, scale, show_progress=False)["psnr"] for f in args.eval}

    top = errors[: args.top]
    chosen = {id(e.site.variables) for e in top}
    rest = [site for site in activation_sites(deployed) if id(site.variables) not in chosen]
    models = [
        ("FP", model, bypass_quantizers()),
        ("the run (its k-bit quantizers)", model, contextlib.nullcontext()),
        ("the int8 file's reference", deployed, contextlib.nullcontext()),
        ("  its weights alone", deployed, quantizing_only(deployed, [])),
        *((f"  its weights + {e.name} alone", deployed, quantizing_only(deployed, [e.site])) for e in top),
        (f"  all but the top {len(top)} tensors", deployed, quantizing_only(deployed, rest)),
    ]
    rows = [{"model": label, "psnr": scores(m, mode)} for label, m, mode in progress(models, desc="evaluations")]
    sets = list(rows[0]["psnr"])
    print(f"{args.run_dir} ({run['model']}, ×{scale}, W{run['quantization']['bits']}): Keras fake-quant models; "
          f"{machine_description()}")  # fmt: skip
    fp = rows[0]["psnr"]
    table = [(r["model"], *(f"{r['psnr'][n]:.2f}" for n in sets), *(f"{r['psnr'][n] - fp[n]:+.2f}" for n in sets))
             for r in rows]  # fmt: skip
    print(format_table(["model", *(f"{n} PSNR" for n in sets), *(f"{n} vs FP" for n in sets)], table))
    total = sum(max(e.added_mse, 0.0) for e in errors)
    print(
        f"\nOutput MSE (squared pixel levels, against the FP flow) on {args.patches} LR patches of {args.patch}×"
        f"{args.patch}: weights alone {weights_only:.3f}, every quantizer {everything:.3f}; each tensor alone:"
    )
    table = [
        (e.name, e.site.quantizer.bits, f"[{e.lower:.3g}, {e.upper:.3g}]", f"{e.added_mse:+.3f}",
         f"{100 * max(e.added_mse, 0.0) / total:.1f} %" if total else "-")
        for e in errors[: args.rows]
    ]  # fmt: skip
    print(format_table(["tensor", "bits", "range", "+MSE", "share"], table))
    if len(errors) > args.rows:
        print(f"... and {len(errors) - args.rows} more (all in --json)")
    tensors = [
        {"layer": e.site.layer, "site": e.site.site, "bits": e.site.quantizer.bits, "range": [e.lower, e.upper],
         "mse": e.mse, "added_mse": e.added_mse}
        for e in errors
    ]  # fmt: skip
    return {"run": str(args.run_dir), "models": rows, "weights_only_mse": weights_only, "all_mse": everything,
            "tensors": tensors}  # fmt: skip
