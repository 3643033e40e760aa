"""Phase F: the pty-chi adapter, its conventions and its isolated worker process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ptystudy.conditions import Split
from ptystudy.errors import ContractError, TransientError
from ptystudy.lsqml.adapter import LsqmlSettings, batch_size, cost_plateaued
from ptystudy.lsqml.worker import LsqmlWorker, shared_worker
from ptystudy.profiles import resolve_config
from ptystudy.scan.contract import write_scan
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_view
from ptystudy.stitch import coverage_mask


@pytest.fixture(scope="module")
def view_file(tmp_path_factory):
    """A 1e6-photon dense train view of the smoke scan, written to disk."""
    config = resolve_config("smoke")
    scan = simulate_study_dose(config, 1e6)[Split.TRAIN]
    view = build_view(scan, name="dense", overlap=0.7, config=config.views, seeds=config.seeds).scan
    return write_scan(tmp_path_factory.mktemp("lsqml") / "view.npz", view), view


@pytest.fixture(scope="module")
def worker():
    worker = LsqmlWorker(cpu_threads=1)
    yield worker
    worker.stop()


def _settings(max_epochs: int, *, batches: int, device: str, seed: int, tolerance: float = 0.0) -> LsqmlSettings:
    """LSQML settings; the default tolerance 0 never stops before ``max_epochs``."""
    return LsqmlSettings(
        max_epochs=max_epochs,
        tolerance=tolerance,
        check_every=10,
        batches_per_epoch=batches,
        momentum=0.5,
        device=device,
        seed=seed,
    )


def _run_isolated(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter: torch and TensorFlow crash in one process, and
    this test process has TensorFlow loaded."""
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_positions_match_ptychi_patch_extraction(view_file):
    """Our integer centres, converted, cut exactly the same patches in pty-chi (known shift)."""
    path, _ = view_file
    code = (
        "import sys, numpy as np, torch\n"
        "from ptychi.image_proc import extract_patches_integer\n"
        "from ptystudy.scan import physics\n"
        "from ptystudy.scan.contract import load_scan\n"
        "from ptystudy.lsqml.adapter import buffer_origin, to_ptychi_positions\n"
        "view = load_scan(sys.argv[1])\n"
        "ys, xs = to_ptychi_positions(view.ycoords, view.xcoords, view.obj.shape)\n"
        "origin = buffer_origin(view.obj.shape)\n"
        "index = torch.tensor(np.stack([ys + origin[0], xs + origin[1]], axis=1))\n"
        "image = torch.tensor(view.obj)\n"
        "ours = physics.extract_patches(view.obj, view.ycoords, view.xcoords, view.patch_size)\n"
        "same = np.abs(extract_patches_integer(image, index, ours.shape[1:]).numpy() - ours).max()\n"
        "moved = np.abs(extract_patches_integer(image, index + 1.0, ours.shape[1:]).numpy() - ours).max()\n"
        "print(same, moved)\n"
    )
    same, moved = map(float, _run_isolated(code, str(path)).split())
    assert same == 0.0
    assert moved > 0.1, "a one-pixel shift must change the patches"


def test_batch_size_is_compact():
    assert batch_size(100, 8) == 13
    assert batch_size(3, 8) == 1


def _relative_error(estimate, truth, mask):
    """Relative L2 error after the best global complex scale."""
    a, t = estimate[mask], truth[mask]
    scale = np.vdot(a, t) / np.vdot(a, a)
    return float(np.linalg.norm(scale * a - t) / np.linalg.norm(t))


def test_lsqml_lowers_the_error_and_uses_every_pattern(view_file, worker):
    path, view = view_file
    numpy_state = np.random.get_state()[1].copy()
    result = worker.run(path, _settings(20, batches=6, device="auto", seed=1), timeout_s=600)
    assert result.stop_reason.startswith("epoch cap (20) reached before")
    assert result.n_patterns == view.n_patterns
    assert result.epochs == 20 and len(result.cost_per_epoch) == 20 and result.device == "cpu"
    mask = coverage_mask(view.obj.shape, view.ycoords, view.xcoords, 16)
    flat = _relative_error(np.ones_like(view.obj), view.obj, mask)
    assert _relative_error(result.obj, view.obj, mask) < 0.8 * flat
    assert result.cost_per_epoch[-1] < result.cost_per_epoch[1]
    # pty-chi reseeds and changes torch defaults, but only in the worker process
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert worker.pid is not None
    assert worker.environment["cpu_threads"] == 1


def test_lsqml_at_ten_photons_per_pattern_stays_finite(tmp_path, worker):
    """At 10 photons per pattern nearly every pixel counts 0: the Poisson noise model must
    neither divide by a zero count nor produce NaN, with overlap and without (f = 0: the
    footprints touch). (The object is then no better than a flat guess after 20 epochs;
    phase G scores it as it is.)"""
    config = resolve_config("smoke", overrides={"views.overlaps": {"touching": 0.0, "dense": 0.7}})
    scan = simulate_study_dose(config, 10)[Split.TRAIN]
    assert np.mean(scan.diffraction == 0) > 0.9
    for name, overlap in (("touching", 0.0), ("dense", 0.7)):
        view = build_view(scan, name=name, overlap=overlap, config=config.views, seeds=config.seeds).scan
        path = write_scan(tmp_path / f"{name}.npz", view)
        result = worker.run(path, _settings(20, batches=4, device="cpu", seed=1), timeout_s=600)
        assert np.isfinite(result.obj).all() and np.isfinite(result.cost_per_epoch).all(), name
        assert result.epochs == 20 and result.n_patterns == view.n_patterns


