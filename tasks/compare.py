"""Phase G task: align and score every arm of one condition against the ground truth."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger

from ptystudy.config import EvaluationConfig
from ptystudy.errors import ContractError
from ptystudy.evaluate.compare import (
    alignment_record,
    metric_rows,
    score_captions,
    score_condition,
    write_aligned,
    write_metrics_csv,
)
from ptystudy.evaluate.figures import plot_frc, plot_montage
from ptystudy.files import write_json
from ptystudy.naming import arm_rank, arm_title, dose_text
from ptystudy.recon import load_recon
from ptystudy.records import CompareRecord, FileRecord, ReconRecord, ViewRecord
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import load_scan
from ptystudy.stitch import coverage_mask
from tasks._prefect import phase_task


@phase_task(name="compare")
def compare_condition(
    view: ViewRecord, recons: list[ReconRecord], evaluation: EvaluationConfig, run_dir: str
) -> CompareRecord:
    """Score every reconstruction of one view split (and the flat "no information" reference)
    on the view's coverage; write ``compare/.../`` tables, aligned images and figures."""
    started = time.perf_counter()
    if not recons:
        raise ContractError(f"no reconstruction of dose {dose_text(view.dose)} {view.view} {view.split} to score")
    scan = load_scan(view.file.verified())
    coverage = coverage_mask(scan.obj.shape, scan.ycoords, scan.xcoords, scan.patch_size // 2)
    loaded = {r.arm: load_recon(r.file.verified()) for r in sorted(recons, key=lambda r: arm_rank(r.arm))}
    comparison = score_condition(scan.obj, coverage, loaded, evaluation)
    directory = RunLayout(Path(run_dir)).compare_dir(view.dose, view.view, view.split)
    condition = f"dose {dose_text(view.dose)} photons, {view.view} view, {view.split} split"
    captions = score_captions(comparison)
    arms = comparison.arms.items()
    files = {
        "metrics": write_metrics_csv(directory / "metrics.csv", metric_rows(comparison, *view.condition)),
        "aligned": write_aligned(directory / "aligned.npz", comparison),
        "alignment": write_json(directory / "alignment.json", alignment_record(comparison, evaluation)),
        "montage": plot_montage(
            directory / "montage.png",
            {"amplitude": comparison.truth_amplitude, "phase": comparison.truth_phase},
            {arm: {"amplitude": score.amplitude, "phase": score.phase} for arm, score in arms},
            comparison.mask,
            captions=captions,
            title=condition,
        ),
        "frc_figure": plot_frc(
            directory / "frc.png",
            {arm: score.frc for arm, score in arms},
            title=f"Fourier ring correlation with the truth: {condition}",
        ),
    }
    for arm, caption in captions.items():
        get_run_logger().info("%s %s %s %s: %s", arm_title(arm), dose_text(view.dose), view.view, view.split, caption)
    return CompareRecord(
        dose=view.dose,
        view=view.view,
        split=view.split,
        arms=tuple(comparison.arms),
        **{name: FileRecord.of(path) for name, path in files.items()},
        seconds=time.perf_counter() - started,
    )
