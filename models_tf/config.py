"""A model's builder arguments as its portable description: rebuild from them, and keep them in .keras files.

Models stay plain functional tf_keras models (tfmot and the TFLite converter need that), so the arguments ride
along as `model.edge_sr_config = {"arch": ..., **builder_arguments}`, where `arch` is the preset registered with
that builder; `save_model` stores them inside the .keras archive, where `keras.models.load_model` ignores them
and `load_model` puts them back.
"""

import json
import os
import zipfile

import tf_keras as keras

from edge_sr.atomic import atomic_write
from edge_sr.errors import EdgeSRError
from models_tf.registry import build_preset

CONFIG_ENTRY = "edge_sr_config.json"


def attach_config(model, arch, **arguments):
    """Record the builder arguments on the model; builders call this last."""
    model.edge_sr_config = {"arch": arch, **arguments}
    return model


def model_config(model):
    config = getattr(model, "edge_sr_config", None)
    if config is None:
        raise EdgeSRError(
            f"model {model.name!r} carries no edge_sr config: build it with models_tf or load it with "
            "models_tf.load_model"
        )
    return json.loads(json.dumps(dict(config)))  # a deep copy in plain types: Keras wraps what it tracks


def model_from_config(config):
    """Rebuild a model; `arch` names the preset whose builder made it, and the other entries override all its
    defaults."""
    arguments = dict(config)
    return build_preset(arguments.pop("arch", None), **arguments)


def save_model(model, path):
    """Write `model` as a .keras file that also holds its builder config."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise EdgeSRError(f"{path}: the model file name must end in .keras")
    config = model_config(model)

    def write(temp_path):
        model.save(temp_path)
        with zipfile.ZipFile(temp_path, "a") as archive:
            archive.writestr(CONFIG_ENTRY, json.dumps(config))

    atomic_write(path, write)


def load_model(path):
    """Load a .keras file; its builder config, if saved by `save_model`, comes back as `model.edge_sr_config`.

    Only the zip format, in Keras's safe mode, is read: anything else would go to Keras's legacy HDF5 loader,
    which runs the Python code a Lambda layer carries.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EdgeSRError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise EdgeSRError(f"{path} is not a .keras (zip) file; save the model with models_tf.save_model or tf_keras")
    try:  # zipfile raises NotImplementedError for a damaged version or compression field
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
            config = json.loads(archive.read(CONFIG_ENTRY)) if CONFIG_ENTRY in archive.namelist() else None
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, NotImplementedError) as error:
        raise EdgeSRError(f"{path} is a damaged .keras file ({error}); save the model again") from None
    version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
    if not version.startswith("2."):
        raise EdgeSRError(
            f"{path} was saved by Keras {version or '(unknown version)'}; edge_sr reads tf_keras (Keras 2) .keras "
            "files: save the model with tf_keras"
        )
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types on a damaged or foreign archive (KeyError, TypeError, ...)
        raise EdgeSRError(f"{path}: Keras cannot load it ({str(error)[:200]}); save the model again") from None
    if config is not None:
        model.edge_sr_config = config
    return model
