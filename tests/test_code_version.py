"""The code part of every phase's cache key: derived from its imports, not listed by hand."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from tasks import _code_version
from tasks._code_version import code_fingerprint

REPO = Path(__file__).resolve().parents[1]
PHASES = {
    "simulate": "tasks.simulate",
    "views": "tasks.views",
    "train": "tasks.train",
    "infer": "tasks.infer",
    "lsqml": "tasks.reconstruct",
    "compare": "tasks.compare",
    "report": "tasks.report",
}


@pytest.fixture
def tree(tmp_path) -> Path:
    """A temporary copy of the science package and the task modules, to edit."""
    for package in ("ptystudy", "tasks"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _digests(root: Path) -> dict[str, str]:
    return {phase: code_fingerprint(module, [root]).digest() for phase, module in PHASES.items()}


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


@pytest.mark.parametrize(
    ("edited", "dependent"),
    [
        # physics is imported by simulate directly, by train and infer only through models.data
        ("ptystudy/scan/physics.py", {"simulate", "train", "infer"}),
        # plots live with what they plot: a report figure's edit recomputes the report alone,
        # a montage's or an FRC plot's the scoring (which draws them), and nothing upstream
        ("ptystudy/report/figures.py", {"report"}),
        ("ptystudy/evaluate/figures.py", {"compare"}),
        ("ptystudy/scan/figures.py", {"views"}),
        # the profiles' values reach each task as its config section, an input of its key
        ("ptystudy/profiles.py", set()),
        # files.py is under every phase, through contract, records and report
        ("ptystudy/files.py", set(PHASES)),
        ("ptystudy/models/__init__.py", {"train", "infer"}),  # runs on importing any model module
        ("ptystudy/run/lock.py", set()),  # only the flow uses it
    ],
)
def test_an_edit_recomputes_exactly_the_phases_that_reach_the_module(tree, edited, dependent):
    before = _digests(tree)
    _edit(tree / edited)
    after = _digests(tree)
    assert {phase for phase in PHASES if before[phase] != after[phase]} == dependent


def test_a_phase_depends_on_the_versions_of_the_numeric_libraries_it_imports(tree, monkeypatch):
    before = _digests(tree)
    real = _code_version._version
    monkeypatch.setattr(_code_version, "_version", lambda name: "99.0" if name == "tensorflow" else real(name))
    after = _digests(tree)
    assert {phase for phase in PHASES if before[phase] != after[phase]} == {"train", "infer"}
    libraries = {phase: set(code_fingerprint(module, [tree]).libraries) for phase, module in PHASES.items()}
    assert {"torch", "ptychi"} <= libraries["lsqml"] and "tensorflow" not in libraries["lsqml"]
    assert "scikit-image" in libraries["compare"] and "numpy" in libraries["simulate"]


def test_the_installed_tree_gives_the_same_fingerprint_as_its_copy(tree):
    """Without roots, modules are found where Python imports them from (here: this repo)."""
    assert code_fingerprint("tasks.train").digest() == code_fingerprint("tasks.train", [tree]).digest()


def test_a_missing_module_is_a_clear_error(tree):
    (tree / "ptystudy" / "scan" / "lattice.py").unlink()
    with pytest.raises(ValueError, match="cannot find the source of module 'ptystudy.scan.lattice'"):
        code_fingerprint("tasks.simulate", [tree])


def test_fingerprints_are_computed_on_many_threads_at_once(tree):
    """The task runner's threads compute cache keys at once, at different stack depths;
    CPython 3.11's ast.parse fails there unless parses take turns (SystemError, and then
    Prefect persists no result, so the next run misses the cache)."""
    errors: list[BaseException] = []

    class Cycle:
        """Garbage whose collection runs Python code, so threads switch mid-parse (as in a study)."""

        def __init__(self) -> None:
            self.itself = self

        def __del__(self) -> None:
            pass

    def at_depth(depth: int) -> None:
        if depth:
            at_depth(depth - 1)
            return
        for _ in range(15):
            _code_version._parsed_imports.cache_clear()  # parse again every time
            garbage = [Cycle() for _ in range(200)]
            del garbage
            try:
                code_fingerprint("tasks.compare", [tree]).digest()
            except SystemError as error:
                errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=at_depth, args=(depth,)) for depth in (3, 20, 40, 60)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
