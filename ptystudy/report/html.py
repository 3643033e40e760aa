"""The study report as one self-contained HTML file (``report/index.html``): the findings
first (the crossover map and sentences generated from the verdicts), then the counts and
failures, the settings that differ from the profile's, the views, the headline scores with
intervals, the paired comparisons, every figure and a section per condition, figures
embedded as PNG data (no network access needed to view it).

A small script in the page marks each figure once it has decoded (``data-rendered``), and
puts a visible note under any that did not, so a broken figure cannot pass unnoticed.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ptystudy.files import write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; } td:nth-child(-n+4) { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.failed { color: #b00; font-weight: bold; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
"""
_CHECK_FIGURES = """
window.addEventListener("load", () => {
  for (const img of document.querySelectorAll("img")) {
    const ok = img.complete && img.naturalWidth > 0;
    img.dataset.rendered = ok ? "ok" : "failed";
    if (!ok) {
      const note = document.createElement("p");
      note.className = "failed";
      note.textContent = "this figure did not render: " + img.alt;
      img.after(note);
    }
  }
  document.body.dataset.checked = "yes";
});
"""


MAP_CAPTION = "Where the networks win: the best network minus LSQML per dose and overlap"


@dataclass(frozen=True)
class ConditionSection:
    """One condition's figures: its label (``1e3 dense test``), montage and FRC curves."""

    label: str
    montage: Path
    frc: Path


def write_html_report(
    path: Path,
    *,
    title: str,
    summary: dict[str, Any],
    findings: list[str],
    settings: pd.DataFrame,
    views: pd.DataFrame,
    overlap_note: str,
    headline: pd.DataFrame,
    paired: pd.DataFrame,
    figures: dict[str, Path],
    conditions: list[ConditionSection],
) -> Path:
    """Write the self-contained report to ``path``; return it. ``figures`` are shown in their
    order, except ``crossover_map``, which opens the findings; ``settings`` are the fields
    that differ from the profile's defaults."""
    crossover = figures.get("crossover_map")
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Findings</h2>",
        *([_figure(crossover, MAP_CAPTION)] if crossover else []),
        "<ul id='findings'>" + "".join(f"<li>{html.escape(text)}</li>" for text in findings) + "</ul>",
        _counts(summary),
        "<h2>Study settings</h2>",
        "<p>The fields that differ from the profile's defaults; the full configuration is in "
        "<code>manifest.json</code>.</p>",
        _table(settings, "settings"),
        "<h2>Views</h2>",
        f"<p>{html.escape(overlap_note)}</p>",
        _table(views, "views"),
        "<h2>Headline scores</h2>",
        "<p>After alignment, on each view's scanned region; means over the replicates scored (n), "
        "± the half-width of the 95 % interval of the mean. MS-SSIM: 1 is perfect; FRC in fractions "
        "of Nyquist. The flat row is the no-information reference.</p>",
        _table(headline, "headline"),
        "<h2>Paired comparisons</h2>",
        "<p>The first arm minus the second, per condition, paired over the replicates both arms "
        "scored: mean difference, 95 % interval and verdict (higher is better for every score).</p>",
        _table(paired, "paired"),
        "<h2>Figures</h2>",
        *(_figure(figure, name) for name, figure in figures.items() if name != "crossover_map"),
        "<h2>Conditions</h2>",
    ]
    for section in conditions:
        parts += [
            f"<h3>{html.escape(section.label)}</h3>",
            _figure(section.montage, f"{section.label}: montage"),
            _figure(section.frc, f"{section.label}: Fourier ring correlation"),
        ]
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{_CHECK_FIGURES}</script></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    return write_text(Path(path), page)


def _counts(summary: dict[str, Any]) -> str:
    items = [
        ("conditions (dose x view x split)", summary["n_conditions"]),
        ("selection", summary.get("selection", "all conditions")),
        ("replicates per condition", summary.get("replicates", 1)),
        ("executed", summary["n_executed"]),
        ("succeeded", summary["n_success"]),
        ("failed", summary["n_failed"]),
    ]
    lines = [f"<li>{html.escape(name)}: <b>{html.escape(str(value))}</b></li>" for name, value in items]
    text = "<h2>Outcome</h2><ul>" + "".join(lines) + "</ul>"
    failures = pd.DataFrame(summary.get("failures", []))
    if not failures.empty:
        text += "<h3 class='failed'>Failures</h3>" + _table(failures, "failures")
    return text


def _table(table: pd.DataFrame, name: str) -> str:
    """``table`` as HTML: doses and whole-number columns without decimals, scores to 3."""
    if table.empty:
        return f"<p id='{name}'>(none)</p>"
    formatters = {}
    for column in table.columns:
        values = table[column]
        if values.dtype.kind != "f":
            continue
        finite = values[values.notna()]
        if column == "dose" or (len(finite) and (finite == finite.round()).all() and finite.abs().max() > 1):
            formatters[column] = lambda value: "n/a" if pd.isna(value) else f"{value:g}"
    return table.to_html(
        index=False, float_format=lambda value: f"{value:.3f}", formatters=formatters, na_rep="n/a", table_id=name
    )


def png_data_uri(path: Path) -> str:
    """The PNG file at ``path`` as a ``data:`` URI, for pages that must not link to files."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _figure(path: Path, caption: str) -> str:
    alt = html.escape(caption, quote=True)
    return (
        f"<figure><img alt='{alt}' src='{png_data_uri(path)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
    )
