"""The one policy every phase task shares, and why.

- ``persist_result=True`` with ``RecordInputs + TASK_SOURCE + CodeVersion``: a rerun of
  an unchanged study does no work, an interrupted one resumes, and editing any science
  module a phase reaches through its imports (or upgrading a numeric library it imports)
  invalidates that phase and no other. Inputs are small records that carry file
  sha256s, so a regenerated file never gives a false hit (a path alone hashes as text);
  the wall times records also carry are left out of the key, so a recomputed upstream
  phase that wrote the same bytes does not invalidate what follows.
- Results persist as JSON under the run directory (``RunLayout.cache_dir``), so a
  deleted run directory takes its cache with it.
- A cached result is reused only while every file its record names still holds the bytes
  it was written with (``VerifiedReuse``): a deleted or edited output makes its task run
  again (one warning names the file), and what depends on it follows through its inputs'
  hashes. A reuse touches the cache entry, so its modification time says when a run last
  needed it (``ptystudy.clean`` prunes by it).
- Retries with backoff, but only for transient failures (``ptystudy.errors.is_transient``):
  a contract error or a bad configuration would fail the same way again.
- Heavy tasks are submitted with only those of their tags that have a concurrency limit
  (``submit_under_limits``). Prefect acquires a slot for every tag of a task run before
  it starts, even a tag with no limit; on the SQLite-backed server that write often meets
  the server's own writes ("database is locked"), and the client retries after 2 s, once
  per task. Limits are read as each task is submitted, so one created during a run caps
  the tasks submitted after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.exceptions import ObjectNotFound
from prefect.futures import PrefectFuture
from prefect.logging.loggers import task_run_logger
from prefect.results import ResultRecord
from prefect.runtime import task_run as runtime_task_run
from prefect.states import State
from prefect.tasks import exponential_backoff
from prefect.utilities.hashing import hash_objects
from pydantic import BaseModel

from ptystudy.errors import is_transient
from ptystudy.files import sha256_file
from ptystudy.naming import arm_title, dose_text
from ptystudy.records import output_hashes
from tasks._code_version import code_fingerprint

PHASE_RETRIES = 2


MEASUREMENT_FIELDS = frozenset({"seconds"})


def _content(value: Any) -> Any:
    """``value`` with records dumped to JSON types, less their measurement fields."""
    if isinstance(value, BaseModel):
        return {
            key: _content(item) for key, item in value.model_dump(mode="json").items() if key not in MEASUREMENT_FIELDS
        }
    if isinstance(value, dict):
        return {key: _content(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_content(item) for item in value]
    return value


@dataclass
class RecordInputs(CachePolicy):
    """Cache key part: the task's inputs, by content, without wall times."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return hash_objects(_content(inputs or {}), raise_on_failure=True)


@dataclass
class CodeVersion(CachePolicy):
    """Cache key part: the code a phase runs (``tasks._code_version``): its task module, every
    science module that module reaches through its imports, and the versions of the numeric
    libraries among those imports."""

    module: str | None = None
    """The module the task is defined in (``phase_task`` sets it)."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.module is None:
            raise ValueError("CodeVersion needs the task's module")
        return code_fingerprint(self.module).digest()


def stale_output(result: Any) -> str | None:
    """Why a cached ``result`` cannot be reused (its first missing or changed file), or None."""
    for name, sha256 in output_hashes([result]).items():
        path = Path(name)
        if not path.is_file():
            return f"{path} is missing"
        if sha256_file(path) != sha256:
            return f"{path} changed since it was written"
    return None


@dataclass
class VerifiedReuse(CachePolicy):
    """``key_policy``'s key, after making sure the result cached under it in ``cache_dir`` is
    still true: an entry whose files are gone or changed is removed (so the task runs
    again and stores a new one), a valid entry is touched (its mtime is its last use)."""

    key_policy: CachePolicy | None = None
    cache_dir: str = ""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.key_policy is None:
            raise ValueError("VerifiedReuse needs the policy that computes the key")
        key = self.key_policy.compute_key(task_ctx=task_ctx, inputs=inputs, flow_parameters=flow_parameters, **kwargs)
        entry = Path(self.cache_dir) / key if key else None
        if entry is None or task_ctx.task.refresh_cache or not entry.is_file():
            return key
        try:
            problem = stale_output(ResultRecord.deserialize(entry.read_bytes()).result)
        except Exception as error:  # an unreadable entry is no result: recompute it
            problem = f"its cache entry {entry.name} cannot be read ({type(error).__name__}: {error})"
        if problem is None:
            os.utime(entry)
        else:
            task_run_logger(task_ctx.task_run, task=task_ctx.task).warning(
                "not reusing the cached result: %s; recomputing", problem
            )
            entry.unlink(missing_ok=True)
        return key


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only failures that may pass on a second try."""
    try:
        state.result()
    except Exception as error:  # the failed run's exception, re-raised to inspect it
        return is_transient(error)
    return False


