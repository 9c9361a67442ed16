"""Official PyTorch SR weights into the Keras models of models_tf: weights in, architecture never rebuilt.

Understood checkpoints: EDSR-PyTorch `.pt` files of EDSR and RDN, BasicSR EDSR, and official or BasicSR SwinIR
(classical 'pixelshuffle' and lightweight 'pixelshuffledirect'). BasicSR wraps the weights as
`{'params_ema': ..., 'params': ...}`; the EMA weights are taken when present, as they are the better ones.

The checkpoint's keys and shapes say which network it holds (`describe_checkpoint`); from that, every PyTorch
module maps to one named Keras layer, and `port_weight` moves each tensor over with the layout change it needs.
Every checkpoint tensor must be used and every model weight set, or nothing is assigned.
"""

import os
import pickle
import re

import numpy as np
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from models_tf.config import model_config, model_from_config
from models_tf.layers import DIV2K_RGB_MEAN, DepthToSpace
from models_tf.registry import build_preset
from models_tf.swinir import UPSAMPLE_FEATURES, ShiftedWindowAttention

WRAPPER_KEYS = ("params_ema", "params")  # BasicSR's wrappers, in order of preference
RECOMPUTED_BUFFERS = ("relative_position_index", "attn_mask")  # SwinIR constants the Keras model computes
SHOWN_NAMES = 8  # longest list of unmatched names an error message spells out


def load_torch_checkpoint(path, param_key=None):
    """Read a PyTorch checkpoint as {key: float32 numpy array}, refusing anything but plain tensors.

    `param_key` picks one entry of a wrapped checkpoint; by default params_ema, then params, then the file as is.
    """
    try:
        import torch
    except ImportError as error:
        raise EdgeSRError("reading PyTorch checkpoints needs torch: pip install torch==2.13.0") from error
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EdgeSRError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise EdgeSRError(
            f"{path}: holds more than plain tensors, so it is not loaded (it could run code); re-save it as "
            f"torch.save(model.state_dict(), path). PyTorch said: {str(error).splitlines()[0]}"
        ) from error
    except Exception as error:  # torch.load raises many types on arbitrary bytes (IndexError on text, ...)
        raise EdgeSRError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {error}") from error
    if not isinstance(checkpoint, dict):
        raise EdgeSRError(f"{path}: holds a {type(checkpoint).__name__}, not a state dict")
    if param_key is not None:
        if param_key not in checkpoint:
            raise EdgeSRError(f"{path}: has no {param_key!r} entry; it has {_names(checkpoint)}")
        checkpoint = checkpoint[param_key]
    else:
        checkpoint = next((checkpoint[key] for key in WRAPPER_KEYS if key in checkpoint), checkpoint)
    return as_state_dict(checkpoint, path)


def as_state_dict(weights, origin="state dict"):
    """{key: float32 numpy array} from a mapping of torch tensors or arrays; drops DataParallel's `module.`."""
    state = {}
    for key, tensor in weights.items():
        if not hasattr(tensor, "shape"):
            raise EdgeSRError(f"{origin}: {key!r} holds a {type(tensor).__name__}, not a tensor")
        value = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        state[key.removeprefix("module.")] = value.astype(np.float32)
    return state


def port_weight(variable, state, key, hook=None):
    """The value for `variable` from `state[key]` after `hook` (a layout change), checked against its shape."""
    value = state[key] if hook is None else hook(state[key])
    if value.shape != tuple(variable.shape):
        raise EdgeSRError(
            f"{key} has shape {state[key].shape}, which does not fit {variable.name} {tuple(variable.shape)}"
        )
    if not np.all(np.isfinite(value)):
        raise EdgeSRError(f"{key} holds NaN or infinite values: the weights file is damaged; get a good copy")
    return value


def conv_kernel(tensor):
    """(out, in, kh, kw) -> (kh, kw, in, out)."""
    return tensor.transpose(2, 3, 1, 0)


def pixel_shuffle_order(channels, factor):
    """Output-channel order for a conv feeding tf.nn.depth_to_space so that it acts like torch's PixelShuffle:
    depth_to_space reads sub-pixel k of channel c at k*C + c, PixelShuffle at c*r^2 + k."""
    return np.array([c * factor**2 + k for k in range(factor**2) for c in range(channels)])


