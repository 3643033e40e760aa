"""HDF5 in and out: our scans as Ptychodus and CXI files, read back by Ptychodus's own
loaders and by pty-chi's test-suite recipe, and such files imported as contract scans."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ptystudy.conditions import Split
from ptystudy.config import GeometryConfig
from ptystudy.errors import ContractError
from ptystudy.profiles import resolve_config
from ptystudy.recon import Reconstruction, write_recon
from ptystudy.scan.contract import Scan, load_scan, pattern_totals, write_scan
from ptystudy.scan.hdf5 import (
    CXI_FILE,
    DIFFRACTION_FILE,
    PRODUCT_FILE,
    centred_metres,
    export_run,
    export_scan,
    read_hdf5_scan,
)
from ptystudy.scan.simulate import simulate_study_dose

REPO = Path(__file__).resolve().parents[1]
GEOMETRY = GeometryConfig()


@pytest.fixture(scope="module")
def scan() -> Scan:
    return simulate_study_dose(resolve_config("smoke"), 1e4)[Split.TEST]


@pytest.fixture
def exported(scan, tmp_path) -> Path:
    export_scan(scan, tmp_path / "scan", GEOMETRY, name="smoke 1e4 test")
    return tmp_path / "scan"


def test_the_object_pixel_follows_the_geometry():
    geometry = GeometryConfig(photon_energy_eV=10_000.0, detector_distance_m=2.0, detector_pixel_size_m=75e-6)
    wavelength = 1.239841984e-6 / 10_000.0
    assert geometry.object_pixel_size_m(64) == pytest.approx(wavelength * 2.0 / (64 * 75e-6), rel=1e-12)
    assert centred_metres(np.array([0.0, 4.5, 9.0]), 10, 2.0).tolist() == [-9.0, 0.0, 9.0]


def test_ptychodus_reads_our_pair_back(scan, exported):
    io = pytest.importorskip("ptychodus.api.io")
    data = io.load_diffraction_data(exported / DIFFRACTION_FILE)
    np.testing.assert_array_equal(data._patterns, scan.counts())
    np.testing.assert_array_equal(data._indexes, np.arange(scan.n_patterns))
    np.testing.assert_allclose(data._probe_photon_counts, pattern_totals(scan.diffraction))
    assert data.get_pixel_geometry().width_m == GEOMETRY.detector_pixel_size_m
    product = io.load_product(exported / PRODUCT_FILE)
    pixel = product.object_.get_geometry().pixel_width_m
    assert pixel == pytest.approx(GEOMETRY.object_pixel_size_m(scan.patch_size))
    height, width = scan.obj.shape
    x_px = np.asarray(product.probe_positions.get_coordinates_x_m()) / pixel + (width - 1) / 2
    y_px = np.asarray(product.probe_positions.get_coordinates_y_m()) / pixel + (height - 1) / 2
    np.testing.assert_allclose(x_px, scan.xcoords, atol=1e-6)
    np.testing.assert_allclose(y_px, scan.ycoords, atol=1e-6)
    np.testing.assert_array_equal(product.probes.get_array().reshape(-1, *scan.probe.shape)[0], scan.probe)
    np.testing.assert_array_equal(product.object_.get_array().reshape(-1, *scan.obj.shape)[0], scan.obj)
    assert product.metadata.photon_energy_eV == GEOMETRY.photon_energy_eV
    assert product.metadata.probe_photon_count == scan.metadata["dose"]


def test_ptychodus_reads_our_cxi_file(scan, exported):
    cxi = pytest.importorskip("ptychodus.plugins.cxi_file")
    diffraction = cxi.CXIDiffractionFileReader().read(exported / CXI_FILE)
    patterns = np.concatenate([array.get_patterns() for array in diffraction])
    np.testing.assert_array_equal(patterns, scan.counts())
    assert not np.any(diffraction.get_bad_pixels())
    product = cxi.CXIProductFileIO().read(exported / CXI_FILE)
    pixel = product.object_.get_geometry().pixel_width_m
    height, width = scan.obj.shape
    x_px = np.asarray(product.probe_positions.get_coordinates_x_m()) / pixel + (width - 1) / 2
    np.testing.assert_allclose(x_px, scan.xcoords, atol=1e-6)
    assert product.metadata.photon_energy_eV == pytest.approx(GEOMETRY.photon_energy_eV)
    with h5py.File(exported / CXI_FILE) as h5:
        assert h5["entry_1/sample_1/geometry_1/translation"].attrs["translation_is"] == "probe position"
        assert h5["entry_1/instrument_1/detector_1/data"].attrs["axes"] == "translation:y:x"


def test_ptychi_test_suite_recipe_gives_our_pixel_positions(scan, exported):
    """pty-chi's tests read patterns from ``dp`` and divide the product's positions by the
    object pixel size (positions relative to the object's centre)."""
    with h5py.File(exported / DIFFRACTION_FILE) as h5:
        np.testing.assert_array_equal(h5["dp"][()], scan.counts())
    with h5py.File(exported / PRODUCT_FILE) as h5:
        pixel = h5["object"].attrs["pixel_width_m"]
        y = h5["probe_position_y_m"][()] / pixel
        x = h5["probe_position_x_m"][()] / pixel
    height, width = scan.obj.shape
    np.testing.assert_allclose(y + (height - 1) / 2, scan.ycoords, atol=1e-6)
    np.testing.assert_allclose(x + (width - 1) / 2, scan.xcoords, atol=1e-6)


@pytest.mark.parametrize("source", [PRODUCT_FILE, CXI_FILE])
def test_export_then_import_gives_the_scan_back(scan, exported, source):
    back = read_hdf5_scan(exported / source, dose=scan.metadata["dose"])
    np.testing.assert_array_equal(back.diffraction, scan.diffraction)
    np.testing.assert_array_equal(back.ycoords, scan.ycoords)
    np.testing.assert_array_equal(back.xcoords, scan.xcoords)
    np.testing.assert_array_equal(back.probe, scan.probe)
    np.testing.assert_array_equal(back.obj, scan.obj)
    assert back.metadata["mean_counts_per_pattern"] == scan.metadata["mean_counts_per_pattern"]
    assert back.metadata["scale"] == pytest.approx(scan.metadata["scale"], rel=1e-3)


def _edit(path: Path, edit) -> None:
    with h5py.File(path, "r+") as h5:
        edit(h5)


def _replace(h5: h5py.File, key: str, data: np.ndarray) -> None:
    attrs = dict(h5[key].attrs)
    del h5[key]
    h5.create_dataset(key, data=data).attrs.update(attrs)


def _drop_last_position(h5: h5py.File) -> None:
    for key in ("probe_position_indexes", "probe_position_x_m", "probe_position_y_m"):
        _replace(h5, key, h5[key][:-1])


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        (DIFFRACTION_FILE, lambda h5: (h5.__delitem__("dp"), h5.__delitem__("patterns")), "no dataset patterns"),
        (PRODUCT_FILE, lambda h5: _replace(h5, "probe_position_x_m", h5["probe_position_x_m"][:-1]), "probe positions"),
        (PRODUCT_FILE, lambda h5: _drop_last_position(h5), "probe positions for"),
        (
            PRODUCT_FILE,
            lambda h5: _replace(h5, "probe_position_indexes", h5["probe_position_indexes"][()] + 1),
            "do not pair",
        ),
        (DIFFRACTION_FILE, lambda h5: _replace(h5, "patterns", -h5["patterns"][()].astype(np.int64)), "negative"),
        (DIFFRACTION_FILE, lambda h5: _replace(h5, "patterns", h5["patterns"][()] * np.nan), "non-finite"),
        (DIFFRACTION_FILE, lambda h5: _replace(h5, "patterns", h5["patterns"][()] + 0.5), "fractional"),
        (PRODUCT_FILE, lambda h5: h5["object"].attrs.__setitem__("pixel_width_m", 1e-6), "contradicts the geometry"),
        (
            PRODUCT_FILE,
            lambda h5: _replace(h5, "probe_position_indexes", 0 * h5["probe_position_indexes"][()]),
            "PtychoPINN's own exporter",
        ),
    ],
    ids=[
        "no-patterns",
        "short-positions",
        "fewer-positions-than-patterns",
        "unpaired-indexes",
        "negative",
        "non-finite",
        "fractional",
        "pixel-vs-geometry",
        "ptychopinn-product",
    ],
)
def test_a_bad_file_is_one_clear_error_naming_it(exported, file, edit, message):
    _edit(exported / file, edit)
    with pytest.raises(ContractError, match=message) as error:
        read_hdf5_scan(exported)
    assert str(exported) in str(error.value) and "\n" not in str(error.value)


