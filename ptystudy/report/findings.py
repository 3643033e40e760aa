"""The study's answer, first in the report: the dose x overlap map of where the best network
and LSQML win (``crossover.csv``, ``crossover_map.png``) and sentences generated from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ptystudy.evaluate.statistics import (
    LSQML_AHEAD,
    LSQML_BETTER,
    NETWORK_AHEAD,
    NETWORK_BETTER,
    NO_DIFFERENCE,
    REFERENCE_ARM,
)
from ptystudy.naming import arm_rank, arm_short_title, arm_title, dose_text
from ptystudy.plots import save_figure

MAP_COMPONENTS = ("phase", "amplitude")
MAP_METRIC = "ms_ssim"
SIDES = {NETWORK_BETTER: 1, NETWORK_AHEAD: 1, NO_DIFFERENCE: 0, LSQML_AHEAD: -1, LSQML_BETTER: -1}
"""Which side a cell's winner is on: the crossover is drawn between cells of different sides."""
MARKS = {NETWORK_BETTER: "NN", NETWORK_AHEAD: "NN?", NO_DIFFERENCE: "=", LSQML_AHEAD: "LS?", LSQML_BETTER: "LS"}
"""The verdict written in a map cell: NN a network, LS LSQML, ? from one replicate (no interval)."""


def map_split(crossover: pd.DataFrame) -> str | None:
    """The split the map shows: test when it was scored, else the first one; None if empty."""
    if crossover.empty:
        return None
    return "test" if (crossover.split == "test").any() else str(crossover.split.iloc[0])


def map_cells(crossover: pd.DataFrame, component: str, overlaps: dict[str, float]) -> pd.DataFrame:
    """The map's cells for ``component``: one row per scored dose x view of the map's split,
    with the view's nominal overlap ``f`` (views ordered by f, then doses ascending)."""
    split = map_split(crossover)
    cells = crossover[
        (crossover.split == split) & (crossover.component == component) & (crossover.metric == MAP_METRIC)
    ]
    cells = cells.assign(f=cells.view.map(lambda view: overlaps.get(view, np.nan)))
    return cells.sort_values(["f", "view", "dose"]).reset_index(drop=True)


