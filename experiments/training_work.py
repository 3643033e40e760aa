"""What each network arm costs and scores with the profile's training settings.

    python experiments/training_work.py [--profile quick] [--dose 100000] [--view dense]
                                        [--arms pinn pinn_gs1 supervised] [--seeds 7]
                                        [--set section.field=value ...]

Builds the study's own simulation, view and training corpus, trains each arm exactly as
phase E does (early stopping on the validation strip), and prints per run: epochs (best),
pattern evaluations (the work, whatever the machine), seconds, and the test and train
splits' phase and amplitude MS-SSIM as phase G scores them. Used to choose the profiles'
training settings (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import time

from ptystudy.models.inference import reconstruct_view
from ptystudy.models.training import pattern_evaluations, train_network

from learning import study_views  # experiments/learning.py, beside this script

from ptystudy.conditions import Split
from ptystudy.config import Arm, StudyConfig
from ptystudy.evaluate.compare import compare
from ptystudy.machine import describe_machine, machine_line
from ptystudy.profiles import add_override_option, parse_override, resolve_config
from ptystudy.scan.contract import Scan
from ptystudy.stitch import coverage_mask


def scores(config: StudyConfig, trained, views: dict[Split, Scan]) -> dict[str, float]:
    """Phase and amplitude MS-SSIM of each split's reconstruction, aligned and scored as in phase G."""
    result = {}
    for split, view in views.items():
        image, _ = reconstruct_view(trained.model, trained.spec, view, batch_size=256)
        coverage = coverage_mask(view.obj.shape, view.ycoords, view.xcoords, view.patch_size // 2)
        metrics = compare(view.obj, coverage, {"arm": image}, config.evaluation).arms["arm"].metrics
        for component in ("phase", "amplitude"):
            result[f"{split} {component}"] = metrics[component]["ms_ssim"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--dose", type=float, default=1e5)
    parser.add_argument("--view", default="dense")
    parser.add_argument("--arms", nargs="+", default=[str(arm) for arm in Arm if arm.is_network])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    add_override_option(parser, "training.stop_patience=4")
    args = parser.parse_args()
    config = resolve_config(args.profile, overrides=dict(parse_override(text) for text in args.overrides))
    views, corpus = study_views(config, args.dose, args.view)
    print(machine_line(describe_machine()))
    print(
        f"profile {args.profile}, dose {args.dose:g}, view {args.view}, corpus {corpus.n_patterns} patterns"
        + "".join(f", {text}" for text in args.overrides)
    )
    print(
        "| arm | seed | epochs (best) | pattern evaluations | seconds (first epoch) "
        "| test phase / amplitude | train phase / amplitude |"
    )
    print("|---|---|---|---|---|---|---|")
    for arm in map(Arm, args.arms):
        for seed in args.seeds:
            started = time.perf_counter()
            trained = train_network(corpus, arm, config.training, seed=seed)
            seconds = time.perf_counter() - started
            history, score = trained.history, scores(config, trained, views)
            print(
                f"| {arm} | {seed} | {history['epochs_run']} ({history['best_epoch']}) "
                f"| {pattern_evaluations(history):,} | {seconds:.0f} ({history['epoch_seconds'][0]:.1f}) "
                f"| {score['test phase']:.3f} / {score['test amplitude']:.3f} "
                f"| {score['train phase']:.3f} / {score['train amplitude']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
