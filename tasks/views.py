"""Phase D task: one overlap view of one split, with its groups, overlap record and figure,
and (train split) the view's training corpus."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger

from ptystudy.conditions import Split
from ptystudy.config import Seeds, ViewConfig
from ptystudy.files import write_json
from ptystudy.naming import dose_text
from ptystudy.records import FileRecord, ScanRecord, ViewRecord
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import load_scan, write_scan
from ptystudy.scan.figures import plot_spacing_histogram
from ptystudy.scan.views import build_corpus, build_view
from tasks._prefect import phase_task


@phase_task(name="views")
def select_view(
    scan: ScanRecord, view: str, overlap: float, view_config: ViewConfig, seeds: Seeds, run_dir: str
) -> ViewRecord:
    """Cut the ``view`` scan out of one split file; write the view, overlap.json and spacing.png,
    and for the train split the view's training corpus (corpus.npz)."""
    started = time.perf_counter()
    layout = RunLayout(Path(run_dir))
    source = load_scan(scan.file.verified())
    result = build_view(source, name=view, overlap=overlap, config=view_config, seeds=seeds)
    view_path = write_scan(layout.view(scan.dose, view, scan.split), result.scan)
    corpus, corpus_file = None, None
    if Split(scan.split) is Split.TRAIN:
        corpus = build_corpus(source, name=view, config=view_config, seeds=seeds)
        corpus_file = FileRecord.of(write_scan(layout.corpus(scan.dose, view), corpus))
    overlap_path = write_json(layout.overlap(scan.dose, view, scan.split), result.summary)
    figure_path = plot_spacing_histogram(
        layout.spacing_figure(scan.dose, view, scan.split),
        result.nn_distances_px,
        step_px=result.summary["step_px"],
        diameter_px=result.summary["probe_diameter_px"],
        measured_overlap=result.summary["measured_overlap"],
        title=f"{view} view (f = {overlap}), dose {dose_text(scan.dose)}, {scan.split} split",
    )
    get_run_logger().info(
        "%s %s: %d positions, step %.1f px (mean spacing %.1f px), measured overlap %.2f%s",
        view,
        scan.split,
        result.scan.n_patterns,
        result.summary["step_px"],
        result.summary["nn_spacing_px"]["mean"],
        result.summary["measured_overlap"],
        "" if corpus is None else f"; training corpus of {corpus.n_patterns} samples",
    )
    return ViewRecord(
        dose=scan.dose,
        view=view,
        split=scan.split,
        file=FileRecord.of(view_path),
        overlap_file=FileRecord.of(overlap_path),
        spacing_figure=FileRecord.of(figure_path),
        corpus=corpus_file,
        n_positions=result.scan.n_patterns,
        n_groups=int(result.scan.groups.shape[0]),
        n_corpus_samples=None if corpus is None else corpus.n_patterns,
        step_px=result.summary["step_px"],
        mean_spacing_px=result.summary["nn_spacing_px"]["mean"],
        measured_overlap=result.summary["measured_overlap"],
        seconds=time.perf_counter() - started,
    )
