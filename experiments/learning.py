"""Learning curves: test-split scores of every network arm against corpus size and epochs.

    python experiments/learning.py [--profile quick] [--dose 100000] [--view dense]
                                  [--samples 500 1000 2000 4000] [--max-epochs 40]
                                  [--arms pinn pinn_gs1 supervised] [--figure PATH]
                                  [--set section.field=value ...]

For each corpus size (``training.min_samples``) the study's own simulation, views and
corpus are built, and each arm is trained with the profile's settings (early stopping on
the held-out validation strip, epoch cap ``--max-epochs``). After chosen epochs the model
reconstructs the view's test and train splits and they are scored as phase G scores them
(phase and amplitude MS-SSIM after alignment). Prints one table row per (samples, arm,
epoch) and where early stopping ended, and writes a figure. The networks train in this
process; LSQML, for the reference line, runs in the study's worker process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ptystudy.models.inference import reconstruct_view
from ptystudy.models.networks import ModelSpec
from ptystudy.models.training import make_spec, train_network

import keras
import numpy as np
from matplotlib.figure import Figure

from ptystudy.conditions import Split
from ptystudy.config import Arm, StudyConfig
from ptystudy.evaluate.compare import compare
from ptystudy.lsqml.adapter import LsqmlSettings
from ptystudy.lsqml.worker import LsqmlWorker
from ptystudy.machine import describe_machine, machine_line
from ptystudy.naming import ARM_COLOURS, arm_title
from ptystudy.plots import save_figure
from ptystudy.profiles import add_override_option, parse_override, resolve_config
from ptystudy.scan.contract import Scan, write_scan
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_corpus, build_view
from ptystudy.stitch import coverage_mask

EVALUATED_EPOCHS = (5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)


def study_views(config: StudyConfig, dose: float, view: str) -> tuple[dict[Split, Scan], Scan]:
    """The study's own simulation at ``dose``: view ``view`` of each split, and its training corpus."""
    scans = simulate_study_dose(config, dose)
    overlap = config.views.overlaps[view]
    views = {
        split: build_view(scans[split], name=view, overlap=overlap, config=config.views, seeds=config.seeds).scan
        for split in Split
    }
    corpus = build_corpus(scans[Split.TRAIN], name=view, config=config.views, seeds=config.seeds)
    return views, corpus


