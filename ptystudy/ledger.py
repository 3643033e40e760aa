"""Counting a study's outcome: which conditions succeeded, which failed, where and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ptystudy.conditions import Condition, dose_text
from ptystudy.records import ModelRecord, ReconRecord, ViewRecord


@dataclass(frozen=True)
class Failure:
    """A condition that failed in ``phase`` with ``error``."""

    condition: Condition
    phase: str
    error: str


@dataclass
class PhaseTally:
    """Task outcomes of one phase."""

    tasks: int = 0
    succeeded: int = 0
    cached: int = 0
    failed: int = 0


@dataclass
class StudyLedger:
    """Outcome of every condition and task of one study run.

    A condition fails with the first phase that fails for it (its other arms still run);
    it succeeds only when every phase succeeded and it was scored (``complete``).
    """

    conditions: list[Condition]
    failures: dict[Condition, Failure] = field(default_factory=dict)
    completed: set[Condition] = field(default_factory=set)
    phases: dict[str, PhaseTally] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError("the study matrix is empty: no dose x view x split condition to run")

    def alive(self, condition: Condition) -> bool:
        return condition not in self.failures

    def record_task(self, phase: str, *, ok: bool, cached: bool) -> None:
        tally = self.phases.setdefault(phase, PhaseTally())
        tally.tasks += 1
        tally.succeeded += ok
        tally.cached += ok and cached
        tally.failed += not ok

    def fail(self, condition: Condition, phase: str, error: str) -> None:
        """Mark ``condition`` failed, keeping the first failure's phase and reason."""
        self.failures.setdefault(condition, Failure(condition, phase, error))

    def complete(self, condition: Condition) -> None:
        """Mark ``condition`` as having gone through every phase (it may still have failed an arm)."""
        self.completed.add(condition)

    def summary(self) -> dict[str, Any]:
        """The ``report/summary.json`` payload (DESIGN §10) plus per-phase task counts.

        executed = conditions that were scored or failed; a condition that was neither
        (the flow skipped it) counts as not executed and failed.
        """
        executed = self.completed | set(self.failures)
        for condition in self.conditions:
            if condition not in executed:
                self.fail(condition, "flow", "never reached scoring")
        n_failed = len(self.failures)
        return {
            "n_conditions": len(self.conditions),
            "n_executed": len(executed),
            "n_success": len(self.conditions) - n_failed,
            "n_failed": n_failed,
            "failures": [
                {
                    "dose": failure.condition.dose,
                    "view": failure.condition.view,
                    "split": failure.condition.split,
                    "phase": failure.phase,
                    "error": failure.error,
                }
                for failure in sorted(self.failures.values(), key=lambda f: f.condition)
            ],
            "phases": {name: vars(tally).copy() for name, tally in self.phases.items()},
        }


def combined_summary(ledgers: list[StudyLedger]) -> dict[str, Any]:
    """The summary of a study's replicates (one ledger each, same conditions): a condition
    succeeds when every replicate of it does; ``replicate_runs`` counts condition x
    replicate runs, and each failure names its replicate. Phase tallies are summed."""
    conditions = ledgers[0].conditions
    executed = set(conditions)
    for ledger in ledgers:
        executed &= ledger.completed | set(ledger.failures)
    summaries = [ledger.summary() for ledger in ledgers]
    failed = {failure.condition for ledger in ledgers for failure in ledger.failures.values()}
    phases: dict[str, dict[str, int]] = {}
    for summary in summaries:
        for name, tally in summary["phases"].items():
            total = phases.setdefault(name, dict.fromkeys(tally, 0))
            for key, value in tally.items():
                total[key] += value
    runs = len(conditions) * len(ledgers)
    failed_runs = sum(summary["n_failed"] for summary in summaries)
    return {
        "n_conditions": len(conditions),
        "n_executed": len(executed),
        "n_success": len(conditions) - len(failed),
        "n_failed": len(failed),
        "replicates": len(ledgers),
        "replicate_runs": {"total": runs, "succeeded": runs - failed_runs, "failed": failed_runs},
        "failures": [
            {**failure, "replicate": replicate}
            for replicate, summary in enumerate(summaries)
            for failure in summary["failures"]
        ],
        "phases": phases,
    }


def outcome_text(summary: dict[str, Any]) -> str:
    """A study's outcome in one line, e.g. ``12 of 12 conditions succeeded`` or ``1 of 12
    conditions failed, 11 succeeded``, with the replicate runs when there are several."""
    total, failed = summary["n_conditions"], summary["n_failed"]
    text = (
        f"{failed} of {total} conditions failed, {total - failed} succeeded"
        if failed
        else f"{total} of {total} conditions succeeded"
    )
    if summary.get("replicates", 1) > 1:
        runs = summary["replicate_runs"]
        text += f" ({summary['replicates']} replicates: {runs['succeeded']} of {runs['total']} runs succeeded)"
    return text


def summary_markdown(summary: dict[str, Any], *, title: str) -> str:
    """A short markdown report of the counts, the task tally and each failure's reason."""
    lines = [
        f"# {title}",
        "",
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
                f"| {failure['dose']:g} | {failure['view']} | {failure['split']} | {failure.get('replicate', 0)} "
                f"| {failure['phase']} | {error} |"
            )
    return "\n".join(lines) + "\n"


def views_frame(views: list[ViewRecord], nominal_overlaps: dict[str, float]) -> pd.DataFrame:
    """What each view holds, one row per record (the HTML report's views table)."""
    return pd.DataFrame(
        [
            {
                "dose": view.dose,
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
    (DESIGN §5), so it reads lower than f.
    """
    lines = [
        "## Views",
        "",
        "Nominal overlap f: linear, sets the scan step S = (1 - f) D, the mean nearest-neighbour "
        "spacing of the view's hexagonal scan. Measured: mean area overlap of each position's probe "
        "disc with its nearest neighbour's. Every dose scans the same positions (paired design).",
        "",
        "| dose | view | split | nominal f | measured overlap | step S (px) | mean spacing (px) | positions "
        "| gs2 groups | training corpus |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for view in views:
        corpus = "" if view.n_corpus_samples is None else f"{view.n_corpus_samples} samples"
        lines.append(
            f"| {view.dose:g} | {view.view} | {view.split} | {nominal_overlaps[view.view]:.2f} "
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
