"""Heavy tasks on the thread runner: a few at a time per lane, the lanes side by side.

Training (TensorFlow, in the flow's process) keeps a second core busy on the study's small
networks without gaining speed, so the training lane trains ``CONCURRENT_TRAININGS``
networks at once, each op on its share of the cores (``ptystudy.machine``); LSQML
(pty-chi, in its worker process, given half of the cores) runs one view at a time beside
them. Concurrent trainings give the same weights as one after another: nothing in
training draws from TensorFlow's global random state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prefect.futures import PrefectFuture, as_completed

Job = tuple[Any, Callable[[], PrefectFuture[Any]]]
"""A key and a function that submits its task."""


def run_lanes(
    lanes: dict[str, Iterable[Job]], widths: dict[str, int] | None = None
) -> Iterator[tuple[str, Any, PrefectFuture[Any]]]:
    """Run each lane's jobs in order, at most ``widths[lane]`` at a time (default 1), the
    lanes concurrently.

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
        for _ in range((widths or {}).get(lane, 1)):
            start(lane)
    while running:
        future = next(as_completed(list(running)))
        lane, key = running.pop(future)
        yield lane, key, future
        start(lane)
