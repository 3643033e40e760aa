"""The study report task: the tidy metrics table and the figures every reader looks at first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptystudy.records import CompareRecord, FileRecord, ScanRecord
from ptystudy.report.figures import plot_specimen
from ptystudy.report.findings import findings
from ptystudy.report.tables import ReportTables, json_records, metrics_markdown, read_metrics, wide_table, write_report
from ptystudy.scan.contract import load_scan
from tasks._prefect import phase_task


@phase_task(name="report", per_condition=False)
def build_report(
    compared: list[CompareRecord],
    replicates: list[int],
    specimen: ScanRecord | None,
    overlaps: dict[str, float],
    report_dir: str,
) -> dict[str, Any]:
    """Write ``report/metrics.csv`` (per replicate), its summary and paired comparisons,
    heatmaps and metric-vs-dose curves from every condition scored (``replicates[i]`` is
    the replicate of ``compared[i]``), the crossover map (views placed by their nominal
    ``overlaps``), and ``report/specimen.png`` (the specimen and its feature-size spectrum)
    from ``specimen``, a phase C train scan (None when no dose was simulated).

    Returns the written files (name -> path, and as records with their hashes, so a cached
    report whose file was deleted or edited is rebuilt), the findings (sentences), the
    markdown scores section and the headline scores as table rows (for the Prefect artifacts). Cached on the scored
    conditions' records, like the phases.
    """
    tables = ReportTables.of(read_metrics([record.metrics.verified() for record in compared], replicates))
    files = write_report(Path(report_dir), tables, overlaps)
    scan = None if specimen is None else load_scan(specimen.file.verified())
    if scan is not None and "cut_row" in scan.metadata:  # a simulated specimen
        files["specimen"] = plot_specimen(
            Path(report_dir) / "specimen.png",
            scan.obj,
            cut_row=scan.metadata["cut_row"],
            diameter_px=scan.metadata["probe_diameter_px"],
            title=f"Specimen: {scan.metadata['provenance']['object']}",
        )
    wide = wide_table(tables)
    return {
        "files": {name: str(path) for name, path in files.items()},
        "written": [FileRecord.of(Path(path)) for path in files.values()],
        "findings": findings(tables.crossover, tables.summary, overlaps),
        "markdown": metrics_markdown(wide, tables.paired, files),
        "scores": json_records(wide),
    }
