"""Keras model → .tflite file: float precisions, TFLite's own PTQ, a quantized run's full-integer file, and the
parity gate that runs the file against its Keras reference before it is written."""
