"""Phase C on existing scans (``scan.files``): read each dose's train and test files and lay
out every view on the positions they hold.

A file is in the study's contract layout, in PtychoPINN's (``ptystudy.scan.ptychopinn``), a
Ptychodus ``product.h5`` beside its ``diffraction.h5``, or a CXI file (``ptystudy.scan.hdf5``).
Each view takes, from the file's positions, a subset whose mean nearest-neighbour spacing
is the view's step S = (1 - f) D (greedy thinning in a seeded order, at a minimum distance
calibrated by bisection); a file too coarse for a view gives all its positions, and the
view records the overlap it really has. The split file then lists each view's rows as a
planned split file does, so phases D-G run unchanged. A view's training corpus is, as for
simulated scans, its train scan and further scans of the same geometry: further thinnings
of the train file (other seeds), added while each brings positions the corpus lacks and
the corpus is short of ``training.min_samples``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ptystudy.conditions import Split
from ptystudy.errors import ContractError, InfeasibleViewError
from ptystudy.scan.contract import METADATA_KEY, Scan, load_scan, read_npz
from ptystudy.scan.hdf5 import HDF5_SUFFIXES, read_hdf5_scan
from ptystudy.scan.lattice import corpus_scan_name, min_spacing_px, nearest_neighbour_distances
from ptystudy.scan.ptychopinn import import_ptychopinn
from ptystudy.seeds import condition_rng

_BISECTIONS = 16


def read_scan_file(path: Path, *, dose: float, round_positions: bool) -> Scan:
    """A user's scan file in any of the layouts above, its dose recorded as ``dose``.

    Raises
    ------
    ContractError
        Naming the file, if it is in neither layout or breaks the contract.
    """
    path = Path(path)
    if path.suffix in HDF5_SUFFIXES:
        return read_hdf5_scan(path, round_positions=round_positions, dose=dose)
    has_metadata = METADATA_KEY in read_npz(path, keys=(METADATA_KEY,))
    if not has_metadata:
        return import_ptychopinn(path, round_positions=round_positions, dose=dose)
    scan = load_scan(path)
    metadata = {key: value for key, value in scan.metadata.items() if key != "scans"}
    return dataclasses.replace(scan, metadata={**metadata, "dose": dose})


def thin_to_spacing(
    ycoords: np.ndarray, xcoords: np.ndarray, step_px: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """A subset of the positions whose mean nearest-neighbour spacing is about ``step_px``
    (all of them when theirs is already at least that).

    Returns ``(index, radius)``: the sorted indices, and the minimum distance (px) of the
    greedy selection that gave them (0 for all positions), for ``thin_at_radius``.
    """
    n = ycoords.size
    if n < 3 or nearest_neighbour_distances(ycoords, xcoords).mean() >= step_px:
        return np.arange(n), 0.0
    order = rng.permutation(n)
    neighbours = _neighbours(ycoords, xcoords, 2 * step_px)

    def spacing(index: np.ndarray) -> float:
        return float(nearest_neighbour_distances(ycoords[index], xcoords[index]).mean()) if index.size > 1 else np.inf

    low, high = 0.0, 2 * step_px
    best, best_radius = np.arange(n), 0.0
    for _ in range(_BISECTIONS):
        radius = (low + high) / 2
        index = _greedy(neighbours, order, radius)
        if abs(spacing(index) - step_px) < abs(spacing(best) - step_px):
            best, best_radius = index, radius
        if spacing(index) < step_px:
            low = radius
        else:
            high = radius
    return best, best_radius


def thin_at_radius(ycoords: np.ndarray, xcoords: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a greedy selection, in a seeded order, of positions at least
    ``radius`` px apart (another scan of the geometry ``thin_to_spacing`` found)."""
    if radius <= 0:
        return np.arange(ycoords.size)
    return _greedy(_neighbours(ycoords, xcoords, radius), rng.permutation(ycoords.size), radius)


def _neighbours(ycoords: np.ndarray, xcoords: np.ndarray, reach: float) -> list[list[tuple[int, float]]]:
    """For each position, its other positions within ``reach`` px and their distances."""
    tree = cKDTree(np.column_stack([ycoords, xcoords]).astype(np.float64))
    pairs = tree.sparse_distance_matrix(tree, reach, output_type="coo_matrix")
    neighbours: list[list[tuple[int, float]]] = [[] for _ in range(ycoords.size)]
    for i, j, distance in zip(pairs.row, pairs.col, pairs.data, strict=True):
        if i != j:
            neighbours[i].append((j, distance))
    return neighbours


def _greedy(neighbours: list[list[tuple[int, float]]], order: np.ndarray, radius: float) -> np.ndarray:
    """Keep each position, in ``order``, that no kept position lies closer to than ``radius``."""
    kept = np.zeros(len(neighbours), dtype=bool)
    for i in order:
        kept[i] = not any(kept[j] for j, distance in neighbours[i] if distance < radius)
    return np.flatnonzero(kept)


MAX_CORPUS_SCANS = 64
"""At most this many further scans in a view's training corpus."""


def existing_split(
    scan: Scan, split: Split, overlaps: dict[str, float], *, min_positions: int, min_samples: int, seed: int
) -> Scan:
    """The phase C split file of one existing scan: each view's rows one after another
    (a position may appear in several views), then, in the train split, each view's
    further corpus scans, listed in the metadata's ``scans``.

    Raises
    ------
    InfeasibleViewError
        If a view keeps fewer than ``min_positions`` positions.
    """
    diameter = float(scan.metadata["probe_diameter_px"])
    rows, listing = [], []

    def add(view: str, number: int, step: float, index: np.ndarray) -> None:
        start = sum(row.size for row in rows)
        listing.append(
            {
                "name": corpus_scan_name(view, number),
                "view": view,
                "split": str(split),
                "number": number,
                "step_px": step,
                "n_positions": int(index.size),
                "start": start,
                "stop": start + int(index.size),
            }
        )
        rows.append(index)

    steps = {view: min_spacing_px(overlap, diameter) for view, overlap in overlaps.items()}
    view_rows, radii = {}, {}
    for view, step in steps.items():
        index, radii[view] = thin_to_spacing(scan.ycoords, scan.xcoords, step, condition_rng(seed, view, str(split)))
        if index.size < min_positions:
            raise InfeasibleViewError(
                f"the {split} file keeps {index.size} positions for view {view!r} at step {step:.1f} px, "
                f"fewer than views.min_positions = {min_positions}"
            )
        add(view, 0, step, index)
        view_rows[view] = index
    if split is Split.TRAIN:
        for view, step in steps.items():
            covered = set(view_rows[view].tolist())
            total = len(covered)
            for number in range(1, MAX_CORPUS_SCANS + 1):
                if total >= min_samples:
                    break
                rng = condition_rng(seed, view, str(split), number)
                index = thin_at_radius(scan.ycoords, scan.xcoords, radii[view], rng)
                if covered.issuperset(index.tolist()):
                    break  # the file holds no further scan of this geometry
                covered.update(index.tolist())
                total += index.size
                add(view, number, step, index)
    metadata = {**scan.metadata, "split": str(split), "file_patterns": scan.n_patterns, "scans": listing}
    return scan.rows(np.concatenate(rows), metadata)


def check_scan_files(files: dict[float, dict[str, str]]) -> None:
    """Raise ``ContractError`` naming the first given scan file that does not exist."""
    for dose, splits in files.items():
        for split, name in splits.items():
            if not Path(name).is_file():
                raise ContractError(f"{name}: file not found (scan.files, dose {dose:g}, {split} split)")
