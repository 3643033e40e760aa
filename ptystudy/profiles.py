"""The three profiles' values and how a study configuration is assembled from a profile, a
YAML file and ``section.field=value`` overrides.

Kept apart from the schema (``ptystudy.config``) on purpose: every task receives its section
of the resolved configuration as an input of its cache key, so editing a profile's value
recomputes only the phases whose section changed, and no phase's code fingerprint holds
this module.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ptystudy.config import ConfigError, Profile, StudyConfig

_QUICK_SIZES: dict[str, Any] = {
    "scan": {"patch_size_px": 32, "object_shape_px": (192, 192)},
    "views": {"min_positions": 12},
    "training": {
        "filters_base": 16,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "max_epochs": 60,
        "min_samples": 1500,
        "min_improvement": 2e-2,
        "plateau_patience": 3,
        "stop_patience": 6,
    },
    "lsqml": {"max_epochs": 300, "timeout_seconds": 900},
}
MAP_DOSES = (1e1, 1e2, 1e3, 1e4, 1e5)
"""The map profile's doses, photons per pattern: from where LSQML is expected to fail to where
every method reconstructs."""
MAP_OVERLAPS = {"touching": 0.0, "sparse": 0.2, "medium": 0.4, "dense": 0.7}
"""The map profile's views by nominal linear overlap f (0: neighbouring footprints touch)."""

_PROFILES: dict[Profile, dict[str, Any]] = {
    Profile.SMOKE: {
        "replicates": 1,
        "scan": {"patch_size_px": 32, "object_shape_px": (128, 128)},
        "views": {"min_positions": 8},
        "training": {"filters_base": 8, "max_epochs": 2, "min_samples": 64, "batch_size": 8},
        "lsqml": {"max_epochs": 5, "timeout_seconds": 600},
    },
    Profile.QUICK: {"replicates": 1, **_QUICK_SIZES},
    Profile.PAPER: {},
    Profile.MAP: {
        "replicates": 3,
        **_QUICK_SIZES,
        "scan": {**_QUICK_SIZES["scan"], "doses": MAP_DOSES},
        "views": {**_QUICK_SIZES["views"], "overlaps": MAP_OVERLAPS},
    },
}


def resolve_config(
    profile: Profile | str,
    *,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> StudyConfig:
    """Assemble the study configuration: defaults, profile, then YAML file, then overrides,
    each merged field by field (a view set to null in ``views.overlaps`` is removed).

    Parameters
    ----------
    profile : one of ``smoke``, ``quick``, ``paper``.
    config_file : YAML mapping with the same nesting as ``StudyConfig`` (optional).
    overrides : dotted keys to values, e.g. ``{"scan.doses": [1000, 10000]}`` (optional).

    Raises
    ------
    ConfigError
        Naming the field and the problem, for an unknown profile, an unreadable file,
        an unknown field or an out-of-range value.
    """
    try:
        profile = Profile(profile)
    except ValueError:
        choices = ", ".join(p.value for p in Profile)
        raise ConfigError(f"unknown profile {profile!r}; choose one of {choices}") from None
    values: dict[str, Any] = StudyConfig().model_dump()
    _merge(values, copy.deepcopy(_PROFILES[profile]))
    values["profile"] = profile.value
    if config_file is not None:
        _merge(values, _read_yaml(Path(config_file)))
        values["profile"] = profile.value
    for dotted, value in (overrides or {}).items():
        _merge(values, _nest(dotted, value))
    try:
        return StudyConfig.model_validate(values)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.sub=value`` (value in YAML syntax) into ``("key.sub", value)``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override must look like section.field=value, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({err})") from None


def add_override_option(parser: argparse.ArgumentParser, example: str = "scan.doses=[1000,100000]") -> None:
    """Give a command line ``--set KEY=VALUE`` (repeatable, into ``args.overrides``; read
    each with ``parse_override``)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one field, e.g. --set {example}",
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(loaded).__name__}")
    if "profile" in loaded:
        raise ConfigError(f"config file {path}: choose the profile with --profile, not in the file")
    return loaded


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    cursor = nested
    *parents, leaf = dotted.split(".")
    for part in parents:
        cursor = cursor.setdefault(part, {})
    cursor[leaf] = value
    return nested


NAMED_MAPPINGS = {("views", "overlaps")}
"""Fields that map names to values; in an override, a name set to null removes that entry."""


def _merge(base: dict[str, Any], update: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    """Merge ``update`` into ``base`` field by field, at every depth: a mapping in the update
    changes only the fields it names (``views: {overlaps: {dense: 0.8}}`` keeps ``sparse``)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, (*path, key))
        elif value is None and path in NAMED_MAPPINGS:
            base.pop(key, None)
        else:
            base[key] = value


def _describe(err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(config)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{field}: {message} (got {problem.get('input')!r})")
    return "invalid study config: " + "; ".join(lines)


def changed_settings(config: StudyConfig) -> list[dict[str, Any]]:
    """The fields of ``config`` that differ from its profile's defaults, as rows
    ``{"setting": "scan.doses", "value": ..., "profile default": ...}`` (dotted names, in
    the schema's order); a field the profile does not have reads as absent."""
    default = _flatten(resolve_config(config.profile).model_dump(mode="json"))
    chosen = _flatten(config.model_dump(mode="json"))
    return [
        {"setting": key, "value": value, "profile default": default.get(key, "(absent)")}
        for key, value in chosen.items()
        if default.get(key, _ABSENT) != value
    ]


_ABSENT = object()
WHOLE_VALUES = NAMED_MAPPINGS | {("scan", "files")}
"""Mappings shown as one setting (a changed view or file reads as the whole mapping changed)."""


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections to dotted keys; named mappings (``views.overlaps``) stay whole values."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value and tuple(dotted.split(".")) not in WHOLE_VALUES:
            flat |= _flatten(value, f"{dotted}.")
        else:
            flat[dotted] = value
    return flat
