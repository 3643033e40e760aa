"""The code a phase runs, as one fingerprint for its cache key.

A phase's task module imports science modules, which import others; editing any of them
can change what the phase writes, so all of them belong in its cache key. The set is
derived, not listed: the task module's imports are read from its source (``ast``, the
module is not executed) and followed through every ``ptystudy`` module they reach,
imports inside functions included (pty-chi and TensorFlow are imported there). Package
``__init__`` files on the way count too: importing a module runs them. The versions of
the libraries among those imports whose numbers a phase depends on join the fingerprint,
so upgrading TensorFlow retrains the networks and leaves the simulation cached.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

SCIENCE_PACKAGE = "ptystudy"
"""Imports of this package are followed; every other import is a library (or the standard library)."""
NUMERIC_LIBRARIES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "torch": "torch",
    "ptychi": "ptychi",
    "skimage": "scikit-image",
}
"""Import name -> distribution of the libraries whose versions can change a phase's numbers."""
_AST_LOCK = threading.Lock()
"""CPython 3.11 keeps ``ast.parse``'s recursion count per interpreter, not per thread: two
threads parsing at once at different stack depths fail with ``SystemError: AST constructor
recursion depth mismatch``. Cache keys are computed on the task runner's threads."""


@dataclass(frozen=True)
class CodeFingerprint:
    """What a task module runs: source files (module name -> path) and library versions."""

    sources: dict[str, Path]
    libraries: dict[str, str]

    def digest(self) -> str:
        """sha256 over the module names, their sources' bytes and the library versions."""
        digest = hashlib.sha256()
        for name in sorted(self.sources):
            digest.update(name.encode() + b"\0" + self.sources[name].read_bytes() + b"\0")
        for name in sorted(self.libraries):
            digest.update(f"{name}=={self.libraries[name]}\0".encode())
        return digest.hexdigest()


def code_fingerprint(module: str, roots: Iterable[Path] | None = None) -> CodeFingerprint:
    """The fingerprint of ``module`` (a task module) and the science modules it reaches.

    roots : folders to find modules in (``a.b`` as ``a/b.py`` or ``a/b/__init__.py``);
        None finds them where Python imports them from.

    Raises
    ------
    ValueError
        If ``module`` or a science module it imports has no source file.
    """
    roots = None if roots is None else [Path(root) for root in roots]
    sources: dict[str, Path] = {}
    libraries: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        path = _source(name, roots)
        if path is None:
            raise ValueError(f"cannot find the source of module {name!r} for the cache key")
        sources[name] = path
        modules, maybe_modules = _imports(path, name)
        for imported in modules | maybe_modules:
            top = imported.split(".")[0]
            if top in NUMERIC_LIBRARIES:
                libraries.add(NUMERIC_LIBRARIES[top])
            elif top == SCIENCE_PACKAGE:
                parts = imported.split(".")
                pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # packages run on import
                if imported in modules or _source(imported, roots) is not None:
                    pending.append(imported)
    return CodeFingerprint(sources, {name: _version(name) for name in sorted(libraries)})


def _imports(path: Path, module: str) -> tuple[set[str], set[str]]:
    """The modules ``path`` imports anywhere in it: ``(modules, maybe_modules)``.

    ``import a.b`` and ``from a import b`` import module ``a.b`` and ``a`` respectively;
    ``from a import b`` may also import module ``a.b`` (or take attribute ``b`` of ``a``),
    hence ``maybe_modules``. Parsed once per file version (path, size and mtime).
    """
    stat = path.stat()
    modules, maybe_modules = _parsed_imports(str(path), module, stat.st_size, stat.st_mtime_ns)
    return set(modules), set(maybe_modules)


@functools.lru_cache(maxsize=1024)
def _parsed_imports(path: str, module: str, size: int, mtime_ns: int) -> tuple[frozenset[str], frozenset[str]]:
    source = Path(path).read_bytes()
    with _AST_LOCK:
        tree = ast.parse(source, filename=path)
    package = module if Path(path).name == "__init__.py" else module.rpartition(".")[0]
    modules: set[str] = set()
    maybe_modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            modules.add(base)
            maybe_modules.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(modules), frozenset(maybe_modules)


def _source(name: str, roots: list[Path] | None) -> Path | None:
    """The source file of module ``name``, or None when there is none. Nothing is imported:
    without ``roots``, the folder holding ``name``'s top-level package (or module) is found
    with ``importlib.util.find_spec``, which for a top-level name runs no code."""
    relative = Path(*name.split("."))
    for root in _top_level_roots(name.split(".")[0]) if roots is None else roots:
        for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _top_level_roots(top: str) -> list[Path]:
    spec = importlib.util.find_spec(top)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(location).parent for location in spec.submodule_search_locations]
    return [] if spec.origin is None else [Path(spec.origin).parent]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
