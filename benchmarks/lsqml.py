"""Phase F speed: LSQML through the adapter's worker beside a direct pty-chi call.

    python benchmarks/lsqml.py [--profile quick|paper] [--dose 10000] [--epochs 20]

Prints the worker's start-up cost, seconds per epoch per pattern through the worker
(adapter, process isolation, pipe) and through a direct ``PtychographyTask`` built here
on the same data, and their ratio (goal <= 1.1).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ptystudy.conditions import Split
from ptystudy.lsqml.adapter import LsqmlSettings, build_options, resolve_device, to_ptychi_positions
from ptystudy.lsqml.worker import LsqmlWorker
from ptystudy.profiles import resolve_config
from ptystudy.scan.contract import write_scan
from ptystudy.scan.simulate import simulate_study_dose
from ptystudy.scan.views import build_view


def direct_seconds(view, settings: LsqmlSettings) -> float:
    """The same reconstruction with pty-chi called directly in this process (run time only)."""
    from ptychi.api.task import PtychographyTask

    ys, xs = to_ptychi_positions(view.ycoords, view.xcoords, view.obj.shape)
    options = build_options(settings, view.n_patterns, view.obj.shape, device=resolve_device(settings.device))
    task = PtychographyTask(
        options,
        diffraction_data=view.counts(),
        object_data=np.ones((1, *view.obj.shape), np.complex64),
        probe_data=view.probe[None, None],
        probe_position_y_px=ys,
        probe_position_x_px=xs,
    )
    started = time.perf_counter()
    task.run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    config = resolve_config(args.profile)
    scan = simulate_study_dose(config, args.dose)[Split.TRAIN]
    view = build_view(
        scan, name="dense", overlap=config.views.overlaps["dense"], config=config.views, seeds=config.seeds
    ).scan
    settings = LsqmlSettings(
        max_epochs=args.epochs,
        tolerance=0.0,
        check_every=args.epochs,
        batches_per_epoch=config.lsqml.batches_per_epoch,
        momentum=config.lsqml.momentum,
        device=config.lsqml.device,
        seed=1,
    )
    worker = LsqmlWorker()
    with tempfile.TemporaryDirectory() as folder:
        path = write_scan(Path(folder) / "view.npz", view)
        started = time.perf_counter()
        worker.run(path, LsqmlSettings(**{**settings.__dict__, "max_epochs": 1}), timeout_s=3600)
        startup = time.perf_counter() - started
        started = time.perf_counter()
        result = worker.run(path, settings, timeout_s=3600)
        through_worker = time.perf_counter() - started
    worker.stop()
    direct = direct_seconds(view, settings)
    per = args.epochs * view.n_patterns
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; device {result.device}")
    print(
        f"profile {args.profile}: dense train view, {view.n_patterns} patterns of "
        f"{view.patch_size} x {view.patch_size}, {args.epochs} epochs"
    )
    print(f"worker start-up + 1-epoch run: {startup:.1f} s")
    print(f"{'path':<34}{'s/epoch/pattern':>18}")
    print(f"{'adapter, through the worker':<34}{through_worker / per:>18.2e}")
    print(f"{'adapter, pty-chi run time only':<34}{result.seconds / per:>18.2e}")
    print(f"{'direct pty-chi call':<34}{direct / per:>18.2e}")
    print(f"ratio worker / direct: {through_worker / direct:.2f} (goal <= 1.1)")


if __name__ == "__main__":
    main()
