"""Run Python code as an unprivileged user (nobody), the way a step runs for a user without root.

WHY a copy: the checkout and its virtualenv may lie under a home only root may enter (/root is 0700 on
Debian), where nobody can read neither the project's modules ("No module named 'labcheck'") nor the
venv's interpreter link (the child never starts). So the project's packages and the venv's libraries are
linked (hard links: same files, no copying where one filesystem holds both) into a folder under /tmp
that anyone may read, once per test process, and the child runs the real interpreter behind the venv.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from tests import needs

REPO = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("labcheck", "setup_actions", "fixtures", "reports")  # pyproject's packages.find


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed: a real copy
        shutil.copy2(src, dst)


def _tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, copy_function=_link_or_copy, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pth"))


@functools.cache
def readable_python_path() -> str:
    """PYTHONPATH (project packages, then the venv's libraries) in a folder every user can read."""
    root = Path(tempfile.mkdtemp(prefix="lc-world-", dir="/tmp"))
    atexit.register(shutil.rmtree, root, True)
    for name in PROJECT_PACKAGES:
        _tree(REPO / name, root / "project" / name)
    _tree(Path(sysconfig.get_paths()["purelib"]), root / "site")
    for folder, _, _ in os.walk(root):
        os.chmod(folder, 0o755)
    return f"{root / 'project'}:{root / 'site'}"


SETPRIV = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


@functools.cache
def _interpreter() -> tuple[str | None, str]:
    """The interpreter behind the venv's link, tried once as nobody (mode bits alone do not say: ACLs)."""
    real = os.path.realpath(sys.executable)
    try:
        res = subprocess.run([*SETPRIV, real, "-c", "pass"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run {real} as nobody: {exc}"
    if res.returncode != 0:
        return None, f"nobody cannot run the interpreter {real} (a folder above it is closed?): {res.stderr.strip()}"
    return real, ""


def run_as_nobody(code: str, *args: str, path: str | None = None, cwd: str = "/",
                  timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -c code args`` as nobody:nogroup; skips (with the reason) where that cannot be done."""
    needs.skip_unless("other_user")
    python, why = _interpreter()
    if python is None:
        pytest.skip(why)
    return subprocess.run(
        [*SETPRIV, python, "-c", code, *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd,
        env={"PATH": path or os.environ["PATH"], "PYTHONPATH": readable_python_path(), "HOME": "/nonexistent"})
