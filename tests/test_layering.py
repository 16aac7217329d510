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


def test_every_function_level_import_is_a_documented_lazy_one():
    """Imports at the top, except the lazy ones labcheck/__init__.py lists, each marked ``# lazy: <why>``."""
    undocumented = []
    for package in ("labcheck", "setup_actions", "fixtures", "reports"):
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for func in ast.walk(ast.parse("\n".join(lines))):
                if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(func):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        near = lines[node.lineno - 1] + (lines[node.lineno - 2] if node.lineno > 1 else "")
                        if "# lazy:" not in near:
                            undocumented.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert undocumented == [], "move these imports to the top, or mark them '# lazy: <why>'"