def score(config: StudyConfig, view: Scan, image: np.ndarray) -> dict[str, float]:
    """Phase and amplitude MS-SSIM of one reconstruction, aligned and scored as in phase G."""
    coverage = coverage_mask(view.obj.shape, view.ycoords, view.xcoords, view.patch_size // 2)
    metrics = compare(view.obj, coverage, {"arm": image}, config.evaluation).arms["arm"].metrics
    return {"phase": metrics["phase"]["ms_ssim"], "amplitude": metrics["amplitude"]["ms_ssim"]}


class ScoreAtEpochs(keras.callbacks.Callback):
    """Reconstructs and scores the views after each of ``EVALUATED_EPOCHS``."""

    def __init__(self, config: StudyConfig, views: dict[Split, Scan], spec: ModelSpec):
        super().__init__()
        self.config, self.views, self.spec = config, views, spec
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 not in EVALUATED_EPOCHS:
            return
        row: dict[str, float] = {"epoch": epoch + 1}
        for split, view in self.views.items():
            image, _ = reconstruct_view(self.model, self.spec, view, batch_size=256)
            for component, value in score(self.config, view, image).items():
                row[f"{split} {component}"] = value
        self.rows.append(row)


def train_and_score(config: StudyConfig, corpus: Scan, views: dict[Split, Scan], arm: Arm):
    """Train ``arm`` with scoring along the way; returns (rows per epoch, history, final scores)."""
    callback = ScoreAtEpochs(config, views, make_spec(corpus, arm, config.training))
    trained = train_network(corpus, arm, config.training, seed=7, label=str(arm), callbacks=[callback])
    final = {}
    for split, view in views.items():
        image, _ = reconstruct_view(trained.model, trained.spec, view, batch_size=256)
        for component, value in score(config, view, image).items():
            final[f"{split} {component}"] = value
    return callback.rows, trained.history, final


def lsqml_scores(config: StudyConfig, views: dict[Split, Scan]) -> dict[str, float]:
    """LSQML on each split's view, scored the same way (the reference the networks chase)."""
    worker = LsqmlWorker()
    settings = LsqmlSettings.of(config.lsqml, seed=1, device="cpu")
    scores = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for split, view in views.items():
                path = write_scan(Path(folder) / f"{split}.npz", view)
                result = worker.run(path, settings, timeout_s=3600)
                for component, value in score(config, view, result.obj).items():
                    scores[f"{split} {component}"] = value
    finally:
        worker.stop()
    return scores


def plot(path: Path, curves: dict[tuple[int, str], list[dict[str, float]]], reference: dict[str, float]) -> None:
    """Test-split phase and amplitude MS-SSIM against epochs, a panel per component, a line per
    (arm, corpus size); LSQML as a dashed line."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    grid = figure.subplots(1, 2, sharey=True)
    sizes = sorted({samples for samples, _ in curves})
    for axes, component in zip(grid, ("phase", "amplitude"), strict=True):
        for (samples, arm), rows in curves.items():
            if not rows:
                continue
            shade = 0.35 + 0.65 * (sizes.index(samples) + 1) / len(sizes)
            axes.plot(
                [row["epoch"] for row in rows],
                [row[f"test {component}"] for row in rows],
                marker="o",
                color=ARM_COLOURS[arm],
                alpha=shade,
                label=f"{arm_title(arm)}, {samples} samples",
            )
        axes.axhline(reference[f"test {component}"], color=ARM_COLOURS["lsqml"], linestyle="--", label="LSQML")
        axes.set_xlabel("epoch")
        axes.set_title(f"test split, {component} MS-SSIM")
        axes.grid(alpha=0.3)
    grid[0].set_ylabel("MS-SSIM after alignment")
    grid[1].legend(fontsize=6, loc="lower right", ncol=2)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--dose", type=float, default=1e5)
    parser.add_argument("--view", default="dense")
    parser.add_argument("--samples", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--arms", nargs="+", default=[str(arm) for arm in Arm if arm.is_network])
    parser.add_argument("--figure", default="learning.png")
    add_override_option(parser, "training.min_improvement=0.005")
    args = parser.parse_args()
    print(machine_line(describe_machine()))
    print(
        f"profile {args.profile}, dose {args.dose:g}, "
        f"view {args.view}, epoch cap {args.max_epochs}" + "".join(f", {text}" for text in args.overrides)
    )
    curves: dict[tuple[int, str], list[dict[str, float]]] = {}
    reference: dict[str, float] = {}
    header = (
        f"{'samples':>8} {'arm':<11}{'epoch':>6}{'test phase':>12}{'test amp':>10}{'train phase':>13}{'train amp':>11}"
    )
    for samples in args.samples:
        config = resolve_config(
            args.profile,
            overrides={
                **dict(parse_override(text) for text in args.overrides),
                "training.min_samples": samples,
                "training.max_epochs": args.max_epochs,
            },
        )
        views, corpus = study_views(config, args.dose, args.view)
        if not reference:
            reference = lsqml_scores(config, views)
            print(f"LSQML: test phase {reference['test phase']:.3f}, amplitude {reference['test amplitude']:.3f}")
            print(header)
        for arm in map(Arm, args.arms):
            started = time.perf_counter()
            rows, history, final = train_and_score(config, corpus, views, arm)
            curves[(corpus.n_patterns, str(arm))] = rows
            for row in rows:
                print(
                    f"{corpus.n_patterns:>8} {str(arm):<11}{row['epoch']:>6}{row['test phase']:>12.3f}"
                    f"{row['test amplitude']:>10.3f}{row['train phase']:>13.3f}{row['train amplitude']:>11.3f}"
                )
            print(
                f"{corpus.n_patterns:>8} {str(arm):<11}{'stop':>6}{final['test phase']:>12.3f}"
                f"{final['test amplitude']:>10.3f}{final['train phase']:>13.3f}{final['train amplitude']:>11.3f}"
                f"  best epoch {history['best_epoch']} of {history['epochs_run']} "
                f"({time.perf_counter() - started:.0f} s): {history['stop_reason']}",
                flush=True,
            )
    plot(Path(args.figure), curves, reference)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
