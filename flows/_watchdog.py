"""Nothing outlives the study: a small process that stops what the study started once the
study's own process is gone, however it died (SIGKILL included).

The command line starts it (``watch_descendants``) in a session of its own, so a signal to
the study's process group does not reach it. Every half second it notes the study's
descendants (Prefect's temporary server, the LSQML worker, a local Dask cluster), each by
pid and start time, read from /proc, so a pid the system reuses later is never touched.
When the study's process is gone it sends SIGTERM to those still running, SIGKILL to any
left after a grace period, and exits. Linux only (/proc); elsewhere nothing is watched.

    python -m flows._watchdog PID
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")
POLL_S = 0.5
GRACE_S = 5.0

Process = tuple[int, int]
"""A process as (pid, start time in clock ticks since boot): unique even when pids are reused."""


def process_table() -> dict[int, tuple[int, int]]:
    """Every running process: pid -> (parent pid, start time in ticks)."""
    table = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (command) "
        table[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(root: int, table: dict[int, tuple[int, int]]) -> set[Process]:
    """The processes below ``root`` in ``table``, children of children included."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, stack = set(), list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found.add((pid, table[pid][1]))
        stack += children.get(pid, [])
    return found


def running(processes: set[Process], table: dict[int, tuple[int, int]] | None = None) -> set[Process]:
    """Those of ``processes`` still running (same pid, same start time) in ``table`` (read now if None)."""
    table = process_table() if table is None else table
    return {(pid, start) for pid, start in processes if table.get(pid, (0, -1))[1] == start}


def stop(processes: set[Process], grace_s: float = GRACE_S) -> None:
    """SIGTERM to each of ``processes`` still running, SIGKILL to those left after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
        for pid, _ in running(processes):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while running(processes) and time.monotonic() < deadline:
            time.sleep(0.1)


def watch(pid: int, poll_s: float = POLL_S) -> set[Process]:
    """Note ``pid``'s descendants until it is gone, then stop those still running; return them."""
    me = os.getpid()
    table = process_table()
    if pid not in table:
        return set()
    study = (pid, table[pid][1])
    known: set[Process] = set()
    while True:
        table = process_table()
        if table.get(pid, (0, -1))[1] != study[1]:
            break
        known = running(known, table) | {process for process in descendants(pid, table) if process[0] != me}
        time.sleep(poll_s)
    left = running(known)
    stop(left)
    return left


def watch_descendants() -> subprocess.Popen[bytes] | None:
    """Start a watchdog for this process (see the module's docstring); None where there is no /proc."""
    if not (PROC / "self" / "stat").is_file():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "flows._watchdog", str(os.getpid())],
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]))
