"""Probe the host OS: system name, kernel release, distribution."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostFacts:
    system: str
    kernel_release: str
    os_name: str


def os_release_name(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def probe_host(os_release: Path = Path("/etc/os-release")) -> HostFacts:
    try:
        name = os_release_name(os_release.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        name = ""
    return HostFacts(platform.system(), platform.release(), name)
