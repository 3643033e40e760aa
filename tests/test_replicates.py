"""Replicates: each redraws photon noise, scan layouts, corpora and network initialisations,
keeps the specimen, and replicate 0 is the study without replicates (its cache included)."""

from __future__ import annotations

import json

from flows.study import study

import numpy as np
import pandas as pd
import pytest

from ptystudy.conditions import Split
from ptystudy.config import Seeds
from ptystudy.profiles import resolve_config
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import load_scan
from ptystudy.scan.simulate import simulate_study_dose


def test_replicate_seeds(smoke_config):
    seeds = smoke_config.seeds
    assert seeds.for_replicate(0) is seeds
    first = seeds.for_replicate(1)
    assert first.specimen == seeds.simulation and first.specimen_seed == seeds.simulation
    assert len({first.simulation, first.grouping, first.subsampling} & {seeds.simulation, seeds.grouping}) == 0
    assert seeds.for_replicate(1) == first != seeds.for_replicate(2)
    # replicate 0's seeds read as before (cache keys hold them)
    assert Seeds().model_dump() == {"simulation": 42, "grouping": 123, "subsampling": 456}
    assert resolve_config("smoke").replicates == resolve_config("quick").replicates == 1
    assert resolve_config("paper").replicates == 3


def test_a_replicate_keeps_the_specimen_and_redraws_noise_and_scans(smoke_config):
    again = smoke_config.model_copy(update={"seeds": smoke_config.seeds.for_replicate(1)})
    base, other = simulate_study_dose(smoke_config, 1e4)[Split.TRAIN], simulate_study_dose(again, 1e4)[Split.TRAIN]
    np.testing.assert_array_equal(base.obj, other.obj)
    assert not np.array_equal(base.ycoords[:20], other.ycoords[:20])


@pytest.mark.integration
def test_replicates_pair_the_arms_and_replicate_0_is_the_study(prefect_server, tmp_path):
    overrides = {"scan.doses": [1000], "training.arms": ["pinn"], "views.overlaps": {"sparse": None}}
    single = study(profile="smoke", out=str(tmp_path), overrides=overrides)
    before = pd.read_csv(tmp_path / "report" / "metrics.csv")

    twice = study(profile="smoke", out=str(tmp_path), overrides=overrides, replicates=2)
    assert (twice["n_conditions"], twice["n_success"], twice["replicates"]) == (2, 2, 2)
    assert twice["replicate_runs"] == {"total": 4, "succeeded": 4, "failed": 0}
    # replicate 0 comes from the single run's cache; replicate 1 is computed
    tally = {phase: (t["cached"], t["tasks"]) for phase, t in twice["phases"].items()}
    assert tally == {
        "simulate": (1, 2),
        "views": (2, 4),
        "train": (1, 2),
        "lsqml": (2, 4),
        "infer": (2, 4),
        "compare": (2, 4),
    }, (tally, single["phases"])

    layout = RunLayout(tmp_path)
    first, second = load_scan(layout.scan(1000, "train")), load_scan(layout.replicate(1).scan(1000, "train"))
    np.testing.assert_array_equal(first.obj, second.obj)
    assert not np.array_equal(first.ycoords, second.ycoords)

    metrics = pd.read_csv(layout.report_dir / "metrics.csv")
    assert set(metrics.replicate) == {0, 1}
    zero = metrics[metrics.replicate == 0].drop(columns="replicate").reset_index(drop=True)
    pd.testing.assert_frame_equal(zero, before.drop(columns="replicate"))
    summary = pd.read_csv(layout.report_dir / "metrics_summary.csv")
    onsets = summary.metric.str.endswith("_onset")  # missing where a replicate has no FRC band
    assert set(summary.n[~onsets]) == {2} and set(summary.n[onsets]) <= {0, 1, 2}
    both = summary[summary.n == 2]
    assert (both.ci_low <= both["mean"]).all() and (both["mean"] <= both.ci_high).all()
    paired = pd.read_csv(layout.report_dir / "paired_comparisons.csv")
    assert set(paired.comparison) == {"pinn - lsqml"} and set(paired.n) == {2}
    assert set(paired.verdict) <= {"better", "worse", "no detectable difference"}
    markdown = (layout.report_dir / "summary.md").read_text()
    assert "replicates: **2**" in markdown and "## Paired comparisons" in markdown
    assert json.loads((layout.report_dir / "summary.json").read_text())["replicates"] == 2

    again = study(profile="smoke", out=str(tmp_path), overrides=overrides, replicates=2)
    assert all(t["cached"] == t["tasks"] for t in again["phases"].values()), again["phases"]
    pd.testing.assert_frame_equal(pd.read_csv(layout.report_dir / "metrics.csv"), metrics)


