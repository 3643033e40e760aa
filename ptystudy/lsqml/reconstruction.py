"""One view reconstructed by LSQML: pty-chi in the shared worker, checked, on the truth's canvas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptystudy.config import LsqmlConfig
from ptystudy.lsqml.adapter import LsqmlSettings
from ptystudy.lsqml.worker import shared_worker
from ptystudy.recon import Reconstruction
from ptystudy.scan.contract import load_scan
from ptystudy.stitch import coverage_mask


def reconstruct_with_lsqml(
    view_path: Path, lsqml: LsqmlConfig, seed: int, labels: dict[str, Any]
) -> tuple[Reconstruction, Any]:
    """LSQML on every pattern of the view file; returns the reconstruction (object, the view's
    coverage and its metadata, ``labels`` included) and pty-chi's result (epochs, cost per
    epoch, seconds, device).

    Raises RuntimeError if pty-chi did not use every pattern; ContractError for a broken view
    file; TransientError when the worker died or overran ``lsqml.timeout_seconds``.
    """
    scan = load_scan(view_path, require_groups=True)
    worker = shared_worker()
    result = worker.run(view_path, LsqmlSettings.of(lsqml, seed=seed), timeout_s=lsqml.timeout_seconds)
    if result.n_patterns != scan.n_patterns:
        raise RuntimeError(f"LSQML used {result.n_patterns} of the view's {scan.n_patterns} patterns")
    coverage = coverage_mask(scan.obj.shape, scan.ycoords, scan.xcoords, scan.patch_size // 2)
    metadata = {
        "arm": "lsqml",
        **labels,
        "n_patterns": result.n_patterns,
        "epochs": result.epochs,
        "max_epochs": lsqml.max_epochs,
        "stop_reason": result.stop_reason,
        "batch_size": result.batch_size,
        "device": result.device,
        "cpu_threads": worker.environment.get("cpu_threads"),
        "cost_per_epoch": result.cost_per_epoch,
    }
    return Reconstruction(result.obj, coverage, metadata), result
