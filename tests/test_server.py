"""Operating the study against a real ``prefect server``: deployments, a process worker, Dask,
and the GPU tag's concurrency limit. Everything started here is stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from browser import chromium, find_browser

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
NARROW = {"scan.doses": [1000], "training.arms": ["pinn_gs1"]}
"""One dose, one network arm: 4 conditions, a few minutes on 2 cores."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``command`` in its own process group, output to ``log``."""
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process in _stop
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    process.log_handle = handle  # type: ignore[attr-defined]
    return process


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group by PID, then SIGKILL what is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    process.log_handle.close()  # type: ignore[attr-defined]


class Server:
    """A running ``prefect server`` and the environment that points a client at it."""

    def __init__(self, api: str, env: dict[str, str], logs: Path):
        self.api = api
        self.env = env
        self.logs = logs

    def get(self, path: str) -> dict:
        response = httpx.get(f"{self.api}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, payload: dict) -> dict | list:
        response = httpx.post(f"{self.api}{path}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_for_flow_run(self, flow_run_id: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.get(f"/flow_runs/{flow_run_id}")
            if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run
            time.sleep(3)
        raise AssertionError(f"flow run {flow_run_id} did not finish in {timeout_s} s; logs in {self.logs}")

    def artifact(self, key: str, flow_run_id: str) -> dict:
        """The artifact ``key`` of one flow run (polled: records reach the API with a delay)."""
        for _ in range(20):
            found = self.post(
                "/artifacts/filter", {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}}}
            )
            if found:
                return found[0]
            time.sleep(1)
        raise AssertionError(f"no artifact {key} for flow run {flow_run_id}")

    def task_runs(self, flow_run_id: str) -> list[dict]:
        return self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env = {
        **base,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PTYSTUDY_ROOT": str(REPO),
    }
    process = _start(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        home / "server.log",
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (home / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "prefect server did not become healthy in 180 s"
            time.sleep(1)
        yield Server(api, env, home)
    finally:
        _stop(process)


def _tidy_metrics(run_dir: Path) -> pd.DataFrame:
    table = pd.read_csv(run_dir / "report" / "metrics.csv")
    return table.sort_values(["dose", "view", "split", "arm", "component", "metric"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def deployed_runs(server, tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """Deploy from prefect.yaml with the operator's script, start a process worker, run the
    smoke flight-check deployment (narrowed) twice, with the default thread runner and on
    a local Dask cluster chosen by the job's environment; return each finished flow run."""
    deploy = subprocess.run(
        [sys.executable, "deployments/deploy.py", "--gpu-slots", "1"],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    again = subprocess.run(
        [sys.executable, "deployments/deploy.py"], cwd=REPO, env=server.env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "exists" in again.stdout, again.stdout + again.stderr

    deployment = server.get("/deployments/name/dose-overlap-study/smoke-flight-check")
    assert deployment["schedules"] and deployment["work_pool_name"] == "ptystudy-process"
    on_demand = server.get("/deployments/name/dose-overlap-study/quick")
    assert on_demand["parameters"] == {"profile": "quick", "overrides": {}, "select": {}}
    nightly = server.get("/deployments/name/dose-overlap-study/paper-nightly")
    assert nightly["parameters"]["profile"] == "paper" and nightly["schedules"]
    schema = deployment["parameter_openapi_schema"]
    assert {"profile", "overrides", "out", "fresh", "select"} <= set(schema["properties"])

    worker = _start(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "ptystudy-process", "--limit", "1"],
        server.env,
        server.logs / "worker.log",
    )
    runs = {}
    try:
        for name, job_variables in (("threads", {}), ("dask", {"env": {"PTYSTUDY_DASK_ADDRESS": "local"}})):
            out = tmp_path_factory.mktemp(f"deployed-{name}")
            run = server.post(
                f"/deployments/{deployment['id']}/create_flow_run",
                {
                    "parameters": {"profile": "smoke", "out": str(out), "fresh": False, "overrides": NARROW},
                    "job_variables": job_variables,
                },
            )
            runs[name] = (server.wait_for_flow_run(run["id"], timeout_s=900), out)
    finally:
        _stop(worker)
    return runs


@pytest.fixture(scope="module")
def deployed_run(deployed_runs) -> tuple[dict, Path]:
    """The deployment's run with the default thread runner."""
    return deployed_runs["threads"]


def test_a_deployment_runs_through_a_process_worker(server, deployed_run):
    run, out = deployed_run
    assert run["state"]["type"] == "COMPLETED", (server.logs / "worker.log").read_text()[-4000:]
    summary = server.artifact("study-summary", run["id"])
    assert "conditions (dose x view x split): **4**" in summary["data"]
    assert "succeeded: **4**" in summary["data"] and "failed: **0**" in summary["data"]
    scores = json.loads(server.artifact("study-metrics", run["id"])["data"])
    assert len(scores) == 4 * 3  # pinn_gs1, lsqml and the flat reference
    assert {row["arm"] for row in scores} == {"PtychoPINN gs1", "LSQML (pty-chi)", "flat (no information)"}
    values = [value for row in scores for value in row.values() if isinstance(value, float)]
    assert values and all(round(value, 3) == value for value in values), "scores are shown rounded"
    progress = server.artifact("study-progress", run["id"])
    assert float(progress["data"]) == 100.0
    assert progress["description"].startswith("Finished: 4 of 4 conditions succeeded;"), progress["description"]
    assert run["state"]["message"] == "4 of 4 conditions succeeded"
    figure = server.artifact("study-metrics-vs-dose", run["id"])
    assert figure["type"] == "markdown" and "](data:image/png;base64," in figure["data"]
    assert json.loads((out / "report" / "summary.json").read_text())["n_success"] == 4


_SHOWN_FIGURES = """(() => {
  const shown = Array.from(document.images).filter(
    (image) => image.src.startsWith("data:image/png") && image.complete && image.naturalWidth > 0);
  return shown.length ? shown.map((image) => image.alt) : null;
})()"""
"""The alt texts of the PNG figures on the page that decoded, or null while there are none."""


@pytest.mark.skipif(find_browser() is None, reason="no Chromium here (.ci/run installs Debian's chromium package)")
def test_the_prefect_ui_shows_figures_and_describes_every_parameter(server, deployed_run, tmp_path):
    """The real UI, both of Prefect 3.9's (the default and the classic one), in headless
    Chromium: the summary artifact's page shows the study's figure, decoded; the
    deployment's run form shows a description for every flow parameter."""
    run, _ = deployed_run
    summary = server.artifact("study-summary", run["id"])
    deployment = server.get("/deployments/name/dose-overlap-study/smoke-flight-check")
    descriptions = {name: " ".join(field["description"].split()) for name, field in _parameters(deployment).items()}
    ui = server.api.removesuffix("/api")
    with chromium(tmp_path / "profile", height=2400) as page:
        for version, base in (("default", "/v2"), ("classic", "")):
            page.goto(f"{ui}{base}/artifacts/artifact/{summary['id']}")
            shown = page.wait_for(_SHOWN_FIGURES, timeout_s=120)
            page.screenshot(tmp_path / f"summary-{version}.png")
            assert any(alt.startswith("Headline scores against dose") for alt in shown), shown

            page.goto(f"{ui}{base}/deployments/deployment/{deployment['id']}/run")
            page.wait_for("document.body.innerText.includes('replicates (Optional)')", timeout_s=120)
            page.screenshot(tmp_path / f"run-form-{version}.png")
            text = " ".join(page.evaluate("document.body.innerText").split())
            missing = [name for name, description in descriptions.items() if description[:60] not in text]
            assert not missing, f"{version} UI's run form lacks the description of {missing}"


def _parameters(deployment: dict) -> dict[str, dict]:
    """The deployment's flow parameters, each with a description."""
    properties = deployment["parameter_openapi_schema"]["properties"]
    assert set(properties) == {"profile", "config_file", "out", "fresh", "overrides", "select", "replicates"}
    undescribed = [name for name, field in properties.items() if not field.get("description")]
    assert not undescribed, f"parameters without a description: {undescribed}"
    assert properties["overrides"]["examples"] and properties["select"]["examples"]
    return properties


def test_a_deployment_runs_on_dask_when_its_environment_names_a_cluster(server, deployed_runs):
    """PTYSTUDY_DASK_ADDRESS in the job's environment: the flow, loaded from its file by the
    worker's flow-run process, sends its tasks to a local Dask cluster; same metrics."""
    run, out = deployed_runs["dask"]
    assert run["state"]["type"] == "COMPLETED", (server.logs / "worker.log").read_text()[-4000:]
    logs = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200})
    where = [log["message"] for log in logs if "tasks run on" in log["message"]]
    assert len(where) == 1 and "Dask" in where[0], where
    assert json.loads((out / "report" / "summary.json").read_text())["n_success"] == 4
    _, reference_dir = deployed_runs["threads"]
    pd.testing.assert_series_equal(_tidy_metrics(out).value, _tidy_metrics(reference_dir).value, rtol=1e-3, atol=1e-4)


def test_dask_gives_the_same_metrics_and_the_gpu_tag_serialises(server, deployed_run, tmp_path):
    _, reference_dir = deployed_run
    limit = server.get("/concurrency_limits/tag/gpu")
    assert limit["concurrency_limit"] == 1
    narrow = [item for key, value in NARROW.items() for item in ("--set", f"{key}={json.dumps(value)}")]
    result = subprocess.run(
        [sys.executable, "flows/study.py", "--profile", "smoke", "--out", str(tmp_path), "--dask", *narrow],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "4 conditions, 4 executed, 4 succeeded, 0 failed" in result.stdout

    dask_metrics = _tidy_metrics(tmp_path)
    reference = _tidy_metrics(reference_dir)
    assert dask_metrics[["dose", "view", "split", "arm", "component", "metric"]].equals(
        reference[["dose", "view", "split", "arm", "component", "metric"]]
    )
    pd.testing.assert_series_equal(dask_metrics.value, reference.value, rtol=1e-3, atol=1e-4)

    runs = server.post("/flow_runs/filter", {"limit": 100})
    (dask_run,) = [run for run in runs if run["parameters"].get("out") == str(tmp_path)]
    gpu_runs = [task for task in server.task_runs(dask_run["id"]) if "gpu" in task["tags"]]
    assert len(gpu_runs) == 2 + 4  # training (one arm x 2 views) and LSQML (4 conditions)
    spans = sorted((pd.Timestamp(task["start_time"]), pd.Timestamp(task["end_time"])) for task in gpu_runs)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, "two gpu-tagged tasks overlapped"


def test_serve_offers_the_deployments_of_prefect_yaml():
    """``deployments/serve.py`` (no worker) serves exactly what prefect.yaml deploys."""
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location("serve_entry", REPO / "deployments" / "serve.py")
    serve_entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve_entry)
    served = {deployment.name: deployment for deployment in serve_entry.deployments_from_yaml()}
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    assert set(served) == {entry["name"] for entry in declared}
    for entry in declared:
        deployment = served[entry["name"]]
        assert deployment.parameters == entry.get("parameters", {})
        assert [s.schedule.cron for s in deployment.schedules] == [s["cron"] for s in entry.get("schedules", [])]
