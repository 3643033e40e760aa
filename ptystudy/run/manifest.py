"""The run manifest: resolved config, package versions, the machine, seeds and content hashes."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ptystudy.config import StudyConfig
from ptystudy.machine import describe_machine
from ptystudy.records import FileRecord, output_hashes

PACKAGES = (
    "ptystudy",
    "numpy",
    "scipy",
    "prefect",
    "pydantic",
    "matplotlib",
    "scikit-image",
    "h5py",
    "tensorflow",
    "keras",
    "torch",
    "ptychi",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the study's numbers depend on."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(config: StudyConfig, records: list[BaseModel]) -> dict[str, Any]:
    """The ``manifest.json`` payload (docs/design.md §10): with the machine (CPU, its vector
    extensions, TensorFlow's oneDNN state and threads) that published the run; each
    network's ``history.json`` records the machine that trained it."""
    inputs = {}
    given = [config.scan.object_file] if config.scan.object_file else []
    for files in (config.scan.files or {}).values():
        given += [files.train, files.test]
    for name in given:
        inputs[name] = FileRecord.of(Path(name)).sha256
    return {
        "config": config.model_dump(mode="json"),
        "seeds": config.seeds.model_dump(),
        "versions": package_versions(),
        "machine": describe_machine(),
        "inputs": inputs,
        "outputs": output_hashes(records),
    }
