"""The study report (docs/design.md §8, §10): the tidy metrics table, its figures and summaries."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptystudy.evaluate.compare import METRIC_COLUMNS
from ptystudy.evaluate.statistics import best_network_against_lsqml, paired_comparisons, summarise
from ptystudy.files import write_text
from ptystudy.naming import arm_rank, arm_title, dose_text
from ptystudy.report.figures import plot_heatmaps, plot_metric_curves
from ptystudy.report.findings import plot_crossover_map

REPORT_COLUMNS = (*METRIC_COLUMNS, "replicate")
"""The columns of ``report/metrics.csv``: a condition's metrics, per replicate."""

HEADLINE = (
    ("phase", "ms_ssim"),
    ("phase", "frc50"),
    ("phase", "frc50_onset"),
    ("amplitude", "ms_ssim"),
    ("amplitude", "frc50"),
)
"""The scores the summary tables and curves show first."""
HEATMAPS = (("phase", "ms_ssim"), ("phase", "frc50"), ("amplitude", "ms_ssim"))


def read_metrics(paths: list[Path], replicates: list[int] | None = None) -> pd.DataFrame:
    """Concatenate per-condition ``metrics.csv`` files into one tidy table, sorted, with the
    ``replicate`` each file belongs to (``replicates``, in the order of ``paths``; all 0 if None)."""
    if not paths:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    replicates = [0] * len(paths) if replicates is None else replicates
    if len(replicates) != len(paths):
        raise ValueError(f"{len(paths)} metrics files but {len(replicates)} replicate numbers")
    table = pd.concat(
        [pd.read_csv(path).assign(replicate=replicate) for path, replicate in zip(paths, replicates, strict=True)],
        ignore_index=True,
    )
    missing = set(METRIC_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"metrics files lack the column(s) {', '.join(sorted(missing))}")
    table = table.assign(_arm=table.arm.map(arm_rank))
    order = ["dose", "view", "split", "_arm", "component", "metric", "replicate"]
    return table.sort_values(order).drop(columns="_arm").reset_index(drop=True)


@dataclass(frozen=True)
class ReportTables:
    """The tidy metrics table (per replicate) with its per-cell summary, paired comparisons
    and the best network against LSQML per condition (the crossover map's cells), each
    computed once for the files, figures and markdown of the report."""

    table: pd.DataFrame
    summary: pd.DataFrame
    paired: pd.DataFrame
    crossover: pd.DataFrame

    @classmethod
    def of(cls, table: pd.DataFrame) -> ReportTables:
        return cls(table, summarise(table), paired_comparisons(table), best_network_against_lsqml(table))


def write_report(report_dir: Path, tables: ReportTables, overlaps: dict[str, float]) -> dict[str, Path]:
    """Write ``metrics.csv`` (per replicate), ``metrics_summary.csv`` (mean, spread, n and
    95 % interval per cell), ``paired_comparisons.csv``, ``crossover.csv`` and its map (the
    best network against LSQML per dose x view, views placed by their nominal overlap in
    ``overlaps``), the heatmaps (test split) and the metric-vs-dose curves (means, with
    their intervals as bands).

    Returns the written files by name, the map first. With no metrics there are no figures.
    """
    report_dir = Path(report_dir)
    files = {}
    if not tables.crossover.empty:
        files["crossover_map"] = plot_crossover_map(report_dir / "crossover_map.png", tables.crossover, overlaps)
    files |= {
        "metrics": _write_csv(report_dir / "metrics.csv", tables.table, list(REPORT_COLUMNS)),
        "metrics_summary": _write_csv(report_dir / "metrics_summary.csv", tables.summary),
        "paired_comparisons": _write_csv(report_dir / "paired_comparisons.csv", tables.paired),
        "crossover": _write_csv(report_dir / "crossover.csv", tables.crossover),
    }
    if tables.table.empty:
        return files
    means = tables.summary.rename(columns={"mean": "value"})
    split = "test" if (means.split == "test").any() else str(means.split.iloc[0])
    for component, metric in HEATMAPS:
        name = f"heatmap_{component}_{metric}"
        files[name] = plot_heatmaps(report_dir / f"{name}.png", means, component=component, metric=metric, split=split)
    files["metrics_vs_dose"] = plot_metric_curves(report_dir / "metrics_vs_dose.png", means, panels=list(HEADLINE))
    return files


def _write_csv(path: Path, table: pd.DataFrame, columns: list[str] | None = None) -> Path:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, columns=columns)
    return write_text(path, buffer.getvalue())


