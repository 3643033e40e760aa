"""The report's markdown sections about the run itself: the counts, the views as laid out,
and how every network and LSQML run converged."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ptystudy.naming import dose_text
from ptystudy.records import ModelRecord, ReconRecord, ViewRecord


def summary_markdown(summary: dict[str, Any], *, title: str, findings: str = "") -> str:
    """A short markdown report: the ``findings`` section first (markdown), then the counts,
    the task tally and each failure's reason."""
    lines = [
        f"# {title}",
        "",
        *([findings, "## Outcome", ""] if findings else []),
        f"- conditions (dose x view x split): **{summary['n_conditions']}**"
        + (
            f" (selected: {summary['selection']})"
            if summary.get("selection", "all conditions") != "all conditions"
            else ""
        ),
        f"- executed: **{summary['n_executed']}**",
        f"- succeeded: **{summary['n_success']}**",
        f"- failed: **{summary['n_failed']}**",
        *(
            [
                f"- replicates: **{summary['replicates']}** per condition; condition x replicate runs: "
                f"{summary['replicate_runs']['succeeded']} of {summary['replicate_runs']['total']} succeeded "
                "(a condition succeeds when all its replicates do)"
            ]
            if summary.get("replicates", 1) > 1
            else []
        ),
        "",
        "| phase | tasks | succeeded | of which cached | failed |",
        "|---|---|---|---|---|",
    ]
    for name, tally in summary["phases"].items():
        lines.append(f"| {name} | {tally['tasks']} | {tally['succeeded']} | {tally['cached']} | {tally['failed']} |")
    if summary["failures"]:
        lines += [
            "",
            "## Failures",
            "",
            "| dose | view | split | replicate | phase | error |",
            "|---|---|---|---|---|---|",
        ]
        for failure in summary["failures"]:
            error = failure["error"].replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {dose_text(failure['dose'])} | {failure['view']} | {failure['split']} "
                f"| {failure.get('replicate', 0)} | {failure['phase']} | {error} |"
            )
    return "\n".join(lines) + "\n"


OVERLAP_NOTE = (
    "Nominal overlap f: linear, sets the scan step S = (1 - f) D (D the probe footprint's diameter), "
    "the mean nearest-neighbour spacing of the view's hexagonal scan; f = 0: neighbouring footprints "
    "touch. Measured overlap: the mean area overlap of each position's probe disc with its nearest "
    "neighbour's (0: the discs do not overlap; it reads lower than f). Every dose scans the same "
    "positions (paired design)."
)


def views_frame(views: list[ViewRecord], nominal_overlaps: dict[str, float]) -> pd.DataFrame:
    """What each view holds, one row per record (the HTML report's views table)."""
    return pd.DataFrame(
        [
            {
                "dose": dose_text(view.dose),
                "view": view.view,
                "split": view.split,
                "nominal f": nominal_overlaps[view.view],
                "measured overlap": view.measured_overlap,
                "step S (px)": view.step_px,
                "mean spacing (px)": view.mean_spacing_px,
                "positions": view.n_positions,
                "gs2 groups": view.n_groups,
                "training corpus samples": view.n_corpus_samples,
            }
            for view in views
        ]
    )


def views_markdown(views: list[ViewRecord], nominal_overlaps: dict[str, float]) -> str:
    """A markdown table of what each view holds (one row per record, in the given order):
    nominal and measured overlap, spacing, counts.

    The nominal overlap f is linear (it sets the minimum spacing S = (1 - f) D); the
    measured one is the mean area overlap of each probe disc with its nearest neighbour's
    (docs/design.md §5), so it reads lower than f.
    """
    lines = [
        "## Views",
        "",
        OVERLAP_NOTE,
        "",
        "| dose | view | split | nominal f | measured overlap | step S (px) | mean spacing (px) | positions "
        "| gs2 groups | training corpus |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for view in views:
        corpus = "" if view.n_corpus_samples is None else f"{view.n_corpus_samples} samples"
        lines.append(
            f"| {dose_text(view.dose)} | {view.view} | {view.split} | {nominal_overlaps[view.view]:.2f} "
            f"| {view.measured_overlap:.3f} | {view.step_px:.1f} | {view.mean_spacing_px:.1f} | {view.n_positions} "
            f"| {view.n_groups} | {corpus} |"
        )
    return "\n".join(lines) + "\n"


def convergence_markdown(models: list[ModelRecord], recons: list[ReconRecord]) -> str:
    """A markdown table of how every network trained and every LSQML run iterated: epochs
    run against the cap, the best epoch (networks) and why each stopped."""
    lines = [
        "## Convergence",
        "",
        "Networks stop when the validation loss (a held-out strip of the training region) has "
        "converged, LSQML when its cost has plateaued; the epoch cap should rarely be the reason.",
        "A network's work is the patterns its generator evaluated, training and validation "
        "(a gs2 group counts its patterns; a gs2 epoch takes 1/C of the groups, so each arm's "
        f"epoch evaluates each pattern about once): {sum(model.pattern_evaluations for model in models):,} "
        f"in all for {len(models)} networks.",
        "",
        "| run | dose | view | split | samples or patterns | epochs (cap) | best epoch | pattern evaluations "
        "| stopped because |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        lines.append(
            f"| train {model.arm} | {dose_text(model.dose)} | {model.view} | train | {model.n_samples} "
            f"| {model.epochs_run} ({model.max_epochs}) | {model.best_epoch} | {model.pattern_evaluations:,} "
            f"| {model.stop_reason} |"
        )
    for recon in recons:
        if recon.epochs is None:
            continue
        lines.append(
            f"| {recon.arm} | {dose_text(recon.dose)} | {recon.view} | {recon.split} | {recon.n_patterns} "
            f"| {recon.epochs} ({recon.max_epochs}) | | | {recon.stop_reason} |"
        )
    return "\n".join(lines) + "\n"
