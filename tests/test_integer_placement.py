"""`--placement integer`: train and calibrate the graph the int8 file computes, and export its ranges as they are."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter
from conftest import run_module

from edge_sr.methods.qat import mismatch_squares, range_variables
from edge_sr.models.sources import load_run_model
from edge_sr.quant import quantize_model, quantizer_sites
from edge_sr.quant.layers import CompletionQuantizer, OutputQuantizer
from edge_sr.quant.quantizer import grid_step, observe_quantizers
from edge_sr.quant.ranges import initialize_ranges
from edge_sr.runtime.metadata import read_metadata
from models_tf import build_preset


def activation_grids(path):
    """{(scale, zero point)} of the int8 tensors that the ops of a .tflite file compute (not its constants)."""
    interpreter = Interpreter(model_path=str(path))
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    computed = {i for op in interpreter._get_ops_details() for i in op["outputs"]}
    return {
        (round(float(details[i]["quantization"][0]), 9), int(details[i]["quantization"][1]))
        for i in computed
        if details[i]["dtype"] == np.int8
    }


def run_grids(model):
    """{(scale, zero point)} of the model's 8-bit activation ranges as the int8 file stores them."""
    grids = set()
    for site in quantizer_sites(model):
        if site.is_weight or site.quantizer.bits != 8:
            continue
        lower, upper = (float(bound) for bound in site.quantizer.range(None, site.variables))  # as it quantizes
        step = float(grid_step(lower, upper, 256))
        grids.add((round(step, 9), int(np.round(-lower / step)) - 128))
    return grids


def near(grid, grids):
    return any(abs(grid[0] - s) <= 1e-6 * s and grid[1] == z for s, z in grids)


@pytest.fixture
def tiny_swinir(tmp_path):
    from models_tf import save_model

    keras.utils.set_random_seed(0)
    path = tmp_path / "swinir.keras"
    save_model(build_preset("swinir-light", scale=2, embed_dim=12, depths=(2,), num_heads=(2,), window_size=4), path)
    return path


@pytest.mark.parametrize(
    ("arch", "kind", "bits"), [("edsr", "train", 4), ("edsr", "calibrate", 8), ("swinir", "calibrate", 8),
                               ("swinir", "train", 4)]
)  # fmt: skip
def test_integer_run_exports_exactly_its_ranges_without_calibration_data(
    tmp_path, tiny_model, tiny_swinir, train_folder, val_folder, arch, kind, bits
):
    model = tiny_model if arch == "edsr" else tiny_swinir
    data = tmp_path / "data"
    shutil.copytree(train_folder, data)
    common = ["--run-dir", tmp_path / "run", "--model", model, "--scale", 2, "--val", val_folder, "--bits", bits,
              "--placement", "integer"]  # fmt: skip
    if kind == "train":
        args = ["--train", data, "--batch-size", 2, "--patch", 32, "--iterations", 2, "--method", "odm"]
    else:
        args = ["--calibration", data, "--method", "2dquant", "--iterations", 2, "--batch-size", 2,
                "--init-batch-size", 2, "--patch", 16]  # fmt: skip
    result = run_module(f"edge_sr.{kind}", *common, *args)
    assert result.returncode == 0, result.stderr

    shutil.rmtree(data)  # the export needs no calibration images: the run trained every range the file has
    path = tmp_path / "model.tflite"
    tile = ["--tile", 16] if arch == "swinir" else []
    result = run_module("edge_sr.convert", tmp_path / "run", "--int8", "--out", path, *tile)
    assert result.returncode == 0, result.stderr  # the parity gate passed
    assert "parity on val" in result.stdout and read_metadata(path)["bits"]["weights"] == bits

    trained = load_run_model(tmp_path / "run")
    completion = [s for s in quantizer_sites(trained) if isinstance(s.quantizer, CompletionQuantizer)]
    assert completion and any(s.is_weight for s in completion) and any(not s.is_weight for s in completion)
    in_file, in_run = activation_grids(path), run_grids(trained)
    # Every 8-bit grid of the run is in the file, and every grid of the file is one of the run's (the pixel grid,
    # fixed, among them) or a k-bit one inside int8.
    assert all(near(grid, in_file) for grid in in_run), sorted(in_run - in_file)[:5]
    k_bit = [g for g in in_file if not near(g, in_run)]
    assert len(k_bit) <= 2 * len(in_file) // 3 if bits == 4 else not k_bit, k_bit


def small_rdn():
    keras.utils.set_random_seed(0)
    fp = build_preset("isr-rdn", scale=2, num_blocks=3, num_layers=2, growth_rate=8, num_features=8)
    return fp, quantize_model(fp, 4, placement="integer")


def test_integer_model_trains_one_range_per_concatenation_group_and_leaves_the_pixel_grid(photo):
    fp, model = small_rdn()
    variables = range_variables(model)
    assert len({id(v) for v in variables}) == len(variables)
    names = {v.name for v in variables}
    assert not any("output_lower" in n and model.layers[-1].name in n for n in names)  # the pixel grid is fixed
    fusion = next(layer for layer in model.layers if isinstance(layer, OutputQuantizer) and layer.input_quantizer_vars)
    trainable = {id(v) for v in variables}
    assert all(id(v["lower"]) in trainable for v in fusion.input_quantizer_vars.values())

    # A gradient reaches the 8-bit ranges a concatenation's readers requantise onto, through XNNPACK's
    # requantisation (its forward pass is the integer kernel's).
    batch = tf.constant(photo[None, 100:132, 100:132].astype(np.float32))
    initialize_ranges(model, [batch], "dobi")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(model(batch, training=True) - fp(batch)))
    grads = tape.gradient(loss, [v["lower"] for v in fusion.input_quantizer_vars.values()])
    assert all(g is not None and float(tf.abs(g)) > 0 for g in grads)


def test_mismatch_loss_covers_only_the_papers_k_bit_sites(photo):
    _, model = small_rdn()
    batch = tf.constant(photo[None, 100:132, 100:132].astype(np.float32))
    paper = [s for s in quantizer_sites(model) if not s.is_weight and s.quantizer.bits == 4]
    collected = []
    with observe_quantizers(mismatch_squares(collected)):
        model(batch, training=True)
    assert paper and len(collected) == len(paper)
    # Each term is the k-bit requantisation's error of the 8-bit tensor it moves (the input quantizer's own
    # call, on values already on its grid, would add nothing).
    assert all(float(term) > 0 for term in collected)
