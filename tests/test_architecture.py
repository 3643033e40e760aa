"""The layering docs/design.md asks for, checked on the code itself: the science package never
imports Prefect, the flows or the tasks, and tasks never import the flows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_science_package_never_imports_prefect(fresh_interpreter):
    """Every module of ``ptystudy`` imported in a fresh interpreter: no Prefect module among them."""
    assert fresh_interpreter["prefect"] == []


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("package", "forbidden"), [("ptystudy", {"prefect", "flows", "tasks"}), ("tasks", {"flows"})])
def test_no_import_points_up(package, forbidden):
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_packages(path) & forbidden)
        for path in sorted((REPO / package).rglob("*.py"))
        if _imported_packages(path) & forbidden
    }
    assert not offenders
