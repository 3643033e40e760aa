"""What every figure shares: atomic PNG writing and colour maps that mark unscored pixels."""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from ptystudy.files import atomic_path

UNSCORED_COLOUR = "#b9e4b0"
"""Pale green: pixels outside a view's coverage, a colour neither the grey amplitude map nor
the twilight phase map contains."""


def save_figure(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as PNG, atomically."""
    with atomic_path(Path(path), suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight")
    return Path(path)


def matplotlib_cmap(name: str) -> Colormap:
    """A copy of colour map ``name`` with masked pixels drawn pale green, which neither the
    grey amplitude map nor the twilight phase map contains."""
    return colormaps[name].with_extremes(bad=UNSCORED_COLOUR)
