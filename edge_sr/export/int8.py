"""A quantized `train` or `calibrate` run as a full-integer .tflite file: its deploy completion (see
edge_sr.quant.deploy) converted with every learned range kept."""

from edge_sr.errors import EdgeSRError
from edge_sr.export.tflite import check_tile, int8_tflite
from edge_sr.quant.deploy import integer_model
from edge_sr.runtime.metadata import build_metadata, write_tflite

INTEGER_ARCHS = ("edsr", "rdn", "isr-rdn", "swinir")


def deploy_calibration_batches(run, scale, batch_size=16, lr_patch=64, stream=2):
    """LR patches from the images a run trained or calibrated on: what sets the deploy completion's 8-bit ranges
    (another `stream` draws other patches from the same images)."""
    from edge_sr.data import PatchSampler

    folders = run["data"].get("calibration") or run["data"].get("train")
    sampler = PatchSampler(folders, scale, lr_patch * scale, batch_size, progress=False)
    return [sampler.batch(0, stream=stream)[0]]


def deployed_run(run_dir, calibration=None):
    """(run.json's content, the run's model, its deploy completion): the Keras fake-quant model that
    `convert --int8` exports (see edge_sr.quant.deploy): a `paper`-placement run's model completed, its new 8-bit
    ranges DOBI's over `calibration` (LR batches; default: patches from the run's own training or calibration
    images); an `integer`-placement run's model as it is, every range as learned."""
    from edge_sr.models.rundir import read_run
    from edge_sr.models.sources import load_run_model
    from models_tf import model_config

    run = read_run(run_dir)
    if not run.get("quantization"):
        raise EdgeSRError(f"{run_dir} trained an FP model: an integer model needs a quantized run (train or calibrate)")
    model = load_run_model(run_dir)
    config = model_config(model)
    arch = config.get("arch")
    if arch not in INTEGER_ARCHS:
        raise EdgeSRError(
            f"--int8 does not support {arch} yet (supported: {', '.join(INTEGER_ARCHS)}); "
            "export it with --fp32, --fp16 or --dynamic"
        )
    if run["quantization"].get("placement") == "integer":  # it trained or calibrated the integer graph itself
        return run, model, model
    batches = calibration if calibration is not None else deploy_calibration_batches(run, config["scale"])
    deployed, _ = deploy_model(model, batches)
    return run, model, deployed


def export_int8(run_dir, path, io="uint8", tile=None, calibration=None):
    """Export a `train` or `calibrate` run as a full-integer .tflite (+ sidecar); returns (metadata, deployed).

    `deployed` is the Keras fake-quant model the file computes (see `deployed_run`): the reference for
    `check_parity`. `calibration`: as for `deployed_run`.
    """
    from models_tf import model_config

    run, model, deployed = deployed_run(run_dir, calibration)
    config = model_config(model)
    tile = check_tile(config, tile)
    content = int8_tflite(deployed, io, tile)
    bits = run["quantization"]["bits"]
    method = (run.get("train") or run.get("calibrate") or {}).get("method")
    metadata = build_metadata(
        config, "int8", {"weights": bits, "activations": bits}, io, tile=tile, method=method, source=str(run_dir)
    )
    write_tflite(path, content, metadata)
    return metadata, deployed


def deploy_model(model, batches):
    """`integer_model(model)` with DOBI ranges of the FP flow over `batches` for its new 8-bit quantizers (the
    learned k-bit ranges stay as they are); returns it and the number of new ranges."""
    from edge_sr.quant.ranges import initialize_ranges

    deployed = integer_model(model)
    return deployed, initialize_ranges(deployed, batches, "dobi", completion_only=True)
