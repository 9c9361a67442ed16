"""The quantization methods: ODM quantization-aware training with its baselines (training.py, qat.py) and 2DQuant
post-training calibration with its baselines (calibration.py), on one shared loop (loop.py)."""
