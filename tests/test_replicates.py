"""Replicates: each redraws photon noise, scan layouts, corpora and network initialisations,
keeps the specimen, and replicate 0 is the study without replicates (its cache included)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flows.study import study
from ptystudy.conditions import Split
from ptystudy.config import Seeds, resolve_config
from ptystudy.contract import load_scan
from ptystudy.layout import RunLayout
from ptystudy.simulate import simulate_study_dose


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
    assert set(summary.n) == {2}
    assert (summary.ci_low <= summary["mean"]).all() and (summary["mean"] <= summary.ci_high).all()
    paired = pd.read_csv(layout.report_dir / "paired_comparisons.csv")
    assert set(paired.comparison) == {"pinn - lsqml"} and set(paired.n) == {2}
    assert set(paired.verdict) <= {"better", "worse", "no detectable difference"}
    markdown = (layout.report_dir / "summary.md").read_text()
    assert "replicates: **2**" in markdown and "## Paired comparisons" in markdown
    assert json.loads((layout.report_dir / "summary.json").read_text())["replicates"] == 2