@pytest.mark.integration
def test_a_failed_replicate_is_named_and_its_cell_uses_the_others(prefect_server, tmp_path, monkeypatch):
    """R = 2, then R = 3 with replicate 2's dense test view corrupted: only replicate 2 is
    computed, its failure is counted and named, and that cell's aggregates use n = 2. A
    second directory computes every replicate again from nothing: the same numbers, and
    each replicate's differ from the others'."""
    import tasks.views

    overrides = {"scan.doses": [1000], "training.arms": ["pinn_gs1"], "views.overlaps": {"sparse": None}}
    study(profile="smoke", out=str(tmp_path / "a"), overrides=overrides, replicates=2)
    real_write = tasks.views.write_scan

    def corrupting_write(path, scan):
        written = real_write(path, scan)
        if "replicates/r2/" in str(path) and "dense/test" in str(path):
            written.write_bytes(b"not an npz file")
        return written

    monkeypatch.setattr(tasks.views, "write_scan", corrupting_write)
    state = study(profile="smoke", out=str(tmp_path / "a"), overrides=overrides, replicates=3, return_state=True)
    assert state.is_failed() and state.message.endswith(
        "1 of 2 conditions failed, 1 succeeded (3 replicates: 5 of 6 runs succeeded)"
    ), state.message
    summary = json.loads((tmp_path / "a" / "report" / "summary.json").read_text())
    assert summary["replicate_runs"] == {"total": 6, "succeeded": 5, "failed": 1}
    (failure,) = summary["failures"]
    assert (failure["replicate"], failure["view"], failure["split"]) == (2, "dense", "test")
    assert "replicates/r2/views/dose_1000/dense/test.npz" in failure["error"]
    # replicates 0 and 1 from the cache: each phase computed only replicate 2's tasks
    tally = {phase: t["tasks"] - t["cached"] for phase, t in summary["phases"].items()}
    assert tally == {"simulate": 1, "views": 2, "train": 1, "lsqml": 2, "infer": 2, "compare": 1}, summary["phases"]

    cells = pd.read_csv(tmp_path / "a" / "report" / "metrics_summary.csv")
    cells = cells[~cells.metric.str.endswith("_onset")]  # an onset is missing where there is no FRC band
    assert set(cells[cells.split == "test"].n) == {2} and set(cells[cells.split == "train"].n) == {3}
    assert "| 1e3 | dense | test | 2 | " in (tmp_path / "a" / "report" / "summary.md").read_text()

    monkeypatch.setattr(tasks.views, "write_scan", real_write)
    study(profile="smoke", out=str(tmp_path / "b"), overrides=overrides, replicates=3)
    first, second = (pd.read_csv(tmp_path / name / "report" / "metrics.csv") for name in ("a", "b"))
    keys = ["dose", "view", "split", "arm", "component", "metric", "replicate"]
    both = first.merge(second, on=keys, suffixes=("_a", "_b"))
    assert len(both) == len(first) and set(both.replicate) == {0, 1, 2}  # a lacks only replicate 2's test cell
    np.testing.assert_array_equal(both.value_a.to_numpy(), both.value_b.to_numpy())
    by_replicate = second.pivot_table(index=keys[:-1], columns="replicate", values="value")
    scores = by_replicate.xs("ms_ssim", level="metric")
    assert (scores[0] != scores[1]).any() and (scores[1] != scores[2]).any(), "replicates redraw"
