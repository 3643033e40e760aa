"""The scan file validator: every broken file is rejected, naming the file and the problem."""

import json

import numpy as np
import pytest

from ptystudy.conditions import Split
from ptystudy.errors import ContractError, is_transient
from ptystudy.scan.contract import METADATA_KEY, SCAN_ARRAYS, load_scan, read_npz, write_scan
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_view


@pytest.fixture
def scan_file(smoke_config, tmp_path):
    scan = simulate_study_dose(smoke_config, 1e4)[Split.TRAIN]
    return write_scan(tmp_path / "train.npz", scan)


def _rewrite(path, **changes):
    """Rewrite ``path`` with some arrays replaced (None deletes the key)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


def _arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def test_valid_file_loads(scan_file):
    scan = load_scan(scan_file)
    assert scan.n_patterns == scan.metadata["n_patterns"] > 0
    np.testing.assert_array_equal(scan.counts(), np.rint(scan.diffraction.astype(np.float64) ** 2))


def test_missing_key(scan_file):
    _rewrite(scan_file, probeGuess=None)
    with pytest.raises(ContractError, match=r"train\.npz: missing key\(s\) probeGuess"):
        load_scan(scan_file)


def test_nan_in_diffraction(scan_file):
    diffraction = _arrays(scan_file)["diffraction"].copy()
    diffraction[0, 3, 3] = np.nan
    _rewrite(scan_file, diffraction=diffraction)
    with pytest.raises(ContractError, match=r"train\.npz: diffraction holds 1 non-finite value"):
        load_scan(scan_file)


def test_negative_counts(scan_file):
    diffraction = _arrays(scan_file)["diffraction"].copy()
    diffraction[1, 0, 0] = -1.0
    _rewrite(scan_file, diffraction=diffraction)
    with pytest.raises(ContractError, match=r"train\.npz: diffraction holds 1 negative value"):
        load_scan(scan_file)


def test_intensities_instead_of_amplitudes(scan_file):
    counts = (_arrays(scan_file)["diffraction"].astype(np.float64) ** 2).round().astype(np.float32)
    _rewrite(scan_file, diffraction=counts)
    with pytest.raises(ContractError, match=r"train\.npz: .*looks like intensities, not amplitudes"):
        load_scan(scan_file)


def test_expected_intensities_are_not_counts(scan_file):
    diffraction = _arrays(scan_file)["diffraction"] * np.float32(1.37)
    _rewrite(scan_file, diffraction=diffraction)
    with pytest.raises(ContractError, match=r"diffraction\*\*2 is not whole photon counts"):
        load_scan(scan_file)


def test_positions_outside_the_object(scan_file):
    xcoords = _arrays(scan_file)["xcoords"].copy()
    xcoords[2] = 1e4
    _rewrite(scan_file, xcoords=xcoords)
    with pytest.raises(ContractError, match=r"train\.npz: 1 position\(s\) put their patch outside"):
        load_scan(scan_file)


def test_wrong_dtype_and_shape(scan_file):
    arrays = _arrays(scan_file)
    _rewrite(scan_file, probeGuess=arrays["probeGuess"].astype(np.complex128))
    with pytest.raises(ContractError, match="probeGuess must be complex64, got complex128"):
        load_scan(scan_file)
    _rewrite(scan_file, probeGuess=arrays["probeGuess"], ycoords=arrays["ycoords"][:-1])
    with pytest.raises(ContractError, match=r"ycoords must have shape"):
        load_scan(scan_file)


def test_pickled_metadata_is_rejected(scan_file):
    _rewrite(scan_file, metadata=np.array([{"dose": 1}], dtype=object))
    with pytest.raises(ContractError, match="pickled object array"):
        load_scan(scan_file)


def test_metadata_must_match_the_arrays(scan_file):
    metadata = json.loads(str(_arrays(scan_file)["metadata"]))
    metadata["n_patterns"] += 1
    _rewrite(scan_file, metadata=np.array(json.dumps(metadata)))
    with pytest.raises(ContractError, match="metadata says"):
        load_scan(scan_file)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ContractError, match="nothing.npz: file not found"):
        load_scan(tmp_path / "nothing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ContractError, match="garbage.npz: not a readable NPZ"):
        load_scan(garbage)


def test_views_require_groups(scan_file):
    with pytest.raises(ContractError, match="missing key.*groups"):
        load_scan(scan_file, require_groups=True)


def test_contract_errors_are_never_transient():
    assert not is_transient(ContractError("bad file"))
    assert not is_transient(ValueError("bad value"))
    assert is_transient(TimeoutError("slow disk"))
    assert is_transient(MemoryError())


@pytest.mark.parametrize("spec", SCAN_ARRAYS, ids=lambda spec: spec.key)
def test_every_array_of_the_key_table_is_written_loaded_and_checked(smoke_config, tmp_path, spec):
    """One table drives writing, loading and the dtype and value checks of every array."""
    train = simulate_study_dose(smoke_config, 1e4)[Split.TRAIN]
    view = build_view(train, name="dense", overlap=0.7, config=smoke_config.views, seeds=smoke_config.seeds)
    scan = view.scan  # a view carries groups too
    path = write_scan(tmp_path / "view.npz", scan)
    arrays = _arrays(path)
    assert set(arrays) == {entry.key for entry in SCAN_ARRAYS} | {METADATA_KEY}
    loaded = load_scan(path, require_groups=True)
    np.testing.assert_array_equal(getattr(loaded, spec.attribute), getattr(scan, spec.attribute))

    if spec.copy:  # PtychoPINN's copy of a field: optional, and must equal it
        _rewrite(path, **{spec.key: arrays[spec.key] + 1})
        with pytest.raises(ContractError, match=f"view.npz: {spec.key} differs from {spec.attribute}"):
            load_scan(path, require_groups=True)
        _rewrite(path, **{spec.key: None})
        assert load_scan(path, require_groups=True).n_patterns == scan.n_patterns
        return
    wrong = {"i": np.int32, "f": np.float16, "c": np.complex128}[spec.dtype.kind]
    _rewrite(path, **{spec.key: arrays[spec.key].astype(wrong)})
    with pytest.raises(ContractError, match=f"view.npz: {spec.key} must be {spec.dtype}, got"):
        load_scan(path, require_groups=True)
    if spec.dtype.kind in "fc":
        broken = arrays[spec.key].copy()
        broken.flat[0] = np.inf
        _rewrite(path, **{spec.key: broken})
        with pytest.raises(ContractError, match=f"view.npz: {spec.key} holds 1 non-finite value"):
            load_scan(path, require_groups=True)
    _rewrite(path, **{spec.key: None})
    with pytest.raises(ContractError, match=f"view.npz: missing key\\(s\\) {spec.key}$"):
        load_scan(path, require_groups=True)


@pytest.mark.parametrize("key", ["xcoords", "ycoords"])
def test_positions_between_pixels_are_refused_at_load_time(scan_file, key):
    arrays = _arrays(scan_file)
    moved = arrays[key].copy()
    moved[2] += 0.93
    _rewrite(scan_file, **{key: moved, f"{key}_start": moved})
    with pytest.raises(ContractError, match=rf"train\.npz: 1 {key} value\(s\) are not whole pixels, first"):
        load_scan(scan_file)


def test_only_the_keys_asked_for_are_read(tmp_path):
    """A file with a pickled entry beside the arrays asked for (PtychoPINN writes its metadata
    so) is readable for those arrays; asking for the pickled one is refused."""
    path = tmp_path / "theirs.npz"
    np.savez(path, objectGuess=np.ones((4, 4), np.complex64), _metadata=np.array([{"a": 1}], dtype=object))
    assert set(read_npz(path, keys=("objectGuess", "probeGuess"))) == {"objectGuess"}
    with pytest.raises(ContractError, match="theirs.npz: holds a pickled object array"):
        read_npz(path)
