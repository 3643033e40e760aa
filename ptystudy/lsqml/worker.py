"""A reusable child process that runs LSQML jobs (docs/design.md §7), killable on a time-out.

pty-chi changes process-wide state (torch's default device and dtype, the numpy, torch
and random seeds), and torch and TensorFlow crash when loaded in one process, so LSQML
runs in a fresh interpreter (``python -m ptystudy.lsqml.worker``), never in the caller:
unlike a multiprocessing child it does not re-import the caller's main module. The child
pays pty-chi's import once and then serves jobs over its stdin and stdout until stopped.
A job that overruns its time-out, or a child that dies, kills the child and raises
``TransientError`` (worth a retry: the next job starts a fresh child); a broken view
file raises ``ContractError``. ``cpu_threads`` caps torch's CPU threads in the child (the
study runs LSQML beside network training and gives it part of the cores).
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ptystudy.errors import ContractError, TransientError

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 300.0
_SHARED: list[LsqmlWorker] = []
_SHARED_LOCK = threading.Lock()


def lsqml_cpu_threads() -> int:
    """Half of this machine's cores (at least one): LSQML runs beside network training, and
    two libraries each using every core slow both down."""
    return max(1, (os.cpu_count() or 2) // 2)


def shared_worker() -> LsqmlWorker:
    """This process's LSQML worker: one child process for every LSQML run of the process
    (pty-chi's import is paid once), created on first use and stopped at exit."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(LsqmlWorker(cpu_threads=lsqml_cpu_threads()))
            atexit.register(_SHARED[0].stop)
        return _SHARED[0]


class LsqmlWorker:
    """One child process serving ``run`` calls one at a time (thread-safe).

    ``cpu_threads``: torch's intra-op CPU threads in the child (None: torch's default, every core).
    """

    def __init__(self, *, cpu_threads: int | None = None) -> None:
        if cpu_threads is not None and cpu_threads < 1:
            raise ValueError(f"cpu_threads must be >= 1, got {cpu_threads}")
        self.cpu_threads = cpu_threads
        self._process: subprocess.Popen | None = None
        self._connection: _Channel | None = None
        self._lock = threading.Lock()
        self.environment: dict[str, Any] = {}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def run(self, view_path: Path, settings: Any, *, timeout_s: float) -> Any:
        """Run LSQML on the view file at ``view_path``; returns the adapter's ``LsqmlResult``.

        Raises
        ------
        ContractError
            The view file breaks the contract (checked in the child before pty-chi starts).
        TransientError
            The job overran ``timeout_s`` or the child died; the child is gone.
        RuntimeError
            pty-chi failed on a valid view.
        """
        with self._lock:
            self._ensure_started()
            assert self._connection is not None
            self._connection.send((str(view_path), settings))
            if not self._connection.poll(timeout_s):
                self.stop()
                raise TransientError(f"LSQML on {view_path} did not finish within {timeout_s:.0f} s; worker killed")
            try:
                status, payload = self._connection.recv()
            except (EOFError, OSError) as err:
                process = self._process
                code = process.wait() if process is not None else None
                self.stop()
                raise TransientError(f"the LSQML worker died (exit code {code}) on {view_path}") from err
        if status == "ok":
            return payload
        if status == "contract":
            raise ContractError(payload)
        raise RuntimeError(f"LSQML failed on {view_path}: {payload}")

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self.stop()
        threads = [] if self.cpu_threads is None else [str(self.cpu_threads)]
        process = subprocess.Popen(
            [sys.executable, "-m", "ptystudy.lsqml.worker", *threads], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        connection = _Channel(reader=process.stdout.fileno(), writer=process.stdin.fileno())
        if not connection.poll(_START_TIMEOUT_S):
            process.kill()
            process.wait()
            raise TransientError(f"the LSQML worker did not start within {_START_TIMEOUT_S:.0f} s")
        try:
            status, self.environment = connection.recv()
        except (EOFError, OSError) as err:
            process.wait()
            raise TransientError(f"the LSQML worker died while starting (exit code {process.returncode})") from err
        self._process, self._connection = process, connection
        logger.info("LSQML worker %d started: %s", process.pid, self.environment)

    def stop(self) -> None:
        """Stop the child (kill it if it does not leave within 5 s)."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            try:
                connection.send(None)
            except OSError:
                pass
            connection.close()
        if process is not None:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout):
                stream.close()


class _Channel:
    """Pickled messages over a pair of pipe file descriptors (duplicated, so owned here)."""

    def __init__(self, *, reader: int, writer: int):
        self._reader = Connection(os.dup(reader), writable=False)
        self._writer = Connection(os.dup(writer), readable=False)

    def send(self, message: Any) -> None:
        self._writer.send(message)

    def recv(self) -> Any:
        return self._reader.recv()

    def poll(self, timeout_s: float) -> bool:
        return self._reader.poll(timeout_s)

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def _serve(cpu_threads: int | None = None) -> None:
    """The child's loop: import pty-chi once, then run jobs until ``None`` or end of input.

    Messages arrive on stdin and leave on the original stdout; anything a library prints
    goes to stderr instead, so it cannot corrupt the channel.
    """
    channel = _Channel(reader=0, writer=1)
    os.dup2(2, 1)
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")
    import torch

    from ptystudy.lsqml.adapter import describe_environment, run_lsqml
    from ptystudy.scan.contract import load_scan

    if cpu_threads is not None:
        torch.set_num_threads(cpu_threads)
    channel.send(("ready", describe_environment()))
    while True:
        try:
            job = channel.recv()
        except EOFError:
            return
        if job is None:
            return
        view_path, settings = job
        try:
            view = load_scan(Path(view_path))
            channel.send(("ok", run_lsqml(view, settings)))
        except ContractError as err:
            channel.send(("contract", str(err)))
        except Exception as err:  # reported to the caller, which raises it there
            channel.send(("error", f"{type(err).__name__}: {err}"))


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else None)
