"""Phase D: overlap views of a split's positions and their gs2 groups (DESIGN §5)."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ptystudy.config import Seeds, ViewConfig
from ptystudy.contract import Scan, mean_counts
from ptystudy.errors import InfeasibleViewError

RSA_JAMMING_COVERAGE = 0.547
"""Area fraction covered at saturation by random sequential addition of equal discs."""


def min_spacing_px(overlap: float, diameter_px: float) -> float:
    """Minimum centre spacing ``S = (1 - f) * D`` in object pixels for linear overlap ``f``."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if diameter_px <= 0:
        raise ValueError(f"diameter_px must be > 0, got {diameter_px}")
    return (1.0 - overlap) * diameter_px


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


def nearest_neighbour_distances(ycoords: np.ndarray, xcoords: np.ndarray) -> np.ndarray:
    """(n,) float64 distance in pixels from each position to its nearest other position."""
    if ycoords.size < 2:
        raise ValueError(f"need at least 2 positions for neighbour distances, got {ycoords.size}")
    points = np.column_stack([ycoords, xcoords])
    distances, _ = cKDTree(points).query(points, k=2)
    return distances[:, 1]


def capacity_bound(height_px: float, width_px: float, spacing_px: float) -> int:
    """Most positions a ``height x width`` centre region can hold ``spacing_px`` apart.

    Discs of radius S/2 around the centres are disjoint and lie in the region grown by
    S/2 on each side; no packing beats the hexagonal density, so the count is at most
    ``(h + S)(w + S) / (sqrt(3)/2 S^2)``.
    """
    if spacing_px <= 0:
        return math.inf  # type: ignore[return-value]
    return int((height_px + spacing_px) * (width_px + spacing_px) / (math.sqrt(3) / 2 * spacing_px**2))


def expected_count(height_px: float, width_px: float, spacing_px: float) -> float:
    """Typical count of a saturated random greedy selection (random sequential addition)."""
    grown = (height_px + spacing_px) * (width_px + spacing_px)
    return RSA_JAMMING_COVERAGE * grown / (math.pi * spacing_px**2 / 4)


def check_feasible(name: str, height_px: float, width_px: float, spacing_px: float, min_positions: int) -> None:
    """Raise ``InfeasibleViewError`` with the numbers if the region cannot hold ``min_positions``."""
    bound = capacity_bound(height_px, width_px, spacing_px)
    if bound < min_positions:
        raise InfeasibleViewError(
            f"view {name}: a {height_px:.0f} x {width_px:.0f} px region of patch centres holds at "
            f"most {bound} positions {spacing_px:.1f} px apart, fewer than min_positions = "
            f"{min_positions}; lower the overlap's spacing, enlarge the object or lower min_positions"
        )


def select_spaced(ycoords: np.ndarray, xcoords: np.ndarray, spacing_px: float, rng: np.random.Generator) -> np.ndarray:
    """Seeded greedy Poisson-disc subset: indices (sorted, int64) at least ``spacing_px`` apart.

    Candidates are visited in a random order; one is kept when no kept position lies
    closer than ``spacing_px``. A grid of cells ``spacing_px`` wide makes each test local.
    """
    order = rng.permutation(ycoords.size)
    if spacing_px <= 0:
        return np.sort(order).astype(np.int64)
    cells: dict[tuple[int, int], list[int]] = {}
    kept: list[int] = []
    limit = spacing_px**2
    for i in order:
        y, x = ycoords[i], xcoords[i]
        cy, cx = int(y // spacing_px), int(x // spacing_px)
        if _has_close_neighbour(cells, cy, cx, y, x, ycoords, xcoords, limit):
            continue
        cells.setdefault((cy, cx), []).append(int(i))
        kept.append(int(i))
    return np.sort(np.asarray(kept, dtype=np.int64))


def _has_close_neighbour(
    cells: dict[tuple[int, int], list[int]],
    cy: int,
    cx: int,
    y: float,
    x: float,
    ycoords: np.ndarray,
    xcoords: np.ndarray,
    limit: float,
) -> bool:
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            for j in cells.get((cy + dy, cx + dx), ()):
                if (ycoords[j] - y) ** 2 + (xcoords[j] - x) ** 2 < limit:
                    return True
    return False


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


def condition_rng(seed: int, *labels: str | float) -> np.random.Generator:
    """A Generator seeded from ``seed`` and stable labels (dose, view, split)."""
    keys = [zlib.crc32(str(label).encode()) for label in labels]
    return np.random.default_rng([seed, *keys])


@dataclass(frozen=True)
class ViewResult:
    """A view scan and the numbers measured on it."""

    scan: Scan
    nn_distances_px: np.ndarray
    summary: dict[str, Any]


def build_view(scan: Scan, *, name: str, overlap: float, config: ViewConfig, seeds: Seeds) -> ViewResult:
    """Select the ``name`` view of one split scan and group it (DESIGN §5).

    Raises
    ------
    InfeasibleViewError
        If the split's region cannot hold ``config.min_positions`` at spacing S, or the
        greedy selection kept fewer; the message gives the numbers.
    """
    diameter = float(scan.metadata["probe_diameter_px"])
    spacing = min_spacing_px(overlap, diameter)
    height = float(np.ptp(scan.ycoords))
    width = float(np.ptp(scan.xcoords))
    check_feasible(name, height, width, spacing, config.min_positions)
    dose, split = scan.metadata["dose"], scan.metadata["split"]
    index = select_spaced(scan.ycoords, scan.xcoords, spacing, condition_rng(seeds.subsampling, dose, name, split))
    if index.size < config.min_positions:
        raise InfeasibleViewError(
            f"view {name} ({split}): the greedy selection kept {index.size} of {scan.n_patterns} "
            f"positions {spacing:.1f} px apart in a {height:.0f} x {width:.0f} px region, fewer than "
            f"min_positions = {config.min_positions}"
        )
    ycoords, xcoords = scan.ycoords[index], scan.xcoords[index]
    groups = make_groups(
        ycoords,
        xcoords,
        neighbours=config.neighbours,
        group_size=config.group_size,
        rng=condition_rng(seeds.grouping, dose, name, split),
    )
    distances = nearest_neighbour_distances(ycoords, xcoords)
    diffraction = scan.diffraction[index]
    summary = {
        "view": name,
        "split": split,
        "dose": dose,
        "nominal_overlap": overlap,
        "probe_diameter_px": diameter,
        "min_spacing_px": spacing,
        "n_candidates": scan.n_patterns,
        "n_positions": int(index.size),
        "n_groups": int(groups.shape[0]),
        "capacity_bound": capacity_bound(height, width, spacing),
        "expected_greedy_count": expected_count(height, width, spacing),
        "region_px": [height, width],
        "nn_spacing_px": {
            "min": float(distances.min()),
            "mean": float(distances.mean()),
            "median": float(np.median(distances)),
            "max": float(distances.max()),
        },
        "measured_overlap": float(disc_overlap(distances, diameter).mean()),
    }
    metadata = {
        **scan.metadata,
        "n_patterns": int(index.size),
        "mean_counts_per_pattern": mean_counts(diffraction),
        "view": name,
        "nominal_overlap": overlap,
        "min_spacing_px": spacing,
        "measured_overlap": summary["measured_overlap"],
        "group_neighbours": config.neighbours,
        "group_size": config.group_size,
    }
    view_scan = Scan(
        diffraction=diffraction,
        ycoords=ycoords,
        xcoords=xcoords,
        probe=scan.probe,
        obj=scan.obj,
        scan_index=scan.scan_index[index],
        metadata=metadata,
        groups=groups,
    )
    return ViewResult(view_scan, distances, summary)
