"""Phase C: determinism, dose, counts, the split, and user objects."""

import numpy as np
import pytest

from ptystudy.conditions import Split
from ptystudy.errors import ContractError
from ptystudy.files import sha256_file
from ptystudy.profiles import resolve_config
from ptystudy.scan.contract import load_scan, write_scan
from ptystudy.scan.simulate import ScanPlanConfig, make_specimen, simulate_dose, simulate_study_dose


def test_same_seeds_give_bit_identical_files(smoke_config, tmp_path):
    first = simulate_study_dose(smoke_config, 1e4)
    second = simulate_study_dose(smoke_config, 1e4)
    for split in Split:
        a = write_scan(tmp_path / f"a_{split}.npz", first[split])
        b = write_scan(tmp_path / f"b_{split}.npz", second[split])
        assert sha256_file(a) == sha256_file(b)
    other = simulate_study_dose(
        smoke_config.model_copy(update={"seeds": smoke_config.seeds.model_copy(update={"simulation": 7})}), 1e4
    )
    assert not np.array_equal(other[Split.TRAIN].diffraction, first[Split.TRAIN].diffraction)


@pytest.mark.parametrize("dose", [10, 1e3, 1e5])
def test_mean_counts_match_the_dose_within_poisson_error(smoke_config, dose):
    scans = simulate_study_dose(smoke_config, dose)
    metadata = scans[Split.TRAIN].metadata
    n = metadata["pool_size"]
    # totals are Poisson with mean ~dose; the pool mean has standard error ~sqrt(dose / n)
    # plus the spread of the expected totals, which the scale makes average to the dose.
    assert abs(metadata["pool_mean_counts_per_pattern"] - dose) < 5 * np.sqrt(dose / n)
    assert metadata["dose"] == dose and metadata["scale"] > 0


def test_diffraction_squared_are_integer_counts(smoke_config):
    scan = simulate_study_dose(smoke_config, 1e3)[Split.TEST]
    squared = scan.diffraction.astype(np.float64) ** 2
    np.testing.assert_allclose(squared, np.rint(squared), atol=1e-3)
    assert scan.diffraction.dtype == np.float32 and scan.diffraction.min() >= 0


def test_no_test_patch_footprint_overlaps_a_train_one(smoke_config):
    scans = simulate_study_dose(smoke_config, 1e3)
    half = smoke_config.scan.patch_size_px // 2
    last_train_row = scans[Split.TRAIN].ycoords.max() + half - 1
    first_test_row = scans[Split.TEST].ycoords.min() - half
    assert last_train_row < first_test_row
    train_index, test_index = scans[Split.TRAIN].scan_index, scans[Split.TEST].scan_index
    assert np.intersect1d(train_index, test_index).size == 0


def test_every_dose_scans_the_same_specimen_and_positions(smoke_config):
    low = simulate_study_dose(smoke_config, 1e3)[Split.TRAIN]
    high = simulate_study_dose(smoke_config, 1e5)[Split.TRAIN]
    assert np.array_equal(low.obj, high.obj) and np.array_equal(low.probe, high.probe)
    assert np.array_equal(low.ycoords, high.ycoords) and np.array_equal(low.xcoords, high.xcoords)
    assert low.metadata["scans"] == high.metadata["scans"]
    assert high.counts().sum() > 50 * low.counts().sum()


def test_the_file_lists_every_planned_scan_of_its_split(smoke_config):
    config = smoke_config.model_copy(update={"training": smoke_config.training.model_copy(update={"min_samples": 500})})
    scans = simulate_study_dose(config, 1e4)
    train, test = scans[Split.TRAIN].metadata["scans"], scans[Split.TEST].metadata["scans"]
    assert [entry["name"] for entry in test] == ["dense", "sparse"]
    for view in ("dense", "sparse"):
        corpus = [entry for entry in train if entry["view"] == view]
        assert corpus[0]["name"] == view and corpus[1]["name"] == f"{view}/corpus-1"
        assert sum(entry["n_positions"] for entry in corpus) >= 500
        assert sum(entry["n_positions"] for entry in corpus[:-1]) < 500, "no more scans than needed"
    rows = [(entry["start"], entry["stop"]) for entry in train]
    assert rows[0][0] == 0 and rows[-1][1] == scans[Split.TRAIN].n_patterns
    assert all(stop == start for (_, stop), (start, _) in zip(rows, rows[1:])), "scans lie end to end"


