"""Shared fixtures: small study configurations, one fresh interpreter that imported the
science package, and, for the flow tests, one Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flows._environment import configure_prefect_environment

import pytest

from ptystudy.config import StudyConfig
from ptystudy.machine import ONEDNN_VARIABLE
from ptystudy.profiles import resolve_config

configure_prefect_environment()


@pytest.fixture
def smoke_config() -> StudyConfig:
    """The smoke profile: 32 px patches on a 128 x 128 object, three doses."""
    return resolve_config("smoke")


FRESH_IMPORT = """\
import importlib, json, pkgutil, sys, warnings
import ptystudy.models
for module in pkgutil.walk_packages(ptystudy.__path__, "ptystudy."):
    importlib.import_module(module.name)
from ptystudy.machine import describe_machine
warnings.warn("a real warning")
prefect = sorted(name for name in sys.modules if name.split(".")[0] == "prefect")
print(json.dumps({"machine": describe_machine(), "prefect": prefect}))
"""


@pytest.fixture(scope="session")
def fresh_interpreter() -> dict:
    """What a new user's interpreter shows after importing the networks, then every module of
    the science package, and raising one real warning, in this environment less any oneDNN
    setting: ``machine`` (``describe_machine()``), ``prefect`` (the Prefect modules it
    imported) and ``stderr``. One interpreter serves the tests that read it: each start
    imports TensorFlow and torch, seconds of a test tier."""
    env = {key: value for key, value in os.environ.items() if key != ONEDNN_VARIABLE}
    result = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORT],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "stderr": result.stderr}


@pytest.fixture(scope="session")
def prefect_server():
    """One embedded Prefect server for every test that runs a flow (slow to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
