"""Serve the study flow without a worker: ``python deployments/serve.py`` (needs PREFECT_API_URL).

Creates a ``quick`` deployment on demand and a nightly ``smoke`` flight check, and runs
their flow runs in this process until stopped.
"""

from __future__ import annotations

from flows._environment import configure_prefect_environment

configure_prefect_environment()

from prefect import serve  # noqa: E402

from flows.study import study  # noqa: E402


def main() -> None:
    quick = study.to_deployment(name="quick", parameters={"profile": "quick"})
    flight_check = study.to_deployment(
        name="smoke-flight-check",
        parameters={"profile": "smoke", "out": "runs/flight-check"},
        cron="0 3 * * *",
    )
    serve(quick, flight_check)


if __name__ == "__main__":
    main()
