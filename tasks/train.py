"""Phase E tasks: train one network arm per dose x view; reconstruct each view with it."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger

from ptystudy.config import Arm, TrainingConfig
from ptystudy.contract import load_scan
from ptystudy.errors import ContractError
from ptystudy.layout import RunLayout, dose_text
from ptystudy.models.inference import reconstruct_view
from ptystudy.models.training import load_network, save_network, train_network
from ptystudy.recon import Reconstruction, write_recon
from ptystudy.records import FileRecord, ModelRecord, ReconRecord, ViewRecord
from tasks._prefect import phase_task

MODEL_MODULES = (
    "ptystudy.models.layers",
    "ptystudy.models.networks",
    "ptystudy.models.data",
    "ptystudy.models.training",
    "ptystudy.contract",
    "ptystudy.layout",
)


@phase_task(name="train", modules=MODEL_MODULES, tags=("heavy", "gpu", "tensorflow"))
def train_arm(view: ViewRecord, arm: Arm, training: TrainingConfig, seed: int, run_dir: str) -> ModelRecord:
    """Train ``arm`` on the training corpus of one view (train split); write ``models/dose_{d}/{view}/{arm}/``."""
    started = time.perf_counter()
    label = f"{arm} {dose_text(view.dose)} {view.view}"
    if view.corpus is None:
        raise ContractError(f"the {view.split} split of view {view.view} has no training corpus")
    corpus = load_scan(view.corpus.verified(), require_groups=True)
    trained = train_network(corpus, Arm(arm), training, seed=seed, label=label)
    paths = save_network(trained, RunLayout(Path(run_dir)).model_dir(view.dose, view.view, arm))
    history = trained.history
    get_run_logger().info(
        "%s: %d epochs (best %d) on %d samples, %.0f samples/s, best validation loss %.5g; %s",
        label,
        history["epochs_run"],
        history["best_epoch"],
        history["n_train"],
        history["train_samples_per_second"],
        history["val_loss"][history["best_epoch"] - 1],
        history["stop_reason"],
    )
    return ModelRecord(
        dose=view.dose,
        view=view.view,
        arm=str(arm),
        model=FileRecord.of(paths["model"]),
        spec=FileRecord.of(paths["spec"]),
        history=FileRecord.of(paths["history"]),
        loss_figure=FileRecord.of(paths["loss"]),
        epochs_run=history["epochs_run"],
        max_epochs=history["max_epochs"],
        best_epoch=history["best_epoch"],
        stop_reason=history["stop_reason"],
        n_samples=history["n_samples"],
        n_train=history["n_train"],
        samples_per_group=history["samples_per_group"],
        seed=seed,
        seconds=time.perf_counter() - started,
    )


@phase_task(name="infer", modules=(*MODEL_MODULES, "ptystudy.models.inference", "ptystudy.stitch", "ptystudy.recon"))
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
        model.arm,
        dose_text(view.dose),
        view.view,
        view.split,
        scan.n_patterns,
        seconds,
    )
    return ReconRecord(
        dose=view.dose,
        view=view.view,
        split=view.split,
        arm=model.arm,
        file=FileRecord.of(path),
        n_patterns=scan.n_patterns,
        covered_px=int(coverage.sum()),
        seconds=seconds,
    )
