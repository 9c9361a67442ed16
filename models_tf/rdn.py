"""RDN (Zhang et al. 2018) as defined in EDSR-PyTorch src/model/rdn.py; input and output in [0, 255], no mean."""

import tf_keras as keras

from edge_sr.errors import EdgeSRError
from models_tf.config import attach_config
from models_tf.layers import check_scale, conv3x3, pixel_shuffle_upsampler
from models_tf.registry import register_preset

SCALES = (2, 3, 4)


def build_rdn(scale, num_blocks=16, num_layers=8, growth_rate=64, num_features=64):
    """Paper config B by default (D=16 blocks, C=8 layers, G=64, G0=64); config A is D=20, C=6, G=32.

    Two shallow convs (`sfenet1`, `sfenet2`); residual dense blocks of C conv+ReLU layers whose outputs are
    concatenated densely (`rdb_{i}_conv_{c}`), a 1x1 local fusion (`rdb_{i}_lff`) and a local residual; global
    fusion of all block outputs (`gff_1x1`, `gff_3x3`) plus the first shallow features; upsampler convs
    (`upsample_{k}`, G*r^2 channels each) with pixel shuffle and a conv to RGB (`tail`).
    """
    check_scale(scale, SCALES, "RDN")
    if min(num_blocks, num_layers, growth_rate, num_features) < 1:
        raise EdgeSRError(
            "RDN needs positive num_blocks, num_layers, growth_rate and num_features, got "
            f"{num_blocks}, {num_layers}, {growth_rate}, {num_features}"
        )

    inputs = keras.Input((None, None, 3), name="image")
    shallow = conv3x3(num_features, name="sfenet1")(inputs)
    x = conv3x3(num_features, name="sfenet2")(shallow)
    block_outputs = []
    for i in range(num_blocks):
        dense = x
        for c in range(num_layers):
            grown = conv3x3(growth_rate, name=f"rdb_{i}_conv_{c}")(dense)
            grown = keras.layers.ReLU(name=f"rdb_{i}_relu_{c}")(grown)
            dense = keras.layers.Concatenate(name=f"rdb_{i}_concat_{c}")([dense, grown])
        fused = keras.layers.Conv2D(num_features, 1, name=f"rdb_{i}_lff")(dense)
        x = keras.layers.Add(name=f"rdb_{i}_add")([fused, x])
        block_outputs.append(x)
    x = block_outputs[0] if num_blocks == 1 else keras.layers.Concatenate(name="gff_concat")(block_outputs)
    x = keras.layers.Conv2D(num_features, 1, name="gff_1x1")(x)
    x = conv3x3(num_features, name="gff_3x3")(x)
    x = keras.layers.Add(name="global_add")([x, shallow])
    x = pixel_shuffle_upsampler(x, scale, growth_rate)
    outputs = conv3x3(3, name="tail")(x)

    model = keras.Model(inputs, outputs, name=f"rdn_x{scale}")
    return attach_config(
        model,
        "rdn",
        scale=scale,
        num_blocks=num_blocks,
        num_layers=num_layers,
        growth_rate=growth_rate,
        num_features=num_features,
    )


register_preset("rdn", build_rdn, num_blocks=16, num_layers=8, growth_rate=64, num_features=64)