def crossover_edges(sides: np.ndarray) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Cell edges between neighbouring cells whose winners are on different sides, as line
    segments ``((x0, x1), (y0, y1))`` in image coordinates (cell (i, j) centred at x = j,
    y = i). ``sides`` (rows, columns): +1 network, -1 LSQML, 0 no difference, NaN no cell."""
    edges = []
    rows, columns = sides.shape
    for i in range(rows):
        for j in range(columns):
            here = sides[i, j]
            if np.isnan(here):
                continue
            if j + 1 < columns and not np.isnan(sides[i, j + 1]) and sides[i, j + 1] != here:
                edges.append(((j + 0.5, j + 0.5), (i - 0.5, i + 0.5)))
            if i + 1 < rows and not np.isnan(sides[i + 1, j]) and sides[i + 1, j] != here:
                edges.append(((j - 0.5, j + 0.5), (i + 0.5, i + 0.5)))
    return edges


def plot_crossover_map(path: Path, crossover: pd.DataFrame, overlaps: dict[str, float]) -> Path:
    """Write ``crossover_map_figure`` to ``path`` (PNG)."""
    return save_figure(crossover_map_figure(crossover, overlaps), path)


def crossover_map_figure(crossover: pd.DataFrame, overlaps: dict[str, float]) -> Figure:
    """Dose x overlap map, one panel per component: the best network's MS-SSIM minus LSQML's
    (mean over replicates; blue: the network scores higher), each cell marked with its
    winner (``MARKS``) and the best arm's short name (the legend spells out the marks and
    names shown), and the crossover drawn as thick lines between cells whose winners differ."""
    split = map_split(crossover)
    doses = sorted(set(crossover.dose))
    # each panel about 1.1 inch per dose column, so a cell's text fits whatever the plan
    figure = Figure(figsize=(max(11.5, 2.2 * len(doses) + 5), 4.8), layout="constrained")
    panels = figure.subplots(1, len(MAP_COMPONENTS), squeeze=False)[0]
    cells = {component: map_cells(crossover, component, overlaps) for component in MAP_COMPONENTS}
    views = sorted(set(crossover.view), key=lambda view: (overlaps.get(view, np.inf), view))
    largest = max([float(np.nanmax(np.abs(c.mean_difference))) for c in cells.values() if not c.empty] + [0.05])
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-largest, vmax=largest)
    image = None
    for axes, component in zip(panels, MAP_COMPONENTS, strict=True):
        values = np.full((len(views), len(doses)), np.nan)
        sides = np.full_like(values, np.nan)
        for row in cells[component].itertuples():
            i, j = views.index(row.view), doses.index(row.dose)
            values[i, j], sides[i, j] = row.mean_difference, SIDES[row.winner]
            axes.text(
                j,
                i,
                f"{row.mean_difference:+.2f} {MARKS[row.winner]}\n{arm_short_title(row.best_arm)}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(row.mean_difference) > 0.6 * largest else "black",
            )
        axes.set_facecolor("#dddddd")  # a cell without scores stays grey, and says so
        image = axes.imshow(values, cmap="RdBu", norm=norm, aspect="auto", origin="lower")
        for i, j in zip(*np.nonzero(np.isnan(values)), strict=True):
            axes.text(j, i, "no score\n(failed or not run)", ha="center", va="center", fontsize=7, color="#555555")
        for xs, ys in crossover_edges(sides):
            axes.plot(xs, ys, color="black", linewidth=3, solid_capstyle="butt")
        axes.set_xticks(range(len(doses)), [dose_text(dose) for dose in doses])
        axes.set_yticks(range(len(views)), [_view_label(view, overlaps) for view in views])
        axes.set_xlabel("dose (photons per pattern)")
        axes.set_title(f"{component} MS-SSIM: best network - LSQML", fontsize=10)
    panels[0].set_ylabel("scan overlap (nominal linear overlap f)")
    if image is not None:
        figure.colorbar(image, ax=list(panels), shrink=0.85, label="MS-SSIM difference (> 0: a network scores higher)")
    verdicts = {winner for c in cells.values() for winner in c.winner}  # one replicate's or the intervals'
    legend = [
        Line2D([], [], color="black", linewidth=3, label="crossover: the winner changes"),
        *[
            Line2D([], [], linestyle="none", label=f"{mark}: {winner}")
            for winner, mark in MARKS.items()
            if winner in verdicts
        ],
    ]
    shown = sorted({arm for c in cells.values() for arm in c.best_arm}, key=arm_rank)
    legend += [Line2D([], [], linestyle="none", label=f"{arm_short_title(arm)}: {arm_title(arm)}") for arm in shown]
    figure.legend(handles=legend, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    n = int(crossover.n.max()) if not crossover.empty else 0
    how = "winner from the paired 95 % interval" if n > 1 else "one replicate: winner from the sign alone"
    figure.suptitle(
        f"Where the networks win: {split} split, mean over {n} replicate{'s' * (n != 1)} ({how})", fontsize=11
    )
    return figure


def _view_label(view: str, overlaps: dict[str, float]) -> str:
    return f"{view} (f = {overlaps[view]:g})" if view in overlaps else view


NEAR_FLAT = 0.1
"""A reconstruction scoring less than this above the flat image's MS-SSIM has failed: a win
between two of them says nothing."""


def findings(crossover: pd.DataFrame, summary: pd.DataFrame, overlaps: dict[str, float]) -> list[str]:
    """The findings as sentences generated from the tables, one paragraph per component:
    which arm scores best in how many conditions, where (if anywhere) a network beats
    LSQML and by how much, with intervals, where either side or both score near the flat
    image (no information), and whether the winner changes across the map. Test split (or
    the only one scored); the last paragraph says when there are no intervals. ``summary``
    is the per-cell summary (``statistics.summarise``)."""
    split = map_split(crossover)
    if split is None:
        return ["No condition was scored by both LSQML and a network: there is nothing to compare."]
    best_by_cell = best_arms(summary)
    paragraphs = []
    for component in MAP_COMPONENTS:
        cells = map_cells(crossover, component, overlaps)
        if cells.empty:
            continue
        sentences = (
            _leaders(best_by_cell, component, split),
            _network_wins(cells),
            _closest(cells),
            _near_flat(cells, summary, component),
        )
        paragraphs.append(
            f"{component.capitalize()} MS-SSIM, {split} split, {len(cells)} conditions. "
            + " ".join(sentence for sentence in sentences if sentence)
        )
    if int(crossover.n.max()) < 2:
        paragraphs.append(
            "One replicate: the winners are the signs of single differences, without intervals "
            "(run with --replicates 3 for verdicts)."
        )
    return paragraphs


def findings_markdown(paragraphs: list[str], map_figure: Path | None) -> str:
    """The findings section of summary.md: the map (a link to its file) and the sentences."""
    lines = ["## Findings", ""]
    if map_figure is not None:
        lines += [f"![where the networks win]({Path(map_figure).name}) (`{map_figure}`)", ""]
    lines += [f"- {paragraph}" for paragraph in paragraphs]
    return "\n".join(lines) + "\n"


def best_arms(summary: pd.DataFrame) -> pd.DataFrame:
    """The arm with the highest mean MS-SSIM per condition and component (any arm but the
    flat reference), from the per-cell summary."""
    scores = summary[(summary.metric == MAP_METRIC) & (summary.arm != "flat")].dropna(subset=["mean"])
    if scores.empty:
        return pd.DataFrame(columns=["dose", "view", "split", "component", "arm", "mean"])
    index = scores.groupby(["dose", "view", "split", "component"], sort=False)["mean"].idxmax()
    return scores.loc[index, ["dose", "view", "split", "component", "arm", "mean"]].reset_index(drop=True)


def _leaders(best_by_cell: pd.DataFrame, component: str, split: str) -> str:
    rows = best_by_cell[(best_by_cell.component == component) & (best_by_cell.split == split)]
    counts = rows.arm.value_counts()
    parts = [f"{arm_title(arm)} in {count}" for arm, count in counts.items()]
    return "Highest mean score: " + ", ".join(parts) + "."


def _network_wins(cells: pd.DataFrame) -> str:
    wins = cells[cells.winner.map(SIDES) > 0]
    losses = cells[cells.winner.map(SIDES) < 0]
    parts = []
    if wins.empty:
        parts.append(f"No network beats {arm_title(REFERENCE_ARM)} in any condition.")
    else:
        listed = "; ".join(
            f"{dose_text(row.dose)} photons, {row.view}: {arm_title(row.best_arm)} by {_difference(row)}"
            for row in wins.itertuples()
        )
        parts.append(f"A network beats {arm_title(REFERENCE_ARM)} in {len(wins)}: {listed}.")
    if not losses.empty:
        leads = -losses.mean_difference
        parts.append(
            f"{arm_title(REFERENCE_ARM)} beats the best network in {len(losses)}, "
            f"by {leads.min():.3f} to {leads.max():.3f}."
        )
    return " ".join(parts)


def _closest(cells: pd.DataFrame) -> str:
    ties = cells[cells.winner == NO_DIFFERENCE]
    parts = []
    if not ties.empty:
        parts.append(
            "No detectable difference in "
            + ", ".join(f"{dose_text(row.dose)} {row.view} ({_difference(row)})" for row in ties.itertuples())
            + "."
        )
    sides = set(cells.winner.map(SIDES))
    if len(sides) > 1:
        parts.append("The winner changes across the map: the crossover is drawn in the figure.")
    return " ".join(parts)


_NEAR_FLAT_SAYS = {
    (True, True): "neither the best network nor LSQML scores {near:g} above the flat image: both failed "
    "there, and the winner says nothing.",
    (True, False): "{lsqml} scores less than {near:g} above the flat image and the best network more: "
    "LSQML failed there, the networks recovered something.",
    (False, True): "the best network scores less than {near:g} above the flat image and {lsqml} more: "
    "the networks failed there.",
}
"""What the findings say of the cells where (LSQML, the best network) scored near the flat image."""


def _near_flat(cells: pd.DataFrame, summary: pd.DataFrame, component: str) -> str:
    """Where a side scores less than ``NEAR_FLAT`` above the flat image: both (the winner says
    nothing), LSQML alone, or the best network alone (the other recovered something)."""
    flat = summary[(summary.arm == "flat") & (summary.component == component) & (summary.metric == MAP_METRIC)]
    floor = flat.set_index(["dose", "view", "split"])["mean"]
    failed: dict[tuple[bool, bool], list[str]] = {sides: [] for sides in _NEAR_FLAT_SAYS}
    for row in cells.itertuples():
        key = (row.dose, row.view, row.split)
        if key in floor.index:
            sides = (row.lsqml_mean < floor[key] + NEAR_FLAT, row.best_mean < floor[key] + NEAR_FLAT)
            if any(sides):
                failed[sides].append(f"{dose_text(row.dose)} {row.view}")
    return " ".join(
        f"In {len(listed)} ({', '.join(listed)}) "
        + _NEAR_FLAT_SAYS[sides].format(near=NEAR_FLAT, lsqml=arm_title(REFERENCE_ARM))
        for sides, listed in failed.items()
        if listed
    )


def _difference(row: object) -> str:
    mean, low, high = row.mean_difference, row.ci_low, row.ci_high
    return f"{mean:+.3f}" + ("" if np.isnan(low) else f" [{low:+.3f}, {high:+.3f}]")