def test_a_truncated_or_foreign_file_is_a_clear_error(exported, tmp_path):
    product = exported / PRODUCT_FILE
    product.write_bytes(product.read_bytes()[:2000])
    with pytest.raises(ContractError, match="not a readable HDF5 file"):
        read_hdf5_scan(exported)
    foreign = tmp_path / "other.cxi"
    with h5py.File(foreign, "w") as h5:
        h5.create_dataset("temperature", data=[21.5])
    with pytest.raises(ContractError, match="is it a scan file"):
        read_hdf5_scan(foreign)


def test_off_grid_positions_are_refused_unless_rounding_is_asked(scan, exported):
    _edit(exported / PRODUCT_FILE, lambda h5: _replace(h5, "probe_position_x_m", h5["probe_position_x_m"][()] + 3e-9))
    with pytest.raises(ContractError, match="not whole object pixels"):
        read_hdf5_scan(exported)
    rounded = read_hdf5_scan(exported, round_positions=True)
    np.testing.assert_array_equal(rounded.xcoords, scan.xcoords)
    assert rounded.metadata["provenance"]["position_rounding"]["max_px"] > 0


def test_the_commands(exported, tmp_path):
    target = tmp_path / "back.npz"
    command = [sys.executable, "-m", "ptystudy.scan.hdf5", "import", str(exported / CXI_FILE), str(target)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert load_scan(target).n_patterns > 0
    nothing = [sys.executable, "-m", "ptystudy.scan.hdf5", "export", str(tmp_path / "nothing"), str(tmp_path / "x")]
    result = subprocess.run(nothing, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no scan files" in result.stderr


def test_a_run_exports_every_scan_view_and_reconstruction(scan, tmp_path):
    io = pytest.importorskip("ptychodus.api.io")
    run = tmp_path / "run"
    write_scan(run / "data" / "dose_10000" / "test.npz", scan)
    write_scan(run / "views" / "dose_10000" / "dense" / "test.npz", scan)
    coverage = np.ones(scan.obj.shape, bool)
    recon = Reconstruction(scan.obj * 0.5, coverage, {"arm": "lsqml", "cost_per_epoch": [3.0, 2.0, 1.5]})
    write_recon(run / "recon" / "dose_10000" / "dense" / "test" / "lsqml.npz", recon)
    written = export_run(run, tmp_path / "out")
    names = {str(path.relative_to(tmp_path / "out")) for path in written}
    assert names == {
        *(
            f"dose_10000/{view}/test/{name}"
            for view in ("all", "dense")
            for name in (DIFFRACTION_FILE, PRODUCT_FILE, CXI_FILE)
        ),
        "dose_10000/dense/test/reconstructions/lsqml.h5",
    }
    product = io.load_product(tmp_path / "out" / "dose_10000" / "dense" / "test" / "reconstructions" / "lsqml.h5")
    np.testing.assert_array_equal(product.object_.get_array().reshape(scan.obj.shape), scan.obj * 0.5)
    assert [loss.value for loss in product.losses] == [3.0, 2.0, 1.5]