def test_the_stationary_specimen_has_the_same_statistics_in_both_splits(smoke_config):
    """Mean, spread and power spectrum of amplitude and phase agree between the train and
    test halves of the built-in default, unlike the large-feature specimen's."""
    config = resolve_config("quick")
    assert config.scan.specimen == "stationary"
    obj = make_specimen(config.scan, config.seeds).obj
    half = obj.shape[0] // 2
    for part in (np.abs(obj), np.angle(obj)):
        top, bottom = part[:half], part[half:]
        assert abs(top.mean() - bottom.mean()) < 0.25 * part.std()
        assert abs(top.std() - bottom.std()) < 0.1 * part.std()
        power_top = np.abs(np.fft.rfft(top - top.mean(), axis=1)) ** 2
        power_bottom = np.abs(np.fft.rfft(bottom - bottom.mean(), axis=1)) ** 2
        bands = np.array_split(np.arange(power_top.shape[1]), 8)
        ratio = [power_top[:, band].mean() / power_bottom[:, band].mean() for band in bands]
        assert np.allclose(ratio, 1, atol=0.25), ratio


def _user_object(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_user_object_and_probe_are_used(smoke_config, tmp_path):
    rng = np.random.default_rng(3)
    obj = np.exp(1j * rng.uniform(-1, 1, (96, 100))).astype(np.complex128)
    probe = np.zeros((32, 32), np.complex64)
    probe[12:20, 12:20] = 1
    path = _user_object(tmp_path / "fly.npz", objectGuess=obj, probeGuess=probe)
    config = smoke_config.scan.model_copy(update={"object_file": str(path)})
    specimen = make_specimen(config, smoke_config.seeds)
    assert specimen.obj.shape == (96, 100) and specimen.obj.dtype == np.complex64
    assert np.array_equal(specimen.probe, probe)
    assert specimen.provenance["object_sha256"] == sha256_file(path)
    scans = simulate_dose(config, ScanPlanConfig.of(smoke_config), smoke_config.seeds, 1e4)
    assert scans[Split.TRAIN].obj.shape == (96, 100)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"probeGuess": np.ones((32, 32), np.complex64)}, "missing key objectGuess"),
        ({"objectGuess": np.ones((96, 96), np.float32)}, "objectGuess must be complex, got float32"),
        ({"objectGuess": np.full((96, 96), np.nan + 0j)}, "non-finite"),
        (
            {"objectGuess": np.ones((96, 96), np.complex64), "probeGuess": np.ones((128, 128), np.complex64)},
            r"probeGuess \(128, 128\) is larger than objectGuess",
        ),
        ({"objectGuess": np.ones((40, 40), np.complex64)}, "too small"),
    ],
)
def test_broken_user_objects_are_rejected_naming_the_file(smoke_config, tmp_path, arrays, message):
    path = _user_object(tmp_path / "user.npz", **arrays)
    config = smoke_config.scan.model_copy(update={"object_file": str(path)})
    with pytest.raises(ContractError, match=f"user.npz: .*{message}"):
        make_specimen(config, smoke_config.seeds)


def test_pickled_user_object_is_rejected(smoke_config, tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, objectGuess=np.array([{"not": "an array"}], dtype=object))
    config = smoke_config.scan.model_copy(update={"object_file": str(path)})
    with pytest.raises(ContractError, match="pickled.npz: holds a pickled object array"):
        make_specimen(config, smoke_config.seeds)


def test_written_scan_loads_without_pickle(smoke_config, tmp_path):
    scan = simulate_study_dose(smoke_config, 1e3)[Split.TRAIN]
    path = write_scan(tmp_path / "train.npz", scan)
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {
            "diffraction",
            "xcoords",
            "ycoords",
            "xcoords_start",
            "ycoords_start",
            "probeGuess",
            "objectGuess",
            "scan_index",
            "metadata",
        }
    loaded = load_scan(path)
    assert np.array_equal(loaded.diffraction, scan.diffraction)
    assert loaded.metadata == scan.metadata


def test_counts_do_not_depend_on_the_number_of_threads(smoke_config, monkeypatch):
    import ptystudy.scan.simulate as simulate

    threaded = simulate_study_dose(smoke_config, 1e4)[Split.TRAIN]
    monkeypatch.setattr(simulate.os, "cpu_count", lambda: 1)
    serial = simulate_study_dose(smoke_config, 1e4)[Split.TRAIN]
    assert np.array_equal(threaded.diffraction, serial.diffraction)
