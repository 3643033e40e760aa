"""Heavy tasks on the thread runner: one at a time per lane, the lanes side by side.

Training (TensorFlow, in the flow's process) rarely keeps every core busy on the study's
small problems, and its graph tracing runs on one core; LSQML (pty-chi, in its worker
process, given half of the cores) fills the rest. Running one task of each at a time
does that without ever running two TensorFlow trainings in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prefect.futures import PrefectFuture, as_completed

Job = tuple[Any, Callable[[], PrefectFuture[Any]]]
"""A key and a function that submits its task."""


def one_per_lane(lanes: dict[str, Iterable[Job]]) -> Iterator[tuple[str, Any, PrefectFuture[Any]]]:
    """Run each lane's jobs one after another, the lanes concurrently.

    Yields ``(lane, key, future)`` as each task finishes, in finishing order; a lane's next
    job is submitted when the consumer asks for the next finished task.
    """
    pending = {name: iter(jobs) for name, jobs in lanes.items()}
    running: dict[PrefectFuture[Any], tuple[str, Any]] = {}

    def start(lane: str) -> None:
        job = next(pending[lane], None)
        if job is not None:
            key, submit = job
            running[submit()] = (lane, key)

    for lane in lanes:
        start(lane)
    while running:
        future = next(as_completed(list(running)))
        lane, key = running.pop(future)
        yield lane, key, future
        start(lane)
