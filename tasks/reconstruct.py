"""Phase F task: pty-chi LSQML on one view split, in the LSQML package's shared worker process."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger

from ptystudy.config import LsqmlConfig
from ptystudy.lsqml.figures import plot_cost_history
from ptystudy.lsqml.reconstruction import reconstruct_with_lsqml
from ptystudy.naming import dose_text
from ptystudy.recon import write_recon
from ptystudy.records import ReconRecord, ViewRecord
from ptystudy.run.layout import RunLayout
from tasks._prefect import phase_task


@phase_task(name="lsqml", tags=("heavy", "gpu", "torch"))
def reconstruct_lsqml(view: ViewRecord, lsqml: LsqmlConfig, seed: int, run_dir: str) -> ReconRecord:
    """LSQML on every pattern of one view; write ``recon/.../lsqml.npz`` and its cost figure."""
    labels = {"dose": view.dose, "view": view.view, "split": view.split}
    recon, result = reconstruct_with_lsqml(view.file.verified(), lsqml, seed, labels)
    layout = RunLayout(Path(run_dir))
    path = write_recon(layout.recon(view.dose, view.view, view.split, "lsqml"), recon)
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
    run = {"epochs": result.epochs, "max_epochs": lsqml.max_epochs, "stop_reason": result.stop_reason}
    return ReconRecord.of(view, "lsqml", path, int(recon.coverage.sum()), result.seconds, **run)
