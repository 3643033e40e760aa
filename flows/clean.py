"""Housekeeping: list, and on request delete, what a run directory's cache and Prefect's
history keep that no study needs any more.

    python -m flows.clean RUN_DIR [--older-than 7d] [--prefect-history] [--apply]

A run's cache (``.prefect-results/`` in the run directory and in each replicate's) holds
one small JSON entry per task result; an entry becomes dead when the code or the
configuration it was computed for changes, since the next study computes a new one beside
it. Every study touches the entries it uses, so an entry's modification time is its last
use. Without ``--older-than`` the entries the last complete study in the directory did not
use are listed (that study is recorded by the flow; a study of part of the matrix, with
``--dose`` and the like, does not count); with it, the entries unused for longer than the
age (``30m``, ``12h``, ``7d``). ``--prefect-history`` also lists the flow runs in Prefect's
database (``.prefect/`` or the server of ``PREFECT_API_URL``) that started before the age
(7 days unless given). Nothing is deleted without ``--apply``; the files the entries name are
never touched (the next study rewrites them). Exit status: 0 done, 2 bad input or a
directory in use by a study.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ptystudy.errors import EXIT_BAD_INPUT, EXIT_OK
from ptystudy.run.layout import RunLayout
from ptystudy.run.lock import RunDirectoryError, RunLock, last_complete_study

CACHE_ENTRY = re.compile(r"[0-9a-f]{32}")
AGE = re.compile(r"(\d+(?:\.\d+)?)([mhd])")
UNIT_S = {"m": 60, "h": 3600, "d": 86400}
DEFAULT_HISTORY_AGE = "7d"


def parse_age(text: str) -> float:
    """Seconds in an age such as ``30m``, ``12h`` or ``7d``."""
    match = AGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"--older-than {text!r}: give a number and a unit, m, h or d (e.g. 7d)")
    return float(match.group(1)) * UNIT_S[match.group(2)]


@dataclass(frozen=True)
class CacheEntries:
    """A run directory's cache entries that no study needs, and all of them."""

    stale: list[Path]
    total: int

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for path in self.stale)


def stale_cache_entries(root: Path, unused_since: float) -> CacheEntries:
    """The cache entries under ``root`` (every ``.prefect-results``) last used before ``unused_since``."""
    entries = [
        path
        for cache in sorted(root.rglob(RunLayout(root).cache_dir.name))
        for path in sorted(cache.iterdir())
        if CACHE_ENTRY.fullmatch(path.name)
    ]
    return CacheEntries([path for path in entries if path.stat().st_mtime < unused_since], len(entries))


def old_flow_runs(age_s: float) -> list[tuple[str, str, str]]:
    """Prefect's flow runs that started more than ``age_s`` ago: (id, name, start) each."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    cutoff = datetime.now(UTC) - timedelta(seconds=age_s)
    runs = []
    with get_client(sync_client=True) as client:
        offset = 0
        while batch := client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(before_=cutoff)), offset=offset, limit=200
        ):
            runs += [(str(run.id), run.name, f"{run.start_time:%Y-%m-%d %H:%M}") for run in batch]
            offset += len(batch)
    return runs


def delete_flow_runs(ids: list[str]) -> None:
    """Delete these flow runs (and their task runs and logs) from Prefect's database."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for run_id in ids:
            client.delete_flow_run(UUID(run_id))


def describe_size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.0f} kB"


def clean(root: Path, older_than: str | None, prefect_history: bool, apply: bool) -> list[str]:
    """Do what the command line asks (see the module's docstring); return the lines to print."""
    layout = RunLayout(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such run directory")
    if older_than is None:
        since = last_complete_study(layout.cache_dir)
        if since is None:
            raise ValueError(f"{root}: no complete study is recorded here; give --older-than")
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(since))
        criterion = f"not used by the last complete study (started {started})"
    else:
        since = time.time() - parse_age(older_than)
        criterion = f"unused for more than {older_than}"
    verb = "deleted" if apply else "would delete (dry run; --apply deletes)"
    with RunLock(root):  # no study may use the cache meanwhile
        entries = stale_cache_entries(root, since)
        lines = [f"cache: {len(entries.stale)} of {entries.total} entries {criterion}, {describe_size(entries.size)}"]
        lines += [f"  {path.relative_to(root)}" for path in entries.stale]
        if apply:
            for path in entries.stale:
                path.unlink(missing_ok=True)
        lines.append(f"cache: {verb} {len(entries.stale)} entries")
    if prefect_history:
        age = older_than or DEFAULT_HISTORY_AGE
        runs = old_flow_runs(parse_age(age))
        lines.append(f"Prefect history: {len(runs)} flow run(s) started more than {age} ago")
        lines += [f"  {start} {name} ({run_id})" for run_id, name, start in runs]
        if apply:
            delete_flow_runs([run_id for run_id, _, _ in runs])
        lines.append(f"Prefect history: {verb} {len(runs)} flow run(s)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.clean", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--older-than", help="age of the entries (and flow runs) to prune: 30m, 12h, 7d")
    parser.add_argument("--prefect-history", action="store_true", help="also prune old flow runs from Prefect")
    parser.add_argument("--apply", action="store_true", help="delete (the default only lists)")
    args = parser.parse_args(argv)
    try:
        lines = clean(args.run_dir.resolve(), args.older_than, args.prefect_history, args.apply)
    except (ValueError, RunDirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(lines))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
