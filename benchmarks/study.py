"""Whole-study benchmark: cold wall time, peak memory, orchestration share, cached rerun.

    python benchmarks/study.py [--profile quick] [--out DIR] [--phases] [--gpu]

Runs the study cold (``--fresh``) in this process with Prefect's embedded server, then
again unchanged (every phase task must be a cache hit). Orchestration share = the part of
the wall time spent outside the task bodies' own work: the sum of every task's measured
seconds (from the records it returned) is the work; phases that run tasks concurrently
(simulation, views, scoring) have their work counted by its span, not its sum.
``--phases`` also runs the per-phase benchmarks (simulation, networks, LSQML);
``--gpu`` the GPU section when TensorFlow or torch sees a GPU (inference patterns/s at
64 x 64 and the paper profile's wall time). Prints tables; nothing is timed in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flows._environment import configure_prefect_environment  # noqa: E402

configure_prefect_environment()

from prefect.client.orchestration import get_client  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402

from flows.study import study  # noqa: E402

CONCURRENT_PHASES = {"simulate", "views", "compare"}


def peak_memory_gib() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest finished child, GiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return own, children


def task_work(flow_run_id: str) -> dict[str, float]:
    """Per phase: seconds of task-run time as the API recorded it (span for concurrent phases)."""
    runs = []
    with get_client(sync_client=True) as client:
        while True:  # the API returns at most 200 per call
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200, offset=len(runs)
            )
            runs += page
            if len(page) < 200:
                break
    phases: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue
        phase = run.name.split(" ")[0]
        phases.setdefault(phase, []).append((run.start_time.timestamp(), run.end_time.timestamp()))
    work = {}
    for phase, spans in phases.items():
        if phase in CONCURRENT_PHASES:
            work[phase] = max(end for _, end in spans) - min(start for start, _ in spans)
        else:
            work[phase] = sum(end - start for start, end in spans)
    return work


def run_study(profile: str, out: Path, *, fresh: bool) -> tuple[float, dict, str]:
    started = time.perf_counter()
    state = study(profile=profile, out=str(out), fresh=fresh, return_state=True)
    wall = time.perf_counter() - started
    summary = json.loads((out / "report" / "summary.json").read_text())
    return wall, summary, str(state.state_details.flow_run_id)


def gpu_section() -> None:
    probe = "import torch; print(torch.cuda.is_available())"
    has_gpu = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "True"
    if not has_gpu:
        print("\nGPU section: skipped, no GPU visible to torch on this machine.")
        return
    print("\nGPU section")
    subprocess.run([sys.executable, "benchmarks/networks.py", "--profile", "paper"], cwd=REPO, check=False)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "flows/study.py", "--profile", "paper", "--out", out], cwd=REPO, check=False)
        print(f"paper profile, whole study: {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    parser.add_argument("--phases", action="store_true", help="also run the per-phase benchmarks")
    parser.add_argument("--gpu", action="store_true", help="also run the GPU section when a GPU is present")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix=f"bench-{args.profile}-")).resolve()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; out {out}")

    cold_wall, summary, flow_run_id = run_study(args.profile, out, fresh=True)
    own_gib, child_gib = peak_memory_gib()
    work = task_work(flow_run_id)
    total_work = sum(work.values())
    cached_wall, cached_summary, _ = run_study(args.profile, out, fresh=False)
    all_cached = all(tally["cached"] == tally["tasks"] for tally in cached_summary["phases"].values())

    print(f"\n{args.profile} study, {summary['n_success']}/{summary['n_conditions']} conditions succeeded")
    print("| measure | value | goal |")
    print("|---|---|---|")
    print(f"| cold wall time | {cold_wall:.0f} s ({cold_wall / 60:.1f} min) | <= 10 min (quick, 2 cores) |")
    print(f"| peak memory, flow process | {own_gib:.2f} GiB | |")
    print(f"| peak memory, largest child (LSQML worker) | {child_gib:.2f} GiB | |")
    print(f"| time in task runs | {total_work:.0f} s | |")
    print(f"| orchestration share (wall outside task runs / wall) | {(cold_wall - total_work) / cold_wall:.1%} | <= 5 % |")
    print(f"| cached rerun wall time | {cached_wall:.1f} s, every phase cached: {all_cached} | <= 15 s, no phase work |")
    print("\n| phase | task-run seconds |")
    print("|---|---|")
    for phase, seconds in work.items():
        print(f"| {phase} | {seconds:.1f} |")

    if args.phases:
        for script, options in (
            ("simulation.py", ["--profile", "paper"]),
            ("networks.py", ["--profile", "quick"]),
            ("lsqml.py", ["--profile", "quick"]),
        ):
            print(f"\n$ python benchmarks/{script} {' '.join(options)}", flush=True)
            subprocess.run([sys.executable, f"benchmarks/{script}", *options], cwd=REPO, check=False)
    if args.gpu:
        gpu_section()


if __name__ == "__main__":
    main()
