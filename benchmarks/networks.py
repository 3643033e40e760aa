"""Phase E speed: per arm, training samples/s, pattern evaluations/s, seconds per epoch,
and inference patterns/s, with the machine they ran on.

    python benchmarks/networks.py [--profile quick|paper] [--dose 10000] [--epochs 4]
                                  [--compare-onednn]

Trains each network arm on the dense view's training corpus of the profile for a few
epochs, without early stopping (the first epoch, which traces the graph, is reported
apart), and reconstructs the dense test view, on this machine's CPU (or GPU, if
TensorFlow sees one). A pattern evaluation is one pattern through the generator (a gs2
group is C of them); an epoch evaluates each training pattern about once for every arm.
``--compare-onednn`` runs the same in two fresh processes, with TensorFlow's oneDNN
kernels off and on (``TF_ENABLE_ONEDNN_OPTS`` 0 and 1), and prints the speed-up per arm.
TensorFlow is imported through ``ptystudy.models``, which sets its environment up first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ptystudy.models.inference import reconstruct_view
from ptystudy.models.training import train_network

import numpy as np

from ptystudy.conditions import Split
from ptystudy.config import Arm
from ptystudy.lsqml.adapter import LsqmlSettings
from ptystudy.lsqml.worker import LsqmlWorker
from ptystudy.machine import ONEDNN_VARIABLE, describe_machine, machine_line
from ptystudy.profiles import resolve_config
from ptystudy.scan.contract import write_scan
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_corpus, build_view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--compare-onednn", action="store_true", help="time the arms with oneDNN off and on")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one run, for --compare-onednn
    args = parser.parse_args()
    if args.compare_onednn:
        compare_onednn(args)
        return
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
    rows = {str(arm): time_arm(arm, corpus, views[Split.TEST], config) for arm in Arm if arm.is_network}
    if args.json:
        print(json.dumps(rows))
        return
    print(machine_line(describe_machine()))
    print(
        f"profile {args.profile}: N = {config.scan.patch_size_px}, filters {config.training.filters_base}, "
        f"batch {config.training.batch_size}, dense training corpus {corpus.n_patterns} samples, "
        f"test view {views[Split.TEST].n_patterns} patterns, {args.epochs} epochs"
    )
    print(
        "| arm | train samples/s | pattern evaluations/s | s per epoch (after the first) | first epoch s "
        "| pattern evaluations per epoch | inference patterns/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for arm, row in rows.items():
        print(
            f"| {arm} | {row['samples_per_second']:.0f} | {row['evaluations_per_second']:.0f} "
            f"| {row['epoch_seconds']:.2f} | {row['first_epoch_seconds']:.2f} | {row['evaluations_per_epoch']} "
            f"| {row['inference_patterns_per_second']:.0f} |"
        )
    print("Training figures after the first epoch (which traces the graph); a gs2 sample is a group of C patterns.")
    lsqml_seconds = lsqml_seconds_per_pattern(views[Split.TEST], config)
    print(
        f"LSQML (the profile's settings, until its cost plateaus) on the same test view: "
        f"{1e3 * lsqml_seconds:.2f} ms per pattern"
    )
    for arm, row in rows.items():
        speedup = lsqml_seconds * row["inference_patterns_per_second"]
        print(f"  {arm:<12} inference is {speedup:7.0f}x faster per pattern than LSQML")


def time_arm(arm: Arm, corpus, test_view, config) -> dict[str, float]:
    """Train ``arm`` for the configured epochs and reconstruct ``test_view`` twice (the
    second timed): its speeds, per sample and per pattern evaluation."""
    trained = train_network(corpus, arm, config.training, seed=1)
    history = trained.history
    evaluations_per_epoch = history["samples_per_epoch"] * history["samples_per_group"]
    epochs = history["epoch_seconds"]
    steady = sum(epochs[1:]) / max(1, len(epochs) - 1)
    batch = config.training.inference_batch_size
    reconstruct_view(trained.model, trained.spec, test_view, batch_size=batch)  # traces the predict function
    started = time.perf_counter()
    reconstruct_view(trained.model, trained.spec, test_view, batch_size=batch)
    infer_seconds = time.perf_counter() - started
    return {
        "samples_per_second": history["samples_per_epoch"] / steady,
        "evaluations_per_second": evaluations_per_epoch / steady,
        "epoch_seconds": steady,
        "first_epoch_seconds": epochs[0],
        "evaluations_per_epoch": evaluations_per_epoch,
        "inference_patterns_per_second": test_view.n_patterns / infer_seconds,
    }


def compare_onednn(args: argparse.Namespace) -> None:
    """Run this benchmark in fresh processes with oneDNN off and on; print both and the ratio."""
    command = [sys.executable, __file__, "--profile", args.profile, "--dose", str(args.dose)]
    command += ["--epochs", str(args.epochs), "--json"]
    runs = {}
    for setting in ("0", "1"):
        env = {**os.environ, ONEDNN_VARIABLE: setting}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        runs[setting] = json.loads(done.stdout.strip().splitlines()[-1])
    print(machine_line(describe_machine()))
    print(f"profile {args.profile}, dose {args.dose:g}, {args.epochs} epochs; training pattern evaluations/s:")
    print("| arm | oneDNN off | oneDNN on | on / off | s per epoch off | s per epoch on |")
    print("|---|---|---|---|---|---|")
    for arm in runs["0"]:
        off, on = runs["0"][arm], runs["1"][arm]
        print(
            f"| {arm} | {off['evaluations_per_second']:.0f} | {on['evaluations_per_second']:.0f} "
            f"| {on['evaluations_per_second'] / off['evaluations_per_second']:.2f}x "
            f"| {off['epoch_seconds']:.2f} | {on['epoch_seconds']:.2f} |"
        )


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
