"""`benchmark keras`: parameters and FP Keras throughput of model presets."""

from edge_sr.bench.common import machine_description
from edge_sr.progress import progress
from edge_sr.runtime.timing import keras_throughput
from edge_sr.tables import format_table


def benchmark_keras(args):
    import tensorflow as tf

    from models_tf import build_preset, preset_names

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    presets = args.presets or preset_names()
    rows, results = [], []
    for name in progress(presets, desc="presets"):
        model = build_preset(name, scale=args.scale)
        params = model.count_params()
        timing = keras_throughput(model, args.size, args.runs)
        results.append({"preset": name, "scale": args.scale, "params": params, **timing})
        rows.append(
            (
                name,
                f"x{args.scale}",
                f"{params / 1e6:.2f}M",
                f"{timing['median_s'] * 1e3:.0f}",
                f"{timing['lr_pixels_per_s']:,.0f}",
            )
        )
    print(
        f"FP32 Keras, {args.size}×{args.size} LR, {args.threads} threads, median of {args.runs}; "
        f"{machine_description()}"
    )
    print(format_table(["preset", "scale", "params", "ms / image", "LR px / s"], rows))
    return results
