"""Probe the host OS: system name, kernel release, distribution, and whether we run as root."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from labcheck import fsio


@dataclass(frozen=True)
class HostFacts:
    system: str
    kernel_release: str
    os_name: str
    os_id: str = ""  # os-release ID: "ubuntu", "debian", "rhel"...
    os_like: tuple[str, ...] = ()  # os-release ID_LIKE
    is_root: bool = False
    package_tools: tuple[str, ...] = ()  # the package managers found on PATH (labcheck.remedy.PACKAGE_TOOLS)


def os_release_fields(text: str) -> dict[str, str]:
    """KEY=value lines of /etc/os-release (quotes removed)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def os_release_name(text: str) -> str:
    return os_release_fields(text).get("PRETTY_NAME", "")


MAX_OS_RELEASE = 64 * 1024  # a real os-release is under 1 KB
# The package managers a fix may use, in the order they are preferred when several are there (dnf before yum:
# yum is dnf's alias on current Fedora and RHEL).
PACKAGE_TOOLS = ("apt-get", "dnf", "yum", "zypper", "apk", "pacman")


def probe_host(os_release: Path = Path("/etc/os-release")) -> HostFacts:
    """This host. An os-release that is not a regular file (a FIFO hung the run at start, through
    remedy.this_host()) or is huge (/dev/zero bound over it: a MemoryError) counts as none: no distribution."""
    try:
        text = fsio.read_text(os_release, MAX_OS_RELEASE, errors="replace")
    except (OSError, fsio.FileProblem):
        text = ""
    fields = os_release_fields(text)
    return HostFacts(platform.system(), platform.release(), fields.get("PRETTY_NAME", ""),
                     fields.get("ID", "").lower(), tuple(fields.get("ID_LIKE", "").lower().split()),
                     os.geteuid() == 0, tuple(t for t in PACKAGE_TOOLS if shutil.which(t)))
