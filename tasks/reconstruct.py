"""Phase F task: pty-chi LSQML on one view split, in the reusable worker process."""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

from prefect import get_run_logger

from ptystudy.conditions import dose_text
from ptystudy.config import LsqmlConfig
from ptystudy.contract import load_scan
from ptystudy.figures import plot_cost_history
from ptystudy.layout import RunLayout
from ptystudy.lsqml_worker import LsqmlWorker
from ptystudy.ptychi_adapter import LsqmlSettings
from ptystudy.recon import Reconstruction, write_recon
from ptystudy.records import FileRecord, ReconRecord, ViewRecord
from ptystudy.stitch import coverage_mask
from tasks._prefect import phase_task

_WORKERS: list[LsqmlWorker] = []
_WORKER_LOCK = threading.Lock()


def lsqml_cpu_threads() -> int:
    """Half of this machine's cores (at least one): LSQML runs beside network training
    (flows/_lanes.py), and two libraries each using every core slow both down."""
    return max(1, (os.cpu_count() or 2) // 2)


def lsqml_worker() -> LsqmlWorker:
    """This process's LSQML worker: one child process for every LSQML run of the process
    (pty-chi's import is paid once), created on first use and stopped at exit.

    Reached through a function, not a module global, so the task pickles for Dask.
    """
    with _WORKER_LOCK:
        if not _WORKERS:
            _WORKERS.append(LsqmlWorker(cpu_threads=lsqml_cpu_threads()))
            atexit.register(_WORKERS[0].stop)
        return _WORKERS[0]


@phase_task(name="lsqml", tags=("heavy", "gpu", "torch"))
def reconstruct_lsqml(view: ViewRecord, lsqml: LsqmlConfig, seed: int, run_dir: str) -> ReconRecord:
    """LSQML on every pattern of one view; write ``recon/.../lsqml.npz`` and its cost figure."""
    path = view.file.verified()
    scan = load_scan(path, require_groups=True)
    settings = LsqmlSettings.of(lsqml, seed=seed)
    worker = lsqml_worker()
    result = worker.run(path, settings, timeout_s=lsqml.timeout_seconds)
    if result.n_patterns != scan.n_patterns:
        raise RuntimeError(f"LSQML used {result.n_patterns} of the view's {scan.n_patterns} patterns")
    coverage = coverage_mask(scan.obj.shape, scan.ycoords, scan.xcoords, scan.patch_size // 2)
    layout = RunLayout(Path(run_dir))
    metadata = {
        "arm": "lsqml",
        "dose": view.dose,
        "view": view.view,
        "split": view.split,
        "n_patterns": result.n_patterns,
        "epochs": result.epochs,
        "max_epochs": lsqml.max_epochs,
        "stop_reason": result.stop_reason,
        "batch_size": result.batch_size,
        "device": result.device,
        "cpu_threads": worker.environment.get("cpu_threads"),
        "cost_per_epoch": result.cost_per_epoch,
    }
    recon_path = write_recon(
        layout.recon(view.dose, view.view, view.split, "lsqml"), Reconstruction(result.obj, coverage, metadata)
    )
    label = f"lsqml {dose_text(view.dose)} {view.view} {view.split}"
    plot_cost_history(
        layout.cost_figure(view.dose, view.view, view.split),
        result.cost_per_epoch,
        title=f"{label}: {result.n_patterns} patterns",
    )
    get_run_logger().info(
        "%s: %d patterns, %d epochs on %s in %.1f s (%.2f ms per pattern per epoch), cost %.4g -> %.4g; %s",
        label,
        result.n_patterns,
        result.epochs,
        result.device,
        result.seconds,
        1e3 * result.seconds / (result.epochs * result.n_patterns),
        result.cost_per_epoch[0],
        result.cost_per_epoch[-1],
        result.stop_reason,
    )
    return ReconRecord(
        dose=view.dose,
        view=view.view,
        split=view.split,
        arm="lsqml",
        file=FileRecord.of(recon_path),
        n_patterns=result.n_patterns,
        covered_px=int(coverage.sum()),
        epochs=result.epochs,
        max_epochs=lsqml.max_epochs,
        stop_reason=result.stop_reason,
        seconds=result.seconds,
    )
