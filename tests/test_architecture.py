"""The layering docs/design.md asks for, checked on the code itself: the science package never
imports Prefect, the flows or the tasks, and tasks never import the flows."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_science_package_never_imports_prefect():
    code = (
        "import pkgutil, importlib, sys, ptystudy\n"
        "for m in pkgutil.walk_packages(ptystudy.__path__, 'ptystudy.'): importlib.import_module(m.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


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
