"""idealo ISR's RDN (github.com/idealo/image-super-resolution), the variant whose pretrained weights we can get.

It follows the paper's RDN (models_tf/rdn.py) up to the global residual, then differs: it works on [0, 1]
pixels, and upscales with UPN1 (5×5, 64, ReLU) → UPN2 (3×3, 32, ReLU) → UPN3 (3×3, 3·scale²) followed by
nearest-neighbour UpSampling2D ("ups", used by the released weights) or depth-to-space ("shuffle"), then a
conv to RGB, unclipped. Layers keep idealo's names so their weights map one to one; the rescaling to our
[0, 255] convention sits at the edges.
"""

import tf_keras as keras

from edge_sr.errors import EdgeSRError
from models_tf.config import attach_config
from models_tf.layers import DepthToSpace
from models_tf.registry import register_preset

UPSCALINGS = ("ups", "shuffle")


def _conv(filters, kernel_size, name):
    return keras.layers.Conv2D(filters, kernel_size, padding="same", name=name)


def build_isr_rdn(scale, num_blocks=10, num_layers=3, growth_rate=64, num_features=64, kernel_size=3, upscaling="ups"):
    """idealo's D (num_blocks), C (num_layers), G (growth_rate), G0 (num_features); the default is psnr-small.

    Names: `F_m1`, `F_0` (shallow convs), `F_{d}_{c}` (dense convs, 1-based), `LFF_{d}` (1×1 local fusion),
    `LRL_{d}` (local residual), `GFF_1`, `GFF_2` (global fusion), `FDF` (global residual), `UPN1..3`, `SR`.
    """
    sizes = {
        "scale": scale,
        "num_blocks": num_blocks,
        "num_layers": num_layers,
        "growth_rate": growth_rate,
        "num_features": num_features,
        "kernel_size": kernel_size,
    }
    if not all(isinstance(value, int) and value >= 1 for value in sizes.values()):
        raise EdgeSRError(f"isr-rdn needs positive integer sizes, got {sizes}")
    if upscaling not in UPSCALINGS:
        raise EdgeSRError(f"isr-rdn upscaling must be one of {', '.join(UPSCALINGS)}, not {upscaling!r}")

    inputs = keras.Input((None, None, 3), name="image")
    unit = keras.layers.Rescaling(1 / 255, name="to_unit_range")(inputs)
    shallow = _conv(num_features, kernel_size, "F_m1")(unit)
    x = _conv(num_features, kernel_size, "F_0")(shallow)
    block_outputs = []
    for d in range(1, num_blocks + 1):
        dense = x
        for c in range(1, num_layers + 1):
            grown = _conv(growth_rate, kernel_size, f"F_{d}_{c}")(dense)
            grown = keras.layers.ReLU(name=f"F_{d}_{c}_Relu")(grown)
            dense = keras.layers.Concatenate(name=f"RDB_Concat_{d}_{c}")([dense, grown])
        fused = _conv(num_features, 1, f"LFF_{d}")(dense)
        x = keras.layers.Add(name=f"LRL_{d}")([fused, x])
        block_outputs.append(x)
    x = block_outputs[0] if num_blocks == 1 else keras.layers.Concatenate(name="LRLs_Concat")(block_outputs)
    x = _conv(num_features, 1, "GFF_1")(x)
    x = _conv(num_features, kernel_size, "GFF_2")(x)
    x = keras.layers.Add(name="FDF")([x, shallow])
    x = keras.layers.ReLU(name="UPN1_Relu")(_conv(64, 5, "UPN1")(x))
    x = keras.layers.ReLU(name="UPN2_Relu")(_conv(32, 3, "UPN2")(x))
    x = _conv(3 * scale**2, 3, "UPN3")(x)
    if upscaling == "ups":
        x = keras.layers.UpSampling2D(scale, interpolation="nearest", name="UPsample")(x)
    else:
        x = DepthToSpace(scale, name="PixelShuffle")(x)
    x = _conv(3, kernel_size, "SR")(x)
    outputs = keras.layers.Rescaling(255.0, name="to_pixel_range")(x)

    model = keras.Model(inputs, outputs, name=f"isr_rdn_x{scale}")
    return attach_config(model, "isr-rdn", **sizes, upscaling=upscaling)


register_preset("isr-rdn", build_isr_rdn, num_blocks=10, num_layers=3, growth_rate=64, num_features=64)
