"""The study on data it did not simulate, through Prefect: existing scans in PtychoPINN's
layout (``scan.files``), and a PtychoPINN object file scanned with the built-in probe. The
files are written here in PtychoPINN's documented layout: ``diff3d``, normalised float64
amplitudes, complex128 arrays, continuous positions, pickled ``_metadata``."""

from __future__ import annotations

import json
from pathlib import Path

from flows.study import study

import h5py
import numpy as np
import pandas as pd
import pytest

from ptystudy.config import GeometryConfig
from ptystudy.files import sha256_file
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import Scan, load_scan
from ptystudy.scan.hdf5 import CXI_FILE, DIFFRACTION_FILE, PRODUCT_FILE, export_scan
from ptystudy.scan.simulate import simulate_study_dose

pytestmark = pytest.mark.integration


def _write_ptychopinn_scan(path: Path, scan: Scan, rng: np.random.Generator) -> Path:
    """``scan`` as PtychoPINN's simulators write one (positions moved by up to 0.4 px)."""
    jitter = rng.uniform(-0.4, 0.4, (2, scan.n_patterns))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        diff3d=np.sqrt(scan.counts().astype(np.float64)) / scan.metadata["scale"],
        xcoords=scan.xcoords + jitter[1],
        ycoords=scan.ycoords + jitter[0],
        xcoords_start=scan.xcoords + jitter[1],
        ycoords_start=scan.ycoords + jitter[0],
        probeGuess=scan.probe.astype(np.complex128),
        objectGuess=scan.obj.astype(np.complex128),
        scan_index=np.zeros(scan.n_patterns, np.int64),
        _metadata=np.array({"nphotons": scan.metadata["dose"]}, dtype=object),
    )
    return path


@pytest.fixture
def given_files(tmp_path, smoke_config):
    """Every smoke dose's train and test scans, in PtychoPINN's layout."""
    root = tmp_path / "given"
    rng = np.random.default_rng(5)
    files = {}
    for dose in smoke_config.scan.doses:
        scans = simulate_study_dose(smoke_config, dose)
        files[str(int(dose))] = {
            str(split): str(_write_ptychopinn_scan(root / f"{int(dose)}_{split}.npz", scan, rng))
            for split, scan in scans.items()
        }
    return files


def test_the_study_runs_on_existing_scans_and_reruns_from_cache(prefect_server, tmp_path, given_files):
    # one network arm: the point is the files (every arm reads the same scans)
    overrides = {"scan.files": given_files, "scan.round_positions": True, "training.arms": ["pinn_gs1"]}
    run = tmp_path / "run"
    summary = study(profile="smoke", out=str(run), overrides=overrides)
    assert (summary["n_conditions"], summary["n_success"], summary["n_failed"]) == (12, 12, 0)
    assert summary["phases"]["import"]["tasks"] == 3 and "simulate" not in summary["phases"]
    layout = RunLayout(run)
    for dose, splits in given_files.items():
        for split, name in splits.items():
            scan = load_scan(layout.scan(float(dose), split))
            provenance = scan.metadata["provenance"]
            assert provenance["sha256"] == sha256_file(Path(name)) and provenance["position_rounding"]["max_px"] <= 0.57
    manifest = json.loads(layout.manifest.read_text())
    assert {name for splits in given_files.values() for name in splits.values()} <= set(manifest["inputs"])
    metrics = pd.read_csv(layout.report_dir / "metrics.csv")
    assert set(metrics["arm"]) == {"lsqml", "pinn_gs1", "flat"}

    again = study(profile="smoke", out=str(run), overrides=overrides)
    assert all(tally["cached"] == tally["tasks"] > 0 for tally in again["phases"].values()), again["phases"]

    changed = Path(given_files["1000"]["test"])  # one more photon in a corner of every pattern
    with np.load(changed, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files if key != "_metadata"}
    intensity = arrays["diff3d"] ** 2
    intensity[:, 0, 0] += intensity[intensity > 0].min()
    arrays["diff3d"] = np.sqrt(intensity)
    np.savez(changed, **arrays)
    third = study(profile="smoke", out=str(run), overrides=overrides)
    assert (third["phases"]["import"]["cached"], third["phases"]["import"]["tasks"]) == (2, 3)
    assert (third["phases"]["compare"]["cached"], third["phases"]["compare"]["tasks"]) == (10, 12)


def test_a_ptychopinn_object_file_is_scanned_with_the_built_in_probe(prefect_server, tmp_path, smoke_config):
    """A PtychoPINN object file whose probe is not N x N: its object, the built-in probe."""
    rng = np.random.default_rng(2)
    path = tmp_path / "fly.npz"
    shape = smoke_config.scan.object_shape_px
    np.savez_compressed(
        path,
        objectGuess=(0.6 + 0.4 * rng.random(shape)) * np.exp(1j * rng.uniform(-1, 1, shape)),
        probeGuess=np.ones((64, 64), np.complex128),
        diff3d=rng.random((4, 64, 64)),
        _metadata=np.array({"nphotons": 1e9}, dtype=object),
    )
    overrides = {
        "scan.doses": [1000],
        "training.arms": ["pinn_gs1"],
        "scan.object_file": str(path),
        "scan.object_file_probe": "builtin",
    }
    summary = study(profile="smoke", out=str(tmp_path / "run"), overrides=overrides)
    assert (summary["n_success"], summary["n_failed"]) == (4, 0)
    scan = load_scan(RunLayout(tmp_path / "run").scan(1000.0, "train"))
    assert scan.probe.shape == (smoke_config.scan.patch_size_px,) * 2
    assert "object_file_probe: builtin" in scan.metadata["provenance"]["probe"]
    manifest = json.loads(RunLayout(tmp_path / "run").manifest.read_text())
    assert manifest["config"]["scan"]["object_file_probe"] == "builtin"


def test_the_study_runs_on_ptychodus_and_cxi_scans(prefect_server, tmp_path, smoke_config):
    """Each dose's scans exported as a Ptychodus pair (1e3, 1e5) or a CXI file (1e4), then read
    back through ``scan.files``: 12/12, and editing a diffraction.h5 recomputes its dose."""
    files = {}
    for dose in smoke_config.scan.doses:
        scans = simulate_study_dose(smoke_config, dose)
        files[str(int(dose))] = {}
        for split, scan in scans.items():
            folder = tmp_path / "given" / f"{int(dose)}_{split}"
            export_scan(scan, folder, GeometryConfig(), name=f"{dose:g} {split}")
            chosen = CXI_FILE if dose == 1e4 else PRODUCT_FILE
            files[str(int(dose))][str(split)] = str(folder / chosen)
    overrides = {"scan.files": files, "training.arms": ["pinn_gs1"]}
    summary = study(profile="smoke", out=str(tmp_path / "run"), overrides=overrides)
    assert (summary["n_conditions"], summary["n_success"], summary["n_failed"]) == (12, 12, 0)
    assert summary["phases"]["import"]["tasks"] == 3

    with h5py.File(tmp_path / "given" / "1000_test" / DIFFRACTION_FILE, "r+") as h5:
        h5["patterns"][0, 0, 0] += 1  # one more photon: a new scan for that dose only
    again = study(profile="smoke", out=str(tmp_path / "run"), overrides=overrides)
    assert (again["phases"]["import"]["cached"], again["phases"]["import"]["tasks"]) == (2, 3)
