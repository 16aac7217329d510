"""What the project's tests need from this machine, in one place: each check says why a thing is missing.

README's test command must pass on a bare machine (git, python3, python3-venv only): a test that needs
something absent skips with the reason, never fails. Tests name what they need with
``@pytest.mark.needs("docker_engine", "ps")`` (tests/conftest.py skips them before their fixtures are set
up, so no fixture's setup or teardown runs either) or, where the need is only known inside a test, call
:func:`skip_unless`. ``.ci/run`` installs everything, so CI runs every one of these tests.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from labcheck import cmd
from tests.browser import find_chromium
from tests.sshd import SSHD

NVIDIA_BIN_DIRS = ("/usr/local/nvidia/bin",)


def _tool(name: str, package: str) -> str | None:
    return None if shutil.which(name) else f"`{name}` not installed (apt-get install {package})"


def _root() -> str | None:
    return None if os.geteuid() == 0 else "needs root"


def _docker_engine() -> str | None:
    from labcheck.probes.docker_client import connect  # lazy: the docker SDK (documented lazy import)

    reason = _tool("docker", "docker.io")  # the tests drive the engine with the docker CLI too
    if reason:
        return reason
    conn = connect(timeout=10)
    return None if conn.ok else f"no Docker engine answers: {conn.error}"


def _private_dockerd() -> str | None:
    """Throw-away engines of our own (tests/private_dockerd.py): root and the engine's binaries."""
    for tool, package in (("dockerd", "docker.io"), ("containerd", "containerd"), ("runc", "runc")):
        reason = _tool(tool, package)
        if reason:
            return reason
    return None if os.geteuid() == 0 else "a private dockerd needs root"


def _sshd() -> str | None:
    if not os.path.exists(SSHD):
        return f"{SSHD} not installed (apt-get install openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "the ssh client is not installed (apt-get install openssh-client)"
    return None if os.geteuid() == 0 else "sshd test servers need root (sshd must switch users and use /run/sshd)"


def _static_gcc() -> str | None:
    """gcc that links static binaries (the busybox node has no libc of ours): libc6-dev's libc.a too."""
    if not shutil.which("gcc"):
        return "`gcc` not installed (apt-get install gcc libc6-dev)"
    with tempfile.TemporaryDirectory(prefix="lc-gcc-") as tmp:  # never -o /dev/null: a linker may replace it
        probe = subprocess.run(["gcc", "-static", "-x", "c", "-", "-o", f"{tmp}/a.out"],
                               input="int main(void){return 0;}", capture_output=True, text=True, timeout=60)
    return None if probe.returncode == 0 else f"gcc cannot link a static binary: {probe.stderr.strip()[-200:]}"


def _gpu() -> str | None:
    if cmd.which("nvidia-smi", NVIDIA_BIN_DIRS) or Path("/proc/driver/nvidia/version").exists():
        return None
    return "no NVIDIA GPU or driver on this machine"


def _other_user() -> str | None:
    """Running a step as an unprivileged user: root (to switch) and setpriv (util-linux)."""
    return _root() or _tool("setpriv", "util-linux")


CHECKS: dict[str, Callable[[], str | None]] = {
    "root": _root,
    "docker_cli": lambda: _tool("docker", "docker.io"),
    "docker_engine": _docker_engine,
    "private_dockerd": _private_dockerd,
    "ps": lambda: _tool("ps", "procps"),
    "kubectl": lambda: _tool("kubectl", "kubernetes-client"),
    "chromium": lambda: None if find_chromium() else "Chromium not installed (apt-get install chromium)",
    "sshd": _sshd,
    "gcc_static": _static_gcc,
    "gpu": _gpu,
    "other_user": _other_user,
}


@functools.cache
def missing(thing: str) -> str | None:
    """Why ``thing`` (a key of CHECKS) is not available here, or None when it is. Asked once per process."""
    if thing not in CHECKS:
        raise KeyError(f"unknown need {thing!r}: expected one of {', '.join(CHECKS)} (tests/needs.py)")
    return CHECKS[thing]()


def skip_unless(*things: str) -> None:
    """Skip the calling test (or fixture) with the reason of the first thing that is missing."""
    for thing in things:
        reason = missing(thing)
        if reason:
            pytest.skip(reason)
