"""Training, saving and loading the networks of phase E (docs/design.md §6).

A trained network is saved as a directory: ``model.keras`` (Keras' own format, safe
mode), ``spec.json`` (the ``ModelSpec`` with the input normalisation), ``history.json``
(losses per epoch) and ``loss.png``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptystudy.models.data import NetworkData, input_scale, network_data, observable_phase, truth_patches
from ptystudy.models.figures import plot_loss_history
from ptystudy.models.layers import PoissonNLL
from ptystudy.models.networks import ModelSpec, build_pinn, build_supervised

import keras
import numpy as np
import tensorflow as tf

from ptystudy.config import Arm, TrainingConfig
from ptystudy.files import atomic_path, write_json
from ptystudy.machine import describe_machine
from ptystudy.scan.contract import Scan
from ptystudy.seeds import derived_seed

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
"""Most training steps per call of the compiled train function. The same updates in the same
order (bit-identical weights), with fewer round trips from Python: small networks on a CPU
train up to about 1.5x faster (benchmarks/RESULTS.md)."""


def epoch_steps(samples: int, batch_size: int) -> tuple[int, int]:
    """``(steps per epoch, steps per execution)`` for an epoch of at least ``samples``.

    The compiled train function runs its steps per execution whole (the stream never runs
    out), so an epoch is a whole number of executions: as few as ``STEPS_PER_EXECUTION``
    allows, each as short as covers the samples (e.g. 50 batches: 4 executions of 13 steps).
    """
    batches = max(1, math.ceil(samples / batch_size))
    executions = math.ceil(batches / STEPS_PER_EXECUTION)
    per_execution = math.ceil(batches / executions)
    return per_execution * executions, per_execution


def make_spec(view: Scan, arm: Arm, config: TrainingConfig) -> ModelSpec:
    """The spec of ``arm`` for ``view``: size, channels (the gs2 group size) and input scale."""
    size = view.patch_size
    channels = view.groups.shape[1] if arm.is_gs2 else 1
    return ModelSpec(
        arm=arm,
        patch_size=size,
        filters_base=config.filters_base,
        group_size=channels,
        input_scale=input_scale(view.diffraction),
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
    """Logs each epoch's losses and keeps its wall time (seconds; the first includes tracing)."""

    def __init__(self, label: str, epochs: int):
        super().__init__()
        self.label, self.epochs = label, epochs
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)
        logs = logs or {}
        logger.info(
            "%s epoch %d/%d: loss %.5g, validation %.5g, %.1f s",
            self.label,
            epoch + 1,
            self.epochs,
            logs.get("loss", float("nan")),
            logs.get("val_loss", float("nan")),
            self.seconds[-1],
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
    when training starts. Samples are gs2 groups for the gs2 arms, patterns otherwise; a strip
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
    validation = validation_subset(validation, spec.group_size, seed=seed)
    model = build_network(spec, corpus, seed=seed)
    targets = _targets(spec, corpus, data)
    rate = config.supervised_learning_rate if arm is Arm.SUPERVISED else config.learning_rate
    steps, per_execution = epoch_steps(samples_per_epoch(train.size, spec.group_size), config.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=_losses(arm),
        loss_weights=loss_weights(targets),
        steps_per_execution=per_execution,
    )
    # Adam's slots made here, not inside the first traced step: tracing there creates them in a
    # first trace and then traces the step again, about 2.5 s more per training (same updates)
    model.optimizer.build(model.trainable_variables)
    convergence = Convergence(
        min_improvement=config.min_improvement,
        plateau_patience=config.plateau_patience,
        stop_patience=config.stop_patience,
        max_epochs=config.max_epochs,
    )
    progress = _ProgressLog(label or str(arm), config.max_epochs)
    started = time.perf_counter()
    fit = model.fit(
        training_stream(
            data.inputs(train),
            {key: value[train] for key, value in targets.items()},
            batch_size=config.batch_size,
            seed=seed,
        ),
        steps_per_epoch=steps,
        validation_data=(data.inputs(validation), {key: value[validation] for key, value in targets.items()}),
        validation_batch_size=VALIDATION_BATCH_SIZE,
        epochs=config.max_epochs,
        shuffle=False,  # the stream is shuffled
        verbose=0,
        callbacks=[convergence, progress, *callbacks],
    )
    seconds = time.perf_counter() - started
    losses = [float(v) for v in fit.history["loss"]]
    validation_losses = [float(v) for v in fit.history["val_loss"]]
    if not np.all(np.isfinite(losses + validation_losses)):
        raise TrainingError(f"{label or arm}: the loss became NaN or infinite at epoch {len(losses)}")
    # on the validation samples and some trained on: a small view may hold one validation sample
    _check_not_constant(model, data, np.concatenate([validation, train[:CHECKED_SAMPLES]]), label or str(arm))
    epochs = len(losses)
    trained_samples = steps * config.batch_size * epochs
    history = {
        "arm": str(arm),
        "loss": losses,
        "val_loss": validation_losses,
        "learning_rate": convergence.learning_rates,
        "epochs_run": epochs,
        "max_epochs": config.max_epochs,
        "best_epoch": convergence.best_epoch,
        "stop_reason": convergence.stop_reason,
        "n_samples": int(data.n_samples),
        "n_train": int(train.size),
        "n_validation": int(validation.size),
        "n_unused": int(data.n_samples - train.size - validation.size),
        "samples_per_epoch": steps * config.batch_size,
        "corpus_scans": corpus.metadata.get("corpus_scans"),
        "samples_per_group": spec.group_size,
        "batch_size": config.batch_size,
        "pattern_evaluations": {
            "train": trained_samples * spec.group_size,
            "validation": int(validation.size) * spec.group_size * epochs,
        },
        "seconds": seconds,
        "epoch_seconds": progress.seconds,
        "train_samples_per_second": trained_samples / seconds,
        "seed": seed,
        "machine": describe_machine(),
    }
    return TrainedNetwork(model, spec, history)


def pattern_evaluations(history: dict[str, Any]) -> int:
    """Patterns a training run evaluated its generator on, training and validation together
    (a gs2 group counts its C patterns): the work it did, whatever the machine."""
    return int(sum(history["pattern_evaluations"].values()))


VALIDATION_BATCH_SIZE = 256
"""Samples per validation batch: forward passes only, so larger batches than training's."""


def samples_per_epoch(n_train: int, patterns_per_sample: int) -> int:
    """Training samples per epoch: ``n_train`` patterns' worth, so that an epoch evaluates
    the generator on about as many patterns for every arm (each pattern of the corpus
    about once). A gs2 group holds C patterns and every position seeds one, so an epoch
    of gs2 takes 1/C of the groups, a fresh draw each epoch (``training_stream``)."""
    return max(1, math.ceil(n_train / patterns_per_sample))


def validation_subset(validation: np.ndarray, patterns_per_sample: int, *, seed: int) -> np.ndarray:
    """The validation samples evaluated every epoch: all of them for single patterns, a fixed
    seeded 1/C of the gs2 groups (sorted), so that validation too evaluates each of its
    patterns about once."""
    if patterns_per_sample == 1:
        return validation
    keep = samples_per_epoch(validation.size, patterns_per_sample)
    rng = np.random.default_rng(derived_seed(seed, "validation subset"))
    return np.sort(rng.choice(validation, size=keep, replace=False))


def training_stream(
    inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray], *, batch_size: int, seed: int
) -> tf.data.Dataset:
    """The training samples as an endless stream of ``(inputs, targets)`` batches, the order
    a new permutation on every pass: an epoch takes the next ``steps_per_epoch`` batches, so
    epochs shorter than a pass draw different samples each time.

    Each pass's permutation is drawn statelessly from ``seed`` and the pass number, so the
    stream never depends on TensorFlow's global seed, which another training running in
    the same process may set. Batches are gathered from one copy of the arrays (no shuffle
    buffer holding a second). The stream never ends, so every batch is full and its shape
    static: with a dynamic batch dimension TensorFlow computes shapes with int32 ops, which
    oneDNN on a CPU without AVX-512 refuses with an error-level log line before it falls back.
    """
    arrays = tf.nest.map_structure(tf.convert_to_tensor, (inputs, targets))
    n = int(next(iter(inputs.values())).shape[0])
    base = derived_seed(seed, "training order")

    def permutation(one_pass):
        return tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(base, tf.int64), one_pass])
        )

    order = tf.data.Dataset.counter().map(permutation).unbatch()
    batches = order.batch(batch_size, drop_remainder=True)
    # no prefetch: its background thread made fit wait about 0.5-2 s per epoch run when the stream was closed
    return batches.map(lambda index: tf.nest.map_structure(lambda array: tf.gather(array, index), arrays))


CHECKED_SAMPLES = 32
"""Training samples the trained network's output is checked on, beside the validation ones."""


def _check_not_constant(model: keras.Model, data: NetworkData, index: np.ndarray, label: str) -> None:
    """Raise ``TrainingError`` if the outputs on the samples ``index`` (at least 2) are not
    finite or do not vary between samples."""
    if index.size < 2:
        raise ValueError(f"checking that outputs vary needs 2 samples or more, got {index.size}")
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
