"""Prefect (and TensorFlow logging) settings the project needs, set before either is imported.

Prefect's embedded server migrates its database on first use (about 30 s here) and gives
up after its 20 s default, so the start-up timeout is raised; its home (database,
settings) stays inside the project; analytics are off. The embedded server's background
services log ``CancelledError`` tracebacks while it shuts down, even after a good run, so
its own log level is CRITICAL (its real errors reach the flow as failed API calls). A
user's own environment variables win, so a real server (``PREFECT_API_URL``) is used when
one is configured.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

PREFECT_DEFAULTS = {
    "PREFECT_HOME": str(PROJECT_ROOT / ".prefect"),
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_CLI_PROMPT": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def configure_prefect_environment() -> None:
    """Apply ``PREFECT_DEFAULTS`` where the environment does not set them already."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
