"""edge_sr: quantize super-resolution networks (ODM QAT, 2DQuant PTQ) and ship them as integer TFLite."""

from edge_sr.errors import EdgeSRError

__all__ = ["EdgeSRError"]
__version__ = "0.1.0"
