"""Phase G's figures for one condition: the aligned montage of every arm and the FRC curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ptystudy.naming import ARM_COLOURS, COMPONENT_UNITS, arm_title
from ptystudy.plots import matplotlib_cmap, save_figure


def plot_montage(
    path: Path,
    truth: dict[str, np.ndarray],
    arms: dict[str, dict[str, np.ndarray]],
    mask: np.ndarray,
    *,
    captions: dict[str, str],
    title: str,
) -> Path:
    """Ground truth and every arm (rows), amplitude and phase (columns), shared colour scales.

    truth, arms[arm] : {"amplitude": (h, w), "phase": (h, w)} aligned crops.
    mask : (h, w) bool; unscored pixels are drawn pale green (a colour neither map uses).
    captions : a line under each arm's name (e.g. its scores).
    """
    rows = {"ground truth": truth, **{arm_title(arm): images for arm, images in arms.items()}}
    notes = {"ground truth": "", **{arm_title(arm): captions.get(arm, "") for arm in arms}}
    height, width = mask.shape
    panel_width = 4.2
    panel_height = max(panel_width * height / width, 1.2) + 0.7
    figure = Figure(figsize=(2 * panel_width + 1.2, panel_height * len(rows) + 0.6), layout="constrained")
    grid = figure.subplots(len(rows), 2, squeeze=False)
    for column, component in enumerate(("amplitude", "phase")):
        vmin, vmax = float(truth[component][mask].min()), float(truth[component][mask].max())
        cmap = matplotlib_cmap("gray" if component == "amplitude" else "twilight_shifted")
        image = None
        for row, (name, images) in enumerate(rows.items()):
            axes = grid[row, column]
            values = np.ma.masked_array(images[component], ~mask)
            image = axes.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            note = "\n" + notes[name].replace("; ", "\n") if notes[name] and column == 0 else ""
            axes.set_title(f"{name}: {component}{note}", fontsize=8)
        # below its column: beside it, a colour bar would cover the captions of the next column
        figure.colorbar(
            image, ax=grid[:, column], location="bottom", shrink=0.8, aspect=30, label=COMPONENT_UNITS[component]
        )
    figure.suptitle(f"{title}\nafter alignment; pale green = not scored (outside the view's coverage)", fontsize=9)
    return save_figure(figure, path)


def plot_frc(path: Path, curves: dict[str, dict[str, Any]], *, title: str) -> Path:
    """FRC per arm for amplitude and phase, with the 0.5 and 1/2-bit thresholds.

    curves[arm][component] : an object with ``frequency``, ``frc`` and ``halfbit`` arrays.
    """
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    grid = figure.subplots(1, 2, sharey=True)
    for axes, component in zip(grid, ("amplitude", "phase"), strict=True):
        reference = None
        for arm, by_component in curves.items():
            curve = by_component[component]
            reference = curve
            axes.plot(curve.frequency, curve.frc, color=ARM_COLOURS.get(arm), label=arm_title(arm))
        axes.axhline(0.5, color="black", linestyle="--", linewidth=0.8, label="0.5 threshold")
        if reference is not None:
            axes.plot(reference.frequency, reference.halfbit, color="grey", linestyle=":", label="1/2-bit threshold")
        axes.set_xlim(0, 1)
        axes.set_ylim(-0.2, 1.02)
        axes.set_xlabel("spatial frequency (fraction of Nyquist)")
        axes.set_title(f"{component}")
        axes.grid(alpha=0.3)
    grid[0].set_ylabel("Fourier ring correlation with the truth")
    grid[1].legend(fontsize=7, loc="upper right")
    figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)
