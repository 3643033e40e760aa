"""Training, saving and loading the networks of phase E (DESIGN §6).

A trained network is saved as a directory: ``model.keras`` (Keras' own format, safe
mode), ``spec.json`` (the ``ModelSpec`` with the input normalisation), ``history.json``
(losses per epoch) and ``loss.png``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ptystudy.config import Arm, Gs2Generator, TrainingConfig
from ptystudy.contract import Scan
from ptystudy.figures import plot_loss_history
from ptystudy.files import atomic_path, write_json
from ptystudy.models.data import NetworkData, input_scale, network_data, observable_phase, truth_patches
from ptystudy.models.layers import PoissonNLL
from ptystudy.models.networks import ModelSpec, build_pinn, build_supervised

logger = logging.getLogger(__name__)

MODEL_FILE, SPEC_FILE, HISTORY_FILE, LOSS_FIGURE = "model.keras", "spec.json", "history.json", "loss.png"


class TrainingError(RuntimeError):
    """Training produced no usable network (NaN loss, constant output)."""


@dataclass(frozen=True)
class TrainedNetwork:
    """A trained model, its spec and what training did."""

    model: keras.Model
    spec: ModelSpec
    history: dict[str, Any]


STEPS_PER_EXECUTION = 16
"""Training steps per call of the compiled train function. The same updates in the same
order (bit-identical weights), with fewer round trips from Python: small networks on a CPU
train up to about 1.5x faster (benchmarks/RESULTS.md)."""


def make_spec(view: Scan, arm: Arm, config: TrainingConfig) -> ModelSpec:
    """The spec of ``arm`` for ``view``: size, channels, input scale, and for gs2 whether its
    members share one generator."""
    size = view.patch_size
    channels = view.groups.shape[1] if arm is Arm.PINN else 1
    return ModelSpec(
        arm=arm,
        patch_size=size,
        filters_base=config.filters_base,
        group_size=channels,
        input_scale=input_scale(view.diffraction),
        shared_generator=arm is Arm.PINN and config.gs2_generator is Gs2Generator.SHARED,
    )


def build_network(spec: ModelSpec, view: Scan, *, seed: int = 0) -> keras.Model:
    """A fresh network for ``spec``, initial weights seeded by ``seed``; PINNs get the view's
    probe in photon units."""
    if spec.arm is Arm.SUPERVISED:
        return build_supervised(spec, seed=seed)
    return build_pinn(spec, view.probe * np.float32(view.metadata["scale"]), seed=seed)


def _targets(spec: ModelSpec, view: Scan, data: NetworkData) -> dict[str, np.ndarray]:
    if spec.arm is Arm.SUPERVISED:
        amplitude, phase = truth_patches(view)
        return {"amplitude": amplitude, "phase": observable_phase(phase, view.probe)}
    return {"counts": data.counts}


def _losses(arm: Arm) -> dict[str, keras.losses.Loss]:
    if arm is Arm.SUPERVISED:
        return {"amplitude": keras.losses.MeanAbsoluteError(), "phase": keras.losses.MeanAbsoluteError()}
    return {"counts": PoissonNLL()}


def loss_weights(targets: dict[str, np.ndarray]) -> dict[str, float] | None:
    """Weights of the supervised arm's two MAE terms: each divided by the spread of its
    target (mean absolute deviation), so amplitude (spread about 0.1) counts as much as
    phase (about 0.5 rad) instead of a fifth as much. None (one loss) for the PINNs."""
    if set(targets) != {"amplitude", "phase"}:
        return None
    spreads = {name: float(np.mean(np.abs(value - value.mean()))) for name, value in targets.items()}
    if min(spreads.values()) <= 0:
        raise TrainingError(f"a supervised target is constant over the corpus: spreads {spreads}")
    return {name: spreads["phase"] / spread for name, spread in spreads.items()}


def split_samples(
    xcoords: np.ndarray, members: np.ndarray, *, validation_fraction: float, guard_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) sample indices, each sorted: validation is a held-out strip of the
    training region, so that early stopping sees how the network does on object it never
    trained on (samples of the same pixels would reward memorising the region).

    The strip holds the samples whose members all lie right of the column ``cut``, chosen
    so that about ``validation_fraction`` of the samples do; training keeps
    the samples whose members all lie at least ``guard_px`` left of it (N/2: no predicted
    pixel and hardly any lit pixel is shared with the strip); samples in between are unused.

    xcoords : (n,) patch-centre columns of the corpus, px. members : (s, C) int indices
    into them, the seed first.
    """
    columns = xcoords[members]
    cut = float(np.quantile(columns.min(axis=1), 1 - validation_fraction))
    validation = np.flatnonzero(columns.min(axis=1) >= cut)
    train = np.flatnonzero(columns.max(axis=1) <= cut - guard_px)
    if train.size < 2 or validation.size < 1:
        raise TrainingError(
            f"too few samples to train: {train.size} for training and {validation.size} for validation "
            f"of {members.shape[0]} (need at least 2 and 1)"
        )
    return train, validation


