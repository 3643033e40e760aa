"""Phase D: overlap formula, scan layouts, pairing across doses, groups, views and corpora."""

import re

import numpy as np
import pytest

from ptystudy.conditions import Split, conditions
from ptystudy.errors import ContractError, InfeasibleViewError
from ptystudy.profiles import resolve_config
from ptystudy.scan.lattice import Region, min_spacing_px, nearest_neighbour_distances, scan_positions, split_rows
from ptystudy.scan.plan import check_plan
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_corpus, build_view, disc_overlap, make_groups


def test_disc_overlap_known_answers():
    """Equal discs: 1 at d = 0, 0 at d >= D, (2pi/3 - sqrt(3)/2) / pi at d = R."""
    values = disc_overlap(np.array([0.0, 5.0, 10.0, 12.0]), 10.0)
    assert values[0] == pytest.approx(1.0)
    assert values[1] == pytest.approx((2 * np.pi / 3 - np.sqrt(3) / 2) / np.pi)
    assert values[2] == 0.0 and values[3] == 0.0
    assert np.all(np.diff(disc_overlap(np.linspace(0, 10, 50), 10.0)) <= 0)
    with pytest.raises(ValueError, match="diameter_px must be > 0"):
        disc_overlap(np.array([1.0]), 0.0)


def test_min_spacing():
    assert min_spacing_px(0.7, 30.0) == pytest.approx(9.0)
    assert min_spacing_px(0.0, 30.0) == 30.0 and min_spacing_px(-0.5, 30.0) == pytest.approx(45.0)
    for impossible in (1.0, -1.0):
        with pytest.raises(ValueError, match=r"overlap must be in \(-1, 1\)"):
            min_spacing_px(impossible, 30.0)


@pytest.mark.parametrize("step", [4.4, 8.7, 11.6, 23.3])
def test_a_scan_is_an_integer_lattice_whose_mean_spacing_is_the_step(step):
    """Mean nearest-neighbour spacing within 10 % of S (here: 3 %), even at a few-pixel step
    where rounding to whole pixels pulls neighbours together; inside the region; seeded."""
    region = Region(16, 80, 16, 176)
    ys, xs = scan_positions(region, step, [456, 1])
    assert np.array_equal(ys, np.rint(ys)) and np.array_equal(xs, np.rint(xs))
    assert ys.min() >= 16 and ys.max() <= 80 and xs.min() >= 16 and xs.max() <= 176
    spacing = nearest_neighbour_distances(ys, xs).mean()
    assert spacing == pytest.approx(step, rel=0.03)
    again = scan_positions(region, step, [456, 1])
    other = scan_positions(region, step, [456, 2])
    assert np.array_equal(again[0], ys) and np.array_equal(again[1], xs)
    assert not (other[0].size == ys.size and np.array_equal(other[0], ys))


def test_groups_are_seed_plus_distinct_nearest_neighbours():
    rng = np.random.default_rng(1)
    ys, xs = rng.uniform(0, 100, 60), rng.uniform(0, 100, 60)
    groups = make_groups(ys, xs, neighbours=7, group_size=4, rng=np.random.default_rng(5))
    assert groups.shape == (60, 4) and groups.dtype == np.int64
    assert np.array_equal(groups[:, 0], np.arange(60))
    for seed, members in enumerate(groups):
        assert len(set(members)) == 4
        order = np.argsort(np.hypot(ys - ys[seed], xs - xs[seed]))
        assert set(members[1:]) <= set(order[1:8])
    with pytest.raises(ValueError, match="at least neighbours \\+ 1 = 8"):
        make_groups(ys[:5], xs[:5], neighbours=7, group_size=4, rng=rng)


@pytest.fixture(scope="module")
def smoke_scans():
    from ptystudy.profiles import resolve_config

    config = resolve_config("smoke", overrides={"training.min_samples": 400})
    return config, {dose: simulate_study_dose(config, dose) for dose in (1e3, 1e5)}


def _views(config, scans, split):
    return {
        name: build_view(scans[split], name=name, overlap=f, config=config.views, seeds=config.seeds)
        for name, f in config.views.overlaps.items()
    }


def test_dense_views_overlap_more_than_sparse_and_as_much_as_f_promises(smoke_scans):
    config, scans = smoke_scans
    for split in Split:
        results = _views(config, scans[1e3], split)
        dense, sparse = results["dense"], results["sparse"]
        assert dense.summary["measured_overlap"] > sparse.summary["measured_overlap"]
        assert dense.scan.n_patterns > sparse.scan.n_patterns >= config.views.min_positions
        for result in results.values():
            summary = result.summary
            assert summary["mean_spacing_over_step"] == pytest.approx(1.0, abs=0.1)
            assert summary["measured_overlap"] == pytest.approx(summary["overlap_at_step"], abs=0.05)
            view = result.scan
            assert view.groups.shape == (view.n_patterns, 4)
            assert view.metadata["n_patterns"] == view.n_patterns


