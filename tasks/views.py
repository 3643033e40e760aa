"""Phase D task: one overlap view of one split, with its groups, overlap record and figure."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger

from ptystudy.config import Seeds, ViewConfig
from ptystudy.contract import load_scan, write_scan
from ptystudy.files import write_json
from ptystudy.layout import RunLayout, dose_text
from ptystudy.records import FileRecord, ScanRecord, ViewRecord
from ptystudy.report import plot_spacing_histogram
from ptystudy.views import build_view
from tasks._prefect import phase_task


@phase_task(
    name="views",
    modules=("ptystudy.views", "ptystudy.contract", "ptystudy.report", "ptystudy.layout"),
)
def select_view(
    scan: ScanRecord, view: str, overlap: float, view_config: ViewConfig, seeds: Seeds, run_dir: str
) -> ViewRecord:
    """Select the ``view`` subset of one split scan; write the view, overlap.json and spacing.png."""
    started = time.perf_counter()
    layout = RunLayout(Path(run_dir))
    source = load_scan(scan.file.verified())
    result = build_view(source, name=view, overlap=overlap, config=view_config, seeds=seeds)
    view_path = write_scan(layout.view(scan.dose, view, scan.split), result.scan)
    overlap_path = write_json(layout.overlap(scan.dose, view, scan.split), result.summary)
    figure_path = plot_spacing_histogram(
        layout.spacing_figure(scan.dose, view, scan.split),
        result.nn_distances_px,
        min_spacing_px=result.summary["min_spacing_px"],
        diameter_px=result.summary["probe_diameter_px"],
        measured_overlap=result.summary["measured_overlap"],
        title=f"{view} view (f = {overlap}), dose {dose_text(scan.dose)}, {scan.split} split",
    )
    get_run_logger().info(
        "%s %s: %d of %d positions, spacing >= %.1f px, measured overlap %.2f",
        view,
        scan.split,
        result.scan.n_patterns,
        source.n_patterns,
        result.summary["min_spacing_px"],
        result.summary["measured_overlap"],
    )
    return ViewRecord(
        dose=scan.dose,
        view=view,
        split=scan.split,
        file=FileRecord.of(view_path),
        overlap_file=FileRecord.of(overlap_path),
        spacing_figure=FileRecord.of(figure_path),
        n_positions=result.scan.n_patterns,
        n_groups=int(result.scan.groups.shape[0]),
        min_spacing_px=result.summary["min_spacing_px"],
        measured_overlap=result.summary["measured_overlap"],
        seconds=time.perf_counter() - started,
    )
