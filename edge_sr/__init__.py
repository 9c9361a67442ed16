"""edge_sr: quantize super-resolution networks (ODM QAT, 2DQuant PTQ) and ship them as integer TFLite."""

import os

# Before TensorFlow loads: keep its C++ start-up chatter off the user's terminal, and use Keras 2 (tf_keras),
# which tfmot requires, wherever tf.keras is referenced.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from edge_sr.errors import EdgeSRError  # noqa: E402

__all__ = ["EdgeSRError"]
__version__ = "0.1.0"
