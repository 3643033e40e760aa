"""Figures of the study, written as PNG files (never shown on screen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ptystudy.files import atomic_path


def save_figure(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as PNG, atomically."""
    with atomic_path(Path(path), suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight")
    return Path(path)


def plot_spacing_histogram(
    path: Path,
    nn_distances_px: np.ndarray,
    *,
    min_spacing_px: float,
    diameter_px: float,
    measured_overlap: float,
    title: str,
) -> Path:
    """Histogram of nearest-neighbour spacings with the minimum spacing S and the probe D marked."""
    figure = Figure(figsize=(5.5, 3.6))
    axes = figure.add_subplot()
    top = max(float(nn_distances_px.max()), diameter_px) * 1.05
    axes.hist(nn_distances_px, bins=np.linspace(0, top, 40), color="tab:blue", alpha=0.8)
    axes.axvline(min_spacing_px, color="tab:red", linestyle="--", label=f"minimum spacing S = {min_spacing_px:.1f} px")
    axes.axvline(diameter_px, color="black", linestyle=":", label=f"probe footprint D = {diameter_px:.1f} px")
    axes.set_xlabel("distance to nearest neighbour (object pixels)")
    axes.set_ylabel("positions")
    axes.set_title(
        f"{title}\n{nn_distances_px.size} positions, mean disc overlap with nearest neighbour {measured_overlap:.2f}"
    )
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_loss_history(path: Path, history: dict) -> Path:
    """Training and validation loss per epoch, with the best epoch marked."""
    figure = Figure(figsize=(5.5, 3.6))
    axes = figure.add_subplot()
    epochs = np.arange(1, len(history["loss"]) + 1)
    axes.plot(epochs, history["loss"], marker="o", label="training")
    axes.plot(epochs, history["val_loss"], marker="s", label="validation")
    axes.axvline(history["best_epoch"], color="grey", linestyle=":", label=f"best epoch {history['best_epoch']}")
    unit = "Poisson NLL per pixel" if history["arm"].startswith("pinn") else "MAE amplitude + phase"
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"loss ({unit})")
    axes.set_title(f"{history['arm']}: {history['n_train']} training samples, {history['epochs_run']} epochs")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_cost_history(path: Path, cost_per_epoch: list[float], *, title: str) -> Path:
    """LSQML cost per epoch on a log scale."""
    figure = Figure(figsize=(5.5, 3.6))
    axes = figure.add_subplot()
    axes.semilogy(np.arange(1, len(cost_per_epoch) + 1), cost_per_epoch, marker=".")
    axes.set_xlabel("epoch")
    axes.set_ylabel("LSQML cost (pty-chi MSE of sqrt intensities)")
    axes.set_title(title)
    return save_figure(figure, path)
