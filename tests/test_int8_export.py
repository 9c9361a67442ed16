"""Full-integer export: the deploy completion, the integer file LiteRT runs, and its checks."""

import json
import re

import numpy as np
import pytest
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter
from conftest import TINY, run_module

from edge_sr.export.int8 import deploy_model
from edge_sr.export.parity import check_parity
from edge_sr.quant import quantize_model, quantizer_sites
from edge_sr.quant.deploy import OutputQuantizer
from edge_sr.quant.quantizer import grid_step, xnnpack_requantize
from edge_sr.quant.ranges import initialize_ranges
from edge_sr.runtime.litert import delegation_report
from edge_sr.runtime.metadata import read_metadata
from models_tf import build_preset


def small_rdn():
    keras.utils.set_random_seed(0)
    return build_preset("isr-rdn", scale=2, num_blocks=3, num_layers=2, growth_rate=8, num_features=8)


def test_deploy_completion_quantizes_every_weight_and_tensor(photo):
    model = quantize_model(small_rdn(), 4)
    batch = photo[None, 100:132, 100:132].astype(np.float32)
    initialize_ranges(model, [batch], "minmax")
    learned = {(s.layer, s.site): s.variables["upper"].numpy().copy() for s in quantizer_sites(model)}
    deployed, added = deploy_model(model, [batch])
    sites = quantizer_sites(deployed)
    for (layer, site), upper in learned.items():  # the k-bit quantizers keep their bits and ranges
        (match,) = [s for s in sites if (s.layer, s.site) == (layer, site)]
        assert match.quantizer.bits == 4 and np.array_equal(match.variables["upper"].numpy(), upper)
    kernels = {s.layer for s in sites if s.is_weight}
    convs = {layer.name for layer in model.layers if "kernel" in [w.name.split("/")[-1][:-2] for w in layer.weights]}
    assert convs <= kernels  # no float weights left
    # Tensors a concatenation joins share its range (one pair of variables, trained as one); the global fusion
    # reads requantised block outputs, moved onto its range.
    dense = deployed.get_layer("RDB_Concat_2_2")
    for name in ("RDB_Concat_2_1", "F_2_2_Relu", "LRL_1"):
        assert deployed.get_layer(name).output_quantizer_vars["lower"] is dense.output_quantizer_vars["lower"]
    fusion = deployed.get_layer("LRLs_Concat")
    assert sorted(fusion.input_quantizers) == [0, 1]  # LRL_1 and LRL_2 belong to the next dense blocks
    assert all(fusion.input_quantizer_vars[i]["upper"] is fusion.output_quantizer_vars["upper"] for i in (0, 1))
    outputs = [layer for layer in deployed.layers if isinstance(layer, OutputQuantizer)]
    kernels = sum(layer.quantize_kernel for layer in outputs)
    ranges = {id(layer.output_quantizer_vars["lower"]) for layer in outputs if layer.quantize_output}
    assert added == kernels + len(ranges) - 2  # each one set, but the two fixed pixel grids
    output = deployed.get_layer("to_pixel_range").output_quantizer_vars
    assert (output["lower"].numpy(), output["upper"].numpy()) == (0.0, 255.0)
    image = deployed.get_layer("SR").output_quantizer_vars  # only ×255 follows: the [0, 1] image, step 1/255
    assert (image["lower"].numpy(), image["upper"].numpy()) == (0.0, 1.0)


