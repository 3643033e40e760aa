"""PtychoPINN's file layout both ways, on files written here in its documented layout:
``diff3d``, normalised float64 amplitudes, complex128 arrays, continuous positions, metadata
pickled in ``_metadata``. Nothing is copied from PtychoPINN."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptystudy.conditions import Split
from ptystudy.errors import ContractError
from ptystudy.run.layout import RunLayout
from ptystudy.scan import physics
from ptystudy.scan.contract import load_scan, write_scan
from ptystudy.scan.ptychopinn import export_run, import_ptychopinn
from ptystudy.scan.simulate import simulate_study_dose

REPO = Path(__file__).resolve().parents[1]
SIZE = 32


def _ptychopinn_scan(path: Path, *, dose=1e4, jitter=0.0, key="diff3d", noise=0.0):
    """A scan as PtychoPINN's simulators write it; returns the file and the true counts,
    positions, probe and object."""
    rng = np.random.default_rng(7)
    probe = physics.make_probe(SIZE, 0.5).astype(np.complex128)
    obj = (0.6 + 0.4 * rng.random((96, 96))) * np.exp(1j * rng.uniform(-1, 1, (96, 96)))
    grid = np.arange(20, 77, 7, dtype=np.float64)
    ys, xs = (axis.ravel() for axis in np.meshgrid(grid, grid, indexing="ij"))
    amplitude = physics.far_field_amplitude(probe, physics.extract_patches(obj, ys, xs, SIZE)).astype(np.float64)
    scale = physics.dose_scale(amplitude, dose)
    counts = rng.poisson(scale**2 * amplitude**2).astype(np.float64)
    normalised = np.sqrt(counts) / scale + noise * rng.random(counts.shape)
    offsets = jitter * rng.uniform(-1, 1, (2, ys.size))
    np.savez_compressed(
        path,
        **{key: normalised},
        xcoords=xs + offsets[1],
        ycoords=ys + offsets[0],
        xcoords_start=xs + offsets[1],
        ycoords_start=ys + offsets[0],
        probeGuess=probe,
        objectGuess=obj,
        scan_index=np.zeros(ys.size, np.int64),
        _metadata=np.array({"nphotons": dose, "note": "pickled, as older simulators wrote it"}, dtype=object),
    )
    return path, counts, ys, xs, probe, obj


def test_a_ptychopinn_scan_imports_with_whole_photon_counts(tmp_path):
    path, counts, ys, xs, probe, obj = _ptychopinn_scan(tmp_path / "sim.npz")
    scan = import_ptychopinn(path)
    np.testing.assert_array_equal(scan.counts(), counts)
    np.testing.assert_array_equal(scan.ycoords, ys)
    np.testing.assert_array_equal(scan.xcoords, xs)
    assert scan.diffraction.dtype == np.float32 and scan.probe.dtype == scan.obj.dtype == np.complex64
    np.testing.assert_allclose(scan.probe, probe, rtol=1e-6, atol=1e-7)
    provenance = scan.metadata["provenance"]
    assert provenance["diffraction_key"] == "diff3d" and provenance["position_rounding"] is None
    assert scan.metadata["scale"] > 0
    written = write_scan(tmp_path / "contract.npz", scan)
    assert load_scan(written).n_patterns == counts.shape[0]


def test_the_diffraction_key_and_a_given_nphotons(tmp_path):
    path, counts, *_ = _ptychopinn_scan(tmp_path / "sim.npz", key="diffraction")
    measured = counts.sum(axis=(1, 2)).mean()
    scan = import_ptychopinn(path, nphotons=measured, dose=1e4)
    np.testing.assert_array_equal(scan.counts(), counts)
    assert scan.metadata["dose"] == 1e4 and scan.metadata["mean_counts_per_pattern"] == pytest.approx(measured)
    with pytest.raises(ContractError, match=r"sim\.npz: at nphotons = .* not whole photon counts"):
        import_ptychopinn(path, nphotons=1.5 * measured)


def test_continuous_positions_are_rounded_only_when_asked(tmp_path):
    path, counts, ys, xs, *_ = _ptychopinn_scan(tmp_path / "sim.npz", jitter=0.4)
    with pytest.raises(ContractError, match=r"sim\.npz: \d+ position\(s\) are not whole pixels"):
        import_ptychopinn(path)
    scan = import_ptychopinn(path, round_positions=True)
    np.testing.assert_array_equal(scan.ycoords, ys)
    np.testing.assert_array_equal(scan.xcoords, xs)
    rounding = scan.metadata["provenance"]["position_rounding"]
    assert 0 < rounding["rms_px"] <= rounding["max_px"] <= 0.4 * np.sqrt(2)


def test_amplitudes_that_are_counts_at_no_scale_are_refused(tmp_path):
    path, *_ = _ptychopinn_scan(tmp_path / "noisy.npz", noise=1e-3)
    with pytest.raises(ContractError, match=r"noisy\.npz: the diffraction is not whole photon counts at any scale"):
        import_ptychopinn(path)


def test_a_probe_of_another_size_is_refused(tmp_path):
    path, *_ = _ptychopinn_scan(tmp_path / "sim.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files if key != "_metadata"}
    arrays["probeGuess"] = np.ones((16, 16), np.complex128)
    np.savez(path, **arrays)
    with pytest.raises(ContractError, match=r"sim\.npz: probeGuess must be 32x32"):
        import_ptychopinn(path)


@pytest.fixture
def exported(smoke_config, tmp_path):
    """A run directory holding one dose's split files, exported to PtychoPINN's layout."""
    layout = RunLayout(tmp_path / "run")
    scans = simulate_study_dose(smoke_config, 1e4)
    for split, scan in scans.items():
        path = layout.scan(1e4, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_scan(path, scan)
    written = export_run(layout.root, tmp_path / "exported")
    return scans, written


def _read_as_ptychopinn_documents(path: Path):
    """A reader written from PtychoPINN's documented contract only: amplitudes in ``diff3d``
    at any scale, positions as patch centres (x column, y row), the photon scale from
    ``nphotons`` in the JSON ``_metadata``."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    metadata = json.loads(arrays["_metadata"].item())
    nphotons = metadata["physics_parameters"]["nphotons"]
    amplitude = arrays["diff3d"].astype(np.float64)
    counts = amplitude**2 * nphotons / (amplitude**2).sum(axis=(1, 2)).mean()
    assert np.array_equal(arrays["xcoords_start"], arrays["xcoords"])
    assert np.array_equal(arrays["diffraction"], arrays["diff3d"])
    size = amplitude.shape[-1]
    half = size // 2
    probe, obj = arrays["probeGuess"], arrays["objectGuess"]
    expected = []
    for y, x in zip(arrays["ycoords"].astype(int), arrays["xcoords"].astype(int), strict=True):
        wave = probe * obj[y - half : y + half, x - half : x + half]
        expected.append(np.abs(np.fft.fftshift(np.fft.fft2(wave))) ** 2)
    expected = np.array(expected)
    expected *= nphotons / expected.sum(axis=(1, 2)).mean()
    return counts, expected, nphotons


