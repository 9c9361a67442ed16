"""edge_sr: quantize super-resolution networks (ODM QAT, 2DQuant PTQ) and ship them as integer TFLite."""

import contextlib
import importlib.abc
import importlib.util
import os
import sys

# Before TensorFlow loads: use Keras 2 (tf_keras), which tfmot requires, wherever tf.keras is referenced; and keep
# TensorFlow's start-up chatter (oneDNN notice, CUDA stub, "failed call to cuInit", tf.data's NodeDef errors) off
# the user's terminal, unless EDGE_SR_VERBOSE=1 asks for it.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
VERBOSE = os.environ.get("EDGE_SR_VERBOSE", "0") not in ("", "0")


def native_logs_silenced():
    """A context in which what C++ libraries write to stderr (fd 2) is dropped, unless EDGE_SR_VERBOSE=1: their
    start-up lines (LiteRT's "Created TensorFlow Lite XNNPACK delegate") cannot be filtered otherwise."""
    return contextlib.nullcontext() if VERBOSE else _stderr_silenced()


@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports `tensorflow`, the first time, with stderr silenced: its libraries log their start-up lines through
    absl before TF_CPP_MIN_LOG_LEVEL is read. A failed import still raises, and Python prints it afterwards."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None:
            exec_module = spec.loader.exec_module

            def quiet_exec_module(module):
                with _stderr_silenced():
                    exec_module(module)

            spec.loader.exec_module = quiet_exec_module
        return spec


if not VERBOSE:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # errors too: cuInit's on a machine without a GPU
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())

from edge_sr.errors import EdgeSRError  # noqa: E402

__all__ = ["EdgeSRError"]
__version__ = "0.1.0"
