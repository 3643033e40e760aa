"""LSQML's figure: its cost per epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ptystudy.plots import save_figure


def plot_cost_history(path: Path, cost_per_epoch: list[float], *, title: str) -> Path:
    """LSQML cost per epoch on a log scale."""
    figure = Figure(figsize=(5.5, 3.6))
    axes = figure.add_subplot()
    axes.semilogy(np.arange(1, len(cost_per_epoch) + 1), cost_per_epoch, marker=".")
    axes.set_xlabel("epoch")
    axes.set_ylabel("LSQML cost (pty-chi MSE of sqrt intensities)")
    axes.set_title(title)
    return save_figure(figure, path)