class Convergence(keras.callbacks.Callback):
    """Learning-rate schedule and early stopping on the validation loss, with a relative tolerance.

    An epoch improves when its validation loss is below ``(1 - min_improvement)`` times
    the best so far (the losses are non-negative: a deviance, or MAE). After
    ``plateau_patience`` epochs without improvement the learning rate is halved; after
    ``stop_patience`` training stops and the best epoch's weights are restored. Records
    the learning rate of each epoch, the best epoch and why training stopped.
    """

    def __init__(self, *, min_improvement: float, plateau_patience: int, stop_patience: int, max_epochs: int):
        super().__init__()
        self.min_improvement = min_improvement
        self.plateau_patience = plateau_patience
        self.stop_patience = stop_patience
        self.max_epochs = max_epochs
        self.best = float("inf")
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None
        self.since_best = 0
        self.since_lr_change = 0
        self.learning_rates: list[float] = []
        self.stop_reason = f"epoch cap ({max_epochs}) reached before the validation loss converged"

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {})["val_loss"])
        self.learning_rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        if not np.isfinite(loss):
            self.stop_reason = f"validation loss not finite at epoch {epoch + 1}"
            self.model.stop_training = True
            return
        if loss < self.best * (1 - self.min_improvement) or self.best_weights is None:
            self.best, self.best_epoch = loss, epoch + 1
            self.best_weights = self.model.get_weights()
            self.since_best = self.since_lr_change = 0
            return
        if loss < self.best:  # a small gain: keep the better weights, still count towards the plateau
            self.best, self.best_epoch = loss, epoch + 1
            self.best_weights = self.model.get_weights()
        self.since_best += 1
        self.since_lr_change += 1
        if self.since_best >= self.stop_patience:
            self.stop_reason = (
                f"converged: validation loss improved by less than {self.min_improvement:g} (relative) "
                f"for {self.stop_patience} epochs"
            )
            self.model.stop_training = True
        elif self.since_lr_change >= self.plateau_patience:
            optimizer = self.model.optimizer
            optimizer.learning_rate.assign(float(keras.ops.convert_to_numpy(optimizer.learning_rate)) / 2)
            self.since_lr_change = 0

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class _ProgressLog(keras.callbacks.Callback):
    def __init__(self, label: str, epochs: int):
        super().__init__()
        self.label, self.epochs = label, epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        logger.info(
            "%s epoch %d/%d: loss %.5g, validation %.5g",
            self.label,
            epoch + 1,
            self.epochs,
            logs.get("loss", float("nan")),
            logs.get("val_loss", float("nan")),
        )


