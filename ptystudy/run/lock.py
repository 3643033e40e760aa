"""Owning a run directory: one study at a time, writable, and clean after a crash.

A study holds an exclusive ``flock`` on ``<run dir>/.lock`` for its whole duration, taken
once, before any work (the command line takes it and the flow it runs finds it held by its
own process), so of two studies started at the same moment on one directory exactly one
runs and the other is refused at once with who holds it. The operating system drops the
lock when the holder dies, even by SIGKILL; the holder's record stays in the file until it
releases the lock, so the next study says whose run it takes over. On taking the lock, the
temporary files a killed study left behind (``files.TEMPORARY_PREFIX``) are removed: they
were never published, and the cache does not know them.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from ptystudy.files import TEMPORARY_PREFIX

LOCK_NAME = ".lock"
LAST_COMPLETE_STUDY = "last-complete-study.json"
"""In a run's cache directory: when the last study of the whole matrix started."""


class RunDirectoryError(RuntimeError):
    """The run directory cannot be used: not writable, or in use by another study."""


def check_writable(root: Path) -> Path:
    """Create ``root`` if needed and prove a file can be written there.

    Raises RunDirectoryError naming the directory and the reason.
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f"{TEMPORARY_PREFIX}write-check-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink(missing_ok=True)  # a study taking the directory over removes temporaries, this one too
    except OSError as err:
        raise RunDirectoryError(f"cannot write to the output directory {root}: {err.strerror or err}") from None
    return root


def remove_leftovers(root: Path) -> list[Path]:
    """Delete temporary files a killed run left under ``root``; return what was removed."""
    removed = []
    for path in Path(root).rglob(f"{TEMPORARY_PREFIX}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def record_complete_study(cache_dir: Path, started: float) -> None:
    """Note in ``cache_dir`` that a study of the whole matrix started at ``started`` (seconds
    since the epoch): the cache entries it did not use are no study's (``flows.clean``)."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    (Path(cache_dir) / LAST_COMPLETE_STUDY).write_text(json.dumps({"started": started}))


def last_complete_study(cache_dir: Path) -> float | None:
    """When the last study of the whole matrix recorded in ``cache_dir`` started, if one is."""
    path = Path(cache_dir) / LAST_COMPLETE_STUDY
    return float(json.loads(path.read_text())["started"]) if path.is_file() else None


def unreleased_holder(record: str) -> str | None:
    """The holder named in a lock file's ``record`` if it never released the lock (it died);
    None for an empty record or one its holder wrote on release."""
    record = record.strip()
    if not record:
        return None
    try:
        released = "released_by" in json.loads(record)
    except (json.JSONDecodeError, TypeError):
        released = False
    return None if released else record


_HELD: dict[Path, RunLock] = {}
"""The run directories this process holds, by resolved path."""
_HELD_GUARD = threading.Lock()


class RunLock:
    """Exclusive use of a run directory for one study (a context manager).

    Re-entrant within a process: entering a directory this process already holds shares the
    outer lock (its ``leftovers`` and ``taken_over``), and only the outermost exit releases it.
    Raises RunDirectoryError on entry if the directory is not writable or another process
    holds it.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._handle: int | None = None
        self._outer: RunLock | None = None
        self.leftovers: list[Path] = []
        self.taken_over: str | None = None
        """The record of a holder that died without releasing the directory, if one did."""

    def __enter__(self) -> RunLock:
        key = self.root.resolve()
        with _HELD_GUARD:
            outer = _HELD.get(key)
            if outer is not None:
                self._outer = outer
                self.leftovers, self.taken_over = outer.leftovers, outer.taken_over
                return self
            self._acquire()
            _HELD[key] = self
        return self

    def _acquire(self) -> None:
        check_writable(self.root)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(handle, 4096).decode(errors="replace").strip() or "unknown"
            os.close(handle)
            raise RunDirectoryError(
                f"the output directory {self.root} is in use by another study ({holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        self.taken_over = unreleased_holder(os.read(handle, 4096).decode(errors="replace"))
        os.lseek(handle, 0, os.SEEK_SET)
        os.ftruncate(handle, 0)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.write(handle, json.dumps(holder).encode())
        self._handle = handle
        self.leftovers = remove_leftovers(self.root)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._outer is not None:
            self._outer = None
            return
        with _HELD_GUARD:
            _HELD.pop(self.root.resolve(), None)
            if self._handle is not None:  # a "released" record: no takeover for the next study
                os.ftruncate(self._handle, 0)
                os.lseek(self._handle, 0, os.SEEK_SET)
                os.write(
                    self._handle,
                    json.dumps({"released_by": os.getpid(), "at": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(),
                )
                fcntl.flock(self._handle, fcntl.LOCK_UN)
                os.close(self._handle)
                self._handle = None