def describe_checkpoint(state):
    """The builder config ({'arch', 'scale', ...}) of the network a state dict holds, read from keys and shapes."""
    return _read_checkpoint(as_state_dict(state))[0]


def load_pytorch_weights(model, source, param_key=None):
    """Set every weight of `model` from a PyTorch checkpoint path or a state dict; raises EdgeSRError, assigning
    nothing, if the checkpoint holds another architecture, scale or size, or has tensors left over."""
    state = _state_from(source, param_key)
    config, layer_names, consumed = _read_checkpoint(state)
    if hasattr(model, "edge_sr_config"):
        _check_config(config, model_config(model))

    values, used = {}, set(consumed)
    for prefix, layer_name in layer_names.items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            raise EdgeSRError(f"the model has no layer {layer_name!r} for checkpoint entry {prefix}") from None
        for variable, key, hook in _layer_weights(layer, prefix):
            if key not in state:
                raise EdgeSRError(f"checkpoint lacks {key} (for {variable.name})")
            values[variable.ref()] = port_weight(variable, state, key, hook)
            used.add(key)

    unused = sorted(key for key in state if key not in used and not key.endswith(RECOMPUTED_BUFFERS))
    if unused:
        raise EdgeSRError(f"checkpoint entries that fit no layer of {model.name}: {_names(unused)}")
    unset = [variable.name for variable in model.weights if variable.ref() not in values]
    if unset:
        raise EdgeSRError(f"model weights the checkpoint does not provide: {_names(unset)}")
    for variable in model.weights:
        variable.assign(values[variable.ref()])
    return model


def model_from_checkpoint(source, preset=None, scale=None, param_key=None):
    """Build the model a PyTorch checkpoint holds and load it. Architecture, scale and sizes come from the
    checkpoint; `preset` (e.g. 'edsr') supplies what weights cannot tell (EDSR's res_scale) and `scale`, if
    given, must agree with the checkpoint."""
    state = _state_from(source, param_key)
    config = describe_checkpoint(state)
    if scale is not None and scale != config["scale"]:
        raise EdgeSRError(f"checkpoint is x{config['scale']} but x{scale} was asked for")
    model = build_preset(preset, scale=config["scale"]) if preset else model_from_config(config)
    return load_pytorch_weights(model, state)


def _state_from(source, param_key):
    if isinstance(source, str | os.PathLike):
        return load_torch_checkpoint(source, param_key)
    return as_state_dict(source)


def _names(names):
    names = list(names)
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" ... ({len(names) - SHOWN_NAMES} more)" if len(names) > SHOWN_NAMES else "")


def _check_config(checkpoint_config, config):
    if checkpoint_config["arch"] != config["arch"]:
        raise EdgeSRError(f"checkpoint holds {checkpoint_config['arch']} but the model is {config['arch']}")
    if checkpoint_config["scale"] != config["scale"]:
        raise EdgeSRError(f"checkpoint is x{checkpoint_config['scale']} but model is x{config['scale']}")
    differing = [key for key in checkpoint_config if key in config and checkpoint_config[key] != config[key]]
    # Weights do not record res_scale or img_size, and show SwinIR's window_size only as the blocks' window,
    # which img_size can narrow (the bias table shapes still check it).
    differing = [key for key in differing if key not in ("res_scale", "img_size", "window_size")]
    if differing:
        raise EdgeSRError(
            "checkpoint does not fit the model: "
            + ", ".join(
                f"{key} {checkpoint_config[key]} in the checkpoint, {config[key]} in the model" for key in differing
            )
        )


