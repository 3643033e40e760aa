"""Study progress: one Prefect progress artifact for the whole study, and a terminal line."""

from __future__ import annotations

import time
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from ptystudy.conditions import Condition, Split
from ptystudy.config import StudyConfig


def planned_tasks(config: StudyConfig, selected: list[Condition], needed: list[Condition]) -> int:
    """Phase tasks of a study where nothing fails: simulate, views, train, infer, LSQML,
    compare, for the ``selected`` conditions and the ``needed`` ones that train networks, in
    every replicate."""
    n_doses = len({condition.dose for condition in needed})
    n_arms = len(config.training.arms)
    n_trained = sum(condition.split == Split.TRAIN for condition in needed) * n_arms
    n_selected = len(selected)
    return config.replicates * (n_doses + len(needed) + n_trained + n_selected * n_arms + 2 * n_selected)


class StudyProgress:
    """Counts finished phase tasks; publishes the share done as a progress artifact (percent),
    whose description says where the study is: the phase, its count, the replicate."""

    def __init__(self, config: StudyConfig, selected: list[Condition], needed: list[Condition]):
        self.total = planned_tasks(config, selected, needed)
        self.done = 0
        self.failed = 0
        self.replicates = config.replicates
        self.replicate = 0
        self.started = time.monotonic()
        self.artifact_id: UUID = create_progress_artifact(
            progress=0.0,
            key="study-progress",
            description=f"Starting: {self.total} phase tasks planned ({config.profile} profile)",
        )

    def start_replicate(self, replicate: int) -> None:
        self.replicate = replicate

    def task_finished(self, phase: str, done: int, total: int, note: str = "") -> None:
        """Record one finished task of ``phase`` (``done`` of ``total`` in that phase);
        ``note`` names it when it failed (``" (key failed)"``), "" when it succeeded."""
        self.done += 1
        self.failed += bool(note)
        percent = min(100.0, 100.0 * self.done / self.total)
        update_progress_artifact(self.artifact_id, percent, description=self.describe(phase, done, total))
        get_run_logger().info(
            "phase %s: %d/%d done%s | study %.0f%% after %.0f s",
            phase,
            done,
            total,
            note,
            percent,
            time.monotonic() - self.started,
        )

    def describe(self, phase: str, done: int, total: int) -> str:
        """Where the study is, in words: ``phase train: 5 of 18 tasks done (replicate 1 of 3);
        40 of 120 study tasks, 0 failed, after 180 s``."""
        replicate = f" (replicate {self.replicate + 1} of {self.replicates})" if self.replicates > 1 else ""
        return (
            f"phase {phase}: {done} of {total} tasks done{replicate}; "
            f"{self.done} of {self.total} study tasks, {self.failed} failed, "
            f"after {time.monotonic() - self.started:.0f} s"
        )

    def finish(self, outcome: str) -> None:
        """Mark the study complete with its ``outcome`` (failed conditions skip tasks, so
        the count of tasks may fall short of the plan)."""
        update_progress_artifact(
            self.artifact_id,
            100.0,
            description=f"Finished: {outcome}; {self.done} tasks in {time.monotonic() - self.started:.0f} s",
        )