def test_gradients_cross_the_integer_arithmetic_of_the_deploy_reference(photo):
    """The reference computes XNNPACK's requantisation, int32-grid biases and integer mean exactly, and passes
    gradients through them as their float versions would (they were cut: 65 of this model's 133 variables, every
    dense-block conv among them, got none). Training the graph the file computes needs them all."""
    import tensorflow as tf

    model = quantize_model(small_rdn(), 4)
    batch = photo[None, 100:132, 100:132].astype(np.float32)
    initialize_ranges(model, [batch], "minmax")
    deployed, _ = deploy_model(model, [batch])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(deployed(batch) - tf.image.resize(batch, [64, 64])))
    gradients = dict(zip([v.name for v in deployed.trainable_variables],
                         tape.gradient(loss, deployed.trainable_variables), strict=True))  # fmt: skip
    assert [name for name, g in gradients.items() if g is None] == []
    reached = {name for name, g in gradients.items() if np.any(g.numpy())}
    fusion = deployed.get_layer("LRLs_Concat").input_quantizer_vars
    requantised = [fusion[i][bound].name for i in (0, 1) for bound in ("lower", "upper")]
    assert set(requantised) <= reached  # the 8-bit range of the requantised copies
    assert {"LFF_1/input_lower:0", "F_1_1/input_upper:0"} <= reached  # k-bit inputs read through a requantisation
    kernels = [name for name in gradients if name.endswith("/kernel:0")]
    assert kernels and set(kernels) <= reached  # every conv upstream of one


def _run_int8_function(forward, spec, codes, path, variables=None):
    """`forward` (float in, fake quants inside) converted to an int8-in/int8-out TFLite file at `path` and run by
    LiteRT on the int8 `codes`; returns (output codes, input (scale, zero point), output (scale, zero point))."""
    import tensorflow as tf

    from edge_sr.export.tflite import run_converter

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(forward).get_concrete_function(spec)], tf.Module() if variables is None else variables
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(run_converter(converter))
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (model_input,), (model_output,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(model_input["index"], codes.astype(np.int8))
    interpreter.invoke()
    output = interpreter.get_tensor(model_output["index"]).astype(np.float32)
    return output, model_input["quantization"], model_output["quantization"]


@pytest.mark.parametrize(("target", "levels"), [((-0.93, 1.41), 256), ((-7.7, 9.1), 16), ((0.0, 2.2), 8)])
def test_requantisation_is_what_xnnpack_computes(tmp_path, target, levels):
    """Every int8 value of one grid, moved onto another (8-bit, 4-bit, 3-bit) by a real LiteRT file through
    XNNPACK, lands where `xnnpack_requantize` puts it: its 8-bit multiplier, not the exact ratio, at 4 bits."""
    import tensorflow as tf

    from edge_sr.quant.quantizer import integer_grid

    source = (-1.3, 1.1)
    source_lower, source_step = integer_grid(*source, 256)
    target_lower, target_step = integer_grid(*target, levels)
    top = float(target_lower + (levels - 1) * target_step)

    def eight_bit(x, lower, step):
        return tf.quantization.fake_quant_with_min_max_vars(x, float(lower), float(lower + 255 * step))

    def forward(x):  # as the integer export writes a requantisation: clamp to the k-bit top, 8-bit fake quant
        return eight_bit(tf.minimum(eight_bit(x, source_lower, source_step), top), target_lower, target_step)

    codes = np.arange(-128, 128)
    spec = tf.TensorSpec([1, 256], tf.float32)
    output, (in_scale, in_zero_point), (scale, zero_point) = _run_int8_function(
        forward, spec, codes[None], tmp_path / "requantize.tflite"
    )
    exported = (output[0] - zero_point) * scale

    values = (codes.astype(np.float32) - in_zero_point) * in_scale
    simulated = xnnpack_requantize(values, grid_step(*source, 256), target, levels).numpy()
    np.testing.assert_allclose(exported, simulated, atol=1e-3 * float(target_step))
    # At 4 bits the float requantisation (the plain fake quant) differs on a few values: the model is needed.
    if levels == 16:
        from edge_sr.quant.quantizer import fake_quant

        assert np.any(np.abs(fake_quant(values, *target, levels).numpy() - exported) > target_step / 2)


def conv_biases(path):
    """{conv tensor name: the bias its CONV_2D adds, dequantized} of a .tflite file."""
    interpreter = Interpreter(model_path=str(path))
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] == "CONV_2D" and len(op["inputs"]) > 2 and op["inputs"][2] >= 0:
            bias = details[op["inputs"][2]]
            values = interpreter.get_tensor(bias["index"]) * bias["quantization_parameters"]["scales"]
            found[details[op["outputs"][0]]["name"]] = values
    return found


