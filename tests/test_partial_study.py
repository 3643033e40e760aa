"""Running part of the matrix through Prefect: only what the selection needs is computed, in
the full study's run directory and cache, so a later full run reuses it."""

from __future__ import annotations

import json

from flows.study import main, study

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

NARROW = ["--set", "scan.doses=[1000]", "--set", "training.arms=[pinn_gs1]"]


def _tally(summary: dict) -> dict[str, tuple[int, int]]:
    return {phase: (tally["cached"], tally["tasks"]) for phase, tally in summary["phases"].items()}


def test_a_selected_condition_runs_alone_and_a_full_run_reuses_it(prefect_server, tmp_path, capsys):
    command = ["--profile", "smoke", "--out", str(tmp_path), *NARROW, "--view", "dense", "--split", "test"]
    assert main(command) == 0
    assert "selected: view dense; split test" in capsys.readouterr().out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["n_conditions"], summary["n_success"], summary["n_failed"]) == (1, 1, 0)
    # the test split's network is trained on the train split's view, which is built but not scored
    assert _tally(summary) == {
        "simulate": (0, 1),
        "views": (0, 2),
        "train": (0, 1),
        "lsqml": (0, 1),
        "infer": (0, 1),
        "compare": (0, 1),
    }
    metrics = pd.read_csv(tmp_path / "report" / "metrics.csv")
    assert set(zip(metrics["view"], metrics["split"], strict=True)) == {("dense", "test")}

    full = study(profile="smoke", out=str(tmp_path), overrides={"scan.doses": [1000], "training.arms": ["pinn_gs1"]})
    assert (full["n_conditions"], full["n_failed"], full["selection"]) == (4, 0, "all conditions")
    assert _tally(full) == {
        "simulate": (1, 1),
        "views": (2, 4),
        "train": (1, 2),
        "lsqml": (1, 4),
        "infer": (1, 4),
        "compare": (1, 4),
    }

    # another arm: the networks already trained are reused (an arm's cache key does not hold
    # the selection), the new arm is trained, and every condition is scored again with both
    more = ["--profile", "smoke", "--out", str(tmp_path), "--set", "scan.doses=[1000]", "--arm", "pinn_gs1"]
    assert main([*more, "--arm", "pinn_shared"]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert _tally(summary) == {
        "simulate": (1, 1),
        "views": (4, 4),
        "train": (2, 4),
        "lsqml": (4, 4),
        "infer": (4, 8),
        "compare": (0, 4),
    }
    metrics = pd.read_csv(tmp_path / "report" / "metrics.csv")
    assert set(metrics["arm"]) == {"pinn_gs1", "pinn_shared", "lsqml", "flat"}


def test_a_selection_outside_the_plan_is_refused_before_any_work(tmp_path, capsys):
    assert main(["--profile", "smoke", "--out", str(tmp_path), "--dose", "7"]) == 2
    assert "--dose 7: not a dose of the plan (1e3, 1e4, 1e5)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
