"""The self-contained HTML report: written from a smoke study's report and checked in a real
browser (headless Chromium: every figure decodes, the tables hold their rows)."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from flows.study import study

import pytest
from browser import find_browser

pytestmark = pytest.mark.integration


class _Table(HTMLParser):
    """The rows (header first) of the table with id ``table_id``, as lists of cell texts."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.rows = table_id, False, []

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False

    def handle_data(self, data):
        if self.inside and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data.strip()


def _table(page: str, table_id: str) -> list[dict[str, str]]:
    parser = _Table(table_id)
    parser.feed(page)
    header, *rows = parser.rows
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def report(prefect_server, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html")
    overrides = {"scan.doses": [1000, 100000], "training.arms": ["pinn", "pinn_gs1"]}
    summary = study(profile="smoke", out=str(out), overrides=overrides, replicates=2)
    assert summary["n_failed"] == 0
    published = json.loads((out / "report" / "summary.json").read_text())
    return Path(published["report"]["index"])


def test_the_report_is_one_self_contained_file(report):
    page = report.read_text()
    assert "<img" in page and not re.search(r"src=['\"](?!data:image/png;base64,)", page), "every figure is embedded"
    assert "http://" not in page and "https://" not in page


def test_the_report_renders_in_a_browser(report, tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium package)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
    dom = subprocess.run(
        [*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=180, check=True
    ).stdout
    assert 'data-checked="yes"' in dom, "the page's figure check never ran"
    images = re.findall(r"<img[^>]*>", dom)
    failed = [re.search(r"alt=\"([^\"]*)\"", tag).group(1) for tag in images if 'data-rendered="ok"' not in tag]
    assert images and not failed, f"did not render: {failed}"
    # 2 doses x 2 views x 2 splits, 4 arms (pinn, pinn_gs1, lsqml, flat): the headline table's rows
    headline = _table(dom, "headline")
    assert len(headline) == 8 * 4 and {row["n"] for row in headline} == {"2"}
    paired = _table(dom, "paired")
    assert paired and {row["verdict"] for row in paired} <= {"better", "worse", "no detectable difference"}
    views = _table(dom, "views")
    assert len(views) == 8 and {row["dose"] for row in views} == {"1e3", "1e5"}, "doses read as everywhere else"
    # the report opens with the answer: the map, then sentences generated from the verdicts
    assert re.search(r"<h1>[^<]*</h1>\s*<h2>Findings</h2>\s*<figure><img alt=\"Where the networks win", dom)
    findings = re.search(r"<ul id=\"findings\">(.*?)</ul>", dom, re.S).group(1)
    assert findings.count("<li>") == 2 and "Phase MS-SSIM, test split, 4 conditions." in findings
    settings = {row["setting"] for row in _table(dom, "settings")}
    assert settings == {"scan.doses", "training.arms", "replicates"}, "only what differs from the smoke profile"
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, "--window-size=1280,4000", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert shot.stat().st_size > 50_000, "the screenshot is blank"
