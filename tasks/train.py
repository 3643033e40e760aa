"""Phase E task: train one network arm per dose x view on the view's training corpus."""

from __future__ import annotations

import time
from pathlib import Path

from ptystudy.models.training import pattern_evaluations, save_network, train_network

from prefect import get_run_logger

from ptystudy.config import Arm, TrainingConfig
from ptystudy.errors import ContractError
from ptystudy.naming import arm_title, dose_text
from ptystudy.records import ModelRecord, ViewRecord
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import load_scan
from tasks._prefect import phase_task


@phase_task(name="train", tags=("heavy", "gpu", "tensorflow"))
def train_arm(view: ViewRecord, arm: Arm, training: TrainingConfig, seed: int, run_dir: str) -> ModelRecord:
    """Train ``arm`` on the training corpus of one view (train split); write ``models/dose_{d}/{view}/{arm}/``."""
    started = time.perf_counter()
    label = f"{arm_title(arm)} {dose_text(view.dose)} {view.view}"
    if view.corpus is None:
        raise ContractError(f"the {view.split} split of view {view.view} has no training corpus")
    corpus = load_scan(view.corpus.verified(), require_groups=True)
    trained = train_network(corpus, Arm(arm), training, seed=seed, label=label)
    paths = save_network(trained, RunLayout(Path(run_dir)).model_dir(view.dose, view.view, arm))
    history, work = trained.history, pattern_evaluations(trained.history)
    get_run_logger().info(
        "%s: %d epochs (best %d) of %d samples from %d, %.0f samples/s, %.3g pattern evaluations, "
        "best validation loss %.5g; %s",
        label,
        history["epochs_run"],
        history["best_epoch"],
        history["samples_per_epoch"],
        history["n_train"],
        history["train_samples_per_second"],
        work,
        history["val_loss"][history["best_epoch"] - 1],
        history["stop_reason"],
    )
    seconds = time.perf_counter() - started
    return ModelRecord.of(view.dose, view.view, str(arm), paths, history, work, seed, seconds)
