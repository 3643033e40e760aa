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
    """Counts finished phase tasks; publishes the share done as a progress artifact (percent)."""

    def __init__(self, config: StudyConfig, selected: list[Condition], needed: list[Condition]):
        self.total = planned_tasks(config, selected, needed)
        self.done = 0
        self.started = time.monotonic()
        self.artifact_id: UUID = create_progress_artifact(
            progress=0.0,
            key="study-progress",
            description=f"Phase tasks finished, of {self.total} planned ({config.profile} profile)",
        )

    def task_finished(self, phase: str, done: int, total: int, note: str = "") -> None:
        """Record one finished task of ``phase`` (``done`` of ``total`` in that phase)."""
        self.done += 1
        percent = min(100.0, 100.0 * self.done / self.total)
        update_progress_artifact(self.artifact_id, percent)
        get_run_logger().info(
            "phase %s: %d/%d done%s | study %.0f%% after %.0f s",
            phase,
            done,
            total,
            note,
            percent,
            time.monotonic() - self.started,
        )

    def finish(self) -> None:
        """Mark the study complete (failed conditions skip tasks, so the count may fall short)."""
        update_progress_artifact(self.artifact_id, 100.0)
