"""Faults, resume, bad inputs, concurrency and cache correctness (the smoke profile)."""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from flows._watchdog import descendants, process_table, running

import numpy as np
import pandas as pd
import pytest
from prefect import flow

from ptystudy.errors import TransientError
from ptystudy.files import TEMPORARY_PREFIX, sha256_file
from ptystudy.recon import load_recon
from ptystudy.run.layout import RunLayout
from ptystudy.run.lock import RunLock
from ptystudy.scan.simulate import ScanPlanConfig
from tasks._prefect import for_run

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
NARROW = ["--set", "scan.doses=[1000]", "--set", "training.arms=[pinn_gs1]"]
"""One dose, one network: 4 conditions, 2 trainings, 4 LSQML runs."""


def _env() -> dict[str, str]:
    """A new user's environment: the project's own Prefect settings, its own embedded server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


def _study(out: Path, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "flows/study.py", "--profile", "smoke", "--out", str(out), *NARROW, *extra]
    return subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)


def _bad_files(root: Path) -> list[Path]:
    """Zero-byte files and unpublished temporary files anywhere under ``root``."""
    return [
        p for p in root.rglob("*") if p.is_file() and (p.stat().st_size == 0 or p.name.startswith(TEMPORARY_PREFIX))
    ]


def _results(root: Path) -> dict[str, object]:
    """What a study produced, by content: data and view hashes, reconstructions, scores."""
    layout = RunLayout(root)
    hashes = {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.glob("[dv]*/**/*.npz"))}
    recons = {str(p.relative_to(root)): load_recon(p).obj for p in sorted(root.glob("recon/**/*.npz"))}
    metrics = pd.read_csv(layout.report_dir / "metrics.csv")
    return {"hashes": hashes, "recons": recons, "metrics": metrics}


@dataclass(frozen=True)
class ConcurrentPair:
    """Two finished study runs, and what each held right after finishing (tests that change
    a run directory later cannot change what the others compare)."""

    runs: tuple[Path, Path]
    results: tuple[dict[str, object], dict[str, object]]
    bad_files: tuple[list[Path], list[Path]]


@pytest.fixture(scope="module")
def concurrent_pair(tmp_path_factory) -> ConcurrentPair:
    """Two uninterrupted studies started at the same time in different directories, sharing
    the project's embedded-server database."""
    root = tmp_path_factory.mktemp("concurrent")
    runs = (root / "a", root / "b")
    command = [sys.executable, "flows/study.py", "--profile", "smoke", *NARROW]
    processes = [
        subprocess.Popen(
            [*command, "--out", str(out)],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for out in runs
    ]
    outputs = [process.communicate(timeout=1200)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
        assert "4 conditions, 4 executed, 4 succeeded, 0 failed" in output
    return ConcurrentPair(
        runs,
        (_results(runs[0]), _results(runs[1])),
        (_bad_files(runs[0]), _bad_files(runs[1])),
    )


@pytest.fixture(scope="module")
def uninterrupted(concurrent_pair) -> Path:
    """The first of the pair; no test changes it."""
    return concurrent_pair.runs[0]


def test_killed_during_training_resumes_to_the_same_results(uninterrupted, tmp_path):
    command = [sys.executable, "flows/study.py", "--profile", "smoke", "--out", str(tmp_path), *NARROW]
    log = tmp_path.parent / f"{tmp_path.name}.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            command, cwd=REPO, env=_env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 600
        while "phase train: 1/2 done" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    # LSQML runs beside training: what it had finished by the kill depends on the machine's load
    lsqml_logged = max((int(n) for n in re.findall(r"phase lsqml: (\d+)/4 done", log.read_text())), default=0)
    lsqml_written = len(list(tmp_path.glob("recon/**/lsqml.npz")))
    assert not (tmp_path / "report").exists(), "the study must have died before publishing"
    # a file being written when the kill came is a temporary (.partial-*), never an empty result
    empty = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert all(p.name.startswith(".partial-") for p in empty), empty

    resumed = _study(tmp_path)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    phases = json.loads((tmp_path / "report" / "summary.json").read_text())["phases"]
    assert phases["simulate"]["cached"] == phases["simulate"]["tasks"] == 1
    assert phases["views"]["cached"] == phases["views"]["tasks"] == 4
    assert phases["train"]["cached"] >= 1 and phases["train"]["tasks"] == 2
    # every LSQML run reported done before the kill is reused; none is taken from a half-written one
    assert lsqml_logged <= phases["lsqml"]["cached"] <= lsqml_written
    assert phases["lsqml"]["tasks"] == 4
    assert not _bad_files(tmp_path)

    reference, again = _results(uninterrupted), _results(tmp_path)
    assert again["hashes"] == reference["hashes"]
    assert again["recons"].keys() == reference["recons"].keys()
    for name, obj in reference["recons"].items():
        np.testing.assert_allclose(again["recons"][name], obj, rtol=0, atol=1e-5, err_msg=name)
    pd.testing.assert_frame_equal(again["metrics"], reference["metrics"], rtol=1e-4, atol=1e-6)


def test_a_second_study_on_the_same_directory_is_refused(tmp_path):
    with RunLock(tmp_path):
        result = _study(tmp_path, timeout=300)
    assert result.returncode == 2
    assert "in use by another study" in result.stderr and str(tmp_path) in result.stderr
    assert not (tmp_path / "data").exists(), "the refused study must not have touched the directory"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the watchdog reads /proc")
def test_two_studies_started_at_once_run_once_and_a_killed_one_leaves_nothing_behind(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "flows/study.py", "--profile", "smoke", "--out", str(out), *NARROW]
    logs = [tmp_path / f"study{i}.log" for i in range(2)]
    handles = [open(log, "w") for log in logs]
    processes = [
        subprocess.Popen(command, cwd=REPO, env=_env(), stdout=handle, stderr=subprocess.STDOUT) for handle in handles
    ]
    deadline = time.monotonic() + 300
    while all(process.poll() is None for process in processes):
        assert time.monotonic() < deadline, "neither study was refused"
        time.sleep(0.1)
    loser = next(i for i, process in enumerate(processes) if process.poll() is not None)
    winner, winner_log = processes[1 - loser], logs[1 - loser]
    assert processes[loser].returncode == 2
    (line,) = logs[loser].read_text().strip().splitlines()
    assert "in use by another study" in line and f'"pid": {winner.pid}' in line, line

    while "phase simulate" not in winner_log.read_text(errors="replace"):
        assert winner.poll() is None, winner_log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the study never started"
        time.sleep(0.2)
    started = descendants(winner.pid, process_table())
    assert any("prefect.server" in _command_line(pid) for pid, _ in started), "the temporary Prefect server"
    winner.kill()  # SIGKILL to the study's process alone
    winner.wait(timeout=30)
    for handle in handles:
        handle.close()
    deadline = time.monotonic() + 20
    while running(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not {_command_line(pid) for pid, _ in running(started)}, "processes outlived the killed study"

    leftover = out / "data" / f"{TEMPORARY_PREFIX}train.npz.abc123"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a file")
    result = _study(out)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout + result.stderr
    assert "taking the run directory over from a study that stopped without releasing it" in printed
    assert f'"pid": {winner.pid}' in printed, "the takeover names the killed study"
    assert re.search(r"removed \d+ unfinished file\(s\)", printed), "ours, and any the killed study left"
    assert not leftover.exists()


def test_an_output_directory_that_is_not_writable_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _study(blocker / "run", timeout=300)
    assert result.returncode == 2
    assert f"cannot write to the output directory {blocker / 'run'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_studies_in_different_directories_run_at_once(concurrent_pair):
    first, second = concurrent_pair.results
    assert first["hashes"] == second["hashes"] and len(first["hashes"]) == 2 + 4 + 2  # scans, views, corpora
    pd.testing.assert_frame_equal(first["metrics"], second["metrics"])
    assert concurrent_pair.bad_files == ([], [])


def test_changing_the_doses_reruns_only_the_new_dose(concurrent_pair):
    """In place (cache keys hold the run directory's paths), on the second concurrent run;
    the pair's comparison uses what the runs held before."""
    run_dir = concurrent_pair.runs[1]
    written = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()}
    result = _study(run_dir, "--set", "scan.doses=[1000,10000]")
    assert result.returncode == 0, result.stderr[-3000:]
    phases = json.loads((run_dir / "report" / "summary.json").read_text())["phases"]
    rewritten = sorted(
        str(path.relative_to(run_dir))
        for path, mtime in written.items()
        if path.is_file() and path.stat().st_mtime_ns != mtime and "report" not in path.parts
    )
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "WARNING" in line or "rror" in line]
    expected_cached = {"simulate": 1, "views": 4, "train": 2, "infer": 4, "lsqml": 4, "compare": 4}
    for phase, cached in expected_cached.items():
        observed = (phases[phase]["cached"], phases[phase]["tasks"])
        assert observed == (cached, 2 * cached), f"{phase}: rewritten {rewritten}; {warnings[-20:]}"


# Cache keys at task level, in this process's Prefect server.


def _task_module(tmp_path: Path, scale: int) -> Path:
    """A module holding one phase task (the code part of its key follows this module)."""
    path = tmp_path / "scaled_phase.py"
    body = f"""
        from tasks._prefect import phase_task

        SCALE = {scale}


        @phase_task(name="scaled")
        def scaled(value: int) -> int:
            return value * 2
    """
    path.write_text(textwrap.dedent(body))
    return path


def test_editing_a_phase_module_invalidates_its_cache(prefect_server, tmp_path, monkeypatch):
    """Through Prefect: an edit to the module a task lives in (outside the task's own source)
    is a new cache key. Which modules a phase's key follows: tests/test_code_version.py."""
    monkeypatch.syspath_prepend(str(tmp_path))
    _task_module(tmp_path, 2)
    scaled = importlib.import_module("scaled_phase").scaled

    @flow
    def run() -> str:
        return for_run(scaled, tmp_path / "cache", fresh=False)(3, return_state=True).name

    assert run() == "Completed"
    assert run() == "Cached"
    _task_module(tmp_path, 3)
    assert run() == "Completed"


def test_a_regenerated_input_file_is_not_a_cache_hit(prefect_server, tmp_path, smoke_config):
    from tasks.simulate import simulate_scan

    def user_object(seed: int) -> Path:
        rng = np.random.default_rng(seed)
        path = tmp_path / "specimen.npz"
        obj = (0.5 + 0.5 * rng.random((96, 96))) * np.exp(1j * rng.random((96, 96)))
        np.savez(path, objectGuess=obj.astype(np.complex64))
        return path

    scan = smoke_config.scan.model_copy(update={"object_file": str(user_object(1))})

    @flow
    def simulate_once() -> str:
        task = for_run(simulate_scan, tmp_path / "cache", fresh=False)
        path = Path(scan.object_file)
        return task(
            scan,
            ScanPlanConfig.of(smoke_config),
            smoke_config.seeds,
            1000.0,
            str(tmp_path / "run"),
            sha256_file(path),
            return_state=True,
        ).name

    assert simulate_once() == "Completed"
    assert simulate_once() == "Cached"
    user_object(2)  # same path, new content
    assert simulate_once() == "Completed"


def test_a_transient_training_failure_is_retried_and_a_permanent_one_is_not(
    prefect_server, uninterrupted, tmp_path, smoke_config, monkeypatch
):
    from prefect.client.orchestration import get_client

    import tasks.train
    from ptystudy.errors import ContractError
    from ptystudy.records import FileRecord, ViewRecord
    from ptystudy.scan.contract import load_scan

    path = RunLayout(uninterrupted).view(1000, "dense", "train")
    scan = load_scan(path)
    view = ViewRecord(
        dose=1000.0,
        view="dense",
        split="train",
        file=FileRecord.of(path),
        overlap_file=FileRecord.of(path.with_name("overlap.json")),
        spacing_figure=FileRecord.of(path.with_name("spacing.png")),
        n_positions=scan.n_patterns,
        n_groups=scan.n_patterns,
        corpus=FileRecord.of(path),
        n_corpus_samples=scan.n_patterns,
        step_px=1.0,
        mean_spacing_px=1.0,
        measured_overlap=0.5,
        seconds=0.0,
    )
    real_train = tasks.train.train_network
    attempts: list[str] = []

    def failing(kind: type[Exception]):
        def train(*args, **kwargs):
            attempts.append(kind.__name__)
            if len(attempts) == 1:
                raise kind("training worker killed" if kind is TransientError else "broken view")
            return real_train(*args, **kwargs)

        return train

    train = tasks.train.train_arm.with_options(refresh_cache=True, retry_delay_seconds=0)
    for kind, expected_runs in ((TransientError, 2), (ContractError, 1)):
        attempts.clear()
        monkeypatch.setattr(tasks.train, "train_network", failing(kind))
        state = train(view, "pinn_gs1", smoke_config.training, 5, str(tmp_path), return_state=True)
        with get_client(sync_client=True) as client:
            run_count = client.read_task_run(state.state_details.task_run_id).run_count
        assert run_count == expected_runs, kind
        assert state.is_completed() == (kind is TransientError)
