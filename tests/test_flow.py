"""The study flow through Prefect, smoke profile: one test per path through Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from flows.study import StudyFailed, main, study

import numpy as np
import pandas as pd
import pytest

from ptystudy.errors import ContractError
from ptystudy.files import sha256_file
from ptystudy.naming import dose_text
from ptystudy.profiles import resolve_config
from ptystudy.recon import load_recon
from ptystudy.records import FileRecord, ScanRecord
from ptystudy.run.layout import RunLayout
from ptystudy.scan.contract import check_scan, load_scan

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


NARROW = {"scan.doses": [1000], "training.arms": ["pinn_gs1"]}
"""A one-dose, one-network smoke study, for the paths that need several runs."""


def _phase_files(root: Path) -> dict[str, tuple[str, int]]:
    """Every phase output file -> (sha256, mtime in ns)."""
    files = sorted(p for part in ("data", "views", "models", "recon", "compare") for p in root.glob(f"{part}/**/*"))
    return {str(p.relative_to(root)): (sha256_file(p), p.stat().st_mtime_ns) for p in files if p.is_file()}


@pytest.fixture(scope="module")
def smoke_run(prefect_server, tmp_path_factory):
    """The run directory, summary and flow run id of one smoke study."""
    out = tmp_path_factory.mktemp("smoke")
    state = study(profile="smoke", out=str(out), return_state=True)
    return out, state.result(), state.state_details.flow_run_id


def test_smoke_study_runs_green(smoke_run):
    out, summary, _ = smoke_run
    assert (summary["n_conditions"], summary["n_success"], summary["n_failed"]) == (12, 12, 0)
    layout = RunLayout(out)
    for dose in (1e3, 1e4, 1e5):
        for split in ("train", "test"):
            assert load_scan(layout.scan(dose, split)).n_patterns > 0
            for view in ("dense", "sparse"):
                scan = load_scan(layout.view(dose, view, split), require_groups=True)
                assert scan.groups.shape[1] == 4
                overlap = json.loads(layout.overlap(dose, view, split).read_text())
                assert overlap["n_positions"] == scan.n_patterns
                assert layout.spacing_figure(dose, view, split).stat().st_size > 1000
        dense = json.loads(layout.overlap(dose, "dense", "train").read_text())
        sparse = json.loads(layout.overlap(dose, "sparse", "train").read_text())
        assert dense["measured_overlap"] > sparse["measured_overlap"]
        for view in ("dense", "sparse"):
            corpus = load_scan(layout.corpus(dose, view), require_groups=True)
            assert corpus.n_patterns >= resolve_config("smoke").training.min_samples
            for split in ("train", "test"):  # paired: every dose scans the view's positions
                here, first = load_scan(layout.view(dose, view, split)), load_scan(layout.view(1e3, view, split))
                assert np.array_equal(here.ycoords, first.ycoords) and np.array_equal(here.xcoords, first.xcoords)
            for arm in ("pinn", "pinn_shared", "pinn_gs1", "supervised"):
                history = json.loads((layout.model_dir(dose, view, arm) / "history.json").read_text())
                assert history["epochs_run"] >= 1 and (layout.model_dir(dose, view, arm) / "model.keras").is_file()
                assert history["n_samples"] == corpus.n_patterns and history["stop_reason"]
                for split in ("train", "test"):
                    recon = load_recon(layout.recon(dose, view, split, arm))
                    assert recon.coverage.any() and recon.obj.shape == recon.coverage.shape
            for split in ("train", "test"):
                lsqml = load_recon(layout.recon(dose, view, split, "lsqml"))
                scan = load_scan(layout.view(dose, view, split))
                assert lsqml.metadata["n_patterns"] == scan.n_patterns
                assert len(lsqml.metadata["cost_per_epoch"]) == lsqml.metadata["epochs"] == 5
                assert lsqml.metadata["stop_reason"].startswith("epoch cap (5)")
    on_disk = json.loads((layout.report_dir / "summary.json").read_text())
    assert on_disk["n_success"] == 12 and on_disk["phases"]["views"]["succeeded"] == 12
    manifest = json.loads(layout.manifest.read_text())
    assert manifest["config"]["profile"] == "smoke"
    assert len(manifest["outputs"]) == 6 + 12 * 3 + 6 + 24 * 4 + 48 + 12 + 12 * 5
    for path, digest in manifest["outputs"].items():
        assert sha256_file(Path(path)) == digest
    assert not [p for p in out.rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert not list(out.rglob(".partial-*")), "no temporary files may be left behind"


ARMS = ("pinn", "pinn_shared", "pinn_gs1", "supervised", "lsqml", "flat")
METRICS = {"mae", "mse", "psnr", "ssim", "ms_ssim", "frc50", "frc_halfbit", "frc50_onset", "frc_halfbit_onset"}


def test_smoke_study_scores_every_condition_and_arm(smoke_run):
    out, summary, _ = smoke_run
    layout = RunLayout(out)
    table = pd.read_csv(layout.report_dir / "metrics.csv")
    assert list(table.columns) == ["dose", "view", "split", "arm", "component", "metric", "value", "replicate"]
    assert set(table.replicate) == {0}  # the smoke profile runs one replicate
    cells = table.groupby(["dose", "view", "split", "arm"]).size()
    assert len(cells) == 12 * len(ARMS) and set(cells) == {2 * 9}
    assert set(table.metric) == METRICS
    onsets = table.metric.str.endswith("_onset")
    assert table.value[~onsets].notna().all()
    # an onset is missing exactly where there is no band (resolution 0), e.g. the flat row's
    for threshold in ("frc50", "frc_halfbit"):
        keyed = table.set_index(["dose", "view", "split", "arm", "component"])
        onset = keyed[keyed.metric == f"{threshold}_onset"].value
        resolution = keyed[keyed.metric == threshold].value.reindex(onset.index)
        assert (onset.isna() == (resolution == 0)).all()
    assert table[(table.arm == "flat") & onsets].value.isna().all()
    scored = [p.parent for p in out.glob("compare/*/*/*/metrics.csv")]
    assert len(scored) == summary["n_success"] == summary["n_executed"] == 12
    for directory in scored:
        aligned = np.load(directory / "aligned.npz")
        crop = aligned["mask"].shape
        for arm in ("truth", *ARMS):
            assert aligned[f"{arm}_amplitude"].shape == aligned[f"{arm}_phase"].shape == crop
        record = json.loads((directory / "alignment.json").read_text())
        assert set(record["arms"]) == set(ARMS) and record["scored_px"] == int(aligned["mask"].sum())
        assert all(1 <= arm["ms_ssim_scales"] <= 5 for arm in record["arms"].values())
        for figure in ("montage.png", "frc.png"):
            assert (directory / figure).stat().st_size > 5000
    for name in ("heatmap_phase_ms_ssim", "heatmap_phase_frc50", "metrics_vs_dose", "specimen"):
        assert (layout.report_dir / f"{name}.png").stat().st_size > 5000
    markdown = (layout.report_dir / "summary.md").read_text()
    assert "succeeded: **12**" in markdown and "phase ms_ssim" in markdown
    convergence = markdown.split("## Convergence", 1)[1]
    rows = convergence.splitlines()
    assert sum(line.startswith("| train ") for line in rows) == 6 * 4  # dose x view x network arm
    assert sum(line.startswith("| lsqml |") for line in rows) == 12
    assert convergence.count("epoch cap (5) reached before the cost plateaued") == 12
    views_table = markdown.split("## Views", 1)[1]
    for dose in (1e3, 1e4, 1e5):
        for view, nominal in resolve_config("smoke").views.overlaps.items():
            for split in ("train", "test"):
                overlap = json.loads(layout.overlap(dose, view, split).read_text())
                row = f"| {dose_text(dose)} | {view} | {split} | {nominal:.2f} | {overlap['measured_overlap']:.3f} |"
                assert row in views_table, row


def test_study_artifacts_reach_the_api(smoke_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    _, _, flow_run_id = smoke_run  # other studies in this session publish the same keys
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["study-summary", "study-metrics"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    by_key = {artifact.key: artifact for artifact in artifacts}
    assert "failed: **0**" in by_key["study-summary"].data
    rows = json.loads(by_key["study-metrics"].data)
    assert len(rows) == 12 * len(ARMS) and {"phase ms_ssim", "phase frc50"} <= set(rows[0])


def test_every_report_figure_is_an_artifact_with_the_image_embedded(smoke_run):
    """Each figure is a markdown artifact holding the PNG itself (a data: URI, which the
    Prefect UI renders; file:// links it does not open), and naming its file."""
    import base64
    import re

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    out, _, flow_run_id = smoke_run
    report = json.loads((out / "report" / "summary.json").read_text())["report"]
    figures = {name: Path(path) for name, path in report.items() if path.endswith(".png")}
    assert {"metrics_vs_dose", "heatmap_phase_ms_ssim"} <= set(figures)
    keys = {name: f"study-{name.replace('_', '-')}" for name in figures}
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[*keys.values(), "study-summary"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    by_key = {artifact.key: artifact for artifact in artifacts}
    for name, path in figures.items():
        artifact = by_key.get(keys[name])
        assert artifact is not None and artifact.type == "markdown", f"no figure artifact {keys[name]}"
        (embedded,) = re.findall(r"\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", artifact.data)
        assert base64.b64decode(embedded) == path.read_bytes(), f"{keys[name]} does not hold {path}"
        assert str(path) in artifact.data
    assert "data:image/png;base64," in by_key["study-summary"].data, "the summary shows the scores-against-dose figure"


def test_cached_rerun_does_no_phase_work(smoke_run):
    out, _, _ = smoke_run
    before = _phase_files(out)
    summary = study(profile="smoke", out=str(out))
    for phase in ("simulate", "views", "train", "infer", "lsqml", "compare"):
        tally = summary["phases"][phase]
        assert tally["cached"] == tally["tasks"] > 0, phase
    assert _phase_files(out) == before


def test_clean_finds_nothing_stale_after_a_complete_study_and_lists_its_flow_run(smoke_run, capsys):
    from flows.clean import main as clean_main

    out, _, flow_run_id = smoke_run
    assert clean_main([str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cache: 0 of " in printed and "entries not used by the last complete study" in printed
    assert clean_main([str(out), "--older-than", "0m", "--prefect-history"]) == 0
    printed = capsys.readouterr().out
    assert str(flow_run_id) in printed and "would delete" in printed, "a dry run by default"


def _report_files(root: Path) -> dict[str, int]:
    """Every file the report task writes (figures, tables; not the HTML page) -> mtime in ns."""
    return {p.name: p.stat().st_mtime_ns for p in (root / "report").iterdir() if p.suffix in (".csv", ".png")}


def test_fresh_recomputes_the_same_data(prefect_server, tmp_path):
    study(profile="smoke", out=str(tmp_path), overrides=NARROW)
    before, report_before = _phase_files(tmp_path), _report_files(tmp_path)
    summary = study(profile="smoke", out=str(tmp_path), overrides=NARROW, fresh=True)
    assert all(tally["cached"] == 0 for tally in summary["phases"].values())
    after, report_after = _phase_files(tmp_path), _report_files(tmp_path)
    assert all(after[k][1] > before[k][1] for k in before), "every file must be rewritten"
    assert report_before and all(report_after[k] > report_before[k] for k in report_before), "the report too"
    data_files = [k for k in before if k.startswith(("data", "views"))]
    assert {k: after[k][0] for k in data_files} == {k: before[k][0] for k in data_files}


def test_a_cached_rerun_restores_what_was_deleted_or_edited(prefect_server, tmp_path, caplog):
    study(profile="smoke", out=str(tmp_path), overrides=NARROW)
    layout = RunLayout(tmp_path)
    clean = _phase_files(tmp_path)
    metrics = layout.report_dir / "metrics.csv"
    clean_metrics = metrics.read_text()
    recon = layout.recon(1e3, "dense", "test", "pinn_gs1")
    model = layout.model_dir(1e3, "sparse", "pinn_gs1") / "model.keras"
    recon.unlink()
    model.unlink()
    edited = pd.read_csv(metrics)
    edited.loc[0, "value"] = 999.0
    edited.to_csv(metrics, index=False)

    summary = study(profile="smoke", out=str(tmp_path), overrides=NARROW)

    assert metrics.read_text() == clean_metrics, "the report is rebuilt, with the clean run's metrics"
    restored = _phase_files(tmp_path)
    assert restored.keys() == clean.keys()
    # a retrained network is the same network, but its files carry their write and epoch times
    retrained = ("models/dose_1000/sparse/", "recon/dose_1000/sparse/")
    assert {k: v[0] for k, v in restored.items() if not k.startswith(retrained)} == {
        k: v[0] for k, v in clean.items() if not k.startswith(retrained)
    }, "the dense network's reconstruction comes back byte for byte; nothing else changes"
    phases = summary["phases"]
    assert phases["train"]["tasks"] - phases["train"]["cached"] == 1, "only the sparse network retrains"
    assert phases["infer"]["tasks"] - phases["infer"]["cached"] == 3, "the deleted one and the retrained network's"
    assert phases["simulate"]["cached"] == phases["simulate"]["tasks"]
    assert phases["views"]["cached"] == phases["views"]["tasks"]
    warnings = [r.getMessage() for r in caplog.records if "not reusing the cached result" in r.getMessage()]
    assert any(str(recon) in w and "missing" in w for w in warnings), warnings
    assert any(str(model) in w for w in warnings) and any(str(metrics) in w and "changed" in w for w in warnings)


def test_broken_condition_fails_alone_and_is_counted(prefect_server, tmp_path, capsys, monkeypatch):
    import tasks.views

    study(profile="smoke", out=str(tmp_path), overrides=NARROW)
    broken = RunLayout(tmp_path).scan(1e3, "test")
    real_load = tasks.views.load_scan

    def load_with_a_nan(path):
        scan = real_load(path)
        if Path(path) == broken:
            scan.diffraction[0, 0, 0] = np.nan
            check_scan(scan, Path(path))  # the contract's own check, as loading a broken file runs it
        return scan

    monkeypatch.setattr(tasks.views, "load_scan", load_with_a_nan)
    # a changed view setting re-runs phase D; the simulation stays cached
    code = main(
        [
            "--profile",
            "smoke",
            "--out",
            str(tmp_path),
            "--set",
            "scan.doses=[1000]",
            "--set",
            "training.arms=[pinn_gs1]",
            "--set",
            "views.group_size=3",
        ]
    )
    assert code == 1
    printed = capsys.readouterr().out
    assert "4 conditions, 4 executed, 2 succeeded, 2 failed" in printed
    assert "failed: dose 1e3 dense test in views: ContractError" in printed
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["n_success"], summary["n_failed"]) == (2, 2)
    assert {(f["dose"], f["split"], f["phase"]) for f in summary["failures"]} == {(1000.0, "test", "views")}
    assert all("test.npz" in f["error"] and "ContractError" in f["error"] for f in summary["failures"])


def test_a_run_that_stops_before_publishing_is_not_read_from_an_old_summary(
    prefect_server, tmp_path, capsys, monkeypatch
):
    """The command line reads the outcome from the flow run's state, not from whatever
    summary.json lies in the run directory (even one with a newer timestamp)."""
    import flows._phases

    stale = tmp_path / "report" / "summary.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"n_conditions": 4, "n_executed": 4, "n_success": 4, "n_failed": 0, "failures": []}))
    os.utime(stale, (time.time() + 3600, time.time() + 3600))

    def broken(run):
        raise RuntimeError("simulation crashed")

    monkeypatch.setattr(flows._phases, "run_simulation", broken)
    code = main(["--profile", "smoke", "--out", str(tmp_path), "--set", "scan.doses=[1000]"])
    assert code == 1
    captured = capsys.readouterr()
    assert "the study stopped before publishing" in captured.err and "simulation crashed" in captured.err
    assert "study finished" not in captured.out


def test_one_corrupted_view_fails_only_its_condition(prefect_server, tmp_path, monkeypatch):
    """The whole 12-condition matrix (one network arm, for time) with one view file corrupted."""
    import tasks.views

    real_write = tasks.views.write_scan

    def corrupting_write(path, scan):
        written = real_write(path, scan)
        if "dose_10000/sparse/test" in str(path):
            written.write_bytes(b"not an npz file")
        return written

    monkeypatch.setattr(tasks.views, "write_scan", corrupting_write)
    state = study(profile="smoke", out=str(tmp_path), overrides={"training.arms": ["pinn_gs1"]}, return_state=True)
    assert state.is_failed()
    with pytest.raises(StudyFailed, match="1 of 12 conditions failed"):
        state.result()
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["n_conditions"], summary["n_executed"], summary["n_success"], summary["n_failed"]) == (
        12,
        12,
        11,
        1,
    )
    (failure,) = summary["failures"]
    assert (failure["dose"], failure["view"], failure["split"]) == (10000.0, "sparse", "test")
    assert "dose_10000/sparse/test.npz" in failure["error"]
    table = pd.read_csv(tmp_path / "report" / "metrics.csv")
    assert len(table.groupby(["dose", "view", "split"])) == 11
    assert set(table.arm) == {"pinn_gs1", "lsqml", "flat"}


def test_contract_error_is_not_retried(prefect_server, tmp_path, smoke_config):
    from tasks.views import select_view

    path = tmp_path / "bad.npz"
    np.savez(path, diffraction=np.ones((2, 4, 4), np.float32))
    record = ScanRecord(
        dose=1e3,
        split="train",
        file=FileRecord.of(path),
        n_patterns=2,
        mean_counts_per_pattern=32.0,
        scale=1.0,
        probe_diameter_px=2.0,
        seconds=0.0,
    )

    state = select_view(record, "dense", 0.7, smoke_config.views, smoke_config.seeds, str(tmp_path), return_state=True)
    assert state.is_failed()
    with pytest.raises(ContractError, match=r"bad\.npz: missing key"):
        state.result()
    assert _final_task_run(state.state_details.task_run_id).run_count == 1


def _final_task_run(task_run_id):
    """The server's record of a finished task run; it arrives with a delay, so poll (30 s)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            try:
                run = client.read_task_run(task_run_id)
            except ObjectNotFound:
                run = None
            if run is not None and run.state is not None and run.state.is_final():
                return run
            assert time.monotonic() < deadline, f"task run {task_run_id} is not final on the server: {run}"
            time.sleep(0.5)


def test_transient_failure_is_retried(prefect_server, tmp_path, smoke_config, monkeypatch):
    import tasks.views

    study(profile="smoke", out=str(tmp_path), overrides=NARROW)
    calls = []
    real_load = tasks.views.load_scan

    def flaky_load(path, **kwargs):
        calls.append(path)
        if len(calls) == 1:
            raise TimeoutError("storage did not answer")
        return real_load(path, **kwargs)

    monkeypatch.setattr(tasks.views, "load_scan", flaky_load)
    layout = RunLayout(tmp_path)
    scan = load_scan(layout.scan(1e3, "test"))
    record = ScanRecord(
        dose=1e3,
        split="test",
        file=FileRecord.of(layout.scan(1e3, "test")),
        n_patterns=scan.n_patterns,
        mean_counts_per_pattern=scan.metadata["mean_counts_per_pattern"],
        scale=1.0,
        probe_diameter_px=scan.metadata["probe_diameter_px"],
        seconds=0.0,
    )

    view = tasks.views.select_view.with_options(refresh_cache=True)(
        record, "sparse", 0.2, smoke_config.views, smoke_config.seeds, str(tmp_path)
    )
    assert view.n_positions >= smoke_config.views.min_positions
    assert len(calls) == 2


def test_command_line_as_a_new_user(tmp_path):
    """The README's run command, in a fresh process with its own embedded server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    narrow = ["--set", "scan.doses=[1000]", "--set", "training.arms=[pinn_gs1]"]
    result = subprocess.run(
        [sys.executable, "flows/study.py", "--profile", "smoke", "--out", str(tmp_path), *narrow],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "4 conditions, 4 executed, 4 succeeded, 0 failed" in result.stdout
    assert "Traceback" not in output, output[-3000:]
    assert "| ERROR" not in output, output[-3000:]


def test_command_line_rejects_bad_config_before_any_work(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "flows/study.py",
            "--profile",
            "smoke",
            "--out",
            str(tmp_path),
            "--set",
            "scan.doses=[1000,-4]",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "scan.doses" in result.stderr and "whole number of photons" in result.stderr
    assert not any(tmp_path.iterdir())
