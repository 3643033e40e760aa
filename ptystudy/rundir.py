"""Owning a run directory: one study at a time, writable, and clean after a crash.

A study holds an exclusive ``flock`` on ``<run dir>/.lock`` for its whole duration, so a
second study on the same directory is refused at once with who holds it (the operating
system drops the lock when the holder dies, even by SIGKILL). On taking the lock, the
temporary files a killed study left behind (``files.TEMPORARY_PREFIX``) are removed:
they were never published, and the cache does not know them.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from ptystudy.files import TEMPORARY_PREFIX

LOCK_NAME = ".lock"


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
        probe.unlink()
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


class RunLock:
    """Exclusive use of a run directory for one study (a context manager).

    Raises RunDirectoryError on entry if the directory is not writable or another study
    holds it.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._handle: int | None = None
        self.leftovers: list[Path] = []

    def __enter__(self) -> RunLock:
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
        os.ftruncate(handle, 0)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.write(handle, json.dumps(holder).encode())
        self._handle = handle
        self.leftovers = remove_leftovers(self.root)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:  # the last holder's record stays; only the flock matters
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            os.close(self._handle)
            self._handle = None
