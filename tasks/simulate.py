"""Phase C task: simulate one dose and write its train and test scans."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger

from ptystudy.config import ScanConfig, Seeds
from ptystudy.contract import write_scan
from ptystudy.layout import RunLayout
from ptystudy.records import FileRecord, ScanRecord
from ptystudy.simulate import ScanPlanConfig, simulate_dose
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
    layout = RunLayout(Path(run_dir))
    records = []
    for split, scan in simulate_dose(scan_config, plan, seeds, dose).items():
        path = write_scan(layout.scan(dose, split), scan)
        records.append(
            ScanRecord(
                dose=dose,
                split=str(split),
                file=FileRecord.of(path),
                n_patterns=scan.n_patterns,
                mean_counts_per_pattern=scan.metadata["mean_counts_per_pattern"],
                scale=scan.metadata["scale"],
                probe_diameter_px=scan.metadata["probe_diameter_px"],
                seconds=time.perf_counter() - started,
            )
        )
    get_run_logger().info(
        "dose %g: %s in %.1f s",
        dose,
        ", ".join(f"{r.split} {r.n_patterns} patterns ({r.mean_counts_per_pattern:.0f} photons each)" for r in records),
        time.perf_counter() - started,
    )
    return records
