"""Atomic file writing and content hashing: nothing half-written is ever left behind."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TEMPORARY_PREFIX = ".partial-"
"""Name prefix of files being written; never a finished output (removed after a crash)."""


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file is created with mode 0o666 less the process umask, applied by the
    kernel as for any new file, so the published file has the permissions a plain write
    would give it. The umask is never read by changing it: that would open a window in
    which another thread's new folder or file got no umask at all (world-writable).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = _create_new(path.parent, f"{TEMPORARY_PREFIX}{path.name}.", suffix)
    try:
        yield temporary_path
        if temporary_path.stat().st_size == 0:
            raise OSError(f"refusing to publish an empty file at {path}")
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


def _create_new(directory: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file with a fresh random name in ``directory`` (mode 0o666 less the umask)."""
    for _ in range(100):
        candidate = directory / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary file in {directory}")


def write_atomic(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary file, then rename it in place."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path``, atomically."""
    return write_atomic(path, lambda handle: handle.write(text.encode()))


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
