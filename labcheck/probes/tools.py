"""Find the workshop's command-line tools and ask each for its version (with a timeout)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

from labcheck import cmd, versions
from labcheck.probes.driver_files import host_machine

# What each tool is asked: the plain forms the tools document (no shell, no string-built commands).
VERSION_ARGS: dict[str, tuple[str, ...]] = {
    "kind": ("version",),  # "kind v0.24.0 go1.22.6 linux/amd64"
    "helm": ("version", "--template", "{{.Version}}"),  # "v3.16.2"
    "nvidia-ctk": ("--version",),  # "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: ..."
}

# Where each tool's answer names its own version. WHY a field, not the first number: kind also prints the Go
# release it was built with ("kind v0.20.0 go1.24.6 linux/amd64"; a build may print go1.24.6 first), helm's long
# form has GoVersion:"go1.22.7", nvidia-ctk prints a commit hash after the version. ASCII digits: "kind v٠.٢٤.٠" has
# no version field (it was read as the version "٠.٢٤.٠", which no comparison can read), nor has a 5000-digit one.
# The field keeps a pre-release and build after the numbers (kind "v0.31.0-alpha.12+0123456789abcd", helm
# "v3.17.0-rc.1", nvidia-ctk "1.17.0-rc.1"): cut off, a pre-release of the minimum read as the minimum itself
# (labcheck.versions ranks it below its release).
_SUFFIX = r"(?:[-~][0-9A-Za-z.~-]*[0-9A-Za-z])?(?:\+[0-9A-Za-z.-]*[0-9A-Za-z])?"
_CORE = r"[0-9]+\.[0-9]+\.[0-9]+"
VERSION_FIELD: dict[str, re.Pattern] = {
    "kind": re.compile(rf"(?:^|\s)kind\s+v({_CORE}{_SUFFIX})(?![0-9A-Za-z])"),
    "helm": re.compile(rf'^\s*v({_CORE}{_SUFFIX})(?![0-9A-Za-z])|\bVersion:"v({_CORE}{_SUFFIX})"'),
    "nvidia-ctk": re.compile(rf"\bversion\s+v?({_CORE}{_SUFFIX})(?![0-9A-Za-z])"),
}


def version_field(name: str, output: str) -> str:
    """The version ``name`` reports for itself in ``output`` ("0.20.0"), or "" when that field is not there."""
    rx = VERSION_FIELD.get(name)
    if rx is None:
        return ""
    m = rx.search(output or "")
    found = next((g for g in m.groups() if g), "") if m else ""
    return found if versions.parse(found) is not None else ""  # a part past 18 digits: no version to compare


# Where kind's install guide puts kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installing-from-release-binaries)
# and so where a configured bare name (kind_binary: kind-v0.30) is installed when no such program is on PATH.
INSTALL_DIR = "/usr/local/bin"


@dataclass(frozen=True)
class InstallTarget:
    """Where an install or upgrade of the configured program must put it, so that the program module 1 runs is
    the new one, and what this user may do there.

    ``path``: the program that was found (its old version is the one to replace), else the configured path, else
    :data:`INSTALL_DIR`/<name>. ``folder_exists``: its folder is there (else the fix makes it). ``writable``: this
    user may create files in that folder (or, when it is missing, in the nearest folder above that exists):
    the fix then needs no sudo.
    """

    path: str
    folder_exists: bool
    writable: bool


def install_target(binary: str, found: str | None) -> InstallTarget:
    """The :class:`InstallTarget` of the configured ``binary`` that the probe found at ``found`` (None: not)."""
    if found:
        path = os.path.abspath(found)
    else:
        path = binary if os.sep in binary else os.path.join(INSTALL_DIR, binary)
    folder = os.path.dirname(path) or os.sep
    above = folder
    while not os.path.isdir(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    return InstallTarget(path, os.path.isdir(folder), os.access(above, os.W_OK | os.X_OK))


@dataclass(frozen=True)
class ToolFacts:
    name: str
    path: str | None
    result: cmd.CmdResult | None
    binary: str = ""  # the lab config's program for it (kind_binary) when one was asked for, as written there
    # this host's `uname -m` (x86_64, aarch64): which of a project's release binaries fits ("": not probed)
    machine: str = ""
    target: InstallTarget | None = None  # where an install of the program goes (None: not probed)

    @property
    def version(self) -> str:
        """The tool's own version field in its answer (:data:`VERSION_FIELD`), or "" when there is none."""
        if self.result is None or not self.result.ok:
            return ""
        return version_field(self.name, self.result.output)


def probe_tool(name: str, extra_dirs: tuple[str, ...] = (), timeout: float = 30.0,
               args: tuple[str, ...] | None = None, binary: str = "") -> ToolFacts:
    """Ask tool ``name`` its version. ``binary``: the lab config's program for it (kind_binary), found as module 1
    runs it (a path as written, a bare name on PATH only): module 0 must judge the kind module 1 will drive."""
    path = shutil.which(binary) if binary else cmd.which(name, extra_dirs)
    machine, target = host_machine(), install_target(binary or name, path)
    if path is None:
        return ToolFacts(name, None, None, binary, machine, target)
    return ToolFacts(name, path, cmd.run([path, *(args if args is not None else VERSION_ARGS[name])],
                                         timeout=timeout), binary, machine, target)
