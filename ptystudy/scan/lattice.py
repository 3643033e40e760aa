"""Where a scan puts its probe: jittered hexagonal lattices on integer pixels (docs/design.md §5).

A view, and every scan of a network's training corpus, is laid out like a real
ptychography scan with step S = (1 - f) D: a hexagonal lattice with a seeded rotation
and offset, each point jittered a little and rounded to an integer pixel (integer
positions keep the simulator, the networks and pty-chi on one forward model). Rounding
pulls neighbours together by up to a pixel, which matters at the few-pixel steps of a
dense view, so the lattice pitch is calibrated until the mean nearest-neighbour spacing
of the rounded positions is S.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ptystudy.conditions import Split
from ptystudy.errors import InfeasibleViewError
from ptystudy.seeds import seed_sequence

LATTICE_JITTER_FRACTION = 0.05
"""Uniform jitter of each lattice point, as a fraction of the pitch (before rounding)."""
PITCH_CALIBRATION_STEPS = 4
"""Fixed-point steps that bring the mean nearest-neighbour spacing to the step S."""
MAX_CORPUS_SCANS = 1000
"""Most scans one training corpus may take to reach its sample count."""


@dataclass(frozen=True)
class Region:
    """An axis-aligned rectangle of allowed patch centres, object pixels, limits inclusive."""

    y_min: int
    y_max: int
    x_min: int
    x_max: int

    @property
    def height_px(self) -> int:
        return self.y_max - self.y_min

    @property
    def width_px(self) -> int:
        return self.x_max - self.x_min


def nearest_neighbour_distances(ycoords: np.ndarray, xcoords: np.ndarray) -> np.ndarray:
    """(n,) float64 distance in pixels from each position to its nearest other position."""
    if ycoords.size < 2:
        raise ValueError(f"need at least 2 positions for neighbour distances, got {ycoords.size}")
    points = np.column_stack([ycoords, xcoords])
    distances, _ = cKDTree(points).query(points, k=2)
    return distances[:, 1]


def hex_lattice(region: Region, pitch_px: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A jittered hexagonal lattice of pitch ``pitch_px`` in ``region``, rounded to integer pixels.

    The lattice's rotation (0-60 degrees) and offset, and each point's jitter
    (uniform, +-``LATTICE_JITTER_FRACTION`` of the pitch per axis), are drawn from ``rng``;
    a position that rounds onto another is kept once.

    Returns ``(ycoords, xcoords)``, each (n,) float64 of whole pixels, sorted row-major.
    """
    if pitch_px <= 0:
        raise ValueError(f"pitch_px must be > 0, got {pitch_px}")
    angle = rng.uniform(0, math.pi / 3)
    offset = rng.uniform(0, 1, 2)
    basis = pitch_px * np.array(
        [[math.sin(angle), math.cos(angle)], [math.sin(angle + math.pi / 3), math.cos(angle + math.pi / 3)]]
    )
    centre = np.array([(region.y_min + region.y_max) / 2, (region.x_min + region.x_max) / 2])
    reach = int(math.hypot(region.height_px, region.width_px) / pitch_px) + 2
    steps = np.arange(-reach, reach + 1)
    i, j = np.meshgrid(steps, steps, indexing="ij")
    coefficients = np.column_stack([i.ravel(), j.ravel()]) + offset
    points = centre + coefficients @ basis
    jitter = LATTICE_JITTER_FRACTION * pitch_px
    points = np.rint(points + rng.uniform(-jitter, jitter, points.shape))
    inside = (
        (points[:, 0] >= region.y_min)
        & (points[:, 0] <= region.y_max)
        & (points[:, 1] >= region.x_min)
        & (points[:, 1] <= region.x_max)
    )
    points = np.unique(points[inside], axis=0)
    return points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)


