"""Statistics over replicates: known answers for the intervals and the paired verdicts."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ptystudy.evaluate.statistics import mean_interval, paired_comparisons, summarise


def test_the_interval_of_a_mean_is_students():
    mean, std, n, low, high = mean_interval(np.array([1.0, 2.0, 3.0, np.nan]))
    half = stats.t.ppf(0.975, df=2) * 1.0 / np.sqrt(3)  # 4.303 / sqrt(3)
    assert (mean, std, n) == (2.0, 1.0, 3)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    assert half == pytest.approx(2.484, abs=1e-3)
    one = mean_interval(np.array([0.7]))
    assert one[:3] == (0.7, pytest.approx(np.nan, nan_ok=True), 1) and np.isnan(one[3])


def _table(scores: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {
            "dose": 1000.0,
            "view": "dense",
            "split": "test",
            "arm": arm,
            "component": "phase",
            "metric": "ms_ssim",
            "value": value,
            "replicate": replicate,
        }
        for arm, values in scores.items()
        for replicate, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_summaries_per_cell():
    summary = summarise(_table({"pinn": [0.5, 0.6, 0.7], "lsqml": [0.9, 0.9, 0.9]}))
    pinn = summary[summary.arm == "pinn"].iloc[0]
    assert (pinn["mean"], pinn["n"]) == (pytest.approx(0.6), 3)
    lsqml = summary[summary.arm == "lsqml"].iloc[0]
    assert (lsqml["std"], lsqml["ci_low"], lsqml["ci_high"]) == (0.0, pytest.approx(0.9), pytest.approx(0.9))


@pytest.mark.parametrize(
    ("pinn", "lsqml", "expected"),
    [
        ([0.8, 0.81, 0.79], [0.6, 0.62, 0.61], "better"),
        ([0.5, 0.52, 0.49], [0.6, 0.62, 0.61], "worse"),
        ([0.5, 0.7, 0.6], [0.6, 0.58, 0.62], "no detectable difference"),
        ([0.8], [0.6], "n = 1: no interval"),
    ],
)
def test_paired_verdicts(pinn, lsqml, expected):
    compared = paired_comparisons(_table({"pinn": pinn, "lsqml": lsqml}))
    row = compared[compared.comparison == "pinn - lsqml"].iloc[0]
    assert row["verdict"] == expected
    assert row["mean_difference"] == pytest.approx(np.mean(np.subtract(pinn, lsqml)))


def test_pairs_use_only_replicates_both_arms_scored():
    table = _table({"pinn": [0.8, 0.81, 0.79], "lsqml": [0.6, 0.62]})  # lsqml's replicate 2 failed
    row = paired_comparisons(table).iloc[0]
    assert row["n"] == 2 and row["mean_difference"] == pytest.approx(0.195)
