"""Name -> builder table for the standard SR variants, so every CLI can say `--model edsr-baseline`.

Pixel convention for the whole project: every model takes float32 NHWC RGB in [0, 255] and returns the same
range (unclipped). Models whose official weights expect [0, 1] rescale inside, at their edges.
"""

from edge_sr.errors import EdgeSRError

_PRESETS = {}


def register_preset(name, builder, **defaults):
    """Make `build_preset(name, scale=...)` call `builder(**defaults, **overrides)`."""
    if name in _PRESETS:
        raise ValueError(f"preset {name!r} registered twice")
    _PRESETS[name] = (builder, defaults)


def preset_names():
    return sorted(_PRESETS)


def preset_defaults(name):
    """The builder arguments a preset fixes (its architecture), without the scale."""
    if name not in _PRESETS:
        raise EdgeSRError(f"unknown model preset {name!r}; choose one of: {', '.join(preset_names())}")
    return dict(_PRESETS[name][1])


def build_preset(name, **overrides):
    """Build a registered variant; keyword overrides (scale, ...) replace the preset's defaults."""
    if name not in _PRESETS:
        raise EdgeSRError(f"unknown model preset {name!r}; choose one of: {', '.join(preset_names())}")
    builder, defaults = _PRESETS[name]
    return builder(**{**defaults, **overrides})
