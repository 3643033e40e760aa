"""A network's figure: its training and validation loss per epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ptystudy.plots import save_figure


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