def _layer_weights(layer, prefix):
    """(variable, checkpoint key, hook) for each weight of one Keras layer that mirrors PyTorch module `prefix`."""
    if isinstance(layer, keras.layers.Conv2D):
        factor = _shuffle_factor(layer)
        if factor is None:
            return [(layer.kernel, f"{prefix}.weight", conv_kernel), (layer.bias, f"{prefix}.bias", None)]
        order = pixel_shuffle_order(layer.filters // factor**2, factor)
        return [
            (layer.kernel, f"{prefix}.weight", lambda tensor: conv_kernel(tensor)[..., order]),
            (layer.bias, f"{prefix}.bias", lambda tensor: tensor[order]),
        ]
    if isinstance(layer, keras.layers.Dense):
        return [(layer.kernel, f"{prefix}.weight", np.transpose), (layer.bias, f"{prefix}.bias", None)]
    if isinstance(layer, keras.layers.LayerNormalization):
        return [(layer.gamma, f"{prefix}.weight", None), (layer.beta, f"{prefix}.bias", None)]
    if isinstance(layer, ShiftedWindowAttention):
        return [(layer.relative_position_bias_table, f"{prefix}.relative_position_bias_table", None)]
    raise EdgeSRError(f"no PyTorch mapping for layer {layer.name} ({type(layer).__name__})")


def _shuffle_factor(layer):
    """The block size of the DepthToSpace this conv feeds, if any: read from the model graph."""
    for node in layer.outbound_nodes:
        if isinstance(node.outbound_layer, DepthToSpace):
            return node.outbound_layer.block_size
    return None


def _numbered(state, template):
    """Sorted numbers n for which the checkpoint has `template.format(n) + '.weight'`, e.g. 'tail.0.{}'."""
    pattern = re.escape(template).replace(r"\{\}", r"(\d+)") + r"\.weight"
    return sorted({int(match[1]) for key in state if (match := re.fullmatch(pattern, key))})


def _tensor(state, key):
    if key not in state:
        raise EdgeSRError(f"checkpoint lacks {key}")
    return state[key]


def _out_channels(state, key):
    return _tensor(state, key).shape[0]


def _upsampler_scale(state, convs, features):
    """Scale of a chain of conv + PixelShuffle stages, each conv giving features * r^2 channels."""
    if not convs:
        raise EdgeSRError("checkpoint has no upsampler convs")
    scale = 1
    for conv in convs:
        channels = _out_channels(state, f"{conv}.weight")
        factor = round((channels / features) ** 0.5)
        if factor < 2 or factor**2 * features != channels:
            raise EdgeSRError(f"{conv} has {channels} output channels: not a pixel shuffle of {features}")
        scale *= factor
    return scale


def _read_checkpoint(state):
    """(builder config, {PyTorch module prefix: Keras layer name}, keys checked here rather than ported)."""
    if "head.0.weight" in state:
        return _read_edsr(state, EDSR_PYTORCH_NAMES)
    if "conv_first.weight" in state and "body.0.conv1.weight" in state:
        return _read_edsr(state, BASICSR_EDSR_NAMES)
    if "SFENet1.weight" in state:
        return _read_rdn(state)
    if "layers.0.residual_group.blocks.0.attn.qkv.weight" in state:
        return _read_swinir(state)
    raise EdgeSRError(f"not an EDSR, RDN or SwinIR checkpoint of a known layout; its keys: {_names(state)}")


# EDSR module names: first conv, residual block convs 1 and 2, conv after the body, upsampler convs, last conv.
EDSR_PYTORCH_NAMES = ("head.0", "body.{}.body.0", "body.{}.body.2", "body.{}", "tail.0.{}", "tail.1")
BASICSR_EDSR_NAMES = ("conv_first", "body.{}.conv1", "body.{}.conv2", "conv_after_body", "upsample.{}", "conv_last")


def _read_edsr(state, names):
    first, conv1, conv2, after_body, upsample, last = names
    blocks = _numbered(state, conv1)
    num_features = _out_channels(state, f"{first}.weight")
    upsample_convs = [upsample.format(k) for k in _numbered(state, upsample)]
    layers = {first: "head", after_body.format(len(blocks)): "body_conv", last: "tail"}
    for i in blocks:
        layers.update({conv1.format(i): f"body_{i}_conv1", conv2.format(i): f"body_{i}_conv2"})
    layers.update({key: f"upsample_{k}" for k, key in enumerate(upsample_convs)})
    config = {
        "arch": "edsr",
        "scale": _upsampler_scale(state, upsample_convs, num_features),
        "num_blocks": len(blocks),
        "num_features": num_features,
        # Weights do not record res_scale; the published EDSR (32 blocks of 256 features) was trained with 0.1.
        "res_scale": 0.1 if (len(blocks), num_features) == (32, 256) else 1.0,
    }
    return config, layers, _check_mean_shift(state)


def _check_mean_shift(state):
    """EDSR-PyTorch stores its frozen MeanShift convs; the Keras EDSR has them built in, for pixels in [0, 255]."""
    mean = 255 * np.array(DIV2K_RGB_MEAN, np.float32)
    identity = np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)
    expected = {"sub_mean.weight": identity, "sub_mean.bias": -mean, "add_mean.weight": identity, "add_mean.bias": mean}
    for key, value in expected.items():
        if key in state and not (state[key].shape == value.shape and np.allclose(state[key], value, atol=1e-3)):
            raise EdgeSRError(
                f"{key} is not the DIV2K mean shift of [0, 255] pixels: the checkpoint was trained with another "
                "rgb_range, mean or std, which the Keras EDSR does not support"
            )
    return [key for key in expected if key in state]


