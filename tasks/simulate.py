"""Phase C tasks: simulate one dose, or read its existing scans, and write its train and test scans."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger

from ptystudy.conditions import Split
from ptystudy.config import ScanConfig, Seeds
from ptystudy.records import FileRecord, ScanRecord
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import Scan, write_scan
from ptystudy.scan.existing import existing_split, read_scan_file
from ptystudy.scan.simulate import ScanPlanConfig, simulate_dose
from tasks._prefect import phase_task


@phase_task(name="simulate")
def simulate_scan(
    scan_config: ScanConfig,
    plan: ScanPlanConfig,
    seeds: Seeds,
    dose: float,
    run_dir: str,
    object_sha256: str | None,
) -> list[ScanRecord]:
    """Simulate every planned scan (views and training corpora) at ``dose`` photons per
    pattern; write ``data/dose_{d}/{train,test}.npz``.

    ``object_sha256`` is the user object file's hash (None for the built-in object), so a
    changed file is a new cache key.
    """
    started = time.perf_counter()
    return _write_splits(RunLayout(Path(run_dir)), dose, simulate_dose(scan_config, plan, seeds, dose), started)


@phase_task(name="import")
def import_scans(
    files: dict[str, FileRecord], plan: ScanPlanConfig, seeds: Seeds, dose: float, round_positions: bool, run_dir: str
) -> list[ScanRecord]:
    """Read one dose's existing train and test scans (contract or PtychoPINN layout), lay
    out every view on their positions and write ``data/dose_{d}/{train,test}.npz``.

    ``files`` carry the files' sha256s, so a changed file is a new cache key.
    """
    started = time.perf_counter()
    scans = {}
    for split in Split:
        source = read_scan_file(files[str(split)].verified(), dose=dose, round_positions=round_positions)
        scans[split] = existing_split(
            source,
            split,
            plan.overlaps,
            min_positions=plan.min_positions,
            min_samples=plan.min_samples,
            seed=seeds.subsampling,
        )
    return _write_splits(RunLayout(Path(run_dir)), dose, scans, started)


def _write_splits(layout: RunLayout, dose: float, scans: dict[Split, Scan], started: float) -> list[ScanRecord]:
    records = []
    for split, scan in scans.items():
        path = write_scan(layout.scan(dose, split), scan)
        seconds = time.perf_counter() - started
        records.append(ScanRecord.of(dose, str(split), path, scan.metadata, scan.n_patterns, seconds))
    get_run_logger().info(
        "dose %g: %s in %.1f s",
        dose,
        ", ".join(f"{r.split} {r.n_patterns} patterns ({r.mean_counts_per_pattern:.0f} photons each)" for r in records),
        time.perf_counter() - started,
    )
    return records
