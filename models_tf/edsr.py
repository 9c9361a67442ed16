"""EDSR (Lim et al. 2017) as defined in EDSR-PyTorch src/model/edsr.py; input and output in [0, 255]."""

import tf_keras as keras

from edge_sr.errors import EdgeSRError
from models_tf.config import attach_config
from models_tf.layers import DIV2K_RGB_MEAN, check_scale, conv3x3, pixel_shuffle_upsampler
from models_tf.registry import register_preset

SCALES = (2, 3, 4, 8)


def build_edsr(scale, num_blocks=16, num_features=64, res_scale=1.0):
    """Head conv, `num_blocks` residual blocks (conv-ReLU-conv, times res_scale, plus input), body conv with a
    global skip, pixel-shuffle upsampler and tail conv, between subtracting and adding back the DIV2K mean.

    Layers are named `head`, `body_{i}_conv1`, `body_{i}_conv2`, `body_conv`, `upsample_{k}`, `tail`.
    """
    check_scale(scale, SCALES, "EDSR")
    if num_blocks < 1 or num_features < 1:
        raise EdgeSRError(f"EDSR needs num_blocks >= 1 and num_features >= 1, got {num_blocks}, {num_features}")
    mean = [255.0 * channel for channel in DIV2K_RGB_MEAN]

    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Rescaling(1.0, offset=[-m for m in mean], name="sub_mean")(inputs)
    head = conv3x3(num_features, name="head")(x)
    x = head
    for i in range(num_blocks):
        residual = conv3x3(num_features, name=f"body_{i}_conv1")(x)
        residual = keras.layers.ReLU(name=f"body_{i}_relu")(residual)
        residual = conv3x3(num_features, name=f"body_{i}_conv2")(residual)
        if res_scale != 1:
            residual = keras.layers.Rescaling(res_scale, name=f"body_{i}_res_scale")(residual)
        x = keras.layers.Add(name=f"body_{i}_add")([x, residual])
    x = conv3x3(num_features, name="body_conv")(x)
    x = keras.layers.Add(name="body_add")([x, head])
    x = pixel_shuffle_upsampler(x, scale, num_features)
    x = conv3x3(3, name="tail")(x)
    outputs = keras.layers.Rescaling(1.0, offset=mean, name="add_mean")(x)

    model = keras.Model(inputs, outputs, name=f"edsr_x{scale}")
    return attach_config(
        model, "edsr", scale=scale, num_blocks=num_blocks, num_features=num_features, res_scale=res_scale
    )


register_preset("edsr-baseline", build_edsr, num_blocks=16, num_features=64, res_scale=1.0)
register_preset("edsr", build_edsr, num_blocks=32, num_features=256, res_scale=0.1)
# Small enough to train on a CPU and to ship inside the package (the demo's offline model, edge_sr/assets).
register_preset("edsr-small", build_edsr, num_blocks=8, num_features=32, res_scale=1.0)
