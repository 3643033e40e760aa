"""Publishing a finished study: the HTML report, summary.json and summary.md, the manifest,
and the Prefect artifacts, from the report task's tables and figures. Never cached: it is
cheap, and what it writes must always match this run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from ptystudy.config import StudyConfig
from ptystudy.files import write_json, write_text
from ptystudy.naming import dose_text
from ptystudy.profiles import changed_settings
from ptystudy.records import CompareRecord, ModelRecord, ReconRecord, ViewRecord
from ptystudy.report.findings import findings_markdown
from ptystudy.report.html import ConditionSection, write_html_report
from ptystudy.report.summary import OVERLAP_NOTE, convergence_markdown, summary_markdown, views_frame, views_markdown
from ptystudy.report.tables import comparison_title, display_table
from ptystudy.run.layout import RunLayout
from ptystudy.run.manifest import build_manifest
from tasks._artifacts import publish_artifacts


@task(name="publish", cache_policy=NO_CACHE, persist_result=False)
def publish_study(
    config: StudyConfig,
    run_dir: str,
    summary: dict[str, Any],
    records: list[Any],
    first: list[Any],
    scored: list[tuple[int, CompareRecord]],
    report: dict[str, Any],
) -> dict[str, Any]:
    """Write ``report/index.html``, ``summary.json``, ``summary.md`` and ``manifest.json``, and
    publish the Prefect artifacts (``tasks._artifacts``): the summary with the scores-against-dose
    figure, the scores and the task tally (tables), every figure embedded, a link to index.html.

    ``records`` are every phase's records (for the manifest), ``first`` replicate 0's (for the
    views and convergence tables), ``scored`` each replicate's scores, ``report`` the report
    task's result. Returns the summary with the report's files added.
    """
    layout = RunLayout(Path(run_dir))
    title = f"Dose x overlap study ({config.profile} profile)"
    views = [record for record in first if isinstance(record, ViewRecord)]
    models = [record for record in first if isinstance(record, ModelRecord)]
    recons = [record for record in first if isinstance(record, ReconRecord)]
    index = layout.report_dir / "index.html"
    summary = {**summary, "report": {**report["files"], "index": str(index)}}
    headline = display_table(pd.DataFrame(report["scores"]))
    paired = pd.read_csv(report["files"]["paired_comparisons"])
    figures = {name: Path(path) for name, path in report["files"].items() if path.endswith(".png")}
    write_html_report(
        index,
        title=title,
        summary=summary,
        findings=report["findings"],
        settings=pd.DataFrame(changed_settings(config), columns=["setting", "value", "profile default"]),
        views=views_frame(views, config.views.overlaps),
        overlap_note=OVERLAP_NOTE,
        headline=headline,
        paired=paired.assign(comparison=paired.comparison.map(comparison_title)),
        figures=figures,
        conditions=[
            ConditionSection(
                f"{dose_text(record.dose)} {record.view} {record.split}",
                Path(record.montage.path),
                Path(record.frc_figure.path),
            )
            for replicate, record in scored
            if replicate == 0
        ],
    )
    head = "\n".join(
        (
            f"Full report: [{index}]({index.as_uri()}) (one self-contained HTML file)\n",
            summary_markdown(
                summary, title=title, findings=findings_markdown(report["findings"], figures.get("crossover_map"))
            ),
        )
    )
    body = "\n".join(
        (report["markdown"], views_markdown(views, config.views.overlaps), convergence_markdown(models, recons))
    )
    write_json(layout.report_dir / "summary.json", summary)
    write_text(layout.report_dir / "summary.md", f"{head}\n{body}")
    write_json(layout.manifest, build_manifest(config, records))
    publish_artifacts(
        title=title,
        head=head,
        body=body,
        index=index,
        scores=headline,
        phases=summary["phases"],
        figures=figures,
    )
    return summary
