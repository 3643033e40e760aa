"""Whole-study benchmark: cold wall time, peak memory, orchestration share, cached rerun.

    python benchmarks/study.py [--profile quick] [--out DIR] [--phases] [--gpu [--gpu-doses 10000|all]]

Runs the study cold (``--fresh``) in this process with Prefect's embedded server, then
again unchanged (every phase task must be a cache hit). Orchestration share = the part of
the wall time when no task run was running (task runs' start and end times from the API;
phases overlap, e.g. training and LSQML, so their union is the work, not their sum).
``--phases`` also runs the per-phase benchmarks (simulation, networks, LSQML);
``--gpu`` the GPU section when TensorFlow or torch sees a GPU (inference patterns/s at
64 x 64, and the paper profile's wall time on ``--gpu-doses``, scaled to every dose).
Prints tables; nothing is timed in tests.
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

from flows.study import study

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from ptystudy.profiles import resolve_config

REPO = Path(__file__).resolve().parents[1]


def peak_memory_gib() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest finished child, GiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return own, children


def flow_run_window(flow_run_id: str) -> tuple[float, float]:
    """(start, end) of the flow run as the API recorded them, epoch seconds."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
    return run.start_time.timestamp(), run.end_time.timestamp()


def idle_gaps(runs: list[tuple[float, float, str]], start: float, end: float) -> list[tuple[float, str, str]]:
    """Intervals of ``[start, end]`` when none of ``runs`` (start, end, name) was running:
    (seconds, the task run before, the task run after), longest first."""
    gaps, reach, before = [], start, "flow start"
    for run_start, run_end, name in sorted(runs):
        if run_start > reach:
            gaps.append((run_start - reach, before, name))
        if run_end > reach:
            reach, before = run_end, name
    gaps.append((end - reach, before, "flow end"))
    return sorted(gaps, reverse=True)


def task_spans(flow_run_id: str) -> dict[str, list[tuple[float, float, str]]]:
    """Per phase: (start, end, name) of every task run of the flow run, as the API recorded them."""
    runs = []
    with get_client(sync_client=True) as client:
        while True:  # the API returns at most 200 per call
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200, offset=len(runs)
            )
            runs += page
            if len(page) < 200:
                break
    phases: dict[str, list[tuple[float, float, str]]] = {}
    for run in runs:
        if run.start_time is not None and run.end_time is not None:
            phase = run.name.split(" ")[0]
            phases.setdefault(phase, []).append((run.start_time.timestamp(), run.end_time.timestamp(), run.name))
    return phases


def run_study(profile: str, out: Path, *, fresh: bool) -> tuple[float, dict, str]:
    started = time.perf_counter()
    state = study(profile=profile, out=str(out), fresh=fresh, return_state=True)
    wall = time.perf_counter() - started
    summary = json.loads((out / "report" / "summary.json").read_text())
    return wall, summary, str(state.state_details.flow_run_id)


def gpus_seen() -> dict[str, str]:
    """What each framework sees, each probed in its own interpreter (they crash in one)."""
    probes = {
        "torch": "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')",
        "tensorflow": "import tensorflow as tf; print(*[d.name for d in tf.config.list_physical_devices('GPU')])",
    }
    seen = {}
    for name, code in probes.items():
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        seen[name] = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return seen