@pytest.mark.parametrize("overlap", [0.0, -0.3])
def test_a_view_without_overlap_has_touching_footprints_and_still_groups(overlap):
    """f = 0 (the map's lowest overlap): the step is the footprint D, so neighbouring probe
    discs touch; the measured overlap is 0 up to what rounding positions to whole pixels
    adds (discs one pixel closer than D), and the view still has its gs2 groups. f < 0
    leaves gaps: nothing overlaps."""
    config = resolve_config(
        "smoke", overrides={"views.overlaps": {"apart": overlap, "dense": 0.7}, "training.min_samples": 64}
    )
    assert check_plan(config)
    scans = simulate_study_dose(config, 10)
    for split in Split:
        result = _views(config, scans, split)["apart"]
        diameter = result.summary["probe_diameter_px"]
        assert result.summary["step_px"] == pytest.approx((1 - overlap) * diameter)
        assert result.summary["measured_overlap"] <= disc_overlap(np.array([diameter - 1.0]), diameter)[0]
        if overlap < 0:
            assert result.summary["measured_overlap"] == 0.0
        assert result.summary["mean_spacing_over_step"] == pytest.approx(1.0, abs=0.1)
        assert result.scan.groups.shape == (result.scan.n_patterns, 4)


def test_a_view_has_the_same_positions_and_groups_at_every_dose(smoke_scans):
    """Paired design: only the photon noise differs between the doses of a view."""
    config, scans = smoke_scans
    for split in Split:
        low, high = _views(config, scans[1e3], split), _views(config, scans[1e5], split)
        for name in config.views.overlaps:
            a, b = low[name].scan, high[name].scan
            assert np.array_equal(a.ycoords, b.ycoords) and np.array_equal(a.xcoords, b.xcoords)
            assert np.array_equal(a.groups, b.groups)
            assert b.counts().sum() > 50 * a.counts().sum()


def test_the_corpus_starts_with_the_view_and_never_touches_the_test_region(smoke_scans):
    config, scans = smoke_scans
    train = scans[1e4 if 1e4 in scans else 1e3][Split.TRAIN]
    size = config.scan.patch_size_px
    cut_row, _, _ = split_rows(config.scan.object_shape_px[0], size, config.scan.train_fraction)
    for name, f in config.views.overlaps.items():
        view = build_view(train, name=name, overlap=f, config=config.views, seeds=config.seeds).scan
        corpus = build_corpus(train, name=name, config=config.views, seeds=config.seeds)
        assert corpus.n_patterns >= 400
        n = view.n_patterns
        assert np.array_equal(corpus.diffraction[:n], view.diffraction)
        assert np.array_equal(corpus.ycoords[:n], view.ycoords) and np.array_equal(corpus.groups[:n], view.groups)
        # every pixel of every corpus patch lies above the cut; every test patch below it
        assert corpus.ycoords.max() + size - size // 2 <= cut_row
        starts = np.cumsum([0] + [scan["n_positions"] for scan in corpus.metadata["corpus_scans"]])
        scan_of = np.searchsorted(starts, np.arange(corpus.n_patterns), side="right") - 1
        assert np.all(scan_of[corpus.groups] == scan_of[corpus.groups[:, :1]]), "groups stay inside one scan"
    test = scans[1e3][Split.TEST]
    assert test.ycoords.min() - size // 2 >= cut_row
    with pytest.raises(Exception, match="train split"):
        build_corpus(test, name="dense", config=config.views, seeds=config.seeds)


def test_plan_check_fails_before_any_work(smoke_config, tmp_path):
    assert len(conditions(smoke_config)) == 12
    assert re.fullmatch(
        r"probe footprint D = \d+\.\d px, \d+ scans of \d+ positions per dose", check_plan(smoke_config)
    )
    tight = smoke_config.model_copy(
        update={
            "views": smoke_config.views.model_copy(
                update={"overlaps": {"dense": 0.7, "sparse": 0.0}, "min_positions": 30}
            )
        }
    )
    with pytest.raises(
        InfeasibleViewError,
        match=r"view sparse \(train\): a scan with step 1\d\.\d px holds \d+ positions in the 33 x 97",
    ):
        check_plan(tight)
    greedy = smoke_config.model_copy(
        update={"training": smoke_config.training.model_copy(update={"min_samples": 10_000_000})}
    )
    with pytest.raises(InfeasibleViewError, match="training corpus needs 10000000 samples"):
        check_plan(greedy)
    given = resolve_config("smoke", overrides={"scan.files": {"1000": {"train": str(tmp_path / "a.npz"), "test": "b"}}})
    with pytest.raises(ContractError, match=r"a\.npz: file not found \(scan.files, dose 1000, train split\)"):
        check_plan(given)
