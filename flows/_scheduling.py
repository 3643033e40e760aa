"""Running a study's tasks: one replicate's run (its configuration, directory, ledger and
progress), waiting for submitted tasks and recording each outcome, and the heavy phases
(training, LSQML, inference) run as lanes side by side on the thread runner or all at once
on Dask."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flows._lanes import Job, run_lanes
from flows._progress import StudyProgress
from flows._runners import runs_in_parallel

from prefect import Task
from prefect.futures import PrefectFuture

from ptystudy.conditions import Condition
from ptystudy.config import StudyConfig
from ptystudy.run.layout import RunLayout
from ptystudy.run.ledger import StudyLedger
from tasks._prefect import for_run


@dataclass
class StudyRun:
    """One run of the study: its plan, run directory, outcome ledger and progress."""

    config: StudyConfig
    layout: RunLayout
    ledger: StudyLedger
    progress: StudyProgress
    fresh: bool
    needed: list[Condition]
    """The selected conditions and the train-split conditions whose views train their networks."""

    def phase(self, task: Task[..., Any]) -> Task[..., Any]:
        """``task`` with this run's result storage (its cache) and ``--fresh`` setting."""
        return for_run(task, self.layout.cache_dir, fresh=self.fresh)

    @property
    def run_dir(self) -> str:
        return str(self.layout.root)

    @cached_property
    def needed_doses(self) -> set[float]:
        return {condition.dose for condition in self.needed}

    def selected(self, condition: Condition) -> bool:
        return condition in self.ledger.conditions

    def fail_where(self, phase: str, error: str, **match: Any) -> None:
        """Fail every condition whose fields equal ``match`` (e.g. ``dose=1e3``)."""
        for condition in self.ledger.conditions:
            if all(getattr(condition, name) == value for name, value in match.items()):
                self.ledger.fail(condition, phase, error)


@dataclass
class HeavyPhase:
    """A heavy phase's jobs, ``(key, submit)`` pairs, and what a failed job does to the ledger."""

    name: str
    jobs: list[Job]
    on_failure: Callable[[Any, str], None]
    width: int = 1
    """Tasks of this phase run at once on the thread runner."""


def run_heavy(run: StudyRun, *phases: HeavyPhase) -> dict[str, dict[Any, Any]]:
    """Run heavy phases together; return each phase's results by key.

    On Dask every job is submitted at once (a tag limit caps GPU jobs); with the thread
    runner each phase is a lane that runs ``width`` tasks at a time, the lanes side by side.
    """
    by_name = {phase.name: phase for phase in phases}
    if runs_in_parallel():
        finished: Iterable[tuple[str, Any, PrefectFuture[Any]]] = [
            (phase.name, key, submit()) for phase in phases for key, submit in phase.jobs
        ]
    else:
        finished = run_lanes(
            {phase.name: phase.jobs for phase in phases}, {phase.name: phase.width for phase in phases}
        )
    results: dict[str, dict[Any, Any]] = {name: {} for name in by_name}
    done = dict.fromkeys(by_name, 0)
    for name, key, future in finished:
        done[name] += 1
        phase = by_name[name]
        finish_task(run, name, key, future, (done[name], len(phase.jobs)), phase.on_failure, results[name])
    return results


def collect(
    run: StudyRun,
    phase: str,
    submitted: Iterable[tuple[Any, PrefectFuture[Any]]],
    total: int,
    on_failure: Callable[[Any, str], None],
) -> dict[Any, Any]:
    """Wait for a phase's submitted ``(key, future)`` pairs in turn; return the results of
    those that succeeded. Each failure goes to ``on_failure(key, reason)``."""
    results: dict[Any, Any] = {}
    for done, (key, future) in enumerate(submitted, start=1):
        finish_task(run, phase, key, future, (done, total), on_failure, results)
    return results


def finish_task(
    run: StudyRun,
    phase: str,
    key: Any,
    future: PrefectFuture[Any],
    count: tuple[int, int],
    on_failure: Callable[[Any, str], None],
    results: dict[Any, Any],
) -> None:
    """Wait for one task; put its result in ``results`` or report its failure; count it
    (``count``: this task's number in its phase and the phase's total) and show progress."""
    future.wait()
    state = future.state
    ok = state.is_completed()
    run.ledger.record_task(phase, ok=ok, cached=state.name == "Cached")
    if ok:
        results[key] = state.result()
    else:
        on_failure(key, describe(state.result(raise_on_failure=False)))
    run.progress.task_finished(phase, *count, "" if ok else f" ({key} failed)")


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
