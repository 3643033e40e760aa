"""Shared fixtures: small study configurations and, for the flow tests, one Prefect server."""

from __future__ import annotations

from flows._environment import configure_prefect_environment

import pytest

from ptystudy.config import StudyConfig
from ptystudy.profiles import resolve_config

configure_prefect_environment()


@pytest.fixture
def smoke_config() -> StudyConfig:
    """The smoke profile: 32 px patches on a 128 x 128 object, three doses."""
    return resolve_config("smoke")


@pytest.fixture(scope="session")
def prefect_server():
    """One embedded Prefect server for every test that runs a flow (slow to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
