"""Atomic writes: nothing half-written is published, and file modes follow the umask."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from ptystudy.files import TEMPORARY_PREFIX, write_atomic, write_json


@pytest.fixture
def umask_022():
    """The process umask set to 0o022 for the test (and restored)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_written_file_has_the_mode_a_plain_write_would_give(tmp_path, umask_022):
    path = write_json(tmp_path / "a" / "record.json", {"x": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not list(tmp_path.rglob(f"{TEMPORARY_PREFIX}*"))


def test_writing_never_changes_the_process_umask(tmp_path, monkeypatch):
    """Reading the umask by setting it (and back) leaves a window in which another thread's
    new folder gets no umask at all; an atomic write must not touch it."""

    def forbidden(mask):
        raise AssertionError(f"os.umask({mask:#o}) called during a write")

    monkeypatch.setattr(os, "umask", forbidden)
    write_json(tmp_path / "record.json", {"x": 1})


def test_threads_writing_and_making_folders_create_nothing_more_permissive_than_the_umask(tmp_path, umask_022):
    def write(k: int) -> None:
        for i in range(600):
            write_json(tmp_path / f"written-{k}" / f"{i}.json", {"i": i})

    def make(k: int) -> None:
        for i in range(600):
            (tmp_path / f"made-{k}" / f"{i}").mkdir(parents=True)

    threads = [threading.Thread(target=job, args=(k,)) for k in range(3) for job in (write, make)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loose = [path for path in tmp_path.rglob("*") if stat.S_IMODE(path.stat().st_mode) & 0o022]
    assert not loose, f"{len(loose)} path(s) writable by group or others, e.g. {loose[:3]}"


def test_an_empty_or_failed_write_publishes_nothing(tmp_path):
    with pytest.raises(OSError, match="refusing to publish an empty file"):
        write_atomic(tmp_path / "empty.bin", lambda handle: None)

    def broken(handle):
        handle.write(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        write_atomic(tmp_path / "half.bin", broken)
    assert list(tmp_path.iterdir()) == []
