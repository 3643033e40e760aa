"""Counting a study's outcome: which conditions succeeded, which failed, where and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ptystudy.conditions import Condition


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
        """The ``report/summary.json`` payload (docs/design.md §10) plus per-phase task counts.

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
