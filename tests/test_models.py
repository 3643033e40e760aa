"""Phase E networks: physics layers, shapes, saving, learning and stitching."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from ptystudy import physics
from ptystudy.config import Arm, resolve_config
from ptystudy.layout import Split
from ptystudy.simulate import simulate_dose
from ptystudy.stitch import Stitcher
from ptystudy.views import build_view

keras = pytest.importorskip("keras")

from ptystudy.models.data import group_offsets, network_data, truth_patches  # noqa: E402
from ptystudy.models.inference import even_batch_size, reconstruct_view  # noqa: E402
from ptystudy.models.layers import FarFieldCounts, GroupMerge  # noqa: E402
from ptystudy.models.training import (  # noqa: E402
    TrainingError,
    _check_not_constant,
    build_network,
    load_network,
    make_spec,
    save_network,
    train_network,
)


@pytest.fixture(scope="module")
def tiny_view():
    """A 1e6-photon dense train view of the smoke scan, with gs2 groups."""
    config = resolve_config("smoke")
    scan = simulate_dose(config.scan, config.seeds, 1e6)[Split.TRAIN]
    return build_view(scan, name="dense", overlap=0.7, config=config.views, seeds=config.seeds).scan


def _to_channels(patches):
    """(C, N, N) complex -> (1, N, N, C) real and imag float32."""
    return (
        np.transpose(patches.real, (1, 2, 0))[None].astype(np.float32),
        np.transpose(patches.imag, (1, 2, 0))[None].astype(np.float32),
    )


def test_merge_then_reextract_returns_the_patches():
    """Four overlapping patches of one object: each comes back unchanged on its support."""
    rng = np.random.default_rng(0)
    size = 16
    obj = rng.uniform(0.5, 1, (64, 64)) * np.exp(1j * rng.uniform(-1, 1, (64, 64)))
    ys, xs = np.array([30.0, 32.0, 35.0, 28.0]), np.array([30.0, 34.0, 29.0, 33.0])
    support = np.zeros((size, size))
    support[4:12, 4:12] = 1
    patches = physics.extract_patches(obj, ys, xs, size) * support
    offsets = group_offsets(ys, xs, np.arange(4)[None])
    real, imag = GroupMerge(size, 4, size)((*_to_channels(patches), offsets))
    merged = (np.asarray(real) + 1j * np.asarray(imag))[0].transpose(2, 0, 1)
    np.testing.assert_allclose(merged * support, patches, atol=1e-5)
    assert np.abs(merged * (1 - support)).max() > 0.1, "neighbours must fill in beyond a member's own support"


def test_forward_layer_matches_the_simulator():
    rng = np.random.default_rng(1)
    probe = physics.make_probe(32, 0.45) * 50
    patches = (rng.uniform(0.3, 1, (3, 32, 32)) * np.exp(1j * rng.uniform(-1, 1, (3, 32, 32)))).astype(np.complex64)
    layer = FarFieldCounts(32)
    layer(_to_channels(patches))
    layer.set_probe(probe)
    counts = np.asarray(layer(_to_channels(patches)))[0].transpose(2, 0, 1)
    expected = physics.far_field_amplitude(probe, patches).astype(np.float64) ** 2
    np.testing.assert_allclose(counts, expected, rtol=1e-4, atol=1e-3)


def test_truth_patches_are_cut_at_the_true_positions(tiny_view):
    """A single bright pixel at a scan position lands at the patch centre [N/2, N/2]."""
    obj = np.full(tiny_view.obj.shape, 0.5, np.complex64)
    y, x = int(tiny_view.ycoords[7]), int(tiny_view.xcoords[7])
    obj[y, x] = 1.0
    view = type(tiny_view)(**{**tiny_view.__dict__, "obj": obj})
    amplitude, phase = truth_patches(view)
    assert amplitude.shape == (view.n_patterns, 32, 32, 1)
    assert np.unravel_index(np.argmax(amplitude[7, ..., 0]), (32, 32)) == (16, 16)


def test_gs2_forward_step_and_inference(tiny_view, tmp_path):
    config = resolve_config("smoke").training.model_copy(update={"epochs": 1, "max_samples": 16})
    trained = train_network(tiny_view, Arm.PINN, config, seed=1)
    assert trained.spec.group_size == 4
    data = network_data(tiny_view, Arm.PINN, trained.spec.input_scale)
    assert data.diffraction.shape[-1] == 4 == 2**2
    outputs = trained.model(data.inputs(slice(0, 3)), training=False)
    assert outputs["counts"].shape == (3, 32, 32, 4)
    assert outputs["amplitude"].shape == (3, 16, 16, 4)
    obj, coverage = reconstruct_view(trained.model, trained.spec, tiny_view, batch_size=10)
    assert obj.shape == tiny_view.obj.shape and coverage.any() and np.isfinite(obj).all()
    assert trained.history["epochs_run"] == 1 and trained.history["n_train"] >= 2
    # batches are padded to one compiled shape; the padding never reaches the object
    whole, whole_coverage = reconstruct_view(trained.model, trained.spec, tiny_view, batch_size=4096)
    np.testing.assert_array_equal(whole_coverage, coverage)
    np.testing.assert_allclose(whole, obj, atol=1e-5)


def test_even_batch_size_splits_into_equal_batches():
    assert even_batch_size(287, 256) == 144  # 2 batches: 144 + 143 (padded by 1)
    assert even_batch_size(256, 256) == 256
    assert even_batch_size(10, 256) == 10
    assert even_batch_size(1000, 7) == 7


def test_reloaded_model_predicts_the_same_in_a_fresh_process(tiny_view, tmp_path):
    config = resolve_config("smoke").training.model_copy(update={"epochs": 1, "max_samples": 16})
    trained = train_network(tiny_view, Arm.PINN, config, seed=2)
    paths = save_network(trained, tmp_path / "pinn")
    data = network_data(tiny_view, Arm.PINN, trained.spec.input_scale)
    inputs = data.inputs(slice(0, 5))
    np.savez(tmp_path / "inputs.npz", **inputs)
    expected = np.asarray(trained.model(inputs, training=False)["phase"])
    code = (
        "import sys, numpy as np\n"
        "from ptystudy.models.training import load_network\n"
        "model, spec = load_network(sys.argv[1])\n"
        "inputs = dict(np.load(sys.argv[2]))\n"
        "np.save(sys.argv[3], np.asarray(model(inputs, training=False)['phase']))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "pinn"), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npy")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert json.loads(paths["spec"].read_text())["input_scale"] == trained.spec.input_scale
    assert json.loads(paths["history"].read_text())["epochs_run"] == 1
    model, spec = load_network(tmp_path / "pinn")
    assert spec == trained.spec


def _correlations(obj, coverage, truth):
    """Amplitude and phase correlation with the truth after removing the global phase."""
    estimate, reference = obj[coverage], truth[coverage]
    estimate = estimate * np.exp(-1j * np.angle(np.vdot(estimate, reference)))
    return (
        np.corrcoef(np.abs(estimate), np.abs(reference))[0, 1],
        np.corrcoef(np.angle(estimate), np.angle(reference))[0, 1],
    )


@pytest.mark.parametrize("arm", [Arm.PINN, Arm.PINN_GS1, Arm.SUPERVISED])
def test_each_arm_learns_on_a_high_dose_scan(tiny_view, arm):
    """A flat prediction correlates 0 with the truth; a trained arm clearly more."""
    config = resolve_config(
        "smoke", overrides={"training.epochs": 20, "training.filters_base": 16, "training.max_samples": None}
    ).training
    trained = train_network(tiny_view, arm, config, seed=3)
    obj, coverage = reconstruct_view(trained.model, trained.spec, tiny_view, batch_size=64)
    amplitude, phase = _correlations(obj, coverage, tiny_view.obj)
    assert amplitude > 0.5, f"{arm} amplitude correlation {amplitude:.2f}"
    assert phase > 0.1, f"{arm} phase correlation {phase:.2f}"
    assert trained.history["val_loss"][-1] < trained.history["val_loss"][0]


def test_constant_output_fails_loudly(tiny_view):
    config = resolve_config("smoke").training
    spec = make_spec(tiny_view, Arm.PINN_GS1, config)
    model = build_network(spec, tiny_view)
    for weight in model.trainable_weights:
        weight.assign(np.zeros(weight.shape, np.float32))
    data = network_data(tiny_view, Arm.PINN_GS1, spec.input_scale)
    with pytest.raises(TrainingError, match="the same for every input"):
        _check_not_constant(model, data, np.arange(8), "pinn_gs1 test")


def test_stitching_known_object_and_bounded_memory():
    rng = np.random.default_rng(4)
    obj = (rng.uniform(0.3, 1, (200, 240)) * np.exp(1j * rng.uniform(-1, 1, (200, 240)))).astype(np.complex64)
    ys = rng.integers(16, 184, 6000).astype(float)
    xs = rng.integers(16, 224, 6000).astype(float)
    stitcher = Stitcher(obj.shape, 16)
    tracemalloc.start()
    for start in range(0, ys.size, 500):
        batch = physics.extract_patches(obj, ys[start : start + 500], xs[start : start + 500], 32)
        stitcher.add(batch, ys[start : start + 500], xs[start : start + 500])
        del batch
    stitched, coverage = stitcher.result()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_allclose(stitched[coverage], obj[coverage], rtol=1e-5)
    assert not coverage[:8].any() and coverage[100, 120]
    all_patches_bytes = ys.size * 32 * 32 * 8
    assert peak < all_patches_bytes / 4, f"peak {peak / 1e6:.1f} MB for {ys.size} patches"
