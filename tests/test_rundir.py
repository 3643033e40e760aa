"""Owning a run directory: one lock taken once, a dead holder's lock taken over, the cache
pruned only on request, and nothing a study started outliving it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from flows._watchdog import descendants, process_table, running
from flows.clean import main as clean_main

import pytest

from ptystudy.errors import EXIT_BAD_INPUT, EXIT_OK
from ptystudy.files import TEMPORARY_PREFIX
from ptystudy.run.layout import RunLayout
from ptystudy.run.lock import LOCK_NAME, RunDirectoryError, RunLock, record_complete_study

REPO = Path(__file__).resolve().parents[1]

TRY_LOCK = textwrap.dedent(
    """
    import sys, time
    from ptystudy.run.lock import RunDirectoryError, RunLock
    start = float(sys.argv[2])
    time.sleep(max(0.0, start - time.time() - 0.05))  # asleep until the last 50 ms, then spin
    while time.time() < start:
        pass
    try:
        with RunLock(sys.argv[1]):
            print("held", flush=True)
            time.sleep(1.0)
    except RunDirectoryError as err:
        print("refused", err, flush=True)
    """
)


def test_entering_a_directory_this_process_holds_shares_the_lock(tmp_path):
    with RunLock(tmp_path) as outer:
        with RunLock(tmp_path) as inner:
            assert inner.leftovers is outer.leftovers
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid(), "the inner exit must not release the outer lock"
        result = subprocess.run(
            [sys.executable, "-c", TRY_LOCK, str(tmp_path), "0"], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert result.stdout.startswith("refused") and f'"pid": {os.getpid()}' in result.stdout
    assert json.loads((tmp_path / LOCK_NAME).read_text())["released_by"] == os.getpid(), "released, not abandoned"


def test_of_two_studies_started_at_the_same_moment_exactly_one_holds_the_directory(tmp_path):
    for round_ in range(5):
        root = tmp_path / f"round{round_}"
        start = time.time() + 1.5  # both processes are up and spinning by then
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", TRY_LOCK, str(root), repr(start)], cwd=REPO, stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outputs = sorted(process.communicate(timeout=60)[0].strip() for process in processes)
        assert outputs[0] == "held" and outputs[1].startswith("refused"), outputs
        assert "in use by another study" in outputs[1] and outputs[1].count("\n") == 0


def test_a_lock_whose_holder_died_is_taken_over_naming_it(tmp_path):
    code = "import os\nfrom ptystudy.run.lock import RunLock\nRunLock({!r}).__enter__()\nos.kill(os.getpid(), 9)\n"
    dead = subprocess.Popen([sys.executable, "-c", code.format(str(tmp_path))], cwd=REPO)
    dead.wait(timeout=60)
    with RunLock(tmp_path) as lock:
        assert lock.taken_over is not None and f'"pid": {dead.pid}' in lock.taken_over
    with RunLock(tmp_path) as lock:
        assert lock.taken_over is None, "a lock released normally is no takeover"


def test_a_directory_in_use_is_refused_with_its_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", TRY_LOCK, str(tmp_path), "0"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunDirectoryError, match=f'in use by another study .*"pid": {holder.pid}'):
        RunLock(tmp_path).__enter__()
    holder.wait(timeout=60)


def _entries(cache: Path, ages_s: list[float]) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    now = time.time()
    paths = []
    for i, age in enumerate(ages_s):
        path = cache / f"{i:032x}"
        path.write_text("{}")
        os.utime(path, (now - age, now - age))
        paths.append(path)
    return paths


def test_clean_lists_by_default_and_deletes_only_what_no_study_used(tmp_path, capsys):
    layout = RunLayout(tmp_path)
    assert clean_main([str(tmp_path)]) == EXIT_BAD_INPUT, "no complete study recorded: an age is needed"
    assert "give --older-than" in capsys.readouterr().err
    old, used = _entries(layout.cache_dir, [3 * 86400, 60])
    (replicate_old,) = _entries(layout.replicate(1).cache_dir, [3 * 86400])
    record_complete_study(layout.cache_dir, time.time() - 3600)
    assert clean_main([str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "2 of 3 entries not used by the last complete study" in out and "would delete" in out
    assert old.exists() and replicate_old.exists(), "a dry run deletes nothing"
    assert clean_main([str(tmp_path), "--older-than", "2d", "--apply"]) == EXIT_OK
    assert not old.exists() and not replicate_old.exists() and used.exists()
    assert (layout.cache_dir / "last-complete-study.json").exists()
    assert clean_main([str(tmp_path), "--older-than", "7 days"]) == EXIT_BAD_INPUT
    with RunLock(tmp_path):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", TRY_LOCK, str(tmp_path), "0"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    assert clean_main([str(tmp_path), "--older-than", "1d", "--apply"]) == EXIT_BAD_INPUT, "a study is using it"
    holder.wait(timeout=60)


WATCHED = textwrap.dedent(
    """
    import subprocess, sys, time
    from flows._watchdog import watch_descendants
    watch_descendants()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_what_a_killed_process_started_is_stopped_by_its_watchdog():
    parent = subprocess.Popen([sys.executable, "-c", WATCHED], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # the watchdog's first look
    started = descendants(parent.pid, process_table())
    assert len(started) == 2, "the sleeper and the watchdog"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while running(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(started), "the sleeper outlived its parent"


def test_a_lock_left_by_a_killed_study_does_not_block(tmp_path):
    code = (
        "import os, signal\n"
        "from ptystudy.run.lock import RunLock\n"
        f"RunLock({str(tmp_path)!r}).__enter__()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    (tmp_path / "data").mkdir()
    leftover = tmp_path / "data" / f"{TEMPORARY_PREFIX}train.npz.abc123"
    leftover.write_bytes(b"half a file")
    with RunLock(tmp_path) as lock:
        assert lock.leftovers == [leftover] and not leftover.exists()
        assert lock.taken_over is not None, "the dead holder is named"
