"""Training, saving and loading the networks of phase E (DESIGN §6).

A trained network is saved as a directory: ``model.keras`` (Keras' own format, safe
mode), ``spec.json`` (the ``ModelSpec`` with the input normalisation), ``history.json``
(losses per epoch) and ``loss.png``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ptystudy.config import Arm, TrainingConfig
from ptystudy.contract import Scan
from ptystudy.files import atomic_path, write_json
from ptystudy.models.data import NetworkData, input_scale, network_data, truth_patches
from ptystudy.models.layers import PoissonNLL
from ptystudy.models.networks import ModelSpec, build_pinn, build_supervised
from ptystudy.report import plot_loss_history

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


def make_spec(view: Scan, arm: Arm, config: TrainingConfig) -> ModelSpec:
    """The spec of ``arm`` for ``view``: size, channels, merge padding, input scale."""
    size = view.patch_size
    channels = view.groups.shape[1] if arm is Arm.PINN else 1
    return ModelSpec(
        arm=arm,
        patch_size=size,
        filters_base=config.filters_base,
        group_size=channels,
        padding_px=size if arm is Arm.PINN else 0,
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
        return {"amplitude": amplitude, "phase": phase}
    return {"counts": data.counts}


def _losses(arm: Arm) -> dict[str, keras.losses.Loss]:
    if arm is Arm.SUPERVISED:
        return {"amplitude": keras.losses.MeanAbsoluteError(), "phase": keras.losses.MeanAbsoluteError()}
    return {"counts": PoissonNLL()}


def split_samples(n: int, *, validation_fraction: float, max_samples: int | None, rng: np.random.Generator):
    """Seeded (train, validation) sample indices, after capping at ``max_samples``."""
    order = rng.permutation(n)[: max_samples or n]
    n_validation = max(1, int(round(validation_fraction * order.size)))
    if order.size - n_validation < 2:
        raise TrainingError(f"too few samples to train: {order.size} (need at least 3)")
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


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


def train_network(view: Scan, arm: Arm, config: TrainingConfig, *, seed: int, label: str = "") -> TrainedNetwork:
    """Train ``arm`` on a view's train split.

    Seeds Keras (and through it TF, numpy's global and Python's generators) with ``seed``
    when training starts; the train/validation split is drawn from its own Generator.

    Raises
    ------
    TrainingError
        If the loss becomes NaN or the trained network's output is constant.
    """
    keras.utils.set_random_seed(seed)
    spec = make_spec(view, arm, config)
    data = network_data(view, arm, spec.input_scale)
    train, validation = split_samples(
        data.n_samples,
        validation_fraction=config.validation_fraction,
        max_samples=config.max_samples,
        rng=np.random.default_rng(seed),
    )
    model = build_network(spec, view, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=_losses(arm))
    targets = _targets(spec, view, data)
    started = time.perf_counter()
    fit = model.fit(
        data.inputs(train),
        {key: value[train] for key, value in targets.items()},
        validation_data=(data.inputs(validation), {key: value[validation] for key, value in targets.items()}),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=config.plateau_patience),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.stop_patience, restore_best_weights=True),
            keras.callbacks.TerminateOnNaN(),
            _ProgressLog(label or str(arm), config.epochs),
        ],
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
        "learning_rate": [float(v) for v in fit.history.get("learning_rate", [])],
        "epochs_run": len(losses),
        "best_epoch": int(np.argmin(validation_losses)) + 1,
        "n_samples": int(data.n_samples),
        "n_train": int(train.size),
        "n_validation": int(validation.size),
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