def int8_filters(path):
    """{tensor name: (int8 values, scales)} of the convolution filters in a .tflite file."""
    interpreter = Interpreter(model_path=str(path))
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    filters = [details[op["inputs"][1]] for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    return {t["name"]: (interpreter.get_tensor(t["index"]), t["quantization_parameters"]["scales"]) for t in filters}


@pytest.mark.parametrize(("bits", "grid"), [(2, "mid-rise"), (3, "mid-rise"), (4, "mid-rise"), (3, "narrow")])
def test_weights_on_either_grid_export_exactly_and_keep_parity(tmp_path, photo, val_folder, bits, grid):
    """The mid-rise grid's 2^b levels ±(i + ½)·s are stored as odd int8 codes within ±(2^b − 1) with scale s/2;
    the narrow grid's as codes within ±(2^(b−1) − 1) with scale s. Either file matches its reference."""
    from edge_sr.export.tflite import int8_tflite
    from edge_sr.runtime.metadata import build_metadata, write_tflite

    keras.utils.set_random_seed(0)
    model = quantize_model(build_preset("edsr-baseline", scale=2, **TINY), bits, weight_grid=grid)
    batch = photo[None, 100:132, 100:132].astype(np.float32)
    initialize_ranges(model, [batch], "dobi")
    deployed, _ = deploy_model(model, [batch])
    path = tmp_path / "model.tflite"
    metadata = build_metadata(model.edge_sr_config, "int8", {"weights": bits, "activations": bits}, "uint8")
    write_tflite(path, int8_tflite(deployed), metadata)

    weight_sites = {site.layer: site for site in quantizer_sites(model) if site.is_weight}
    filters = {
        layer: values_scales
        for name, values_scales in int8_filters(path).items()
        for layer in weight_sites
        if re.search(rf"/{layer}/", name)
    }
    assert sorted(filters) == sorted(weight_sites) and len(filters) == 2 * TINY["num_blocks"]
    for layer, (codes, scales) in filters.items():
        site = weight_sites[layer]
        step = float(site.quantizer.int8_step(site.weight, site.variables))
        np.testing.assert_allclose(scales, step, rtol=1e-6)
        simulated = site.quantizer(site.weight, False, site.variables).numpy()
        stored = np.transpose(codes, (1, 2, 3, 0)) * step  # TFLite keeps filters output channel first
        np.testing.assert_allclose(stored, simulated, rtol=1e-5, atol=1e-3 * step)  # the values it simulates
        if grid == "mid-rise":
            assert np.all(codes % 2 == 1) and np.abs(codes).max() == 2**bits - 1
        else:
            assert np.abs(codes).max() == 2 ** (bits - 1) - 1
    parity = check_parity(deployed, path, val_folder, 2)
    assert parity["ok"] and abs(parity["delta_psnr"]) <= 0.02, parity
    assert parity["within_1_lsb"] >= 0.99, parity


def calibrate(run_dir, model, folder, val, bits, *extra):
    result = run_module(
        "edge_sr.calibrate", "--run-dir", run_dir, "--model", model, "--scale", 2, "--calibration", folder,
        "--val", val, "--bits", bits, "--method", "dobi", "--init-batch-size", 4, "--patch", 16, *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def int8_weights(path):
    """{tensor name: int8 values} of the convolution filters in a .tflite file."""
    interpreter = Interpreter(model_path=str(path))
    ops = interpreter._get_ops_details()
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    filters = [details[op["inputs"][1]] for op in ops if op["op_name"] == "CONV_2D"]
    return {t["name"]: interpreter.get_tensor(t["index"]) for t in filters}


@pytest.mark.parametrize("bits", [8, 4])
def test_int8_file_keeps_the_learned_ranges_and_matches_its_reference(
    tmp_path, tiny_model, train_folder, val_folder, bits
):
    calibrate(tmp_path / "run", tiny_model, train_folder, val_folder, bits)
    path = tmp_path / "model.tflite"
    result = run_module("edge_sr.convert", tmp_path / "run", "--int8", "--out", path)
    assert result.returncode == 0, result.stderr
    assert "XNNPACK runs:" in result.stdout and "parity on val" in result.stdout
    metadata = read_metadata(path)
    assert metadata["precision"] == "int8" and metadata["bits"] == {"weights": bits, "activations": bits}
    assert metadata["io"] == "uint8" and metadata["method"] == "dobi"

    weights = int8_weights(path)
    body = [values for name, values in weights.items() if re.search(r"body_\d+_conv[12]", name)]
    assert len(body) == 2 * TINY["num_blocks"]
    # k-bit grid inside int8: at 4 bits the default mid-rise one (odd codes, ±15), at 8 the narrow one (±127)
    assert all(np.abs(values).max() <= (15 if bits == 4 else 127) for values in body)
    assert all(np.all(values % 2 == 1) for values in body) == (bits == 4)
    others = [values for name, values in weights.items() if not re.search(r"body_\d+_conv[12]", name)]
    assert len(others) == 4 and all(np.abs(values).max() == 127 for values in others)  # head, body, upsampler, tail

    report = delegation_report(path)
    assert report["delegated"]["CONV_2D"] == len(weights) == 2 * TINY["num_blocks"] + 4  # every conv in XNNPACK
    # The file scores what its Keras fake-quant reference scores.
    from edge_sr.export.int8 import deploy_calibration_batches
    from edge_sr.export.int8 import deploy_model as complete
    from edge_sr.models.rundir import read_run
    from edge_sr.models.sources import load_run_model

    reference, _ = complete(load_run_model(tmp_path / "run"), deploy_calibration_batches(read_run(tmp_path / "run"), 2))
    parity = check_parity(reference, path, val_folder, 2)
    assert abs(parity["delta_psnr"]) <= 0.02 and parity["ok"]
    # It computes what the file computes: the integer kernels' biases, requantisations, single roundings.
    assert parity["within_1_lsb"] >= 0.99
    biases = conv_biases(path)
    for layer in reference.layers:
        if isinstance(layer, OutputQuantizer) and getattr(layer._conv, "use_bias", False):
            (file_bias,) = [b for name, b in biases.items() if re.search(rf"/{layer.name}/", name)]
            assert np.allclose(layer._integer_bias(layer._conv.bias), file_bias, rtol=1e-5, atol=1e-7)
    relu = reference.get_layer("body_0_relu")  # only a k-bit conv reads it: made on that grid, rounded once
    assert not isinstance(relu, OutputQuantizer) and isinstance(reference.get_layer("body_0_add"), OutputQuantizer)

    scored = run_module("edge_sr.evaluate", "--model", path, "--dataset", val_folder, "--scale", 2,
                        "--json", tmp_path / "eval.json")  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert json.loads((tmp_path / "eval.json").read_text())["results"][0]["psnr"] == pytest.approx(
        parity["psnr_tflite"], abs=1e-6
    )


def test_w8a8_file_of_idealo_rdn_runs_every_op_in_xnnpack(tmp_path, photo, val_folder, monkeypatch):
    import edge_sr.export.tflite
    from edge_sr.export.tflite import int8_tflite
    from edge_sr.runtime.metadata import build_metadata, write_tflite

    keras.utils.set_random_seed(0)  # 6 blocks: a 6-input global concatenation of requantised block outputs
    fp = build_preset("isr-rdn", scale=2, num_blocks=6, num_layers=2, growth_rate=8, num_features=8)
    model = quantize_model(fp, 8)
    batch = photo[None, 100:164, 100:164].astype(np.float32)
    initialize_ranges(model, [batch], "minmax")
    deployed, _ = deploy_model(model, [batch])
    converted = []  # what the converter wrote, before the no-op clamps come out
    clean = edge_sr.export.tflite.without_noop_minimums
    monkeypatch.setattr(edge_sr.export.tflite, "without_noop_minimums", lambda raw: clean(converted.append(raw) or raw))
    metadata = build_metadata(fp.edge_sr_config, "int8", {"weights": 8, "activations": 8}, "uint8")
    write_tflite(tmp_path / "rdn.tflite", int8_tflite(deployed), metadata)
    report = delegation_report(tmp_path / "rdn.tflite")
    assert report["builtin"] == {"QUANTIZE": 2}  # only uint8 → int8 in and int8 → uint8 out
    assert check_parity(deployed, tmp_path / "rdn.tflite", val_folder, 2)["ok"]

    # One clamp per requantisation (k-bit conv inputs, global fusion inputs) was converted; none is left.
    (tmp_path / "raw.tflite").write_bytes(converted[0])
    raw = delegation_report(tmp_path / "raw.tflite")
    requantised = [s for s in quantizer_sites(deployed) if not s.is_weight and s.site != "output"]
    assert raw["builtin"].pop("MINIMUM") == len(requantised) == 6 * 3 + 5
    assert raw == report


@pytest.fixture
def tiny_swinir(tmp_path):
    """A random-weight SwinIR-light ×2 (one group of a plain and a shifted block, 4×4 windows) saved as .keras:
    no official checkpoint is reachable here."""
    from models_tf import save_model

    keras.utils.set_random_seed(0)
    path = tmp_path / "swinir.keras"
    save_model(build_preset("swinir-light", scale=2, embed_dim=12, depths=(2,), num_heads=(2,), window_size=4), path)
    return path


@pytest.mark.parametrize(("kind", "bits"), [("calibrate", 8), ("train", 4)])
def test_swinir_exports_at_a_fixed_tile_with_integer_linears_and_matches_its_reference(
    tmp_path, tiny_swinir, train_folder, val_folder, kind, bits
):
    run = tmp_path / "run"
    if kind == "calibrate":
        calibrate(run, tiny_swinir, train_folder, val_folder, bits)
    else:
        trained = run_module(
            "edge_sr.train", "--run-dir", run, "--model", tiny_swinir, "--scale", 2, "--train", train_folder,
            "--val", val_folder, "--batch-size", 2, "--patch", 32, "--iterations", 2, "--method", "odm", "--bits", bits,
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr
    path = tmp_path / "swinir.tflite"
    result = run_module("edge_sr.convert", run, "--int8", "--tile", 16, "--out", path)
    assert result.returncode == 0, result.stderr  # the parity gate passed, tile by tile
    assert "parity on val" in result.stdout and "16×16 tiles" in result.stdout
    assert read_metadata(path)["tile"] == 16 and read_metadata(path)["bits"]["weights"] == bits

    interpreter = Interpreter(model_path=str(path))
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    kinds = {}
    for op in ops:
        kinds.setdefault(op["op_name"], set()).add(details[op["outputs"][0]]["dtype"].__name__)
    # Every weighted op and residual add computes in int8; float stays where 2DQuant keeps it (LayerNorm,
    # softmax, the attention scores) and XNNPACK runs it only in float.
    assert kinds["FULLY_CONNECTED"] == kinds["CONV_2D"] == {"int8"} and "int8" in kinds["ADD"]
    assert kinds["SOFTMAX"] == kinds["RSQRT"] == {"float32"} and kinds["GELU"] == {"int8"}
    linears = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"]
    assert len(linears) == 2 * 6  # q, k, v (2DQuant's split), proj, fc1, fc2 in both blocks
    report = delegation_report(path)
    assert report["delegated"]["FULLY_CONNECTED"] == 12 and "MIRROR_PAD" not in report["builtin"]
    # At 8 bits v's zero point is 0 (its range widened at export), so XNNPACK runs softmax · v in int8 too.
    if bits == 8:
        matmuls = [op for op in ops if op["op_name"] == "BATCH_MATMUL"]
        assert {details[op["inputs"][1]]["quantization"][1] for op in matmuls} == {0}
        assert report["delegated"]["BATCH_MATMUL"] == len(matmuls) == 2 * 2 and "BATCH_MATMUL" not in report["builtin"]


def test_integer_layer_norm_mean_is_what_xnnpack_computes(tmp_path):
    """A LayerNorm on an int8 tensor: the converter computes its mean with the int8 MEAN kernel, which rounds
    the mean of the codes half to even; `integer_layer_norm` does the same, so the normalised values agree."""
    import tensorflow as tf

    from edge_sr.quant.layers import integer_layer_norm

    rng = np.random.default_rng(0)
    norm = keras.layers.LayerNormalization(epsilon=1e-5)
    norm.build((None, 2048, 12))
    norm.gamma.assign(rng.normal(1.0, 0.3, 12).astype(np.float32))
    norm.beta.assign(rng.normal(0.0, 0.3, 12).astype(np.float32))
    source, target = (-1.3, 1.2), (-3.0, 2.5)  # an odd zero point: rounding half to even on codes, not steps

    def forward(x):
        x = tf.quantization.fake_quant_with_min_max_vars(x, *source)
        return tf.quantization.fake_quant_with_min_max_vars(norm(x), *target)

    codes = rng.integers(-128, 128, (1, 2048, 12))
    codes[0, :1024] = np.clip(rng.integers(-3, 4, (1024, 12)) + rng.integers(-100, 100, (1024, 1)), -128, 127)
    spec = tf.TensorSpec([1, 2048, 12], tf.float32)
    exported, (in_scale, in_zero_point), (out_scale, out_zero_point) = _run_int8_function(
        forward, spec, codes, tmp_path / "norm.tflite", variables=norm
    )

    x = ((codes - in_zero_point) * in_scale).astype(np.float32)
    simulated = integer_layer_norm(norm, x, source).numpy()
    simulated = np.clip(np.floor(simulated / out_scale + 0.5) + out_zero_point, -128, 127)
    assert np.mean(simulated == exported) > 0.9999
    # A float mean (what the LayerNorm layer computes) misses on a third of the values.
    plain = np.clip(np.floor(norm(x).numpy() / out_scale + 0.5) + out_zero_point, -128, 127)
    assert np.mean(plain == exported) < 0.8


def test_error_budget_finds_the_tensor_whose_range_is_too_narrow(photo):
    from edge_sr.quant.budget import activation_sites, tensor_errors

    model = quantize_model(small_rdn(), 8)
    batch = photo[None, 100:132, 100:132].astype(np.float32)
    initialize_ranges(model, [batch], "minmax")
    deployed, _ = deploy_model(model, [batch])
    narrowed = deployed.get_layer("GFF_2").output_quantizer_vars  # clips nearly all of the global fusion
    narrowed["lower"].assign(-1e-3)
    narrowed["upper"].assign(1e-3)
    patches = photo[None, 200:232, 200:232].astype(np.float32)
    weights_only, everything, errors = tensor_errors(deployed, patches, show_progress=False)
    assert len(errors) == len(activation_sites(deployed)) > 20  # every tensor, k-bit inputs and 8-bit completion
    assert [e.added_mse for e in errors] == sorted((e.added_mse for e in errors), reverse=True)
    assert (errors[0].site.layer, errors[0].site.site) == ("GFF_2", "output")
    typical = np.median([e.added_mse for e in errors])
    assert errors[0].added_mse > 100 * max(typical, 1e-6) and everything >= errors[0].mse > weights_only > 0


def test_budget_benchmark_scores_the_run_its_completion_and_its_worst_tensor(
    tmp_path, tiny_model, train_folder, val_folder
):
    calibrate(tmp_path / "run", tiny_model, train_folder, val_folder, 8)
    result = run_module("edge_sr.benchmark", "budget", tmp_path / "run", "--eval", val_folder, "--top", "1",
                        "--patches", "2", "--patch", "16", "--json", tmp_path / "budget.json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    budget = json.loads((tmp_path / "budget.json").read_text())["results"]
    labels = [row["model"].strip() for row in budget["models"]]
    worst = budget["tensors"][0]
    assert labels == ["FP", "the run (its k-bit quantizers)", "the int8 file's reference", "its weights alone",
                      f"its weights + {worst['layer']} {worst['site']} alone", "all but the top 1 tensors"]  # fmt: skip
    assert all(set(row["psnr"]) == {val_folder.name} for row in budget["models"])
    assert budget["all_mse"] > budget["weights_only_mse"] and worst["added_mse"] >= budget["tensors"][-1]["added_mse"]
    assert "weights alone" in result.stdout and worst["layer"] in result.stdout
