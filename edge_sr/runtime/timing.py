"""Measured speed: warm-up, then repeated timed calls, summarised as median / p90."""

import time

import numpy as np


def time_calls(fn, runs, warmup=1):
    """Seconds per call of `fn()` over `runs` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summarize(times):
    return {"median_s": float(np.median(times)), "p90_s": float(np.percentile(times, 90)), "runs": len(times)}


def keras_throughput(model, size, runs, warmup=1, seed=0):
    """FP Keras inference speed on one random size×size LR image: timings plus LR pixels per second."""
    import tensorflow as tf

    image = tf.constant(np.random.default_rng(seed).uniform(0, 255, (1, size, size, 3)).astype(np.float32))
    forward = tf.function(lambda x: model(x, training=False))
    stats = summarize(time_calls(lambda: forward(image).numpy(), runs, warmup))
    return {**stats, "lr_pixels_per_s": size * size / stats["median_s"]}
