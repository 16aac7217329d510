"""labcheck never depends on reports: reports (pytest-html, JSON, fleet view) is built on labcheck, not the other way.

WHY: a cycle between the two made every report change a possible import-order bug in the checks, and kept
module 0's start-up (labcheck.plugin) pulling in report code it does not need.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _labcheck_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted((ROOT / "labcheck").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):  # every import, lazy ones in functions included
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_labcheck_module_imports_reports():
    offenders = {name: sorted(m for m in _imported(ast.parse(path.read_text())) if m.split(".")[0] == "reports")
                 for name, path in _labcheck_modules()}
    assert not {k: v for k, v in offenders.items() if v}, "labcheck must not import reports"


def test_importing_every_labcheck_module_loads_no_reports_module():
    names = [name for name, _ in _labcheck_modules()]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m == 'reports' or m.startswith('reports.')))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", f"importing labcheck loaded {res.stdout.strip()}"
