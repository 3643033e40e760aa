"""Stitching patches onto the object canvas by absolute position (docs/design.md §6, §8)."""

from __future__ import annotations

import numpy as np


class Stitcher:
    """Accumulates central crops of patches on an (H, W) canvas; overlaps are averaged,
    optionally weighted.

    Memory is the canvas only (three (H, W) arrays), so any number of patches can be
    added in batches.

    Parameters
    ----------
    shape : (H, W) of the ground-truth canvas, pixels.
    crop_size : M, side of the central crop of each patch that is kept, pixels (even).
    weights : (M, M) float, > 0: each crop pixel's weight in the average (e.g. the probe's
        intensity, so that pixels the probe barely lit count little); None for a plain mean.
    """

    def __init__(self, shape: tuple[int, int], crop_size: int, weights: np.ndarray | None = None):
        if crop_size < 2 or crop_size % 2:
            raise ValueError(f"crop_size must be even and >= 2, got {crop_size}")
        if weights is not None and (weights.shape != (crop_size, crop_size) or not np.all(weights > 0)):
            raise ValueError(f"weights must be a positive ({crop_size}, {crop_size}) array")
        self.shape = tuple(shape)
        self.crop_size = crop_size
        self._weights = np.ones((crop_size, crop_size)) if weights is None else weights.astype(np.float64)
        self._sum = np.zeros(self.shape, np.complex128)
        self._weight = np.zeros(self.shape, np.float64)
        self._count = np.zeros(self.shape, np.int64)

    def add(self, patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray) -> None:
        """Add (b, N, N) complex patches centred at integer (y, x) positions (b,)."""
        size = patches.shape[-1]
        if patches.shape[0] != ycoords.size or ycoords.size != xcoords.size:
            raise ValueError(f"{patches.shape[0]} patches but {ycoords.size} y and {xcoords.size} x positions")
        if self.crop_size > size:
            raise ValueError(f"crop_size {self.crop_size} exceeds the patch size {size}")
        start = (size - self.crop_size) // 2
        crops = patches[:, start : start + self.crop_size, start : start + self.crop_size]
        half = self.crop_size // 2
        rows0 = np.rint(ycoords).astype(np.int64) - half
        cols0 = np.rint(xcoords).astype(np.int64) - half
        height, width = self.shape
        if (
            rows0.min() < 0
            or cols0.min() < 0
            or rows0.max() + self.crop_size > height
            or cols0.max() + self.crop_size > width
        ):
            raise ValueError(f"a crop leaves the {height}x{width} canvas")
        weighted = crops * self._weights
        for crop, row, col in zip(weighted, rows0, cols0, strict=True):
            window = (slice(row, row + self.crop_size), slice(col, col + self.crop_size))
            self._sum[window] += crop
            self._weight[window] += self._weights
            self._count[window] += 1

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(object, coverage)``: (H, W) complex64 weighted average (0 where uncovered), (H, W) bool."""
        coverage = self._count > 0
        obj = np.zeros(self.shape, np.complex64)
        obj[coverage] = (self._sum[coverage] / self._weight[coverage]).astype(np.complex64)
        return obj, coverage


def coverage_mask(shape: tuple[int, int], ycoords: np.ndarray, xcoords: np.ndarray, crop_size: int) -> np.ndarray:
    """(H, W) bool union of the central ``crop_size`` squares at integer patch centres."""
    stitcher = Stitcher(shape, crop_size)
    ones = np.ones((ycoords.size, crop_size, crop_size), np.complex64)
    stitcher.add(ones, ycoords, xcoords)
    return stitcher.result()[1]