def _read_rdn(state):
    num_features = _out_channels(state, "SFENet1.weight")
    growth_rate = _out_channels(state, "RDBs.0.convs.0.conv.0.weight")
    blocks = _numbered(state, "RDBs.{}.LFF")
    convs = _numbered(state, "RDBs.0.convs.{}.conv.0")
    *upsample_convs, last = [f"UPNet.{k}" for k in _numbered(state, "UPNet.{}")] or [None]
    layers = {"SFENet1": "sfenet1", "SFENet2": "sfenet2", "GFF.0": "gff_1x1", "GFF.1": "gff_3x3", last: "tail"}
    for i in blocks:
        layers.update({f"RDBs.{i}.convs.{c}.conv.0": f"rdb_{i}_conv_{c}" for c in convs})
        layers[f"RDBs.{i}.LFF"] = f"rdb_{i}_lff"
    layers.update({key: f"upsample_{k}" for k, key in enumerate(upsample_convs)})
    config = {
        "arch": "rdn",
        "scale": _upsampler_scale(state, upsample_convs, growth_rate),
        "num_blocks": len(blocks),
        "num_layers": len(convs),
        "growth_rate": growth_rate,
        "num_features": num_features,
    }
    return config, layers, []


SWIN_BLOCK_PARTS = ("norm1", "attn.qkv", "attn", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")


def _read_swinir(state):
    embed_dim = _out_channels(state, "conv_first.weight")
    groups = _numbered(state, "layers.{}.conv")
    depths = [len(_numbered(state, f"layers.{i}.residual_group.blocks.{{}}.norm1")) for i in groups]
    tables = [_tensor(state, f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table") for i in groups]
    layers = {"conv_first": "conv_first", "patch_embed.norm": "patch_embed_norm", "norm": "norm",
              "conv_after_body": "conv_after_body"}  # fmt: skip
    for i, depth in zip(groups, depths, strict=True):
        layers[f"layers.{i}.conv"] = f"layers_{i}_conv"
        for j in range(depth):
            for part in SWIN_BLOCK_PARTS:
                layers[f"layers.{i}.residual_group.blocks.{j}.{part}"] = (
                    f"layers_{i}_blocks_{j}_{part.replace('.', '_')}"
                )
    if "conv_before_upsample.0.weight" in state:
        upsampler = "pixelshuffle"
        upsample_convs = [f"upsample.{k}" for k in _numbered(state, "upsample.{}")]
        scale = _upsampler_scale(state, upsample_convs, UPSAMPLE_FEATURES)
        layers.update({"conv_before_upsample.0": "conv_before_upsample", "conv_last": "conv_last"})
        layers.update({key: f"upsample_{k}" for k, key in enumerate(upsample_convs)})
    elif "upsample.0.weight" in state:
        upsampler = "pixelshuffledirect"
        scale = _upsampler_scale(state, ["upsample.0"], 3)
        layers["upsample.0"] = "upsample_0"
    else:
        raise EdgeSRError(
            "only classical ('pixelshuffle') and lightweight ('pixelshuffledirect') SwinIR SR are supported; this "
            "checkpoint has neither upsampler (denoising, JPEG or real-world SwinIR?)"
        )
    config = {
        "arch": "swinir",
        "scale": scale,
        "embed_dim": embed_dim,
        "depths": depths,
        "num_heads": [table.shape[1] for table in tables],
        "window_size": (round(tables[0].shape[0] ** 0.5) + 1) // 2,  # the table has (2 * ws - 1)^2 rows
        "mlp_ratio": _out_channels(state, "layers.0.residual_group.blocks.0.mlp.fc1.weight") / embed_dim,
        "upsampler": upsampler,
    }
    return config, layers, []
