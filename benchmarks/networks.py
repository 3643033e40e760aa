"""Phase E speed: training samples per second and inference patterns per second per arm.

    python benchmarks/networks.py [--profile quick|paper] [--dose 10000]

Trains each network arm on the dense view's training corpus of the profile for a few
epochs, without early stopping (the first epoch, which traces the graph, is reported
apart), and reconstructs the dense test view, on this machine's CPU (or GPU, if
TensorFlow sees one). Last, the gs2 arm is trained again with the first (canvas) merge
for the speed-up of the study's one-hot merge.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ptystudy.conditions import Split  # noqa: E402
from ptystudy.config import Arm, resolve_config  # noqa: E402
from ptystudy.contract import write_scan  # noqa: E402
from ptystudy.lsqml_worker import LsqmlWorker  # noqa: E402
from ptystudy.models import networks  # noqa: E402
from ptystudy.models.inference import reconstruct_view  # noqa: E402
from ptystudy.models.layers import GroupMerge  # noqa: E402
from ptystudy.models.merge_reference import canvas_merge  # noqa: E402
from ptystudy.models.training import train_network  # noqa: E402
from ptystudy.ptychi_adapter import LsqmlSettings  # noqa: E402
from ptystudy.simulate import simulate_study_dose  # noqa: E402
from ptystudy.views import build_corpus, build_view  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    config = resolve_config(
        args.profile,
        overrides={"training.max_epochs": args.epochs, "training.stop_patience": 200, "training.plateau_patience": 100},
    )
    scans = simulate_study_dose(config, args.dose)
    views = {
        split: build_view(
            scans[split], name="dense", overlap=config.views.overlaps["dense"], config=config.views, seeds=config.seeds
        ).scan
        for split in Split
    }
    corpus = build_corpus(scans[Split.TRAIN], name="dense", config=config.views, seeds=config.seeds)
    devices = ", ".join(d.device_type for d in tf.config.list_physical_devices()) or "none"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__} devices: {devices}")
    print(
        f"profile {args.profile}: N = {config.scan.patch_size_px}, filters {config.training.filters_base}, "
        f"batch {config.training.batch_size}, dense training corpus {corpus.n_patterns} samples, "
        f"test view {views[Split.TEST].n_patterns} patterns"
    )
    print(
        f"{'arm':<12}{'train samples/s':>17}{'patterns/s':>12}{'first epoch s':>15}{'infer patterns/s':>18}"
        f"{'ms/pattern':>12}"
    )
    rows = []
    for arm in Arm:
        if not arm.is_network:
            continue
        timer = EpochTimer()
        trained = train_network(corpus, arm, config.training, seed=1, callbacks=[timer])
        history = trained.history
        steady = history["n_train"] * (len(timer.seconds) - 1) / sum(timer.seconds[1:])
        reconstruct_view(
            trained.model, trained.spec, views[Split.TEST], batch_size=config.training.inference_batch_size
        )
        started = time.perf_counter()
        reconstruct_view(
            trained.model, trained.spec, views[Split.TEST], batch_size=config.training.inference_batch_size
        )
        infer_seconds = time.perf_counter() - started
        n_test = views[Split.TEST].n_patterns
        rows.append((arm, infer_seconds / n_test))
        print(
            f"{arm!s:<12}{steady:>17.1f}{steady * history['samples_per_group']:>12.1f}{timer.seconds[0]:>15.2f}"
            f"{n_test / infer_seconds:>18.0f}{1e3 * infer_seconds / n_test:>12.3f}"
        )
    print("train samples/s after the first epoch (which traces the graph); a gs2 sample is a group of 4 patterns.")
    lsqml_seconds = lsqml_seconds_per_pattern(views[Split.TEST], config)
    print(
        f"LSQML (the profile's settings, until its cost plateaus) on the same test view: "
        f"{1e3 * lsqml_seconds:.2f} ms per pattern"
    )
    for arm, seconds in rows:
        print(
            f"  {arm!s:<12} inference is {lsqml_seconds / seconds:7.0f}x faster per pattern than LSQML (goal >= 100x)"
        )
    merge_speedup(corpus, config)


class CanvasMerge(keras.layers.Layer):
    """The first gs2 merge (``merge_reference.canvas_merge``), as a layer with GroupMerge's signature."""

    def __init__(self, patch_size: int, group_size: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size, self.group_size = patch_size, group_size

    def call(self, inputs):
        real, imag, offsets = inputs
        return canvas_merge(
            real, imag, offsets, patch_size=self.patch_size, group_size=self.group_size, padding_px=self.patch_size
        )


def merge_speedup(corpus, config) -> None:
    """gs2 training samples/s with the study's one-hot merge and with the first (canvas) merge."""
    rates = {}
    for name, layer in (
        ("one-hot (the study's)", networks.GroupMerge),
        ("canvas, image transforms (first)", CanvasMerge),
    ):
        networks.GroupMerge = layer
        try:
            timer = EpochTimer()
            history = train_network(corpus, Arm.PINN, config.training, seed=1, callbacks=[timer]).history
        finally:
            networks.GroupMerge = GroupMerge
        rates[name] = history["n_train"] * (len(timer.seconds) - 1) / sum(timer.seconds[1:])
    fast, first = rates.values()
    print("gs2 (pinn) training, samples/s after the first epoch:")
    for name, rate in rates.items():
        print(f"  {name:<34}{rate:>8.0f}")
    print(f"  ratio one-hot / canvas merge: {fast / first:.1f}x (goal >= 3x)")


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of every epoch."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def lsqml_seconds_per_pattern(view, config) -> float:
    """pty-chi's run time per pattern on ``view``, in its own worker process as in the study."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_scan(Path(folder) / "view.npz", view)
        worker = LsqmlWorker()
        try:
            settings = LsqmlSettings.of(config.lsqml, seed=1)
            result = worker.run(path, settings, timeout_s=config.lsqml.timeout_seconds)
        finally:
            worker.stop()
    return result.seconds / result.n_patterns


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
