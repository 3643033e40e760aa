"""Phase C on existing scans: reading either layout, and views laid out on a file's positions."""

import numpy as np
import pytest

from ptystudy.conditions import Split
from ptystudy.config import ConfigError
from ptystudy.errors import InfeasibleViewError
from ptystudy.profiles import resolve_config
from ptystudy.scan.contract import write_scan
from ptystudy.scan.existing import existing_split, read_scan_file, thin_at_radius, thin_to_spacing
from ptystudy.scan.lattice import nearest_neighbour_distances
from ptystudy.scan.ptychopinn import ptychopinn_arrays
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_corpus, build_view


@pytest.mark.parametrize("step", [4.0, 6.5, 10.0])
def test_thinning_reaches_the_step(step):
    grid = np.arange(0, 120, 2.0)
    ys, xs = (axis.ravel() for axis in np.meshgrid(grid, grid, indexing="ij"))
    index, radius = thin_to_spacing(ys, xs, step, np.random.default_rng(1))
    spacing = nearest_neighbour_distances(ys[index], xs[index]).mean()
    assert spacing == pytest.approx(step, rel=0.1)
    np.testing.assert_array_equal(index, thin_to_spacing(ys, xs, step, np.random.default_rng(1))[0])
    other = thin_at_radius(ys, xs, radius, np.random.default_rng(2))  # another scan of the geometry
    assert nearest_neighbour_distances(ys[other], xs[other]).mean() == pytest.approx(step, rel=0.15)
    assert not np.array_equal(other, index)


def test_a_file_coarser_than_the_step_keeps_every_position():
    grid = np.arange(0, 60, 8.0)
    ys, xs = (axis.ravel() for axis in np.meshgrid(grid, grid, indexing="ij"))
    index, radius = thin_to_spacing(ys, xs, 5.0, np.random.default_rng(0))
    np.testing.assert_array_equal(index, np.arange(ys.size))
    assert radius == 0


@pytest.fixture
def existing_files(smoke_config, tmp_path):
    """One dose's smoke scans, the train split in the contract layout and the test split
    in PtychoPINN's."""
    scans = simulate_study_dose(smoke_config, 1e4)
    train = write_scan(tmp_path / "train.npz", scans[Split.TRAIN])
    test = tmp_path / "test.npz"
    arrays = ptychopinn_arrays(scans[Split.TEST])
    np.savez(test, **{key: value for key, value in arrays.items() if key not in ("metadata", "diffraction")})
    return scans, {Split.TRAIN: train, Split.TEST: test}


def test_views_are_laid_out_on_the_files_positions(smoke_config, existing_files):
    scans, files = existing_files
    for split, path in files.items():
        source = read_scan_file(path, dose=2e4, round_positions=False)
        assert source.metadata["dose"] == 2e4 and "scans" not in source.metadata
        np.testing.assert_array_equal(source.counts(), scans[split].counts())
        laid_out = existing_split(
            source,
            split,
            smoke_config.views.overlaps,
            min_positions=smoke_config.views.min_positions,
            min_samples=smoke_config.training.min_samples,
            seed=3,
        )
        steps = []
        for view, overlap in smoke_config.views.overlaps.items():
            built = build_view(
                laid_out, name=view, overlap=overlap, config=smoke_config.views, seeds=smoke_config.seeds
            )
            positions = set(zip(source.ycoords, source.xcoords, strict=True))
            assert set(zip(built.scan.ycoords, built.scan.xcoords, strict=True)) <= positions
            steps.append(built.summary["nn_spacing_px"]["mean"])
        assert steps[0] < steps[1]  # dense before sparse
        if split is Split.TRAIN:  # further thinnings of the train file, each adding new positions
            for view in smoke_config.views.overlaps:
                entries = [entry for entry in laid_out.metadata["scans"] if entry["view"] == view]
                corpus = build_corpus(laid_out, name=view, config=smoke_config.views, seeds=smoke_config.seeds)
                assert corpus.n_patterns == sum(entry["n_positions"] for entry in entries)
                assert set(zip(corpus.ycoords, corpus.xcoords, strict=True)) <= positions
                covered = set()
                for entry in entries:
                    scan_rows = slice(entry["start"], entry["stop"])
                    new = set(zip(laid_out.ycoords[scan_rows], laid_out.xcoords[scan_rows], strict=True))
                    assert not new <= covered, f"{entry['name']} adds no position"
                    covered |= new
                assert corpus.n_patterns >= smoke_config.training.min_samples or len(covered) == source.n_patterns


def test_a_view_with_too_few_positions_is_infeasible(smoke_config, existing_files):
    _, files = existing_files
    source = read_scan_file(files[Split.TRAIN], dose=1e4, round_positions=False)
    with pytest.raises(InfeasibleViewError, match="keeps .* positions for view 'sparse'"):
        existing_split(source, Split.TRAIN, {"sparse": 0.0}, min_positions=10_000, min_samples=0, seed=3)


def test_files_set_the_doses_and_exclude_an_object_file(tmp_path):
    files = {"1000": {"train": "a.npz", "test": "b.npz"}, "100": {"train": "c.npz", "test": "d.npz"}}
    config = resolve_config("smoke", overrides={"scan.files": files})
    assert config.scan.doses == (100.0, 1000.0)
    with pytest.raises(ConfigError, match="exclude each other"):
        resolve_config("smoke", overrides={"scan.files": files, "scan.object_file": "x.npz"})
