"""The one policy every phase task shares, and why.

- ``persist_result=True`` with ``INPUTS + TASK_SOURCE + CodeVersion``: a rerun of an
  unchanged study does no work, an interrupted one resumes, and editing a phase's
  science modules invalidates that phase. Inputs are small records that carry file
  sha256s, so a regenerated file never gives a false hit (a path alone hashes as text).
- Results persist as JSON under the run directory (``RunLayout.cache_dir``), so a
  deleted run directory takes its cache with it.
- Retries with backoff, but only for transient failures (``ptystudy.errors.is_transient``):
  a contract error or a bad configuration would fail the same way again.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.runtime import task_run as runtime_task_run
from prefect.states import State
from prefect.tasks import exponential_backoff

from ptystudy.errors import is_transient
from ptystudy.layout import dose_text

PHASE_RETRIES = 2


@dataclass
class CodeVersion(CachePolicy):
    """Cache key part: the source of the science modules a phase runs."""

    modules: tuple[str, ...] = field(default_factory=tuple)

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        digest = hashlib.sha256()
        for module in self.modules:
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise ValueError(f"cannot find the source of module {module!r} for the cache key")
            digest.update(Path(spec.origin).read_bytes())
        return digest.hexdigest()


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only failures that may pass on a second try."""
    try:
        state.result()
    except Exception as error:  # the failed run's exception, re-raised to inspect it
        return is_transient(error)
    return False


def condition_run_name(phase: str) -> Callable[[], str]:
    """A task-run namer: ``"<phase> 1e4 dense train"`` from the run's parameters."""

    def name() -> str:
        parameters = runtime_task_run.parameters
        parts = [phase]
        record = parameters.get("scan")
        dose = parameters.get("dose", getattr(record, "dose", None))
        if dose is not None:
            parts.append(dose_text(dose))
        for key in ("view", "split"):
            value = parameters.get(key, getattr(record, key, None))
            if value is not None:
                parts.append(str(value))
        return " ".join(parts)

    return name


def phase_task(
    *, name: str, modules: tuple[str, ...], tags: tuple[str, ...] = ()
) -> Callable[[Callable[..., Any]], Task[..., Any]]:
    """Decorator giving a phase task the study's cache, persistence and retry policy."""
    return task(
        name=name,
        task_run_name=condition_run_name(name),
        cache_policy=INPUTS + TASK_SOURCE + CodeVersion(modules=modules),
        persist_result=True,
        result_serializer="json",
        retries=PHASE_RETRIES,
        retry_delay_seconds=exponential_backoff(backoff_factor=2),
        retry_condition_fn=retry_if_transient,
        tags=list(tags),
    )


def for_run(phase: Task[..., Any], cache_dir: Path, *, fresh: bool) -> Task[..., Any]:
    """``phase`` storing its results under this run's ``cache_dir``; ``fresh`` ignores the cache."""
    return phase.with_options(
        result_storage=Path(cache_dir),
        refresh_cache=fresh,
    )