def train_network(
    corpus: Scan,
    arm: Arm,
    config: TrainingConfig,
    *,
    seed: int,
    label: str = "",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainedNetwork:
    """Train ``arm`` on a view's training corpus until the validation loss converges.

    Seeds Keras (and through it TF, numpy's global and Python's generators) with ``seed``
    when training starts. Samples are gs2 groups for ``pinn``, patterns otherwise; a strip
    of the corpus's region is held out for validation (``split_samples``).

    ``callbacks`` run after the study's own at every epoch (e.g. to score along the way).

    Raises
    ------
    TrainingError
        If the loss becomes NaN or the trained network's output is constant.
    """
    keras.utils.set_random_seed(seed)
    spec = make_spec(corpus, arm, config)
    data = network_data(corpus, arm, spec.input_scale)
    train, validation = split_samples(
        corpus.xcoords, data.members, validation_fraction=config.validation_fraction, guard_px=corpus.patch_size / 2
    )
    model = build_network(spec, corpus, seed=seed)
    targets = _targets(spec, corpus, data)
    rate = config.supervised_learning_rate if arm is Arm.SUPERVISED else config.learning_rate
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=_losses(arm),
        loss_weights=loss_weights(targets),
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    convergence = Convergence(
        min_improvement=config.min_improvement,
        plateau_patience=config.plateau_patience,
        stop_patience=config.stop_patience,
        max_epochs=config.max_epochs,
    )
    started = time.perf_counter()
    fit = model.fit(
        data.inputs(train),
        {key: value[train] for key, value in targets.items()},
        validation_data=(data.inputs(validation), {key: value[validation] for key, value in targets.items()}),
        epochs=config.max_epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[convergence, _ProgressLog(label or str(arm), config.max_epochs), *callbacks],
    )
    seconds = time.perf_counter() - started
    losses = [float(v) for v in fit.history["loss"]]
    validation_losses = [float(v) for v in fit.history["val_loss"]]
    if not np.all(np.isfinite(losses + validation_losses)):
        raise TrainingError(f"{label or arm}: the loss became NaN or infinite at epoch {len(losses)}")
    _check_not_constant(model, data, validation, label or str(arm))
    history = {
        "arm": str(arm),
        "loss": losses,
        "val_loss": validation_losses,
        "learning_rate": convergence.learning_rates,
        "epochs_run": len(losses),
        "max_epochs": config.max_epochs,
        "best_epoch": convergence.best_epoch,
        "stop_reason": convergence.stop_reason,
        "n_samples": int(data.n_samples),
        "n_train": int(train.size),
        "n_validation": int(validation.size),
        "n_unused": int(data.n_samples - train.size - validation.size),
        "corpus_scans": corpus.metadata.get("corpus_scans"),
        "samples_per_group": spec.group_size,
        "batch_size": config.batch_size,
        "seconds": seconds,
        "train_samples_per_second": train.size * len(losses) / seconds,
        "seed": seed,
    }
    return TrainedNetwork(model, spec, history)


def _check_not_constant(model: keras.Model, data: NetworkData, index: np.ndarray, label: str) -> None:
    outputs = model(data.inputs(index), training=False)
    for name in ("amplitude", "phase"):
        values = np.asarray(outputs[name])
        if not np.all(np.isfinite(values)):
            raise TrainingError(f"{label}: the trained network predicts non-finite {name}")
        if float(values.std(axis=0).max()) < 1e-6:
            raise TrainingError(f"{label}: the trained network's {name} is the same for every input")


def save_network(trained: TrainedNetwork, directory: Path) -> dict[str, Path]:
    """Write model.keras, spec.json, history.json and loss.png into ``directory``, atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / MODEL_FILE, suffix=".keras") as temporary:
        trained.model.save(temporary)
    paths = {
        "model": directory / MODEL_FILE,
        "spec": write_json(directory / SPEC_FILE, trained.spec.model_dump(mode="json")),
        "history": write_json(directory / HISTORY_FILE, trained.history),
    }
    paths["loss"] = plot_loss_history(directory / LOSS_FIGURE, trained.history)
    return paths


def load_network(directory: Path) -> tuple[keras.Model, ModelSpec]:
    """Reload a saved network (safe mode) and its spec."""
    directory = Path(directory)
    spec = ModelSpec.model_validate(json.loads((directory / SPEC_FILE).read_text()))
    model = keras.saving.load_model(directory / MODEL_FILE, compile=False, safe_mode=True)
    return model, spec