def test_caller_random_state_and_torch_defaults_are_untouched(view_file):
    """A caller keeps its Python, numpy and torch random states and torch's defaults."""
    path, _ = view_file
    code = (
        "import random, sys, numpy as np, torch\n"
        "from ptystudy.lsqml.worker import LsqmlWorker\n"
        "from ptystudy.lsqml.adapter import LsqmlSettings\n"
        "state = torch.random.get_rng_state().clone()\n"
        "python_state, numpy_state = random.getstate(), np.random.get_state()[1].copy()\n"
        "dtype, device = torch.get_default_dtype(), torch.get_default_device()\n"
        "worker = LsqmlWorker()\n"
        "worker.run(sys.argv[1], LsqmlSettings(max_epochs=2, tolerance=0.0, check_every=10, batches_per_epoch=4, "
        "momentum=0.5, device='cpu', seed=5), timeout_s=600)\n"
        "worker.stop()\n"
        "print(torch.get_default_dtype() == dtype, torch.get_default_device() == device,"
        " torch.equal(torch.random.get_rng_state(), state), random.getstate() == python_state,"
        " np.array_equal(np.random.get_state()[1], numpy_state))\n"
    )
    assert _run_isolated(code, str(path)) == "True True True True True"


def test_broken_view_is_rejected_naming_the_file(tmp_path, worker):
    bad = tmp_path / "broken_view.npz"
    np.savez(bad, diffraction=np.ones((3, 8, 8), np.float32))
    with pytest.raises(ContractError, match=r"broken_view\.npz: missing key"):
        worker.run(bad, _settings(1, batches=1, device="cpu", seed=1), timeout_s=600)


def test_a_hung_run_is_killed_and_the_next_one_succeeds(view_file, worker):
    path, view = view_file
    slow = _settings(5000, batches=8, device="cpu", seed=1)
    worker.run(path, _settings(1, batches=8, device="cpu", seed=1), timeout_s=600)
    first_pid = worker.pid
    with pytest.raises(TransientError, match="did not finish within 2 s; worker killed"):
        worker.run(path, slow, timeout_s=2)
    assert worker.pid is None
    result = worker.run(path, _settings(1, batches=8, device="cpu", seed=1), timeout_s=600)
    assert result.n_patterns == view.n_patterns and worker.pid != first_pid


def test_task_rejects_a_broken_view_before_ptychi_starts(tmp_path, smoke_config, monkeypatch):
    import tasks.reconstruct
    from ptystudy.records import FileRecord, ViewRecord

    bad = tmp_path / "view.npz"
    np.savez(bad, diffraction=np.ones((3, 8, 8), np.float32))
    record = FileRecord.of(bad)
    view = ViewRecord(
        dose=1e3,
        view="dense",
        split="test",
        file=record,
        overlap_file=record,
        spacing_figure=record,
        n_positions=3,
        n_groups=3,
        corpus=None,
        n_corpus_samples=None,
        step_px=1.0,
        mean_spacing_px=1.0,
        measured_overlap=0.5,
        seconds=0.0,
    )
    monkeypatch.setattr(shared_worker(), "run", lambda *a, **k: pytest.fail("pty-chi must not start"))
    with pytest.raises(ContractError, match=r"view\.npz: missing key"):
        tasks.reconstruct.reconstruct_lsqml.fn(view, smoke_config.lsqml, 1, str(tmp_path))


def test_a_killed_worker_is_a_transient_failure(view_file, worker):
    import os
    import signal
    import threading

    path, view = view_file
    worker.run(path, _settings(1, batches=8, device="cpu", seed=1), timeout_s=600)
    victim = worker.pid
    threading.Timer(1.0, lambda: os.kill(victim, signal.SIGKILL)).start()
    slow = _settings(5000, batches=8, device="cpu", seed=1)
    with pytest.raises(TransientError, match=r"the LSQML worker died \(exit code -9\)"):
        worker.run(path, slow, timeout_s=600)
    result = worker.run(path, _settings(1, batches=8, device="cpu", seed=1), timeout_s=600)
    assert result.n_patterns == view.n_patterns


def test_the_cost_plateau_test_known_answers():
    """A cost falling 10 % per epoch has not plateaued; one falling 0.01 % per epoch has,
    once two windows of epochs have run."""
    falling = list(100 * 0.9 ** np.arange(40))
    flat = list(100 * 0.9999 ** np.arange(40))
    assert not cost_plateaued(falling, window=10, tolerance=1e-3)
    assert cost_plateaued(flat, window=10, tolerance=1e-3)
    assert not cost_plateaued(flat[:19], window=10, tolerance=1e-3), "needs 2 windows"
    assert not cost_plateaued([*flat[:30], float("nan")], window=10, tolerance=1e-3)


def test_lsqml_stops_when_its_cost_plateaus_and_says_why(view_file, worker):
    path, view = view_file
    # a loose tolerance stops it after about 50 epochs (110 at 2e-3): the same logic, less time
    result = worker.run(path, _settings(400, batches=6, device="cpu", seed=1, tolerance=2e-2), timeout_s=600)
    assert 20 <= result.epochs < 400 and result.epochs % 10 == 0
    assert result.stop_reason.startswith("converged: the cost fell by less than 0.02 per epoch")
    assert cost_plateaued(result.cost_per_epoch, window=10, tolerance=2e-2)
    assert not cost_plateaued(result.cost_per_epoch[:-10], window=10, tolerance=2e-2)
