import numpy as np
import pytest
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant import quantize_model
from edge_sr.quant.quantizer import bypass_quantizers
from edge_sr.quant.ranges import initialize_ranges
from models_tf import build_preset


@pytest.fixture
def models():
    keras.utils.set_random_seed(0)
    fp = build_preset("edsr-baseline", scale=2, num_blocks=2, num_features=8)
    return fp, quantize_model(fp, 4)


def _fp_inputs(fp, name, batches):
    probe = keras.Model(fp.input, fp.get_layer(name).input)
    return [probe(batch).numpy() for batch in batches]


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_activation_ranges_come_from_fp_statistics_averaged_over_batches(models, photo, method):
    fp, quantized = models
    batches = [photo[None, :32, :32].astype(np.float32), photo[None, 200:232, 300:332].astype(np.float32)]
    assert initialize_ranges(quantized, batches, method) == 8  # 4 convs × (input + kernel)
    for name in ("body_0_conv1", "body_1_conv2"):  # the second sees the FP flow, not quantized inputs
        inputs = _fp_inputs(fp, name, batches)
        if method == "minmax":
            low, high = np.mean([(x.min(), x.max()) for x in inputs], axis=0)
        else:
            low, high = np.mean([np.percentile(x, [1, 99]) for x in inputs], axis=0)
        variables = quantized.get_layer(name).input_quantizer_vars
        assert variables["lower"].numpy() == pytest.approx(min(low, 0.0), rel=1e-4, abs=1e-4)
        assert variables["upper"].numpy() == pytest.approx(max(high, 0.0), rel=1e-4)
        ((kernel, _, kernel_vars),) = quantized.get_layer(name)._weight_vars
        assert kernel_vars["upper"].numpy() == pytest.approx(np.abs(kernel.numpy()).max())


def test_bypassed_quantized_model_computes_the_fp_output(models, photo):
    fp, quantized = models
    image = photo[None, :24, :24].astype(np.float32)
    with bypass_quantizers():
        assert np.allclose(quantized(image).numpy(), fp(image).numpy(), atol=1e-4)
    assert not np.allclose(quantized(image).numpy(), fp(image).numpy(), atol=1e-2)


def test_bad_requests_are_clear_errors(models, photo):
    fp, quantized = models
    with pytest.raises(EdgeSRError, match="unknown range initialisation"):
        initialize_ranges(quantized, [photo[None, :8, :8].astype(np.float32)], "median")
    with pytest.raises(EdgeSRError, match="at least one calibration batch"):
        initialize_ranges(quantized, [])
    with pytest.raises(EdgeSRError, match="no quantizers"):
        initialize_ranges(fp, [photo[None, :8, :8].astype(np.float32)])
