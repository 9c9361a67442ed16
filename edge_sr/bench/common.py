"""What the benchmarks share: the machine they ran on, a test image, alternating timing rounds, peak memory."""

import os
import platform
import time
from pathlib import Path

import numpy as np


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def lr_image(size):
    return np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)


def _status_mib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:")) / 1024  # kB


def peak_memory(path, size, threads, xnnpack, tile, scale):
    """Run in a fresh process: (MiB resident before loading the model, peak MiB while loading it and upscaling
    one image of `size`). Linux only (/proc); (None, None) elsewhere."""
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import upscale

    image = lr_image(size)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # restart the high-water mark here, after the imports
        before = _status_mib("VmRSS")
    except OSError:
        return None, None
    model = TFLiteModel(path, threads, xnnpack, scale)
    upscale(model, image, None if model.input_size else tile)
    return before, _status_mib("VmHWM")


def time_alternating(calls, runs, warmup):
    """Seconds per call of each of `calls` over `runs` rounds, after `warmup` untimed rounds; each round calls
    every function once, in turn, alternating the order."""
    times = [[] for _ in calls]
    for round_index in range(warmup + runs):
        order = list(enumerate(calls))
        for i, call in order[:: -1 if round_index % 2 else 1]:
            start = time.perf_counter()
            call()
            if round_index >= warmup:
                times[i].append(time.perf_counter() - start)
    return times
