"""Serve the study's deployments without a worker: ``python deployments/serve.py``.

Reads the deployments of ``prefect.yaml`` (names, parameters, cron schedules) and runs
their flow runs in this process until stopped. Needs a Prefect server (PREFECT_API_URL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.study import study

import yaml
from prefect import serve
from prefect.deployments.runner import RunnerDeployment

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"


def deployments_from_yaml(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    """The study deployments of ``prefect.yaml`` as served deployments (same names, parameters, crons)."""
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    served = []
    for entry in spec["deployments"]:
        if entry["entrypoint"] != "flows/study.py:study":
            raise ValueError(f"{path}: deployment {entry['name']} has an unknown entrypoint {entry['entrypoint']}")
        crons = [schedule["cron"] for schedule in entry.get("schedules", [])]
        served.append(
            study.to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                parameters=entry.get("parameters", {}),
                cron=crons or None,
            )
        )
    return served


def main() -> None:
    serve(*deployments_from_yaml())


if __name__ == "__main__":
    main()
