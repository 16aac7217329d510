"""The verdict calls of tests_env/test_module1.py, read from its source: for tests that guard that every check hands
a verdict the configured settings (a verdict called without them falls back to its defaults, silently)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

from labcheck.verdicts import node as v

MODULE1 = Path(__file__).resolve().parent.parent / "tests_env" / "test_module1.py"


def verdict_calls_without(names: tuple[str, ...]) -> list[str]:
    """``line N: v.NAME without P`` for each ``v.NAME(...)`` call that takes parameter P but is not given it
    (by position or by keyword)."""
    missing = []
    for call in ast.walk(ast.parse(MODULE1.read_text())):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "v"):
            continue
        params = list(inspect.signature(getattr(v, call.func.attr)).parameters)
        given = set(params[:len(call.args)]) | {k.arg for k in call.keywords}
        missing += [f"line {call.lineno}: v.{call.func.attr} without {p}"
                    for p in names if p in params and p not in given]
    return missing
