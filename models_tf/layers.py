"""Layers and helpers shared by the SR architectures; each lowers to TFLite builtin ops."""

import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError

# DIV2K mean used by EDSR-PyTorch, BasicSR and SwinIR; RGB in [0, 1].
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def spatial_shape(tensor):
    """(H, W) as Python ints where the graph knows them, so a fixed-size export folds them into constants."""
    dynamic = tf.shape(tensor)
    return tuple(tensor.shape[axis] if tensor.shape[axis] is not None else dynamic[axis] for axis in (1, 2))


def conv3x3(filters, name):
    return keras.layers.Conv2D(filters, 3, padding="same", name=name)


def check_scale(scale, supported, arch):
    if not isinstance(scale, int) or scale not in supported:
        raise EdgeSRError(f"{arch} supports scale {', '.join(map(str, supported))}, not {scale!r}")


def pixel_shuffle_upsampler(x, scale, features):
    """EDSR/RDN/SwinIR upsampler: per factor 2 a 3x3 conv to 4*features + shuffle 2; for x3 one conv to 9*features.

    The convs are named `upsample_{k}`; each feeds a DepthToSpace, which converters detect to permute its channels.
    """
    factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
    for k, factor in enumerate(factors):
        x = conv3x3(features * factor**2, name=f"upsample_{k}")(x)
        x = DepthToSpace(factor, name=f"upsample_{k}_shuffle")(x)
    return x


@keras.utils.register_keras_serializable(package="edge_sr")
class DepthToSpace(keras.layers.Layer):
    """Pixel shuffle as tf.nn.depth_to_space, whose channel order differs from torch.nn.PixelShuffle."""

    def __init__(self, block_size, **kwargs):
        super().__init__(**kwargs)
        self.block_size = block_size

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.utils.register_keras_serializable(package="edge_sr")
class ReflectPadToMultiple(keras.layers.Layer):
    """Reflect-pad bottom and right so that H and W become multiples of `multiple` (SwinIR's check_image_size)."""

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = multiple

    def call(self, inputs):
        height, width = spatial_shape(inputs)
        pad_height, pad_width = (-height) % self.multiple, (-width) % self.multiple
        if isinstance(pad_height, int) and isinstance(pad_width, int) and not (pad_height or pad_width):
            return inputs  # a fixed tile that fits the windows: no MIRROR_PAD op (XNNPACK does not run it)
        return tf.pad(inputs, [[0, 0], [0, pad_height], [0, pad_width], [0, 0]], mode="REFLECT")

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.utils.register_keras_serializable(package="edge_sr")
class CropToScaledSize(keras.layers.Layer):
    """Crop `image` to `scale` times the height and width of `reference`: undoes input padding after upsampling."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        image, reference = inputs
        height, width = spatial_shape(reference)
        return image[:, : height * self.scale, : width * self.scale]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


# XNNPACK's CONCATENATION takes 2 to 5 inputs; LiteRT runs a longer one on its builtin kernel.
MAX_XNNPACK_CONCAT_INPUTS = 5


@keras.utils.register_keras_serializable(package="edge_sr")
class NestedConcatenate(keras.layers.Concatenate):
    """Concatenate, as nested concatenations of at most MAX_XNNPACK_CONCAT_INPUTS inputs each (same result)."""

    def call(self, inputs):
        inputs = list(inputs)
        while len(inputs) > MAX_XNNPACK_CONCAT_INPUTS:
            size = -(-len(inputs) // MAX_XNNPACK_CONCAT_INPUTS)  # so that at most the maximum remain
            inputs = [tf.concat(inputs[i : i + size], self.axis) for i in range(0, len(inputs), size)]
        return tf.concat(inputs, self.axis)


@keras.utils.register_keras_serializable(package="edge_sr")
class NearestUpsampling(keras.layers.Layer):
    """Nearest-neighbour upsampling by `scale` as the channels repeated scale² times and depth-to-space: exactly
    UpSampling2D(interpolation="nearest"), in ops XNNPACK runs (its RESIZE_NEAREST_NEIGHBOR takes no run-time
    size, which an any-size model has)."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return tf.nn.depth_to_space(tf.concat([inputs] * self.scale**2, axis=-1), self.scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def xnnpack_equivalent(layer):
    """A new layer computing exactly what `layer` does in ops XNNPACK delegates, or None if `layer`'s are."""
    config = layer.get_config()
    if type(layer) is keras.layers.Concatenate and len(layer.input) > MAX_XNNPACK_CONCAT_INPUTS:
        return NestedConcatenate.from_config(config)
    if isinstance(layer, keras.layers.UpSampling2D) and config["interpolation"] == "nearest":
        rows, cols = config["size"]
        if rows == cols and config["data_format"] == "channels_last":
            return NearestUpsampling(rows, name=layer.name)
    return None
