"""What the study says about itself while it runs and when it ends: the progress artifact's
percentage and description, and the one-line outcome of the final state."""

from __future__ import annotations

from flows._progress import StudyProgress

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from ptystudy.conditions import conditions as plan_conditions
from ptystudy.profiles import resolve_config
from ptystudy.run.ledger import StudyLedger, combined_summary, outcome_text


def _summary(conditions, replicates: int, failed_in: tuple[int, ...] = ()) -> dict:
    """The combined summary of one ledger per replicate; replicate r fails the first
    condition when r is in ``failed_in``."""
    ledgers = []
    for replicate in range(replicates):
        ledger = StudyLedger(conditions)
        for condition in conditions:
            if replicate in failed_in and condition == conditions[0]:
                ledger.fail(condition, "lsqml", "RuntimeError: diverged")
            else:
                ledger.complete(condition)
        ledgers.append(ledger)
    return combined_summary(ledgers)


def test_the_outcome_in_one_line(smoke_config):
    conditions = plan_conditions(smoke_config)
    assert outcome_text(_summary(conditions, 1)) == "12 of 12 conditions succeeded"
    assert outcome_text(_summary(conditions, 1, failed_in=(0,))) == "1 of 12 conditions failed, 11 succeeded"
    assert outcome_text(_summary(conditions, 3)) == (
        "12 of 12 conditions succeeded (3 replicates: 36 of 36 runs succeeded)"
    )
    assert outcome_text(_summary(conditions, 3, failed_in=(1, 2))) == (
        "1 of 12 conditions failed, 11 succeeded (3 replicates: 34 of 36 runs succeeded)"
    )


@pytest.mark.integration
def test_the_progress_artifact_names_the_phase_and_its_counts(prefect_server):
    config = resolve_config("smoke", overrides={"replicates": 3})
    conditions = plan_conditions(config)

    @flow
    def progressing() -> tuple[str, int, str]:
        progress = StudyProgress(config, conditions, conditions)
        progress.start_replicate(1)
        progress.task_finished("simulate", 1, 3)
        progress.task_finished("simulate", 2, 3, " (1000.0 failed)")
        middle = _description(progress.artifact_id)
        progress.finish("11 of 12 conditions failed")
        return middle, progress.total, _description(progress.artifact_id)

    middle, total, last = progressing()
    assert middle.startswith(
        f"phase simulate: 2 of 3 tasks done (replicate 2 of 3); 2 of {total} study tasks, 1 failed"
    )
    assert last.startswith("Finished: 11 of 12 conditions failed; 2 tasks in ")


def _description(artifact_id) -> str:
    with get_client(sync_client=True) as client:
        return next(artifact.description for artifact in client.read_artifacts() if artifact.id == artifact_id)
