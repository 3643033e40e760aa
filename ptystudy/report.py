"""The study report (DESIGN §8, §10): the tidy metrics table, its figures and summaries."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ptystudy.compare import METRIC_COLUMNS
from ptystudy.figures import arm_rank, plot_heatmaps, plot_metric_curves
from ptystudy.files import write_text

HEADLINE = (
    ("phase", "ms_ssim"),
    ("phase", "frc50"),
    ("phase", "frc50_onset"),
    ("amplitude", "ms_ssim"),
    ("amplitude", "frc50"),
)
"""The scores the summary tables and curves show first."""
HEATMAPS = (("phase", "ms_ssim"), ("phase", "frc50"), ("amplitude", "ms_ssim"))


def read_metrics(paths: list[Path]) -> pd.DataFrame:
    """Concatenate per-condition ``metrics.csv`` files into one tidy table, sorted."""
    if not paths:
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    table = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    missing = set(METRIC_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"metrics files lack the column(s) {', '.join(sorted(missing))}")
    table = table.assign(_arm=table.arm.map(arm_rank))
    return table.sort_values(["dose", "view", "split", "_arm", "component", "metric"]).drop(columns="_arm")


def write_report(report_dir: Path, table: pd.DataFrame) -> dict[str, Path]:
    """Write ``metrics.csv``, the heatmaps (test split) and the metric-vs-dose curves.

    Returns the written files by name. With no metrics there are no figures.
    """
    report_dir = Path(report_dir)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, columns=list(METRIC_COLUMNS))
    files = {"metrics": write_text(report_dir / "metrics.csv", buffer.getvalue())}
    if table.empty:
        return files
    split = "test" if (table.split == "test").any() else str(table.split.iloc[0])
    for component, metric in HEATMAPS:
        name = f"heatmap_{component}_{metric}"
        files[name] = plot_heatmaps(report_dir / f"{name}.png", table, component=component, metric=metric, split=split)
    files["metrics_vs_dose"] = plot_metric_curves(report_dir / "metrics_vs_dose.png", table, panels=list(HEADLINE))
    return files


def wide_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (dose, view, split, arm) with a column per headline ``component metric``."""
    if table.empty:
        return pd.DataFrame()
    keys = ["dose", "view", "split", "arm"]
    pivot = table.pivot_table(index=keys, columns=["component", "metric"], values="value", aggfunc="first")
    columns = {f"{component} {metric}": pivot[(component, metric)] for component, metric in HEADLINE}
    wide = pd.DataFrame(columns).reset_index()
    wide["_arm"] = wide.arm.map(arm_rank)
    return wide.sort_values(["split", "dose", "view", "_arm"]).drop(columns="_arm")


def metrics_markdown(table: pd.DataFrame, figures: dict[str, Path]) -> str:
    """Markdown section: the headline scores per condition and arm, and the figure files."""
    wide = wide_table(table)
    if wide.empty:
        return "## Scores\n\nNo condition produced scores.\n"
    headers = list(wide.columns)
    lines = [
        "## Scores",
        "",
        "After alignment, on the view's scanned region (MS-SSIM: 1 is perfect; FRC in fractions of "
        "Nyquist: frc50 is where the first sustained band above 0.5 ends, 1 = resolved up to Nyquist; "
        "frc50_onset where it starts, above 0 for a low-frequency deficit). The flat row is the "
        "no-information reference. Full table: `report/metrics.csv`.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in wide.itertuples(index=False):
        cells = [
            f"{value:g}" if isinstance(value, float) and name == "dose" else _cell(value)
            for name, value in zip(headers, row, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"- {name}: `{path}`" for name, path in figures.items() if path.suffix == ".png"]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if np.isnan(value) else f"{value:.3f}"
    return str(value)
