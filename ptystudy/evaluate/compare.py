"""Phase G for one condition: align every arm the same way and score it (docs/design.md §8, §10).

The scored region is the view's coverage (the central N/2 squares at its positions, the
same for every arm), eroded by ``ceil(max_shift_px) + 1`` px so a shifted image never
brings in pixels from outside its coverage. Windowed metrics and the FRC work on the
region's bounding rectangle, where pixels outside the region hold the truth's mean in
both images, so they neither reward nor punish any arm.

Phase is scored after moving both images by the same constant, so that the truth's
minimum over the region is 0: SSIM's luminance term compares local means relative to
zero, which is meaningful for a non-negative quantity but flips sign with the local mean
of a phase centred on zero. The other metrics do not change under the shift.

Besides the arms, every condition scores a flat prediction (the truth's mean amplitude,
zero phase), the "no information" reference an arm must beat.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from ptystudy.config import EvaluationConfig
from ptystudy.errors import ContractError
from ptystudy.evaluate.alignment import Alignment, align, bounding_box, scoring_mask
from ptystudy.evaluate.metrics import FrcCurve, frc_band, frc_curve, mae, ms_ssim, mse, psnr, ssim
from ptystudy.files import write_atomic, write_text
from ptystudy.recon import Reconstruction

COMPONENTS = ("amplitude", "phase")
METRICS = ("mae", "mse", "psnr", "ssim", "ms_ssim", "frc50", "frc_halfbit", "frc50_onset", "frc_halfbit_onset")
FLAT = "flat"
"""The reference arm: a flat prediction (the truth's mean amplitude, zero phase)."""
METRIC_COLUMNS = ("dose", "view", "split", "arm", "component", "metric", "value")


@dataclass
class ArmScore:
    """One arm's aligned crop, what alignment removed, its scores and FRC curves."""

    amplitude: np.ndarray
    phase: np.ndarray
    alignment: Alignment
    metrics: dict[str, dict[str, float]]
    frc: dict[str, FrcCurve]
    ms_ssim_scales: int


@dataclass
class Comparison:
    """Every arm of one condition scored on one common crop of the truth canvas.

    box : (row slice, column slice) of the crop on the canvas.
    mask : (h, w) bool, the scored pixels within the crop.
    """

    box: tuple[slice, slice]
    mask: np.ndarray
    truth_amplitude: np.ndarray
    truth_phase: np.ndarray
    arms: dict[str, ArmScore] = field(default_factory=dict)


def components(values: np.ndarray) -> dict[str, np.ndarray]:
    """Amplitude and phase (rad, in (-pi, pi]) of a complex image."""
    return {"amplitude": np.abs(values), "phase": np.angle(values)}


def score_component(
    truth: np.ndarray, image: np.ndarray, mask: np.ndarray, *, smoothing_px: float = 0.0
) -> tuple[dict[str, float], FrcCurve, int]:
    """Every metric of one real component on a crop; returns (metrics, FRC curve, MS-SSIM scales).

    Outside ``mask`` both images are set to the truth's masked mean before the windowed
    metrics; ``smoothing_px`` is a Gaussian sigma applied to both before MS-SSIM.
    """
    fill = float(truth[mask].mean())
    truth_filled = np.where(mask, truth, fill)
    image_filled = np.where(mask, image, fill)
    if smoothing_px > 0:
        multiscale = ms_ssim(
            gaussian_filter(truth_filled, smoothing_px), gaussian_filter(image_filled, smoothing_px), mask
        )
    else:
        multiscale = ms_ssim(truth_filled, image_filled, mask)
    curve = frc_curve(truth, image, mask)
    half, halfbit = frc_band(curve, 0.5), frc_band(curve, curve.halfbit)
    scores = {
        "mae": mae(truth, image, mask),
        "mse": mse(truth, image, mask),
        "psnr": psnr(truth, image, mask),
        "ssim": ssim(truth_filled, image_filled, mask),
        "ms_ssim": multiscale.value,
        "frc50": half.resolution,
        "frc_halfbit": halfbit.resolution,
        "frc50_onset": half.onset,
        "frc_halfbit_onset": halfbit.onset,
    }
    return scores, curve, multiscale.scales


def compare(
    truth: np.ndarray,
    coverage: np.ndarray,
    reconstructions: dict[str, np.ndarray],
    settings: EvaluationConfig,
) -> Comparison:
    """Align and score each (H, W) complex reconstruction against the (H, W) complex truth.

    coverage : (H, W) bool, the view's coverage on the canvas.
    """
    if not reconstructions:
        raise ValueError("no reconstruction to compare")
    for arm, image in reconstructions.items():
        if image.shape != truth.shape:
            raise ValueError(f"{arm}: reconstruction {image.shape} is not on the truth's {truth.shape} canvas")
    mask = scoring_mask(coverage, math.ceil(settings.max_shift_px) + 1)
    box = bounding_box(mask)
    crop_mask = mask[box]
    truth_parts = components(truth[box].astype(np.complex128))
    comparison = Comparison(box, crop_mask, truth_parts["amplitude"], truth_parts["phase"])
    for arm, image in reconstructions.items():
        aligned, alignment = align(
            truth, image, mask, max_shift_px=settings.max_shift_px, remove_ramp=settings.remove_phase_ramp
        )
        parts = components(aligned[box])
        metrics, curves, scales = {}, {}, 0
        for component in COMPONENTS:
            smoothing = settings.amplitude_smoothing_px if component == "amplitude" else 0.0
            # phase: both moved so the truth's minimum is 0 (see the module's docstring)
            base = float(truth_parts["phase"][crop_mask].min()) if component == "phase" else 0.0
            metrics[component], curves[component], scales = score_component(
                truth_parts[component] - base, parts[component] - base, crop_mask, smoothing_px=smoothing
            )
        comparison.arms[arm] = ArmScore(parts["amplitude"], parts["phase"], alignment, metrics, curves, scales)
    return comparison


def score_condition(
    truth: np.ndarray, coverage: np.ndarray, recons: dict[str, Reconstruction], settings: EvaluationConfig
) -> Comparison:
    """Align and score every arm's reconstruction (and the flat reference) against ``truth``.

    truth : (H, W) complex ground truth; coverage : (H, W) bool, the view's scanned region.
    Raises ContractError, naming the arm, for a reconstruction on another canvas or one that
    does not cover the region.
    """
    images = {}
    for arm, recon in recons.items():
        if recon.obj.shape != truth.shape:
            raise ContractError(f"{arm} reconstruction: object {recon.obj.shape}, truth canvas {truth.shape}")
        if not np.all(recon.coverage[coverage]):
            raise ContractError(f"{arm} reconstruction: does not cover the view's scanned region")
        images[arm] = recon.obj
    images[FLAT] = flat_reference(truth, coverage)
    return compare(truth, coverage, images, settings)


def frc_band_text(metrics: dict[str, dict[str, float]]) -> str:
    """Where the phase FRC stays above 0.5, in words."""
    phase = metrics["phase"]
    if phase["frc50"] == 0.0:
        return "phase FRC never above 0.5"
    return f"phase FRC > 0.5 from {phase['frc50_onset']:.2f} to {phase['frc50']:.2f} of Nyquist"


def score_captions(comparison: Comparison) -> dict[str, str]:
    """One line per arm: its MS-SSIM scores and its phase FRC band."""
    return {
        arm: "MS-SSIM amp {:.2f} phase {:.2f}; {}".format(
            score.metrics["amplitude"]["ms_ssim"], score.metrics["phase"]["ms_ssim"], frc_band_text(score.metrics)
        )
        for arm, score in comparison.arms.items()
    }


def flat_reference(truth: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """The "no information" prediction: (H, W) complex64, the truth's mean amplitude over
    ``coverage`` with zero phase everywhere."""
    return np.full(truth.shape, np.abs(truth[coverage]).mean(), dtype=np.complex64)


def metric_rows(comparison: Comparison, dose: float, view: str, split: str) -> list[dict[str, Any]]:
    """Tidy rows ``dose, view, split, arm, component, metric, value`` (docs/design.md §10)."""
    return [
        {
            "dose": dose,
            "view": view,
            "split": split,
            "arm": arm,
            "component": component,
            "metric": metric,
            "value": score.metrics[component][metric],
        }
        for arm, score in comparison.arms.items()
        for component in COMPONENTS
        for metric in METRICS
    ]


def write_metrics_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write tidy metric rows as CSV, atomically (``inf`` for a perfect PSNR, ``nan`` for the
    onset of an FRC band that does not exist)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(Path(path), buffer.getvalue())


def write_aligned(path: Path, comparison: Comparison) -> Path:
    """``aligned.npz``: truth and each arm's amplitude and phase on the common crop, the mask,
    the crop's place on the canvas and the FRC curves."""
    rows, cols = comparison.box
    arrays: dict[str, np.ndarray] = {
        "truth_amplitude": comparison.truth_amplitude.astype(np.float32),
        "truth_phase": comparison.truth_phase.astype(np.float32),
        "mask": comparison.mask,
        "crop": np.array([rows.start, rows.stop, cols.start, cols.stop], np.int64),
    }
    for arm, score in comparison.arms.items():
        arrays[f"{arm}_amplitude"] = score.amplitude.astype(np.float32)
        arrays[f"{arm}_phase"] = score.phase.astype(np.float32)
        for component, curve in score.frc.items():
            arrays[f"{arm}_{component}_frc"] = curve.frc
    # every curve has the same rings: the crop and mask are common to all arms
    any_curve = next(iter(next(iter(comparison.arms.values())).frc.values()))
    arrays["frc_frequency"] = any_curve.frequency
    arrays["frc_halfbit"] = any_curve.halfbit
    return write_atomic(Path(path), lambda handle: np.savez(handle, **arrays))


def alignment_record(comparison: Comparison, settings: EvaluationConfig) -> dict[str, Any]:
    """What each arm's alignment removed and how it was scored, for ``alignment.json``."""
    rows, cols = comparison.box
    return {
        "crop": {"rows": [rows.start, rows.stop], "cols": [cols.start, cols.stop]},
        "scored_px": int(comparison.mask.sum()),
        "erosion_px": math.ceil(settings.max_shift_px) + 1,
        "max_shift_px": settings.max_shift_px,
        "amplitude_smoothing_px_for_ms_ssim": settings.amplitude_smoothing_px,
        "arms": {
            arm: {**score.alignment.to_json(), "ms_ssim_scales": score.ms_ssim_scales}
            for arm, score in comparison.arms.items()
        },
    }
