"""Removing a reconstruction's trivial ambiguities before scoring (docs/design.md §8).

Every arm goes through the same steps, in this order, each fitted on the scoring mask:
a sub-pixel shift (phase cross-correlation, applied only up to ``max_shift_px``), a
linear phase ramp (only when asked: where the probe is refined), the global phase offset
and the global amplitude scale. What was removed is returned as an ``Alignment``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from ptystudy.evaluate.metrics import frc_weights

REGISTRATION_UPSAMPLING = 20
"""Sub-pixel precision of the shift estimate: 1/20 px."""


@dataclass(frozen=True)
class Alignment:
    """What was removed from one reconstruction.

    shift_px : (dy, dx) estimated shift that registers the reconstruction to the truth, px.
    shift_applied : False when the estimate exceeded the allowed shift (then not applied).
    phase_ramp_rad_per_px : (gy, gx) linear phase removed, or None when not fitted.
    phase_offset_rad : global phase added to the reconstruction.
    amplitude_scale : factor the reconstruction's amplitude was multiplied by.
    """

    shift_px: tuple[float, float]
    shift_applied: bool
    phase_ramp_rad_per_px: tuple[float, float] | None
    phase_offset_rad: float
    amplitude_scale: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The smallest rectangle (row slice, column slice) holding every True pixel."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("the mask is empty")
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def scoring_mask(coverage: np.ndarray, margin_px: int) -> np.ndarray:
    """``coverage`` eroded by ``margin_px``, so that a shifted reconstruction's scored pixels
    never mix in values from outside its coverage."""
    if margin_px <= 0:
        return coverage.copy()
    eroded = ndimage.binary_erosion(coverage, structure=np.ones((3, 3), bool), iterations=margin_px)
    if not eroded.any():
        raise ValueError(f"nothing of the coverage is left after an erosion of {margin_px} px")
    return eroded


def estimate_shift(truth: np.ndarray, image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(dy, dx) in px that registers complex ``image`` onto ``truth`` (apply with ``shift_image``).

    Both are cut to the mask's bounding box, have their weighted mean removed and are
    weighted by the FRC's smooth taper of the mask (a hard mask edge, the same in both,
    would pull the estimate towards zero), so the global phase and amplitude do not matter.
    A constant image has no shift to find: (0, 0).
    """
    box = bounding_box(mask)
    weights = frc_weights(mask[box].shape, mask[box])

    def prepare(values: np.ndarray) -> np.ndarray:
        crop = values[box].astype(np.complex128)
        return (crop - np.sum(crop * weights) / np.sum(weights)) * weights

    moving = prepare(image)
    if not np.any(moving):  # a constant image (e.g. the flat reference) has nothing to register
        return 0.0, 0.0
    shift, _, _ = phase_cross_correlation(
        prepare(truth), moving, upsample_factor=REGISTRATION_UPSAMPLING, normalization=None
    )
    return float(shift[0]), float(shift[1])


def shift_image(image: np.ndarray, shift_px: tuple[float, float]) -> np.ndarray:
    """``image`` (complex) moved by ``shift_px`` with cubic spline interpolation."""
    real = ndimage.shift(image.real.astype(np.float64), shift_px, order=3, mode="nearest")
    imag = ndimage.shift(image.imag.astype(np.float64), shift_px, order=3, mode="nearest")
    return real + 1j * imag


def fit_phase_ramp(truth: np.ndarray, image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Linear phase (gy, gx) in rad/px of ``truth * conj(image)`` over the mask.

    From the mean phase step between masked neighbours, so it is immune to phase wrapping.
    """
    difference = truth.astype(np.complex128) * np.conj(image.astype(np.complex128))
    pairs_y = mask[1:, :] & mask[:-1, :]
    pairs_x = mask[:, 1:] & mask[:, :-1]
    gy = np.angle(np.sum((difference[1:, :] * np.conj(difference[:-1, :]))[pairs_y]))
    gx = np.angle(np.sum((difference[:, 1:] * np.conj(difference[:, :-1]))[pairs_x]))
    return float(gy), float(gx)


def phase_ramp(shape: tuple[int, int], gradient: tuple[float, float]) -> np.ndarray:
    """exp(i (gy y + gx x)) on an (H, W) grid."""
    rows, cols = np.indices(shape)
    return np.exp(1j * (gradient[0] * rows + gradient[1] * cols))


def align(
    truth: np.ndarray,
    image: np.ndarray,
    mask: np.ndarray,
    *,
    max_shift_px: float,
    remove_ramp: bool = False,
) -> tuple[np.ndarray, Alignment]:
    """Align complex ``image`` (H, W) to complex ``truth`` over ``mask``.

    Returns the aligned (H, W) complex128 image and what was removed. The phase offset is
    the angle of sum(truth * conj(image)); the amplitude scale is the least-squares factor
    sum(|truth| |image|) / sum(|image|^2), both over the mask.
    """
    if truth.shape != image.shape or mask.shape != truth.shape:
        raise ValueError(f"truth {truth.shape}, image {image.shape} and mask {mask.shape} must match")
    aligned = image.astype(np.complex128)
    shift = estimate_shift(truth, aligned, mask)
    applied = bool(np.hypot(*shift) <= max_shift_px)
    if applied and shift != (0.0, 0.0):
        aligned = shift_image(aligned, shift)
    ramp = None
    if remove_ramp:
        ramp = fit_phase_ramp(truth, aligned, mask)
        aligned = aligned * phase_ramp(truth.shape, ramp)
    offset = float(np.angle(np.sum((truth * np.conj(aligned))[mask])))
    aligned = aligned * np.exp(1j * offset)
    magnitude = np.abs(aligned[mask])
    power = float(np.sum(magnitude**2))
    scale = float(np.sum(np.abs(truth[mask]) * magnitude) / power) if power > 0 else 1.0
    aligned = aligned * scale
    return aligned, Alignment(
        shift_px=shift,
        shift_applied=applied,
        phase_ramp_rad_per_px=ramp,
        phase_offset_rad=offset,
        amplitude_scale=scale,
    )
