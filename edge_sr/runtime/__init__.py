"""What runs an exported file: LiteRT (XNNPACK), the metadata sidecar, tiled upscaling, the upscalers that
`--model` names, and the standard evaluation. Only numpy and ai_edge_litert are needed to run a .tflite file."""
