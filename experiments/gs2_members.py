"""What a trained gs2 PtychoPINN holds in each group member, and how its reconstruction is read.

    python experiments/gs2_members.py [--arm pinn] [--profile quick] [--dose 100000]
                                     [--view dense] [--seeds 7 1 2] [--set section.field=value ...]

Trains a gs2 arm (``pinn``, PtychoPINN's joint generator, or ``pinn_shared``) on the
study's own corpus once per initialisation seed, then reconstructs the view's test and
train splits in four ways and scores each as phase G does (phase and amplitude MS-SSIM after alignment):

- ``seed own``: each group's seed member's own prediction;
- ``seed merged``: the seed member's patch after the group merge (what the loss constrains);
- ``all own``: every member's own prediction, each at its own position (the study's
  inference, as PtychoPINN's ``reassemble_position`` reads a gs2 model);
- ``member k own``: only member k (k >= 1, a neighbour) of every group.

It also prints, per member, the mean and standard deviation of the predicted amplitude over
the predicted (central N/2) squares of the test split, beside the truth's, and their mean
Pearson correlation with the truth per patch. The merge only constrains the average of the
members where they overlap, so the members need not be equally good: with the joint
generator (PtychoPINN's published form) one member carries the reconstruction; with the
shared generator every member is predicted alike (RESULTS.md).
"""

from __future__ import annotations

import argparse
import time

from ptystudy.models.data import network_data, truth_patches
from ptystudy.models.inference import stitch_weights
from ptystudy.models.networks import ModelSpec
from ptystudy.models.training import train_network

import keras
import numpy as np
from learning import score, study_views

from ptystudy.conditions import Split
from ptystudy.config import Arm, StudyConfig
from ptystudy.machine import describe_machine, machine_line
from ptystudy.profiles import add_override_option, parse_override, resolve_config
from ptystudy.scan.contract import Scan
from ptystudy.stitch import Stitcher


def member_patches(model: keras.Model, spec: ModelSpec, view: Scan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(own, merged, members)``: each member's own prediction and its merged patch,
    (groups, C, N, N) complex64 (own ones zero outside the central N/2 square), and the
    (groups, C) member indices into the view."""
    data = network_data(view, spec.arm, spec.input_scale)
    outputs = {name: model.get_layer(name).output for name in ("amplitude", "phase", "group_merge")}
    predicted = keras.Model(model.inputs, outputs).predict(data.inputs(), batch_size=256, verbose=0)
    own = np.asarray(predicted["amplitude"]) * np.exp(1j * np.asarray(predicted["phase"]))
    quarter = spec.patch_size // 4
    own = np.pad(own, [(0, 0), (quarter, quarter), (quarter, quarter), (0, 0)])
    real, imag = predicted["group_merge"]
    merged = np.asarray(real) + 1j * np.asarray(imag)
    to_members = (0, 3, 1, 2)
    return (
        own.transpose(to_members).astype(np.complex64),
        merged.transpose(to_members).astype(np.complex64),
        data.members,
    )


def stitched(view: Scan, patches: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Patches (b, N, N) at the positions of view rows ``indices``, stitched as the study does."""
    stitcher = Stitcher(view.obj.shape, view.patch_size // 2, stitch_weights(view.probe))
    stitcher.add(patches, view.ycoords[indices], view.xcoords[indices])
    return stitcher.result()[0]


def readings(view: Scan, own: np.ndarray, merged: np.ndarray, members: np.ndarray) -> dict[str, np.ndarray]:
    """The reconstructions of ``view`` compared, by name."""
    size, group = view.patch_size, members.shape[1]
    images = {
        "seed own": stitched(view, own[:, 0], members[:, 0]),
        "seed merged": stitched(view, merged[:, 0], members[:, 0]),
        "all own": stitched(view, own.reshape(-1, size, size), members.reshape(-1)),
    }
    for member in range(1, group):
        images[f"member {member} own"] = stitched(view, own[:, member], members[:, member])
    return images


def patch_correlation(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over patches of the Pearson correlation of two (n, M, M) stacks."""
    truth = truth - truth.mean(axis=(1, 2), keepdims=True)
    predicted = predicted - predicted.mean(axis=(1, 2), keepdims=True)
    norm = np.sqrt((truth**2).sum(axis=(1, 2)) * (predicted**2).sum(axis=(1, 2)))
    return float(np.mean((truth * predicted).sum(axis=(1, 2)) / np.maximum(norm, 1e-12)))


def member_statistics(view: Scan, own: np.ndarray, merged: np.ndarray, members: np.ndarray) -> list[str]:
    """One line per member, and one for the seed's merged patch: predicted amplitude mean
    and s.d. over the predicted squares, and its mean per-patch correlation with the
    truth's amplitude."""
    size = view.patch_size
    centre = slice(size // 4, size - size // 4)
    truth, _ = truth_patches(view)
    truth = truth[..., 0]
    lines = [f"  truth: amplitude mean {truth.mean():.3f}, s.d. {truth.std():.3f}"]
    rows = [("seed", own[:, 0], 0)] + [(f"member {k}", own[:, k], k) for k in range(1, members.shape[1])]
    for role, patches, member in [*rows, ("seed merged", merged[:, 0], 0)]:
        amplitude = np.abs(patches[:, centre, centre])
        correlation = patch_correlation(truth[members[:, member]], amplitude)
        lines.append(
            f"  {role}: amplitude mean {amplitude.mean():.3f}, s.d. {amplitude.std():.3f}, "
            f"per-patch r with the truth {correlation:.3f}"
        )
    return lines


def run(config: StudyConfig, arm: Arm, views: dict[Split, Scan], corpus: Scan, seed: int) -> None:
    started = time.perf_counter()
    trained = train_network(corpus, arm, config.training, seed=seed, label=str(arm))
    history = trained.history
    print(
        f"seed {seed}: best epoch {history['best_epoch']} of {history['epochs_run']} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(f"  {'reading':<16}{'test phase':>11}{'test amp':>10}{'train phase':>13}{'train amp':>11}")
    scored: dict[str, dict[str, float]] = {}
    patches = {}
    for split in (Split.TEST, Split.TRAIN):
        patches[split] = member_patches(trained.model, trained.spec, views[split])
        for name, image in readings(views[split], *patches[split]).items():
            for component, value in score(config, views[split], image).items():
                scored.setdefault(name, {})[f"{split} {component}"] = value
    for name, values in scored.items():
        print(
            f"  {name:<16}{values['test phase']:>11.3f}{values['test amplitude']:>10.3f}"
            f"{values['train phase']:>13.3f}{values['train amplitude']:>11.3f}"
        )
    print("\n".join(member_statistics(views[Split.TEST], *patches[Split.TEST])), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--dose", type=float, default=1e5)
    parser.add_argument("--view", default="dense")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 1, 2])
    parser.add_argument("--arm", default="pinn", choices=[str(arm) for arm in Arm if arm.is_gs2])
    add_override_option(parser, "training.max_epochs=30")
    args = parser.parse_args()
    config = resolve_config(args.profile, overrides=dict(parse_override(text) for text in args.overrides))
    print(machine_line(describe_machine()))
    print(
        f"arm {args.arm}, profile {args.profile}, dose {args.dose:g}, "
        f"view {args.view}" + "".join(f", {text}" for text in args.overrides)
    )
    views, corpus = study_views(config, args.dose, args.view)
    print(f"corpus: {corpus.n_patterns} patterns; views: " + ", ".join(f"{s} {v.n_patterns}" for s, v in views.items()))
    for seed in args.seeds:
        run(config, Arm(args.arm), views, corpus, seed)


if __name__ == "__main__":
    main()