def condition_run_name(phase: str) -> Callable[[], str]:
    """A task-run namer: ``"<phase> [arm title] 1e4 dense train"`` from the run's parameters and
    records, the arm by its display name (``train PtychoPINN gs2 1e4 dense train``)."""

    def name() -> str:
        labels: dict[str, Any] = {}
        for value in runtime_task_run.parameters.values():
            if isinstance(value, BaseModel):
                labels.update(
                    {key: getattr(value, key) for key in ("arm", "dose", "view", "split") if hasattr(value, key)}
                )
        for key, value in runtime_task_run.parameters.items():
            if key in ("arm", "dose", "view", "split") and isinstance(value, str | float | int):
                labels[key] = value
        parts = [phase]
        if "arm" in labels:
            parts.append(arm_title(str(labels["arm"])))
        if "dose" in labels:
            parts.append(dose_text(labels["dose"]))
        parts += [str(labels[key]) for key in ("view", "split") if key in labels]
        return " ".join(parts)

    return name


def phase_task(
    *, name: str, tags: tuple[str, ...] = (), per_condition: bool = True
) -> Callable[[Callable[..., Any]], Task[..., Any]]:
    """Decorator giving a phase task the study's cache, persistence and retry policy; the
    code part of its cache key follows the imports of the module the task is defined in.
    A ``per_condition`` task's runs are named after their condition (``condition_run_name``)."""

    def decorate(function: Callable[..., Any]) -> Task[..., Any]:
        return task(
            name=name,
            task_run_name=condition_run_name(name) if per_condition else name,
            cache_policy=RecordInputs() + TASK_SOURCE + CodeVersion(module=function.__module__),
            persist_result=True,
            result_serializer="json",
            retries=PHASE_RETRIES,
            retry_delay_seconds=exponential_backoff(backoff_factor=2),
            retry_condition_fn=retry_if_transient,
            tags=list(tags),
        )(function)

    return decorate


def for_run(phase: Task[..., Any], cache_dir: Path, *, fresh: bool) -> Task[..., Any]:
    """``phase`` storing its results under this run's ``cache_dir``, reusing them only while
    their files are intact (``VerifiedReuse``); ``fresh`` ignores the cache."""
    key_policy = phase.cache_policy.key_policy if isinstance(phase.cache_policy, VerifiedReuse) else phase.cache_policy
    return phase.with_options(
        result_storage=Path(cache_dir),
        refresh_cache=fresh,
        cache_policy=VerifiedReuse(key_policy=key_policy, cache_dir=str(cache_dir)),
    )


def tags_with_limits(tags: Iterable[str]) -> list[str]:
    """Those of ``tags`` that have an active concurrency limit on the Prefect server now."""
    limited = []
    with get_client(sync_client=True) as client:
        for tag in sorted(set(tags)):
            try:
                limit = client.read_global_concurrency_limit_by_name(f"tag:{tag}")
            except ObjectNotFound:
                continue
            if limit.active:
                limited.append(tag)
    return limited


def submit_under_limits(phase: Task[..., Any], *args: Any) -> PrefectFuture[Any]:
    """Submit ``phase`` carrying only the tags that have a concurrency limit (see above)."""
    return phase.with_options(tags=tags_with_limits(phase.tags)).submit(*args)
