"""How the unit tier's learning test fares over seeds, on this machine's rounding.

    python experiments/learning_seeds.py [--seeds 0 1 2 3 4] [--set training.max_epochs=20 ...]
    TF_ENABLE_ONEDNN_OPTS=0 python experiments/learning_seeds.py   # another CPU's rounding
    TF_NUM_INTRAOP_THREADS=1 python experiments/learning_seeds.py

Builds the corpus ``tests/test_models.py::test_each_arm_learns_on_a_high_dose_scan`` uses
(the smoke scan's dense training corpus at 1e6 photons), trains each arm with the test's
settings for every seed and prints the amplitude and phase correlation of its stitched
reconstruction with the truth, the epochs and the seconds, and the smallest of each over
the seeds: the test's thresholds must sit below those on every machine.
"""

from __future__ import annotations

import argparse
import time

from ptystudy.models.inference import reconstruct_view
from ptystudy.models.training import train_network

import numpy as np

from ptystudy.conditions import Split
from ptystudy.config import Arm
from ptystudy.machine import describe_machine, machine_line
from ptystudy.profiles import add_override_option, parse_override, resolve_config
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_corpus

TEST_OVERRIDES = {"training.filters_base": 16}
"""The learning test's training settings, on top of the smoke profile."""
TEST_EPOCHS = {"pinn_shared": 20, "pinn": 20, "pinn_gs1": 12, "supervised": 12}
"""The learning test's epoch cap per arm (``--set training.max_epochs=N`` overrides it)."""


def correlations(obj: np.ndarray, coverage: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Amplitude and phase correlation with the truth after removing the global phase."""
    estimate, reference = obj[coverage], truth[coverage]
    estimate = estimate * np.exp(-1j * np.angle(np.vdot(estimate, reference)))
    return (
        float(np.corrcoef(np.abs(estimate), np.abs(reference))[0, 1]),
        float(np.corrcoef(np.angle(estimate), np.angle(reference))[0, 1]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--min-samples", type=int, default=600)
    parser.add_argument("--arms", nargs="+", default=["pinn_shared", "pinn", "pinn_gs1", "supervised"])
    add_override_option(parser, "training.max_epochs=30")
    args = parser.parse_args()
    overrides = {**TEST_OVERRIDES, **dict(parse_override(text) for text in args.overrides)}
    scan_config = resolve_config("smoke", overrides={"training.min_samples": args.min_samples})
    scan = simulate_study_dose(scan_config, 1e6)[Split.TRAIN]
    corpus = build_corpus(scan, name="dense", config=scan_config.views, seeds=scan_config.seeds)
    print(machine_line(describe_machine()))
    print(f"corpus {corpus.n_patterns} patterns; settings {overrides}, epochs per arm {TEST_EPOCHS}")
    print("| arm | seed | amplitude r | phase r | best / first validation loss | epochs | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name in args.arms:
        arm = Arm(name)
        config = resolve_config("smoke", overrides={"training.max_epochs": TEST_EPOCHS[name], **overrides})
        lowest, highest_ratio = [1.0, 1.0], 0.0
        for seed in args.seeds:
            started = time.perf_counter()
            trained = train_network(corpus, arm, config.training, seed=seed)
            obj, coverage = reconstruct_view(trained.model, trained.spec, corpus, batch_size=64)
            scores = correlations(obj, coverage, corpus.obj)
            lowest = [min(low, value) for low, value in zip(lowest, scores, strict=True)]
            ratio = min(trained.history["val_loss"]) / trained.history["val_loss"][0]
            highest_ratio = max(highest_ratio, ratio)
            print(
                f"| {name} | {seed} | {scores[0]:.3f} | {scores[1]:.3f} | {ratio:.3f} "
                f"| {trained.history['epochs_run']} | {time.perf_counter() - started:.0f} |",
                flush=True,
            )
        print(f"| {name} | worst | {lowest[0]:.3f} | {lowest[1]:.3f} | {highest_ratio:.3f} | | |", flush=True)


if __name__ == "__main__":
    main()