def wide_table(tables: ReportTables) -> pd.DataFrame:
    """One row per (dose, view, split, arm) with a column per headline ``component metric``:
    the mean over replicates, ``n`` the replicates scored, and with more than one replicate
    a ``... ±`` column per headline, the half-width of its 95 % interval."""
    if tables.table.empty:
        return pd.DataFrame()
    keys = ["dose", "view", "split", "arm"]
    summary = tables.summary
    pivot = summary.pivot_table(
        index=keys, columns=["component", "metric"], values="mean", aggfunc="first", dropna=False
    )
    half = (summary.ci_high - summary.ci_low) / 2
    spread = summary.assign(half=half).pivot_table(
        index=keys, columns=["component", "metric"], values="half", aggfunc="first", dropna=False
    )
    several = int(tables.table.replicate.nunique()) > 1
    columns = {"n": summary.groupby(keys).n.max()}
    for component, metric in HEADLINE:
        columns[f"{component} {metric}"] = pivot[(component, metric)]
        if several:
            columns[f"{component} {metric} ±"] = spread[(component, metric)]
    wide = pd.DataFrame(columns).reset_index()
    wide["_arm"] = wide.arm.map(arm_rank)
    return wide.sort_values(["split", "dose", "view", "_arm"]).drop(columns="_arm")


def display_table(wide: pd.DataFrame) -> pd.DataFrame:
    """``wide_table`` for people: doses as ``1e3``, arms by their titles (``PtychoPINN gs2``),
    scores rounded to 3 decimals (missing ones stay NaN)."""
    if wide.empty:
        return wide
    shown = wide.assign(dose=wide.dose.map(dose_text), arm=wide.arm.map(arm_title))
    scores = shown.select_dtypes("float").columns
    shown[scores] = shown[scores].round(3)
    return shown


def json_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Table rows as JSON-safe records (NaN -> None), for task results and Prefect artifacts."""
    return [
        {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
        for row in table.to_dict(orient="records")
    ]


def comparison_title(comparison: str) -> str:
    """``pinn - lsqml`` -> ``PtychoPINN gs2 - LSQML (pty-chi)``."""
    return " - ".join(arm_title(arm) for arm in comparison.split(" - "))


def metrics_markdown(wide: pd.DataFrame, paired: pd.DataFrame, figures: dict[str, Path]) -> str:
    """Markdown section: the headline scores per condition and arm (``wide_table``), the
    paired comparisons and the figure files."""
    wide = display_table(wide)
    if wide.empty:
        return "## Scores\n\nNo condition produced scores.\n"
    headers = list(wide.columns)
    lines = [
        "## Scores",
        "",
        "After alignment, on the view's scanned region (MS-SSIM: 1 is perfect; FRC in fractions of "
        "Nyquist: frc50 is where the first sustained band above 0.5 ends, 1 = resolved up to Nyquist; "
        "frc50_onset where it starts, above 0 for a low-frequency deficit, n/a when there is no band, "
        "a mean over the replicates that have one). "
        "The flat row is the no-information reference. Scores are means over the replicates scored (n); ± is the "
        "half-width of the 95 % interval. Full tables: `report/metrics.csv` (per replicate), "
        "`report/metrics_summary.csv`.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in wide.itertuples(index=False):
        cells = [_cell(value) for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _paired_markdown(paired)
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"- {name}: `{path}`" for name, path in figures.items() if path.suffix == ".png"]
    return "\n".join(lines) + "\n"


def _paired_markdown(paired: pd.DataFrame) -> list[str]:
    """The paired comparisons of the test split (all splits if none was scored), one row per
    condition and pair, a cell per metric: mean difference [95 % interval] verdict."""
    if paired.empty:
        return []
    shown = paired[paired.split == "test"] if (paired.split == "test").any() else paired
    metrics = list(dict.fromkeys(zip(shown.component, shown.metric, strict=True)))
    lines = [
        "",
        "## Paired comparisons",
        "",
        "The first arm minus the second, per condition, paired over the replicates both scored: "
        "mean difference [95 % interval] and verdict (higher is better for every score; with one "
        "replicate there is no interval). Full table: `report/paired_comparisons.csv`.",
        "",
        "| dose | view | split | comparison | " + " | ".join(f"{c} {m}" for c, m in metrics) + " |",
        "|---|---|---|---|" + "---|" * len(metrics),
    ]
    for (dose, view, split, comparison), rows in shown.groupby(["dose", "view", "split", "comparison"], sort=False):
        cells = []
        for component, metric in metrics:
            row = rows[(rows.component == component) & (rows.metric == metric)]
            if row.empty:
                cells.append("n/a")
                continue
            r = row.iloc[0]
            interval = "" if np.isnan(r.ci_low) else f" [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
            cells.append(f"{r.mean_difference:+.3f}{interval} {r.verdict}")
        lines.append(
            f"| {dose_text(dose)} | {view} | {split} | {comparison_title(comparison)} | " + " | ".join(cells) + " |"
        )
    return lines


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if np.isnan(value) else f"{value:.3f}"
    return str(value)
