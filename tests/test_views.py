"""Phase D: overlap formula, spaced selection, feasibility, groups and whole views."""

import numpy as np
import pytest

from ptystudy.errors import InfeasibleViewError
from ptystudy.layout import Split
from ptystudy.plan import check_plan, conditions
from ptystudy.simulate import simulate_dose
from ptystudy.views import (
    build_view,
    capacity_bound,
    disc_overlap,
    make_groups,
    min_spacing_px,
    nearest_neighbour_distances,
    select_spaced,
)


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
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\)"):
        min_spacing_px(1.0, 30.0)


def test_selected_positions_are_at_least_the_spacing_apart():
    rng = np.random.default_rng(0)
    ys, xs = np.meshgrid(np.arange(0, 60, 2.0), np.arange(0, 80, 2.0), indexing="ij")
    ys, xs = ys.ravel(), xs.ravel()
    index = select_spaced(ys, xs, 7.3, rng)
    distances = nearest_neighbour_distances(ys[index], xs[index])
    assert distances.min() >= 7.3
    assert index.size <= capacity_bound(float(np.ptp(ys)), float(np.ptp(xs)), 7.3)
    # greedy saturation: every rejected candidate has a kept position closer than S
    kept = np.column_stack([ys[index], xs[index]])
    for i in np.setdiff1d(np.arange(ys.size), index)[::37]:
        assert np.hypot(*(kept - [ys[i], xs[i]]).T).min() < 7.3
    again = select_spaced(ys, xs, 7.3, np.random.default_rng(0))
    assert np.array_equal(index, again)


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


@pytest.fixture
def train_scan(smoke_config):
    return simulate_dose(smoke_config.scan, smoke_config.seeds, 1e4)[Split.TRAIN]


def test_dense_views_overlap_more_than_sparse(smoke_config, train_scan):
    results = {
        name: build_view(train_scan, name=name, overlap=f, config=smoke_config.views, seeds=smoke_config.seeds)
        for name, f in smoke_config.views.overlaps.items()
    }
    dense, sparse = results["dense"], results["sparse"]
    assert dense.summary["measured_overlap"] > sparse.summary["measured_overlap"]
    assert dense.scan.n_patterns > sparse.scan.n_patterns >= smoke_config.views.min_positions
    for result in results.values():
        assert result.nn_distances_px.min() >= result.summary["min_spacing_px"]
        view = result.scan
        np.testing.assert_array_equal(
            view.diffraction, train_scan.diffraction[np.searchsorted(train_scan.scan_index, view.scan_index)]
        )
        assert view.groups.shape == (view.n_patterns, 4)
        assert view.metadata["n_patterns"] == view.n_patterns


def test_infeasible_view_fails_with_the_numbers(smoke_config, train_scan):
    views = smoke_config.views.model_copy(update={"min_positions": 500})
    with pytest.raises(InfeasibleViewError, match=r"holds at most \d+ positions .* fewer than min_positions = 500"):
        build_view(train_scan, name="dense", overlap=0.7, config=views, seeds=smoke_config.seeds)


def test_plan_check_fails_before_any_work(smoke_config):
    assert len(conditions(smoke_config)) == 12
    assert check_plan(smoke_config) > 0
    tight = smoke_config.model_copy(
        update={
            "views": smoke_config.views.model_copy(
                update={"overlaps": {"dense": 0.7, "sparse": 0.0}, "min_positions": 30}
            )
        }
    )
    with pytest.raises(
        InfeasibleViewError, match=r"view sparse \(train\): a 32 x 96 px region .* at most \d+ positions"
    ):
        check_plan(tight)
