"""The run manifest: resolved config, package versions, seeds and content hashes."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ptystudy.config import StudyConfig
from ptystudy.records import FileRecord

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


def output_hashes(records: list[BaseModel]) -> dict[str, str]:
    """Every file named by the records, at any depth (records inside records, lists,
    tuples and dicts) -> its sha256."""
    hashes: dict[str, str] = {}
    pending: list[Any] = list(records)
    while pending:
        value = pending.pop()
        if isinstance(value, FileRecord):
            hashes[value.path] = value.sha256
        elif isinstance(value, BaseModel):
            pending.extend(value.__dict__.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return dict(sorted(hashes.items()))


def build_manifest(config: StudyConfig, records: list[BaseModel]) -> dict[str, Any]:
    """The ``manifest.json`` payload (DESIGN §10)."""
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
        "inputs": inputs,
        "outputs": output_hashes(records),
    }
