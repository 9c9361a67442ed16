"""Run a .tflite file with XNNPACK on prepared input tensors and keep its raw output tensors.

`edge_sr.armcheck` runs this file as a script in an emulated aarch64 Python that has numpy and ai_edge_litert
alone, and imports it on the host: one piece of code for both sides, so the CPU is all that differs.

    python litert_run.py MODEL.tflite INPUTS.npz OUTPUTS.npz [count]

INPUTS.npz holds arrays `0`, `1`, ... in the model's input type ([H, W, 3] each); OUTPUTS.npz gets the raw output
tensors of each as `0/0`, `0/1`, ... (input/output), plus `hwcap` (the CPU features the kernel announces: XNNPACK's
kernel choice reads them) and `delegated` (ops XNNPACK took: DELEGATE nodes in the executed plan). With `count`,
the last input is run once more between the markers of the instruction-counting qemu plugin
(edge_sr/bench/insn_count.c).
"""

import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def cpu_features():
    """[AT_HWCAP, AT_HWCAP2] from the auxiliary vector (0 where the C library cannot say)."""
    import ctypes

    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return [0, 0]
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return [int(getauxval(16)), int(getauxval(26))]


COUNT_START, COUNT_STOP = 0xDEED0001 - 2**32, 0xDEED0002 - 2**32  # close() on these: insn_count.c's markers


def _marker(descriptor):
    try:
        os.close(descriptor)
    except OSError:  # EBADF, as intended
        pass


def run_file(path, inputs, count=False):
    """(raw output tensors of each input, number of delegate nodes): `path` run with XNNPACK, one thread. `count`:
    invoke the last input once more between the instruction counter's markers."""
    interpreter = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=OpResolverType.AUTO)
    source, targets = interpreter.get_input_details()[0], interpreter.get_output_details()
    outputs, shape = [], None
    for values in inputs:
        if values.shape != shape:
            interpreter.resize_tensor_input(source["index"], (1, *values.shape), strict=True)
            interpreter.allocate_tensors()
            shape = values.shape
        interpreter.set_tensor(source["index"], values[None])
        interpreter.invoke()
        outputs.append([interpreter.get_tensor(target["index"]).copy() for target in targets])
    if count:
        _marker(COUNT_START)
        interpreter.invoke()
        _marker(COUNT_STOP)
    delegated = sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    return outputs, delegated


def main(model, inputs_path, outputs_path, count=""):
    with np.load(inputs_path) as stored:
        inputs = [stored[str(i)] for i in range(len(stored.files))]
    outputs, delegated = run_file(model, inputs, count == "count")
    arrays = {f"{i}/{j}": values for i, tensors in enumerate(outputs) for j, values in enumerate(tensors)}
    np.savez(outputs_path, hwcap=np.array(cpu_features(), np.uint64), delegated=delegated, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
