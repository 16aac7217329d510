"""A copy of the suite for fleet tests over real SSH: the product's code, with demo checks as its tests_env."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def suite_copy(base: Path, demo: str, conftest_extra: str = "") -> Path:
    """``base/project``: labcheck, fixtures, reports, setup_actions and pyproject.toml as in this checkout,
    its conftest.py plus ``conftest_extra``, and ``tests_env/test_demo.py`` holding ``demo``.

    WHY a copy: the fleet ships the project folder it runs from, so the demo checks must be that folder's.
    """
    proj = base / "project"
    for name in ("labcheck", "fixtures", "reports", "setup_actions"):
        shutil.copytree(ROOT / name, proj / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", proj / "pyproject.toml")
    (proj / "conftest.py").write_text((ROOT / "conftest.py").read_text() + conftest_extra)
    (proj / "tests_env").mkdir()
    (proj / "tests_env" / "test_demo.py").write_text(demo)
    return proj
