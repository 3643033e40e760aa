"""Phase D: the views of a split and each view's training corpus, with gs2 groups (docs/design.md §5).

The positions were laid out in phase C (``scan_layout.plan_scans``); a view is the rows of
its scan in the split's file, and a view's training corpus is the rows of its train scan
and of every further corpus scan of that view. Groups are drawn inside each scan, from
seeds that name the view, split and scan but not the dose, so every dose has the same
groups as well as the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ptystudy.config import Seeds, ViewConfig
from ptystudy.errors import ContractError
from ptystudy.scan.contract import Scan
from ptystudy.scan.lattice import min_spacing_px, nearest_neighbour_distances
from ptystudy.seeds import condition_rng


def disc_overlap(distance_px: np.ndarray, diameter_px: float) -> np.ndarray:
    """Area overlap fraction of two equal probe discs at centre distance ``distance_px``.

    distance_px : (n,) float64, object pixels. Returns (n,) float64 in [0, 1]:
    ``f(d) = [2R^2 acos(d/2R) - (d/2) sqrt(4R^2 - d^2)] / (pi R^2)``, R = D/2, 0 for d >= D.
    """
    if diameter_px <= 0:
        raise ValueError(f"diameter_px must be > 0, got {diameter_px}")
    distance = np.abs(np.asarray(distance_px, dtype=np.float64))
    radius = diameter_px / 2
    d = np.minimum(distance, diameter_px)
    lens = 2 * radius**2 * np.arccos(d / (2 * radius)) - (d / 2) * np.sqrt(4 * radius**2 - d**2)
    return np.clip(lens / (np.pi * radius**2), 0.0, 1.0)


def make_groups(
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    *,
    neighbours: int,
    group_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """gs2 groups: each position seeds one group of itself and ``group_size - 1`` of its
    ``neighbours`` nearest neighbours, drawn without replacement.

    Returns (n, group_size) int64 indices into the positions, the seed first.
    """
    n = ycoords.size
    if n < neighbours + 1:
        raise ValueError(f"need at least neighbours + 1 = {neighbours + 1} positions, got {n}")
    points = np.column_stack([ycoords, xcoords])
    _, nearest = cKDTree(points).query(points, k=neighbours + 1)
    groups = np.empty((n, group_size), dtype=np.int64)
    for i in range(n):
        others = nearest[i][nearest[i] != i][:neighbours]
        groups[i, 0] = i
        groups[i, 1:] = rng.choice(others, size=group_size - 1, replace=False)
    return groups


@dataclass(frozen=True)
class ViewResult:
    """A view scan and the numbers measured on it."""

    scan: Scan
    nn_distances_px: np.ndarray
    summary: dict[str, Any]


def scan_entries(scan: Scan, view: str) -> list[dict[str, Any]]:
    """The metadata entries of a split file's scans of ``view`` (the view first, then its corpus)."""
    if "scans" not in scan.metadata:
        raise ContractError("the scan file's metadata lists no planned scans (not a phase C split file)")
    entries = sorted((entry for entry in scan.metadata["scans"] if entry["view"] == view), key=lambda e: e["number"])
    if not entries or entries[0]["number"] != 0:
        raise ContractError(f"the {scan.metadata['split']} scan file holds no scan of view {view!r}")
    return entries


def _grouped(scan: Scan, entry: dict[str, Any], config: ViewConfig, seeds: Seeds) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of one planned scan in its split file, and its gs2 groups (indices into those rows)."""
    index = np.arange(entry["start"], entry["stop"], dtype=np.int64)
    groups = make_groups(
        scan.ycoords[index],
        scan.xcoords[index],
        neighbours=config.neighbours,
        group_size=config.group_size,
        rng=condition_rng(seeds.grouping, entry["view"], scan.metadata["split"], entry["number"]),
    )
    return index, groups


def _subset(scan: Scan, index: np.ndarray, groups: np.ndarray, metadata: dict[str, Any]) -> Scan:
    kept = {key: value for key, value in scan.metadata.items() if key != "scans"}
    return scan.rows(index, {**kept, **metadata}, groups)


def build_view(scan: Scan, *, name: str, overlap: float, config: ViewConfig, seeds: Seeds) -> ViewResult:
    """The ``name`` view of one split file, grouped, with its measured overlap (docs/design.md §5).

    Raises
    ------
    ContractError
        If the file holds no scan of the view.
    """
    diameter = float(scan.metadata["probe_diameter_px"])
    step = min_spacing_px(overlap, diameter)
    entry = scan_entries(scan, name)[0]
    index, groups = _grouped(scan, entry, config, seeds)
    ycoords, xcoords = scan.ycoords[index], scan.xcoords[index]
    distances = nearest_neighbour_distances(ycoords, xcoords)
    measured = float(disc_overlap(distances, diameter).mean())
    summary = {
        "view": name,
        "split": scan.metadata["split"],
        "dose": scan.metadata["dose"],
        "nominal_overlap": overlap,
        "probe_diameter_px": diameter,
        "step_px": step,
        "n_positions": int(index.size),
        "n_groups": int(groups.shape[0]),
        "region_px": [float(np.ptp(ycoords)), float(np.ptp(xcoords))],
        "nn_spacing_px": {
            "min": float(distances.min()),
            "mean": float(distances.mean()),
            "median": float(np.median(distances)),
            "max": float(distances.max()),
        },
        "mean_spacing_over_step": float(distances.mean() / step),
        "measured_overlap": measured,
        "overlap_at_step": float(disc_overlap(np.array([step]), diameter)[0]),
    }
    metadata = {
        "view": name,
        "nominal_overlap": overlap,
        "step_px": step,
        "measured_overlap": measured,
        "group_neighbours": config.neighbours,
        "group_size": config.group_size,
    }
    return ViewResult(_subset(scan, index, groups, metadata), distances, summary)


def build_corpus(scan: Scan, *, name: str, config: ViewConfig, seeds: Seeds) -> Scan:
    """The training corpus of view ``name``: its train scan and every further corpus scan,
    one after another, each grouped inside itself (group indices into the corpus rows).

    Raises
    ------
    ContractError
        If ``scan`` is not a train split file holding the view's scans.
    """
    if scan.metadata["split"] != "train":
        raise ContractError(f"a training corpus comes from the train split, got {scan.metadata['split']!r}")
    entries = scan_entries(scan, name)
    indices, groups, start = [], [], 0
    for entry in entries:
        index, grouped = _grouped(scan, entry, config, seeds)
        indices.append(index)
        groups.append(grouped + start)
        start += index.size
    metadata = {
        "view": name,
        "corpus_scans": [{"name": entry["name"], "n_positions": entry["stop"] - entry["start"]} for entry in entries],
        "group_neighbours": config.neighbours,
        "group_size": config.group_size,
    }
    return _subset(scan, np.concatenate(indices), np.concatenate(groups), metadata)
