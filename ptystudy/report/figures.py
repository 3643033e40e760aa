"""The report's figures over the whole matrix: heatmaps, scores against dose, and the specimen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ptystudy.naming import ARM_COLOURS, ARM_TITLES, COMPONENT_UNITS, METRIC_TITLES, arm_rank, arm_title, dose_text
from ptystudy.plots import save_figure


def plot_heatmaps(path: Path, table: Any, *, component: str, metric: str, split: str) -> Path:
    """One dose x view heatmap per arm of ``metric`` on ``component`` (values written in the cells).

    table : pandas DataFrame with the tidy columns of ``report/metrics.csv``, one row per
        cell (``value`` the mean over replicates); an optional ``std`` column is written
        under each value.
    """
    rows = table[(table.component == component) & (table.metric == metric) & (table.split == split)]
    arms = sorted(set(rows.arm), key=arm_rank)
    doses = sorted(set(rows.dose))
    views = list(dict.fromkeys(rows.view))
    figure = Figure(figsize=(2.6 * max(len(arms), 1) + 1.0, 0.55 * len(doses) + 1.8), layout="constrained")
    grid = figure.subplots(1, max(len(arms), 1), squeeze=False)[0]
    upper = 1.0 if metric in ("ms_ssim", "ssim", "frc50", "frc_halfbit") else float(np.nanmax(rows.value))
    image = None
    for axes, arm in zip(grid, arms, strict=False):
        cells = np.full((len(doses), len(views)), np.nan)
        spread = np.full((len(doses), len(views)), np.nan)
        for row in rows[rows.arm == arm].itertuples():
            cells[doses.index(row.dose), views.index(row.view)] = row.value
            spread[doses.index(row.dose), views.index(row.view)] = getattr(row, "std", np.nan)
        image = axes.imshow(cells, cmap="viridis", vmin=0.0, vmax=upper, aspect="auto", origin="lower")
        for (i, j), value in np.ndenumerate(cells):
            text = "failed" if np.isnan(value) else f"{value:.2f}"
            if not np.isnan(value) and np.isfinite(spread[i, j]):
                text += f"\n±{spread[i, j]:.2f}"
            axes.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if value < 0.6 * upper else "black"
            )
        axes.set_xticks(range(len(views)), views)
        axes.set_yticks(range(len(doses)), [dose_text(dose) for dose in doses])
        axes.set_xlabel("view (scan overlap)")
        axes.set_title(arm_title(arm), fontsize=9)
    grid[0].set_ylabel("dose (photons per pattern)")
    if image is not None:
        figure.colorbar(image, ax=list(grid), shrink=0.8, label=METRIC_TITLES.get(metric, metric))
    spread_note = ", mean ± s.d. over replicates" if "std" in rows and np.isfinite(rows["std"]).any() else ""
    figure.suptitle(f"{component} {METRIC_TITLES.get(metric, metric)}, {split} split{spread_note}", fontsize=10)
    return save_figure(figure, path)


def plot_metric_curves(path: Path, table: Any, *, panels: list[tuple[str, str]]) -> Path:
    """Metric vs dose, one column per view and one row per (component, metric), a line per arm.

    The test split is drawn solid, the training split dashed; optional ``ci_low`` and
    ``ci_high`` columns (the 95 % interval over replicates) are drawn as a band.
    """
    views = list(dict.fromkeys(table.view))
    figure = Figure(figsize=(4.2 * len(views), 2.8 * len(panels)), layout="constrained")
    grid = figure.subplots(len(panels), len(views), squeeze=False, sharex=True)
    for i, (component, metric) in enumerate(panels):
        for j, view in enumerate(views):
            axes = grid[i, j]
            cell = table[(table.view == view) & (table.component == component) & (table.metric == metric)]
            for arm in sorted(set(cell.arm) & set(ARM_TITLES), key=arm_rank):
                for split, style in (("test", "-"), ("train", "--")):
                    line = cell[(cell.arm == arm) & (cell.split == split)].sort_values("dose")
                    if line.empty:
                        continue
                    if "ci_low" in line and np.isfinite(line.ci_low).any():
                        axes.fill_between(
                            line.dose, line.ci_low, line.ci_high, color=ARM_COLOURS[arm], alpha=0.15, linewidth=0
                        )
                    axes.plot(
                        line.dose,
                        line.value,
                        style,
                        marker="o" if split == "test" else None,
                        color=ARM_COLOURS[arm],
                        alpha=1.0 if split == "test" else 0.5,
                        label=f"{arm_title(arm)} ({split})",
                    )
            axes.set_xscale("log")
            axes.grid(alpha=0.3)
            axes.set_title(f"{view} view: {component} {METRIC_TITLES.get(metric, metric)}", fontsize=9)
            if i == len(panels) - 1:
                axes.set_xlabel("dose (photons per pattern)")
            if j == 0:
                axes.set_ylabel(f"{component} {metric}")
    handles, labels = grid[0, 0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
    figure.suptitle("Scores vs dose (solid: held-out test split; dashed: training split)", fontsize=10)
    return save_figure(figure, path)


def radial_power_spectrum(image: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a real (h, w) image, its mean removed and a Hann
    window applied. Returns ``(frequency, power)``: (bins,) cycles per pixel (up to 0.5,
    Nyquist) and the mean |FFT|^2 per ring."""
    height, width = image.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    spectrum = np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij"))
    ring = np.minimum((radius / 0.5 * bins).astype(np.int64), bins)
    power = np.bincount(ring.ravel(), weights=spectrum.ravel(), minlength=bins + 1)[:bins]
    counts = np.bincount(ring.ravel(), minlength=bins + 1)[:bins]
    return (np.arange(bins) + 0.5) * 0.5 / bins, power / np.maximum(counts, 1)


def plot_specimen(path: Path, obj: np.ndarray, *, cut_row: int, diameter_px: float, title: str) -> Path:
    """The specimen's amplitude and phase with the train/test cut, and the feature-size
    spectrum of each: radially averaged power of the train and test halves against spatial
    frequency, with the probe footprint D and the finest (1 px) feature size marked."""
    figure = Figure(figsize=(12, 7.5), layout="constrained")
    grid = figure.subplots(2, 2)
    parts = {"amplitude": np.abs(obj), "phase": np.angle(obj)}
    for column, (component, values) in enumerate(parts.items()):
        axes = grid[0, column]
        image = axes.imshow(values, cmap="gray" if component == "amplitude" else "twilight_shifted")
        axes.axhline(cut_row - 0.5, color="tab:red", linewidth=1)
        axes.text(2, cut_row - 3, "train", color="tab:red", fontsize=8, va="bottom")
        axes.text(2, cut_row + 3, "test", color="tab:red", fontsize=8, va="top")
        axes.set_title(f"{component}")
        figure.colorbar(image, ax=axes, shrink=0.8, label=COMPONENT_UNITS[component])
        axes = grid[1, column]
        bins = min(values.shape) // 4
        for name, region, style in (("train half", values[:cut_row], "-"), ("test half", values[cut_row:], "--")):
            frequency, power = radial_power_spectrum(region, bins)
            axes.loglog(frequency[1:], power[1:], style, label=name)
        axes.axvline(1 / diameter_px, color="black", linestyle=":", label=f"1/D (features {diameter_px:.1f} px wide)")
        axes.axvline(0.5, color="grey", linestyle=":", label="Nyquist (1 px features)")
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("spatial frequency (cycles per pixel)")
        axes.set_ylabel("power (a.u.)")
        axes.set_title(f"{component}: feature-size spectrum")
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)
