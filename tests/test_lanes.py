"""Heavy tasks on the thread runner: a lane's tasks in order, as many at once as its width,
the lanes side by side; the tags they carry (only those with a concurrency limit)."""

from __future__ import annotations

import time
from functools import partial

from flows._lanes import run_lanes

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.runtime import task_run
from prefect.task_runners import ThreadPoolTaskRunner

from tasks._prefect import submit_under_limits, tags_with_limits

pytestmark = pytest.mark.integration  # flows run through a Prefect server


@task
def hold(seconds: float, fail: bool = False) -> tuple[float, float]:
    """Sleep; return (start, end) in monotonic seconds, or fail after sleeping."""
    start = time.monotonic()
    time.sleep(seconds)
    if fail:
        raise ValueError("planned failure")
    return start, time.monotonic()


@flow(task_runner=ThreadPoolTaskRunner())
def two_lanes() -> list[tuple[str, int, tuple[float, float] | None]]:
    lanes = {
        "slow": [(i, partial(hold.submit, 0.4)) for i in range(3)],
        "fast": [(i, partial(hold.submit, 0.15, fail=i == 1)) for i in range(4)],
    }
    finished = []
    for lane, key, future in run_lanes(lanes):
        future.wait(timeout=1)  # done already: as_completed yielded it
        state = future.state
        assert state.is_final()
        finished.append((lane, key, state.result() if state.is_completed() else None))
    return finished


def test_lanes_run_one_task_each_side_by_side_and_survive_a_failure(prefect_server):
    finished = two_lanes()
    assert len(finished) == 7
    by_lane = {lane: [(key, span) for name, key, span in finished if name == lane] for lane in ("slow", "fast")}
    # every job ran once, in its lane's order; the failed one is reported and its lane goes on
    assert [key for key, _ in by_lane["slow"]] == [0, 1, 2]
    assert [key for key, _ in by_lane["fast"]] == [0, 1, 2, 3]
    assert by_lane["fast"][1][1] is None
    for lane, runs in by_lane.items():
        spans = [span for _, span in runs if span is not None]
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"two {lane} tasks overlapped"
    # the lanes overlap: a fast task finished while the first slow one was running
    slow_first_end = by_lane["slow"][0][1][1]
    assert sum(1 for _, span in by_lane["fast"] if span is not None and span[1] < slow_first_end) >= 1
    assert finished[-1][0] == "slow"


@flow(task_runner=ThreadPoolTaskRunner())
def wide_lane() -> list[tuple[float, float]]:
    lanes = {"train": [(i, partial(hold.submit, 0.3)) for i in range(5)], "lsqml": [(0, partial(hold.submit, 0.3))]}
    return [future.result() for lane, _, future in run_lanes(lanes, {"train": 2}) if lane == "train"]


def test_a_wide_lane_runs_that_many_tasks_at_once_and_no_more(prefect_server):
    spans = wide_lane()
    assert len(spans) == 5
    overlaps = [sum(start < moment < end for start, end in spans) for moment, _ in spans]
    assert max(overlaps) <= 1, "a third task started while two of the lane were running"
    assert max(sum(start <= moment < end for start, end in spans) for moment, _ in spans) == 2


@task(tags=["lane-test-gpu", "lane-test-heavy"])
def report_tags() -> list[str]:
    return sorted(task_run.tags)


@flow
def submit_tagged() -> list[str]:
    return submit_under_limits(report_tags).result()


def test_a_heavy_task_carries_only_the_tags_that_have_a_limit(prefect_server):
    """Prefect acquires a slot for every tag, limit or not (a costly write on SQLite): a
    tag without a limit is left off; one with an active limit, even created mid-run, is kept."""
    assert tags_with_limits(["lane-test-gpu", "lane-test-heavy"]) == []
    assert submit_tagged() == []
    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag="lane-test-gpu", concurrency_limit=1)
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="tag:lane-test-heavy", limit=1, active=False)
        )
        try:
            assert submit_tagged() == ["lane-test-gpu"]
        finally:
            client.delete_concurrency_limit_by_tag("lane-test-gpu")
            client.delete_global_concurrency_limit_by_name("tag:lane-test-heavy")
    assert submit_tagged() == []