def gpu_section(doses: list[float] | None) -> None:
    """Inference patterns/s at the paper size (64 x 64) and the paper study's wall time.

    ``doses``: run the paper study on these doses only and scale its wall time to the
    whole dose list (the phases' work grows with the number of doses), so the check
    fits a short lease of a GPU machine; None runs every dose.
    """
    seen = gpus_seen()
    print(f"\nGPU section: torch sees {seen['torch'] or 'no GPU'}; TensorFlow sees {seen['tensorflow'] or 'no GPU'}")
    if not seen["torch"] and not seen["tensorflow"]:
        print("skipped: no GPU on this machine.")
        return
    subprocess.run([sys.executable, "benchmarks/networks.py", "--profile", "paper"], cwd=REPO, check=False)
    n_doses = len(resolve_config("paper").scan.doses)
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "flows/study.py", "--profile", "paper", "--out", out]
        if doses is not None:
            command += ["--set", f"scan.doses={json.dumps(doses)}"]
        started = time.perf_counter()
        finished = subprocess.run(command, cwd=REPO, check=False)
        wall = time.perf_counter() - started
    ran = n_doses if doses is None else len(doses)
    print(f"paper profile, {ran} of {n_doses} doses: {wall:.0f} s (exit {finished.returncode})")
    if ran < n_doses:
        print(f"  whole paper study, scaled by doses: about {wall * n_doses / ran / 60:.0f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    parser.add_argument("--phases", action="store_true", help="also run the per-phase benchmarks")
    parser.add_argument("--gpu", action="store_true", help="also run the GPU section when a GPU is present")
    parser.add_argument(
        "--gpu-doses",
        default="10000",
        help="doses of the GPU section's paper study, comma-separated, or 'all' (default 10000)",
    )
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix=f"bench-{args.profile}-")).resolve()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; out {out}")

    cold_wall, summary, flow_run_id = run_study(args.profile, out, fresh=True)
    own_gib, child_gib = peak_memory_gib()
    spans = task_spans(flow_run_id)
    flow_start, flow_end = flow_run_window(flow_run_id)
    gaps = idle_gaps([run for phase in spans.values() for run in phase], flow_start, flow_end)
    flow_seconds = flow_end - flow_start
    idle = sum(gap for gap, _, _ in gaps)
    busy = flow_seconds - idle  # every task run lies inside the flow run
    cached_wall, cached_summary, _ = run_study(args.profile, out, fresh=False)
    all_cached = all(tally["cached"] == tally["tasks"] for tally in cached_summary["phases"].values())

    print(f"\n{args.profile} study, {summary['n_success']}/{summary['n_conditions']} conditions succeeded")
    print("| measure | value | goal |")
    print("|---|---|---|")
    print(f"| cold wall time | {cold_wall:.0f} s ({cold_wall / 60:.1f} min) | <= 12 min (quick, 2 cores) |")
    print(f"| peak memory, flow process | {own_gib:.2f} GiB | |")
    print(f"| peak memory, largest child (LSQML worker) | {child_gib:.2f} GiB | |")
    print(f"| time when a task run was running | {busy:.0f} s | |")
    share = (cold_wall - busy) / cold_wall
    print(f"| orchestration share (wall with no task run / wall) | {share:.1%} | <= 5 % |")
    print(f"| of which outside the flow run (server start, shutdown) | {cold_wall - flow_seconds:.1f} s | |")
    print(f"| of which inside the flow run, no task running | {idle:.1f} s ({idle / flow_seconds:.1%} of the run) | |")
    print(f"| cached rerun wall time | {cached_wall:.1f} s, every phase cached: {all_cached} | <= 15 s |")
    print("\n| phase | tasks | sum of task-run seconds | span, first start to last end (s) |")
    print("|---|---|---|---|")
    for phase, runs in spans.items():
        total = sum(end - start for start, end, _ in runs)
        span = max(end for _, end, _ in runs) - min(start for start, _, _ in runs)
        print(f"| {phase} | {len(runs)} | {total:.1f} | {span:.1f} |")
    print("\nLongest times inside the flow run when no task ran:")
    for gap, before, after in gaps[:5]:
        print(f"  {gap:5.2f} s after {before!r}, before {after!r}")

    if args.phases:
        for script, options in (
            ("simulation.py", ["--profile", "paper"]),
            ("networks.py", ["--profile", "quick"]),
            ("lsqml.py", ["--profile", "quick"]),
        ):
            print(f"\n$ python benchmarks/{script} {' '.join(options)}", flush=True)
            subprocess.run([sys.executable, f"benchmarks/{script}", *options], cwd=REPO, check=False)
    if args.gpu:
        gpu_section(None if args.gpu_doses == "all" else [float(dose) for dose in args.gpu_doses.split(",")])


if __name__ == "__main__":
    main()
