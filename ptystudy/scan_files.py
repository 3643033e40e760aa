"""Phase C on existing scans (``scan.files``): read each dose's train and test files and lay
out every view on the positions they hold.

A file is in the study's contract layout or in PtychoPINN's (``ptystudy.ptychopinn``).
Each view takes, from the file's positions, a subset whose mean nearest-neighbour spacing
is the view's step S = (1 - f) D (greedy thinning in a seeded order, at a minimum distance
calibrated by bisection); a file too coarse for a view gives all its positions, and the
view records the overlap it really has. The split file then lists each view's rows as a
planned split file does, so phases D-G run unchanged. A view's training corpus is its own
scan: existing data has no further scans of the same geometry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ptystudy.conditions import Split
from ptystudy.contract import METADATA_KEY, Scan, load_scan, mean_counts, read_npz
from ptystudy.errors import ContractError, InfeasibleViewError
from ptystudy.ptychopinn import import_ptychopinn
from ptystudy.scan_layout import min_spacing_px, nearest_neighbour_distances
from ptystudy.seeds import condition_rng

_BISECTIONS = 24


def read_scan_file(path: Path, *, dose: float, round_positions: bool) -> Scan:
    """A user's scan file in either layout, its dose recorded as ``dose``.

    Raises
    ------
    ContractError
        Naming the file, if it is in neither layout or breaks the contract.
    """
    path = Path(path)
    has_metadata = METADATA_KEY in read_npz(path, keys=(METADATA_KEY,))
    if not has_metadata:
        return import_ptychopinn(path, round_positions=round_positions, dose=dose)
    scan = load_scan(path)
    metadata = {key: value for key, value in scan.metadata.items() if key != "scans"}
    return Scan(
        scan.diffraction, scan.ycoords, scan.xcoords, scan.probe, scan.obj, scan.scan_index, {**metadata, "dose": dose}
    )


def thin_to_spacing(ycoords: np.ndarray, xcoords: np.ndarray, step_px: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a subset of the positions whose mean nearest-neighbour spacing is
    about ``step_px`` (all of them when theirs is already at least that)."""
    n = ycoords.size
    if n < 3 or nearest_neighbour_distances(ycoords, xcoords).mean() >= step_px:
        return np.arange(n)
    points = np.column_stack([ycoords, xcoords]).astype(np.float64)
    reach = 2 * step_px
    pairs = cKDTree(points).sparse_distance_matrix(cKDTree(points), reach, output_type="coo_matrix")
    neighbours = [[] for _ in range(n)]
    for i, j, distance in zip(pairs.row, pairs.col, pairs.data, strict=True):
        if i != j:
            neighbours[i].append((j, distance))
    order = rng.permutation(n)

    def greedy(radius: float) -> np.ndarray:
        kept = np.zeros(n, dtype=bool)
        for i in order:
            kept[i] = not any(kept[j] for j, distance in neighbours[i] if distance < radius)
        return np.flatnonzero(kept)

    def spacing(index: np.ndarray) -> float:
        return float(nearest_neighbour_distances(ycoords[index], xcoords[index]).mean()) if index.size > 1 else np.inf

    low, high = 0.0, reach
    best = np.arange(n)
    for _ in range(_BISECTIONS):
        radius = (low + high) / 2
        index = greedy(radius)
        if abs(spacing(index) - step_px) < abs(spacing(best) - step_px):
            best = index
        if spacing(index) < step_px:
            low = radius
        else:
            high = radius
    return best


def existing_split(scan: Scan, split: Split, overlaps: dict[str, float], *, min_positions: int, seed: int) -> Scan:
    """The phase C split file of one existing scan: each view's rows one after another
    (a position may appear in several views), listed in the metadata's ``scans``.

    Raises
    ------
    InfeasibleViewError
        If a view keeps fewer than ``min_positions`` positions.
    """
    diameter = float(scan.metadata["probe_diameter_px"])
    rows, listing, start = [], [], 0
    for view, overlap in overlaps.items():
        step = min_spacing_px(overlap, diameter)
        index = thin_to_spacing(scan.ycoords, scan.xcoords, step, condition_rng(seed, view, str(split)))
        if index.size < min_positions:
            raise InfeasibleViewError(
                f"the {split} file keeps {index.size} positions for view {view!r} at step {step:.1f} px, "
                f"fewer than views.min_positions = {min_positions}"
            )
        entry: dict[str, Any] = {
            "name": view,
            "view": view,
            "split": str(split),
            "number": 0,
            "step_px": step,
            "n_positions": int(index.size),
            "start": start,
            "stop": start + int(index.size),
        }
        listing.append(entry)
        rows.append(index)
        start += index.size
    index = np.concatenate(rows)
    diffraction = scan.diffraction[index]
    return Scan(
        diffraction=diffraction,
        ycoords=scan.ycoords[index],
        xcoords=scan.xcoords[index],
        probe=scan.probe,
        obj=scan.obj,
        scan_index=scan.scan_index[index],
        metadata={
            **scan.metadata,
            "split": str(split),
            "n_patterns": int(index.size),
            "mean_counts_per_pattern": mean_counts(diffraction),
            "file_patterns": scan.n_patterns,
            "scans": listing,
        },
    )


def check_scan_files(files: dict[float, dict[str, str]]) -> None:
    """Raise ``ContractError`` naming the first given scan file that does not exist."""
    for dose, splits in files.items():
        for split, name in splits.items():
            if not Path(name).is_file():
                raise ContractError(f"{name}: file not found (scan.files, dose {dose:g}, {split} split)")
