"""Statistics over replicates: per-cell summaries with 95 % intervals, and paired
comparisons between arms (each replicate draws new noise, scans, corpora and network
initialisations, so the replicates of one condition pair the arms).

Intervals are Student-t intervals of the mean (``scipy.stats.t``); with one replicate
there is no interval (NaN), and the verdict says so.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
CELL = ["dose", "view", "split", "arm", "component", "metric"]
"""One cell of the tidy metrics table, over replicates."""
PAIRS = (
    ("pinn", "lsqml"),
    ("pinn", "supervised"),
    ("pinn", "pinn_gs1"),
    ("pinn_shared", "pinn"),
    ("pinn_shared", "lsqml"),
)
"""Paired comparisons: the first arm minus the second."""
PAIRED_METRICS = (("phase", "ms_ssim"), ("amplitude", "ms_ssim"), ("phase", "frc50"))
"""Scores compared in pairs; for each, higher is better."""
REFERENCE_ARM = "lsqml"
"""The iterative reconstruction every network is measured against in the crossover map."""
NOT_NETWORKS = frozenset({REFERENCE_ARM, "flat"})
SUMMARY_COLUMNS = [*CELL, "mean", "std", "n", "ci_low", "ci_high"]
PAIRED_COLUMNS = [
    "dose",
    "view",
    "split",
    "comparison",
    "component",
    "metric",
    "mean_difference",
    "n",
    "ci_low",
    "ci_high",
    "verdict",
]


def mean_interval(values: np.ndarray) -> tuple[float, float, int, float, float]:
    """``(mean, std, n, ci_low, ci_high)`` of the finite ``values``; std and the interval are
    NaN with fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = int(values.size)
    if n == 0:
        return np.nan, np.nan, 0, np.nan, np.nan
    mean = float(values.mean())
    if n < 2:
        return mean, np.nan, n, np.nan, np.nan
    std = float(values.std(ddof=1))
    if std == 0:
        return mean, 0.0, n, mean, mean
    low, high = stats.t.interval(CONFIDENCE, df=n - 1, loc=mean, scale=std / np.sqrt(n))
    return mean, std, n, float(low), float(high)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, n and 95 % interval of every cell of a tidy metrics table
    with a ``replicate`` column (one row per cell)."""
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    rows = [
        dict(zip(CELL, key, strict=True))
        | dict(zip(SUMMARY_COLUMNS[len(CELL) :], mean_interval(group["value"].to_numpy()), strict=True))
        for key, group in table.groupby(CELL, sort=False)
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def verdict(low: float, high: float, n: int) -> str:
    """Plain words for a difference's interval (higher is better)."""
    if n < 2:
        return f"n = {n}: no interval"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no detectable difference"


def _replicates_by_arm(table: pd.DataFrame) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """For every condition and ``PAIRED_METRICS`` score: ``((dose, view, split, component,
    metric), scores)`` with ``scores`` a replicate x arm table of the values."""
    for (dose, view, split), condition in table.groupby(["dose", "view", "split"], sort=False):
        for component, metric in PAIRED_METRICS:
            scores = condition[(condition.component == component) & (condition.metric == metric)]
            by_arm = scores.pivot_table(index="replicate", columns="arm", values="value", aggfunc="first")
            yield (dose, view, split, component, metric), by_arm


def paired_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """For every condition, each of ``PAIRS`` and ``PAIRED_METRICS``: the mean difference
    over the replicates both arms scored, its 95 % interval and a verdict."""
    rows = []
    if table.empty:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    for (dose, view, split, component, metric), by_arm in _replicates_by_arm(table):
        for first, second in PAIRS:
            if first not in by_arm or second not in by_arm:
                continue
            difference = (by_arm[first] - by_arm[second]).to_numpy()
            mean, _, n, low, high = mean_interval(difference)
            rows.append(
                {
                    "dose": dose,
                    "view": view,
                    "split": split,
                    "comparison": f"{first} - {second}",
                    "component": component,
                    "metric": metric,
                    "mean_difference": mean,
                    "n": n,
                    "ci_low": low,
                    "ci_high": high,
                    "verdict": verdict(low, high, n),
                }
            )
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


CROSSOVER_COLUMNS = [
    "dose",
    "view",
    "split",
    "component",
    "metric",
    "best_arm",
    "best_mean",
    "lsqml_mean",
    "mean_difference",
    "n",
    "ci_low",
    "ci_high",
    "winner",
]
NETWORK_BETTER, LSQML_BETTER, NO_DIFFERENCE = "network better", "LSQML better", "no detectable difference"
NETWORK_AHEAD, LSQML_AHEAD = "network ahead (one replicate)", "LSQML ahead (one replicate)"
"""Winners of a crossover cell: from the paired interval, or from the sign of the single
difference when one replicate gives no interval."""


def best_network_against_lsqml(table: pd.DataFrame) -> pd.DataFrame:
    """Per condition and ``PAIRED_METRICS`` score: the network arm with the highest mean over
    the replicates (``best_arm``), its paired difference from LSQML (mean, 95 % interval,
    n) and the ``winner``: ``network better`` or ``LSQML better`` where the interval
    excludes 0, ``no detectable difference`` where it does not, and with one replicate
    the side the single difference favours (``... ahead (one replicate)``; a tie of 0
    reads as no difference). A condition where no replicate scored both is left out.

    The best arm is chosen on the same replicates it is then compared on, which favours the
    networks slightly when several score alike. Conditions without LSQML or without a
    network are left out.
    """
    rows = []
    for (dose, view, split, component, metric), by_arm in _replicates_by_arm(table):
        networks = [arm for arm in by_arm.columns if arm not in NOT_NETWORKS]
        if REFERENCE_ARM not in by_arm or not networks:
            continue
        means = by_arm[networks].mean()
        if means.isna().all():
            continue
        best = str(means.idxmax())
        mean, _, n, low, high = mean_interval((by_arm[best] - by_arm[REFERENCE_ARM]).to_numpy())
        if n == 0:  # no replicate scored both
            continue
        rows.append(
            {
                "dose": dose,
                "view": view,
                "split": split,
                "component": component,
                "metric": metric,
                "best_arm": best,
                "best_mean": float(means[best]),
                "lsqml_mean": float(by_arm[REFERENCE_ARM].mean()),
                "mean_difference": mean,
                "n": n,
                "ci_low": low,
                "ci_high": high,
                "winner": winner(mean, low, high, n),
            }
        )
    return pd.DataFrame(rows, columns=CROSSOVER_COLUMNS)


def winner(mean: float, low: float, high: float, n: int) -> str:
    """Which side of a network-minus-LSQML difference wins (see ``best_network_against_lsqml``)."""
    if n >= 2:
        return {"better": NETWORK_BETTER, "worse": LSQML_BETTER}.get(verdict(low, high, n), NO_DIFFERENCE)
    if mean > 0:
        return NETWORK_AHEAD
    if mean < 0:
        return LSQML_AHEAD
    return NO_DIFFERENCE
