"""The views' figure: nearest-neighbour spacings against the scan step and the probe footprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ptystudy.plots import save_figure


def plot_spacing_histogram(
    path: Path,
    nn_distances_px: np.ndarray,
    *,
    step_px: float,
    diameter_px: float,
    measured_overlap: float,
    title: str,
) -> Path:
    """Histogram of nearest-neighbour spacings with the scan step S and the probe footprint D marked."""
    figure = Figure(figsize=(5.5, 3.6))
    axes = figure.add_subplot()
    top = max(float(nn_distances_px.max()), diameter_px) * 1.05
    axes.hist(nn_distances_px, bins=np.linspace(0, top, 40), color="tab:blue", alpha=0.8)
    axes.axvline(step_px, color="tab:red", linestyle="--", label=f"scan step S = {step_px:.1f} px")
    mean = float(nn_distances_px.mean())
    axes.axvline(mean, color="tab:blue", linestyle="-", label=f"mean spacing {mean:.1f} px")
    axes.axvline(diameter_px, color="black", linestyle=":", label=f"probe footprint D = {diameter_px:.1f} px")
    axes.set_xlabel("distance to nearest neighbour (object pixels)")
    axes.set_ylabel("positions")
    axes.set_title(
        f"{title}\n{nn_distances_px.size} positions, mean disc overlap with nearest neighbour {measured_overlap:.2f}"
    )
    axes.legend(fontsize=8)
    return save_figure(figure, path)
