"""Phase G task: align and score every arm of one condition against the ground truth."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from prefect import get_run_logger

from ptystudy.compare import (
    FLAT,
    alignment_record,
    compare,
    flat_reference,
    metric_rows,
    write_aligned,
    write_metrics_csv,
)
from ptystudy.conditions import dose_text
from ptystudy.config import EvaluationConfig
from ptystudy.contract import load_scan
from ptystudy.errors import ContractError
from ptystudy.figures import arm_rank, arm_title, plot_frc, plot_montage
from ptystudy.files import write_json
from ptystudy.layout import RunLayout
from ptystudy.recon import load_recon
from ptystudy.records import CompareRecord, FileRecord, ReconRecord, ViewRecord
from ptystudy.stitch import coverage_mask
from tasks._prefect import phase_task


@phase_task(name="compare")
def compare_condition(
    view: ViewRecord, recons: list[ReconRecord], evaluation: EvaluationConfig, run_dir: str
) -> CompareRecord:
    """Score every reconstruction of one view split; write ``compare/.../`` files.

    The scored region is the view's coverage (central N/2 squares at its positions);
    every arm must cover it. A flat prediction is scored beside the arms as the "no
    information" reference.
    """
    started = time.perf_counter()
    if not recons:
        raise ContractError(f"no reconstruction of dose {dose_text(view.dose)} {view.view} {view.split} to score")
    scan = load_scan(view.file.verified())
    coverage = coverage_mask(scan.obj.shape, scan.ycoords, scan.xcoords, scan.patch_size // 2)
    images = {}
    for record in sorted(recons, key=lambda r: arm_rank(r.arm)):
        recon = load_recon(record.file.verified())
        if recon.obj.shape != scan.obj.shape:
            raise ContractError(f"{record.file.path}: object {recon.obj.shape}, truth canvas {scan.obj.shape}")
        if not np.all(recon.coverage[coverage]):
            raise ContractError(f"{record.file.path}: does not cover the view's scanned region")
        images[record.arm] = recon.obj
    images[FLAT] = flat_reference(scan.obj, coverage)
    comparison = compare(scan.obj, coverage, images, evaluation)

    directory = RunLayout(Path(run_dir)).compare_dir(view.dose, view.view, view.split)
    condition = f"dose {dose_text(view.dose)} photons, {view.view} view, {view.split} split"
    metrics_path = write_metrics_csv(
        directory / "metrics.csv", metric_rows(comparison, view.dose, view.view, view.split)
    )
    aligned_path = write_aligned(directory / "aligned.npz", comparison)
    alignment_path = write_json(directory / "alignment.json", alignment_record(comparison, evaluation))
    captions = {
        arm: "MS-SSIM amp {:.2f} phase {:.2f}; {}".format(
            score.metrics["amplitude"]["ms_ssim"], score.metrics["phase"]["ms_ssim"], _frc_band_text(score.metrics)
        )
        for arm, score in comparison.arms.items()
    }
    montage_path = plot_montage(
        directory / "montage.png",
        {"amplitude": comparison.truth_amplitude, "phase": comparison.truth_phase},
        {arm: {"amplitude": score.amplitude, "phase": score.phase} for arm, score in comparison.arms.items()},
        comparison.mask,
        captions=captions,
        title=condition,
    )
    frc_path = plot_frc(
        directory / "frc.png",
        {arm: score.frc for arm, score in comparison.arms.items()},
        title=f"Fourier ring correlation with the truth: {condition}",
    )
    logger = get_run_logger()
    for arm, caption in captions.items():
        logger.info("%s %s %s %s: %s", arm_title(arm), dose_text(view.dose), view.view, view.split, caption)
    return CompareRecord(
        dose=view.dose,
        view=view.view,
        split=view.split,
        arms=tuple(images),
        aligned=FileRecord.of(aligned_path),
        metrics=FileRecord.of(metrics_path),
        alignment=FileRecord.of(alignment_path),
        montage=FileRecord.of(montage_path),
        frc_figure=FileRecord.of(frc_path),
        seconds=time.perf_counter() - started,
    )


def _frc_band_text(metrics: dict[str, dict[str, float]]) -> str:
    """Where the phase FRC stays above 0.5, in words."""
    phase = metrics["phase"]
    if phase["frc50"] == 0.0:
        return "phase FRC never above 0.5"
    return f"phase FRC > 0.5 from {phase['frc50_onset']:.2f} to {phase['frc50']:.2f} of Nyquist"
