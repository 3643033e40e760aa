"""Phase E task: reconstruct one view split with a trained network arm."""

from __future__ import annotations

import time
from pathlib import Path

from ptystudy.models.inference import reconstruct_view
from ptystudy.models.training import load_network

from prefect import get_run_logger

from ptystudy.naming import arm_title, dose_text
from ptystudy.recon import Reconstruction, write_recon
from ptystudy.records import ModelRecord, ReconRecord, ViewRecord
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import load_scan
from tasks._prefect import phase_task


@phase_task(name="infer")
def infer_arm(model: ModelRecord, view: ViewRecord, batch_size: int, run_dir: str) -> ReconRecord:
    """Reconstruct every pattern of one view split with a trained arm; write ``recon/.../{arm}.npz``."""
    started = time.perf_counter()
    model.spec.verified()
    network, spec = load_network(model.model.verified().parent)
    scan = load_scan(view.file.verified(), require_groups=True)
    obj, coverage = reconstruct_view(network, spec, scan, batch_size=batch_size)
    seconds = time.perf_counter() - started
    metadata = {
        "arm": model.arm,
        "dose": view.dose,
        "view": view.view,
        "split": view.split,
        "n_patterns": scan.n_patterns,
        "model_sha256": model.model.sha256,
    }
    path = write_recon(
        RunLayout(Path(run_dir)).recon(view.dose, view.view, view.split, model.arm),
        Reconstruction(obj, coverage, metadata),
    )
    get_run_logger().info(
        "%s %s %s %s: %d patterns stitched in %.1f s",
        arm_title(model.arm),
        dose_text(view.dose),
        view.view,
        view.split,
        scan.n_patterns,
        seconds,
    )
    return ReconRecord.of(view, model.arm, path, int(coverage.sum()), seconds)
