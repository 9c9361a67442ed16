"""Where an FP or quantized keras model comes from: the zoo, a file, a preset, or a run folder."""