def test_every_exported_file_reads_as_ptychopinn_documents_it(exported):
    scans, written = exported
    assert sorted(path.name for path in written) == ["test.npz", "train.npz"]
    for path in written:
        counts, expected, nphotons = _read_as_ptychopinn_documents(path)
        scan = scans[Split(path.stem)]
        np.testing.assert_allclose(counts, scan.counts(), rtol=1e-5, atol=1e-3)
        assert nphotons == pytest.approx(scan.metadata["mean_counts_per_pattern"])
        bright = expected > 20  # Poisson: (counts - expected)**2 / expected averages 1
        chi2 = np.mean((counts[bright] - expected[bright]) ** 2 / expected[bright])
        assert 0.8 < chi2 < 1.25, chi2


def test_export_then_import_gives_back_the_scan(exported):
    scans, written = exported
    for path in written:
        scan, back = scans[Split(path.stem)], import_ptychopinn(path)
        np.testing.assert_array_equal(back.counts(), scan.counts())
        np.testing.assert_array_equal(back.ycoords, scan.ycoords)
        np.testing.assert_array_equal(back.xcoords, scan.xcoords)
        np.testing.assert_array_equal(back.probe, scan.probe)
        np.testing.assert_array_equal(back.obj, scan.obj)
        # the study fits s to the nominal dose over both splits, import to this file's measured counts
        assert back.metadata["scale"] == pytest.approx(scan.metadata["scale"], rel=1e-2)


def test_the_commands(tmp_path, exported):
    _, written = exported
    target = tmp_path / "back.npz"
    command = [sys.executable, "-m", "ptystudy.scan.ptychopinn", "import", str(written[0]), str(target)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert load_scan(target).n_patterns > 0
    nothing, out = str(tmp_path / "nothing"), str(tmp_path / "x")
    broken = [sys.executable, "-m", "ptystudy.scan.ptychopinn", "export", nothing, out]
    result = subprocess.run(broken, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no scan files" in result.stderr