def scan_positions(region: Region, step_px: float, seed: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A scan of ``region`` with mean nearest-neighbour spacing ``step_px`` (the step S).

    The lattice is drawn from ``np.random.default_rng(seed)``; its pitch starts at S and
    is rescaled by S / (measured mean spacing) a few times, each time redrawn from the
    same seed, so the same seed gives the same positions.

    Returns ``(ycoords, xcoords)`` (n,) float64 of whole pixels; fewer than two positions
    when the region is too small (the caller checks the count).
    """
    if step_px <= 0:
        raise ValueError(f"step_px must be > 0, got {step_px}")
    pitch = step_px
    ycoords, xcoords = hex_lattice(region, pitch, np.random.default_rng(seed))
    for _ in range(PITCH_CALIBRATION_STEPS):
        if ycoords.size < 3:
            break
        spacing = float(nearest_neighbour_distances(ycoords, xcoords).mean())
        pitch *= step_px / spacing
        ycoords, xcoords = hex_lattice(region, pitch, np.random.default_rng(seed))
    return ycoords, xcoords


def min_spacing_px(overlap: float, diameter_px: float) -> float:
    """The scan step ``S = (1 - f) * D`` in object pixels for linear overlap ``f`` in (-1, 1):
    f = 0 puts neighbouring footprints edge to edge, f < 0 leaves a gap of -f D between them."""
    if not -1 < overlap < 1:
        raise ValueError(f"overlap must be in (-1, 1), got {overlap}")
    if diameter_px <= 0:
        raise ValueError(f"diameter_px must be > 0, got {diameter_px}")
    return (1.0 - overlap) * diameter_px


def split_rows(height: int, patch_size: int, train_fraction: float) -> tuple[int, int, int]:
    """The y cut and the centre limits of each split (docs/design.md §2).

    Returns ``(cut_row, train_y_max, test_y_min)``: train patches lie wholly above row
    ``cut_row`` (centres ``y <= train_y_max``), test patches wholly below it
    (``y >= test_y_min``); the band between is the guard, so no object pixel is seen
    by both splits.
    """
    half = patch_size // 2
    cut_row = int(round(height * train_fraction))
    return cut_row, cut_row - (patch_size - half), cut_row + half


def split_regions(shape: tuple[int, int], patch_size: int, train_fraction: float) -> dict[Split, Region]:
    """The patch-centre region of each split of an (H, W) object (docs/design.md §2).

    Raises ``ValueError`` when a split has no room for a patch.
    """
    height, width = shape
    half = patch_size // 2
    cut_row, train_y_max, test_y_min = split_rows(height, patch_size, train_fraction)
    regions = {
        Split.TRAIN: Region(half, train_y_max, half, width - patch_size + half),
        Split.TEST: Region(test_y_min, height - patch_size + half, half, width - patch_size + half),
    }
    for split, region in regions.items():
        if region.height_px < 0 or region.width_px < 0:
            raise ValueError(
                f"the {split} split has no room for a {patch_size} px patch in a {height} x {width} px object "
                f"cut at row {cut_row} (train_fraction {train_fraction}); enlarge the object or move the cut"
            )
    return regions


@dataclass(frozen=True)
class PlannedScan:
    """One scan of the study: a view of a split, or one more scan of a training corpus.

    name : ``"{view}"`` for the view itself, ``"{view}/corpus-{k}"`` for corpus scan k >= 1.
    ycoords, xcoords : (n,) float64 whole-pixel patch centres.
    """

    name: str
    view: str
    split: Split
    number: int
    step_px: float
    ycoords: np.ndarray
    xcoords: np.ndarray

    @property
    def n_positions(self) -> int:
        return int(self.ycoords.size)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: name, view, split, number, step and positions."""
        return {
            "name": self.name,
            "view": self.view,
            "split": str(self.split),
            "number": self.number,
            "step_px": self.step_px,
            "n_positions": self.n_positions,
        }


def corpus_scan_name(view: str, number: int) -> str:
    """The name of scan ``number`` of a view's training corpus (0 is the view itself)."""
    return view if number == 0 else f"{view}/corpus-{number}"


def plan_scans(
    regions: dict[Split, Region],
    overlaps: dict[str, float],
    *,
    diameter_px: float,
    min_positions: int,
    min_samples: int,
    seed: int,
) -> dict[Split, list[PlannedScan]]:
    """Every scan of the study, per split: each view's scan, and in the train split the
    further scans of each view's training corpus (docs/design.md §5).

    A view's scan of a split depends on the seed, the view and the split only, never on
    the dose: every dose scans the same positions (paired design). The training corpus of
    a view is its train scan followed by scans ``1, 2, ...`` of the same geometry (new
    rotation, offset and jitter) until it holds at least ``min_samples`` positions (one
    sample each, single pattern or gs2 group). The test split holds the views only.

    Raises
    ------
    InfeasibleViewError
        If a view's scan of a split holds fewer than ``min_positions``, or its corpus
        would need more than ``MAX_CORPUS_SCANS`` scans; the message gives the numbers.
    """
    plans: dict[Split, list[PlannedScan]] = {split: [] for split in regions}
    for split, region in regions.items():
        for view, overlap in overlaps.items():
            step = min_spacing_px(overlap, diameter_px)
            first = _planned(region, view, split, 0, step, seed)
            if first.n_positions < min_positions:
                raise InfeasibleViewError(
                    f"view {view} ({split}): a scan with step {step:.1f} px holds {first.n_positions} "
                    f"positions in the {region.height_px + 1} x {region.width_px + 1} px region of patch "
                    f"centres, fewer than min_positions = {min_positions}; lower the overlap's step, "
                    "enlarge the object or lower min_positions"
                )
            plans[split].append(first)
            if split is not Split.TRAIN:
                continue
            total = first.n_positions
            needed = math.ceil(min_samples / first.n_positions)
            if needed > MAX_CORPUS_SCANS:
                raise InfeasibleViewError(
                    f"view {view}: its training corpus needs {min_samples} samples, about {needed} scans of "
                    f"{first.n_positions} positions, more than the {MAX_CORPUS_SCANS} allowed; lower "
                    "training.min_samples or enlarge the object"
                )
            number = 1
            while total < min_samples:
                scan = _planned(region, view, split, number, step, seed)
                plans[split].append(scan)
                total += scan.n_positions
                number += 1
    return plans


def _planned(region: Region, view: str, split: Split, number: int, step_px: float, seed: int) -> PlannedScan:
    ycoords, xcoords = scan_positions(region, step_px, seed_sequence(seed, view, str(split), number))
    return PlannedScan(corpus_scan_name(view, number), view, split, number, step_px, ycoords, xcoords)
