"""The study's Prefect artifacts: what a user sees of a finished study in the Prefect UI.

Figures are embedded in markdown artifacts as PNG ``data:`` URIs. Both of Prefect 3.9's
UIs render those (checked in headless Chromium by ``tests/test_server.py``); neither opens
a ``file://`` link, and the new UI drops it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from ptystudy.naming import METRIC_TITLES
from ptystudy.report.html import png_data_uri
from ptystudy.report.tables import json_records

SUMMARY_FIGURE = "metrics_vs_dose"
"""The figure the summary artifact shows: every arm's headline scores against dose."""
FIGURE_TITLES = {
    "metrics_vs_dose": "Headline scores against dose (means, 95 % bands over replicates)",
    "specimen": "The specimen: amplitude, phase and feature-size spectrum",
}


def figure_title(name: str) -> str:
    """A figure's title from its report name (``heatmap_phase_ms_ssim`` -> a heatmap of phase MS-SSIM)."""
    if name in FIGURE_TITLES:
        return FIGURE_TITLES[name]
    if name.startswith("heatmap_"):
        component, metric = name.removeprefix("heatmap_").split("_", 1)
        return f"{component.capitalize()} {METRIC_TITLES.get(metric, metric)} per dose x view (test split)"
    return name.replace("_", " ")


def figure_markdown(name: str, path: Path) -> str:
    """A markdown section showing the figure ``name`` (embedded) and naming its file."""
    title = figure_title(name)
    return f"## {title}\n\n![{title}]({png_data_uri(path)})\n\nFile: `{path}`\n"


def publish_artifacts(
    *,
    title: str,
    head: str,
    body: str,
    index: Path,
    scores: pd.DataFrame,
    phases: dict[str, dict[str, int]],
    figures: dict[str, Path],
) -> None:
    """Publish the study's artifacts to the Prefect run.

    ``study-summary``: ``head`` (counts and failures), the summary figure, then ``body``;
    ``study-report``: a link to the HTML report; ``study-metrics``: the headline scores,
    rounded, with the arms' display names; ``study-tasks``: tasks per phase; and a
    ``study-<figure>`` artifact per figure, embedded.
    """
    shown = [figure_markdown(SUMMARY_FIGURE, figures[SUMMARY_FIGURE])] if SUMMARY_FIGURE in figures else []
    create_markdown_artifact(key="study-summary", markdown="\n".join([head, *shown, body]), description=title)
    create_link_artifact(
        key="study-report",
        link=index.as_uri(),
        link_text=f"report/index.html ({title})",
        description="The whole report in one self-contained HTML file (open it from the machine that ran the study)",
    )
    create_table_artifact(
        key="study-metrics",
        table=json_records(scores),
        description="Headline scores per condition and arm, after alignment (report/metrics.csv has all)",
    )
    create_table_artifact(
        key="study-tasks",
        table=[{"phase": name, **tally} for name, tally in phases.items()],
        description="Tasks per phase: succeeded (of which cached) and failed",
    )
    for name, path in figures.items():
        create_markdown_artifact(
            key=f"study-{name.replace('_', '-')}",
            markdown=figure_markdown(name, path),
            description=f"{figure_title(name)} ({title})",
        )
