"""SwinIR (Liang et al. 2021) as defined in the official models/network_swinir.py, for classical and lightweight SR.

The official model works on [0, 1] pixels with the DIV2K mean subtracted (img_range 1); the rescaling to our
[0, 255] convention sits at the edges. Features stay in NHWC image layout throughout: LayerNorm and the
linears act per token, so they commute with the cyclic shift and the window partition, which happen inside
`ShiftedWindowAttention`. Everything lowers to TFLite builtins (the shift is slice + concat, not tf.roll), and
masks and shapes fold into constants when the input size is fixed.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.quantizer import UniformQuantizer, check_bits, grid_step, simulating, xnnpack_requantize
from models_tf.config import attach_config, model_config, model_from_config
from models_tf.layers import (
    DIV2K_RGB_MEAN,
    CropToScaledSize,
    DepthToSpace,
    ReflectPadToMultiple,
    check_scale,
    conv3x3,
    pixel_shuffle_upsampler,
    spatial_shape,
)
from models_tf.registry import register_preset

SCALES = (2, 3, 4, 8)
UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect")
MASKED = -100.0  # the official additive mask value between tokens of different shifted regions
MATMUL_SITES = ("q_input", "k_input", "attn_probs", "v_input")  # the attention matmuls' inputs, as 2DQuant names them
UPSAMPLE_FEATURES = 64  # the official num_feat of the classical ('pixelshuffle') reconstruction


def relative_position_index(window_size):
    """(N, N) index into the (2*ws-1)^2 bias table for every pair of the N = ws^2 tokens in a window."""
    rows, cols = np.meshgrid(np.arange(window_size), np.arange(window_size), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()])
    relative = coords[:, :, None] - coords[:, None, :] + window_size - 1
    return relative[0] * (2 * window_size - 1) + relative[1]


def cyclic_shift(x, shift):
    """torch.roll(x, (shift, shift), dims=(1, 2)) as slice + concat; correct for either sign of `shift`."""
    x = tf.concat([x[:, -shift:], x[:, :-shift]], axis=1)
    return tf.concat([x[:, :, -shift:], x[:, :, :-shift]], axis=2)


def window_partition(x, window_size):
    """(B, H, W, C) -> (B * nW, ws * ws, C), windows in row-major order."""
    height, width = spatial_shape(x)
    channels = x.shape[-1]
    x = tf.reshape(x, [-1, height // window_size, window_size, width // window_size, window_size, channels])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, window_size * window_size, channels])


def window_merge(windows, window_size, height, width):
    """Inverse of window_partition."""
    channels = windows.shape[-1]
    x = tf.reshape(windows, [-1, height // window_size, width // window_size, window_size, window_size, channels])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, height, width, channels])


def shifted_window_mask(height, width, window_size, shift):
    """(nW, N, N) additive mask keeping attention within the image regions that the cyclic shift made adjacent."""

    def region(length):  # 0, 1, 2 for [0, L - ws), [L - ws, L - shift), [L - shift, L)
        position = tf.range(length)
        return tf.cast(position >= length - window_size, tf.int32) + tf.cast(position >= length - shift, tf.int32)

    labels = region(height)[:, None] * 3 + region(width)[None, :]
    labels = window_partition(labels[None, :, :, None], window_size)[..., 0]
    return tf.where(tf.not_equal(labels[:, :, None], labels[:, None, :]), MASKED, 0.0)


@keras.utils.register_keras_serializable(package="edge_sr")
class ShiftedWindowAttention(keras.layers.Layer):
    """(Shifted) window multi-head self-attention with relative position bias, from a (B, H, W, 3C) qkv map to
    (B, H, W, C) before the output projection. H and W must be multiples of window_size.

    Holds the official `relative_position_bias_table`; the index into it is a constant recomputed here.
    With `matmul_bits`, both matmuls' inputs (scaled q, k, the softmax output, v) pass through their own k-bit
    asymmetric per-tensor quantizers (2DQuant); `matmul_quantizers` and `matmul_quantizer_vars` map each of
    MATMUL_SITES to its quantizer and range variables, and are empty in float.
    """

    def __init__(self, num_heads, window_size, shift_size=0, matmul_bits=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.matmul_bits = matmul_bits if matmul_bits is None else check_bits(matmul_bits)
        # An 8-bit v gets zero point 0 (XNNPACK runs the int8 softmax · v matmul only then; else LiteRT's builtin
        # kernel does, 9× slower than XNNPACK's fp32 one on SwinIR-light). Below 8 bits the converter stores the
        # k-bit codes at the bottom of int8, so no range gives that zero point.
        self.matmul_quantizers = {
            site: UniformQuantizer(matmul_bits, zero_centered=site == "v_input" and matmul_bits == 8)
            for site in (MATMUL_SITES if matmul_bits else ())
        }
        self._bias_index = relative_position_index(window_size).reshape(-1)

    def build(self, input_shape):
        self.relative_position_bias_table = self.add_weight(
            name="relative_position_bias_table",
            shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        # Per-tensor quantizers: their variables do not depend on the tensor's shape.
        self.matmul_quantizer_vars = {site: q.build(None, site, self) for site, q in self.matmul_quantizers.items()}
        super().build(input_shape)

    def call(self, qkv, training=None, input_grid=None):
        """`input_grid`: the range variables of the 8-bit grid qkv arrives on in an integer file (given by the
        deploy completion): k and v then move onto their k-bit grids as XNNPACK requantises them, and the
        shifted qkv is pinned to that grid (the converter would otherwise give the shift's concatenation the
        v grid it finds downstream, and round q and k onto it too)."""
        height, width = spatial_shape(qkv)
        channels = qkv.shape[-1] // 3
        tokens = self.window_size**2
        if self.shift_size:
            qkv = cyclic_shift(qkv, -self.shift_size)
            if input_grid is not None:  # on the grid already: the simulation keeps every value
                qkv = UniformQuantizer(8)(qkv, training, input_grid)

        windows = window_partition(qkv, self.window_size)
        query, key, value = (self._split_heads(part) for part in tf.split(windows, 3, axis=-1))
        query = self._quantize("q_input", query * (channels // self.num_heads) ** -0.5, training)
        key = self._quantize("k_input", key, training, input_grid)
        value = self._quantize("v_input", value, training, input_grid)
        attention = tf.matmul(query, key, transpose_b=True) + self._position_bias(tokens)
        if self.shift_size:
            num_windows = (height // self.window_size) * (width // self.window_size)
            mask = shifted_window_mask(height, width, self.window_size, self.shift_size)
            attention = tf.reshape(attention, [-1, num_windows, self.num_heads, tokens, tokens]) + mask[:, None]
            attention = tf.reshape(attention, [-1, self.num_heads, tokens, tokens])
        attention = self._quantize("attn_probs", tf.nn.softmax(attention, axis=-1), training)

        x = tf.transpose(tf.matmul(attention, value), [0, 2, 1, 3])
        x = window_merge(tf.reshape(x, [-1, tokens, channels]), self.window_size, height, width)
        return cyclic_shift(x, self.shift_size) if self.shift_size else x

    def _quantize(self, site, x, training, source_grid=None):
        if site not in self.matmul_quantizers:
            return x
        quantizer, variables = self.matmul_quantizers[site], self.matmul_quantizer_vars[site]
        if source_grid is not None and simulating():
            source_step = grid_step(source_grid["lower"], source_grid["upper"], 256)
            return xnnpack_requantize(x, source_step, quantizer.range(None, variables), quantizer.levels)
        return quantizer(x, training, variables)

    def _split_heads(self, x):
        """(B', N, C) -> (B', heads, N, C / heads)."""
        tokens, channels = x.shape[1], x.shape[2]
        x = tf.reshape(x, [-1, tokens, self.num_heads, channels // self.num_heads])
        return tf.transpose(x, [0, 2, 1, 3])

    def _position_bias(self, tokens):
        bias = tf.gather(self.relative_position_bias_table, self._bias_index)
        return tf.transpose(tf.reshape(bias, [tokens, tokens, self.num_heads]), [2, 0, 1])

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "window_size": self.window_size,
            "shift_size": self.shift_size,
            "matmul_bits": self.matmul_bits,
        }


def _swin_block(x, name, num_heads, window_size, shift_size, mlp_ratio, split_qkv=False):
    """Pre-norm Swin block: x + proj(attention(qkv(norm1(x)))), then x + fc2(gelu(fc1(norm2(x)))). With
    `split_qkv` the qkv linear is three, q, k and v, joined by a concatenation that keeps the name `attn_qkv`."""
    channels = x.shape[-1]
    y = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm1")(x)
    if split_qkv:
        parts = [keras.layers.Dense(channels, name=f"{name}_attn_{part}")(y) for part in "qkv"]
        y = keras.layers.Concatenate(name=f"{name}_attn_qkv")(parts)
    else:
        y = keras.layers.Dense(3 * channels, name=f"{name}_attn_qkv")(y)
    y = ShiftedWindowAttention(num_heads, window_size, shift_size, name=f"{name}_attn")(y)
    y = keras.layers.Dense(channels, name=f"{name}_attn_proj")(y)
    x = keras.layers.Add(name=f"{name}_add_attn")([x, y])
    y = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm2")(x)
    y = keras.layers.Dense(int(channels * mlp_ratio), name=f"{name}_mlp_fc1")(y)
    y = keras.layers.Activation("gelu", name=f"{name}_mlp_gelu")(y)  # exact (erf) GELU, as torch's default
    y = keras.layers.Dense(channels, name=f"{name}_mlp_fc2")(y)
    return keras.layers.Add(name=f"{name}_add_mlp")([x, y])


def build_swinir(
    scale,
    embed_dim=180,
    depths=(6, 6, 6, 6, 6, 6),
    num_heads=(6, 6, 6, 6, 6, 6),
    window_size=8,
    mlp_ratio=2.0,
    upsampler="pixelshuffle",
    img_size=64,
    split_qkv=False,
):
    """SwinIR for SR: conv_first, residual Swin transformer groups (`layers_{i}`: Swin blocks
    `layers_{i}_blocks_{j}_*`, then a conv and a residual), a final LayerNorm, conv_after_body with a skip from
    conv_first, and the upsampler: 'pixelshuffle' (classical: conv_before_upsample + LeakyReLU, `upsample_{k}`,
    conv_last) or 'pixelshuffledirect' (lightweight: one conv `upsample_0` to 3*scale^2 channels + shuffle).

    Any input size from (window_size + 1) // 2 pixels up works: it is reflect-padded to a multiple of
    window_size and the output cropped back.
    img_size is the training patch size, which matters only when it is <= window_size: then, as in the official
    code, the blocks use one img_size window and no shift.
    split_qkv: each block's qkv linear as three linears (`attn_q`, `attn_k`, `attn_v`), the same function; what
    2DQuant quantizes (`split_qkv_model` makes it from a model with one qkv linear).
    """
    check_scale(scale, SCALES, "SwinIR")
    if upsampler not in UPSAMPLERS:
        raise EdgeSRError(f"SwinIR upsampler must be one of {', '.join(UPSAMPLERS)}, not {upsampler!r}")
    depths, num_heads = list(depths), list(num_heads)
    if not depths or len(depths) != len(num_heads):
        raise EdgeSRError(f"SwinIR needs one head count per group: depths {depths}, num_heads {num_heads}")
    if any(embed_dim % heads for heads in num_heads):
        raise EdgeSRError(f"SwinIR embed_dim {embed_dim} must be divisible by every num_heads {num_heads}")
    if window_size < 1 or img_size < 1:
        raise EdgeSRError(f"SwinIR needs positive window_size and img_size, got {window_size}, {img_size}")
    block_window, shift = (img_size, 0) if img_size <= window_size else (window_size, window_size // 2)

    inputs = keras.Input((None, None, 3), name="image")
    x = ReflectPadToMultiple(window_size, name="pad")(inputs)
    x = keras.layers.Rescaling(1 / 255, offset=[-m for m in DIV2K_RGB_MEAN], name="sub_mean")(x)
    shallow = conv3x3(embed_dim, name="conv_first")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="patch_embed_norm")(shallow)
    for i, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
        group_input = x
        for j in range(depth):
            x = _swin_block(
                x, f"layers_{i}_blocks_{j}", heads, block_window, shift if j % 2 else 0, mlp_ratio, split_qkv
            )
        x = conv3x3(embed_dim, name=f"layers_{i}_conv")(x)
        x = keras.layers.Add(name=f"layers_{i}_add")([x, group_input])
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")(x)
    x = conv3x3(embed_dim, name="conv_after_body")(x)
    x = keras.layers.Add(name="body_add")([x, shallow])
    if upsampler == "pixelshuffle":
        x = conv3x3(UPSAMPLE_FEATURES, name="conv_before_upsample")(x)
        x = keras.layers.LeakyReLU(0.01, name="conv_before_upsample_lrelu")(x)  # torch's default slope
        x = pixel_shuffle_upsampler(x, scale, UPSAMPLE_FEATURES)
        x = conv3x3(3, name="conv_last")(x)
    else:
        x = conv3x3(3 * scale**2, name="upsample_0")(x)
        x = DepthToSpace(scale, name="upsample_0_shuffle")(x)
    x = keras.layers.Rescaling(255.0, offset=[255.0 * m for m in DIV2K_RGB_MEAN], name="add_mean")(x)
    outputs = CropToScaledSize(scale, name="crop")([x, inputs])

    model = keras.Model(inputs, outputs, name=f"swinir_x{scale}")
    return attach_config(
        model,
        "swinir",
        scale=scale,
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=window_size,
        mlp_ratio=mlp_ratio,
        upsampler=upsampler,
        img_size=img_size,
        **({"split_qkv": True} if split_qkv else {}),  # the official model's config stays as it is
    )


def split_qkv_model(model):
    """A copy of SwinIR `model` with each qkv linear split into q, k and v (`build_swinir(split_qkv=True)`),
    holding the same weights: the q, k and v columns of each qkv kernel and bias."""
    split = model_from_config({**model_config(model), "split_qkv": True})
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense) and layer.name.endswith("_attn_qkv"):
            kernel, bias = layer.get_weights()
            stem = layer.name[: -len("qkv")]
            for part, columns in zip("qkv", np.split(np.arange(kernel.shape[-1]), 3), strict=True):
                split.get_layer(stem + part).set_weights([kernel[:, columns], bias[columns]])
        elif layer.weights:
            split.get_layer(layer.name).set_weights(layer.get_weights())
    return split


register_preset("swinir", build_swinir, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, upsampler="pixelshuffle")
register_preset(
    "swinir-light",
    build_swinir,
    embed_dim=60,
    depths=(6, 6, 6, 6),
    num_heads=(6, 6, 6, 6),
    upsampler="pixelshuffledirect",
)
