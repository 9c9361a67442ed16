"""The model zoo offline: npm is faked on PATH, the weights are a tiny idealo-style .h5 made here."""

import hashlib
import os
import tarfile
from dataclasses import replace

import pytest
from conftest import SHARED_DATA, needs_shared_data, run_module
from test_idealo import TINY, assert_same_output, idealo_reference

from edge_sr.errors import EdgeSRError
from edge_sr.models import zoo
from edge_sr.zoo import main as zoo_main

pytestmark = pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")

NAME = "isr-rdn-psnr-small-x2"
MEMBER = "package/models/idealo/tiny.h5"


def fake_npm(tmp_path, monkeypatch, script):
    """Put an `npm` running `script` (sh) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f"#!/bin/sh\n{script}\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def tiny_package(tmp_path, monkeypatch):
    """A test zoo entry whose package is a local tarball that the fake npm 'downloads'; returns the reference."""
    reference = idealo_reference(2, **TINY)
    weights = tmp_path / "tiny.h5"
    reference.save(weights)
    tarball = tmp_path / "tiny-1.0.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(weights, arcname=MEMBER)
    fake_npm(tmp_path, monkeypatch, f'cp "{tarball}" "$PWD/"')
    entry = replace(
        zoo.ZOO[NAME],
        config={"arch": "isr-rdn", "scale": 2, **TINY, "kernel_size": 3, "upscaling": "ups"},
        package="tiny@1.0.0",
        member=MEMBER,
        sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
    )
    monkeypatch.setitem(zoo.ZOO, "tiny", entry)
    return reference


def test_list_names_each_model_and_its_cache_state(capsys):
    zoo_main(["list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == zoo.zoo_names()
    assert NAME in zoo.zoo_names() and "not cached" in lines[zoo.zoo_names().index(NAME)]


def test_pull_fetches_verifies_converts_and_caches(tiny_package, private_cache):
    path = zoo.pull("tiny")
    assert path == private_cache / "models" / "tiny.keras" and path.is_file()
    model = zoo.load_zoo_model("tiny")
    assert model.edge_sr_config == zoo.ZOO["tiny"].config
    assert_same_output(tiny_package, model)


def test_checksum_mismatch_is_refused(tiny_package, monkeypatch):
    monkeypatch.setitem(zoo.ZOO, "tiny", replace(zoo.ZOO["tiny"], sha256="0" * 64))
    with pytest.raises(EdgeSRError, match="checksum mismatch"):
        zoo.pull("tiny")
    assert not zoo.cached_path("tiny").exists()


def test_failing_or_missing_npm_is_a_clear_error(tmp_path, monkeypatch):
    fake_npm(tmp_path, monkeypatch, 'echo "npm error code ENOTFOUND" >&2; exit 1')
    with pytest.raises(EdgeSRError, match="npm pack @upscalerjs/models@0.9.0` failed .*ENOTFOUND.*--from FILE"):
        zoo.pull(NAME)

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EdgeSRError, match="npm is not installed"):
        zoo.pull(NAME)


def test_unknown_name():
    with pytest.raises(EdgeSRError, match=f"unknown zoo model 'nope'; available: .*{NAME}"):
        zoo.pull("nope")


def test_cli_pull_from_a_local_file(tmp_path, private_cache):
    weights = tmp_path / "psnr-small.h5"
    idealo_reference(2, num_layers=3, num_blocks=10, growth_rate=64, num_features=64).save(weights)

    result = run_module("edge_sr.zoo", "pull", NAME, "--from", weights)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(private_cache / "models" / f"{NAME}.keras")

    tiny = tmp_path / "tiny.h5"
    idealo_reference(2, **TINY).save(tiny)
    with pytest.raises(EdgeSRError, match=f"is not {NAME}: num_blocks 2 .expected 10., num_layers 2 .expected 3."):
        zoo.pull(NAME, tiny)


@pytest.mark.skipif(os.environ.get("EDGE_SR_NETWORK_TESTS") != "1", reason="set EDGE_SR_NETWORK_TESTS=1 (npm fetch)")
@needs_shared_data
def test_real_weights_reach_the_published_psnr():
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import load_upscaler

    result = evaluate_dataset(load_upscaler(f"zoo:{NAME}", 2), SHARED_DATA / "Set5", 2, show_progress=False)
    assert result["psnr"] == pytest.approx(36.65, abs=0.02)


def test_official_checkpoints_register_with_from_and_are_checked(tmp_path, private_cache):
    torch = pytest.importorskip("torch")
    from torch_reference import EDSR

    reference = EDSR(scale=2, num_blocks=16, num_features=64)
    torch.save(reference.state_dict(), tmp_path / "edsr_baseline_x2.pt")
    assert zoo.pull("edsr-baseline-x2", tmp_path / "edsr_baseline_x2.pt") == private_cache / "models" / (
        "edsr-baseline-x2.keras"
    )
    with pytest.raises(EdgeSRError, match="is not edsr-baseline-x4: scale 2 .expected 4."):
        zoo.pull("edsr-baseline-x4", tmp_path / "edsr_baseline_x2.pt")
    with pytest.raises(EdgeSRError, match="has no download; pass its weights with `pull swinir-x2 --from FILE`"):
        zoo.pull("swinir-x2")
