"""Where the study's tasks run: threads in the flow's process (default) or a Dask cluster.

``PTYSTUDY_DASK_ADDRESS`` (for deployments: set it in the worker's environment or the
work pool's job variables) or ``--dask [ADDRESS]`` on the command line choose Dask:
``local`` starts a local cluster of processes, ``tcp://host:8786`` uses a running
scheduler. Dask needs a Prefect server (``PREFECT_API_URL``), not the embedded one.
"""

from __future__ import annotations

import os

from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

DASK_ENV = "PTYSTUDY_DASK_ADDRESS"
LOCAL = "local"


def task_runner(dask_address: str | None = None) -> TaskRunner:
    """A thread pool, or Dask at ``dask_address`` (``local``: a local cluster of processes).

    Without an argument, ``PTYSTUDY_DASK_ADDRESS`` decides.
    """
    address = dask_address or os.environ.get(DASK_ENV)
    if not address:
        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if address == LOCAL:
        # one thread per worker: TensorFlow and pty-chi each use every core of their process
        return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True})
    return DaskTaskRunner(address=address)


def runs_in_parallel() -> bool:
    """True when the current flow's tasks run on separate processes (Dask), so heavy
    phases may be submitted at once; False for the thread pool, where they share the cores."""
    context = FlowRunContext.get()
    return context is not None and type(context.task_runner).__name__ == "DaskTaskRunner"


def describe_task_runner() -> str:
    """Where the current flow run's tasks run, for its log."""
    context = FlowRunContext.get()
    if context is None or not runs_in_parallel():
        return "threads of the flow's process (network training beside LSQML)"
    address = getattr(context.task_runner, "address", None)
    return f"Dask, scheduler {address}" if address else "a local Dask cluster"
