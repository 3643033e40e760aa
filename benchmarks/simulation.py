"""Phase C throughput beside the batched FFT it cannot beat (issue: simulation speed).

    python benchmarks/simulation.py [--profile quick|paper] [--repeats 3]

Prints patterns per second of the whole simulation of one dose (object, probe, pool,
forward model, Poisson counts, split) and of the same batched FFT alone, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft

from ptystudy.profiles import resolve_config
from ptystudy.scan import physics
from ptystudy.scan.simulate import ScanPlanConfig, make_specimen, plan_specimen_scans, simulate_study_dose


def best_seconds(run, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``run()``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", choices=["smoke", "quick", "paper"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = resolve_config(args.profile)
    specimen = make_specimen(config.scan, config.seeds)
    plans = plan_specimen_scans(specimen, config.scan, ScanPlanConfig.of(config), config.seeds)
    ycoords = np.concatenate([scan.ycoords for scans in plans.values() for scan in scans])
    xcoords = np.concatenate([scan.xcoords for scans in plans.values() for scan in scans])
    size = config.scan.patch_size_px
    n = ycoords.size
    waves = np.empty((n, size, size), np.complex64)
    for start in range(0, n, 256):
        patches = physics.extract_patches(
            specimen.obj, ycoords[start : start + 256], xcoords[start : start + 256], size
        )
        waves[start : start + 256] = specimen.probe * patches

    def fft_alone() -> None:
        """The simulation's batched FFT (scipy.fft, complex64), over the same chunks and threads."""
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(lambda s: scipy.fft.fft2(waves[s : s + 256]), range(0, n, 256)))

    def poisson_alone() -> None:
        """numpy's Poisson draw of every pixel, over the same chunks and threads."""
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(lambda s: np.random.default_rng(s).poisson(expected[s : s + 256]), range(0, n, 256)))

    expected = np.abs(waves) ** 2 * (1e4 / np.mean(np.sum(np.abs(waves) ** 2, axis=(1, 2))))
    fft_seconds = best_seconds(fft_alone, args.repeats)
    poisson_seconds = best_seconds(poisson_alone, args.repeats)
    simulation_seconds = best_seconds(lambda: simulate_study_dose(config, 1e4), args.repeats)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(f"profile {args.profile}: {n} patterns of {size} x {size}, dose 1e4, {os.cpu_count()} threads")
    print(f"{'step':<40}{'patterns/s':>12}")
    print(f"{'batched FFT alone (the limit)':<40}{n / fft_seconds:>12.0f}")
    print(f"{'Poisson draw alone (numpy Generator)':<40}{n / poisson_seconds:>12.0f}")
    print(f"{'simulate one dose (everything)':<40}{n / simulation_seconds:>12.0f}")
    print(f"ratio simulation / FFT alone: {fft_seconds / simulation_seconds:.2f} (goal >= 0.5)")
    print(f"ratio simulation / (FFT + Poisson draw): {(fft_seconds + poisson_seconds) / simulation_seconds:.2f}")


if __name__ == "__main__":
    main()
