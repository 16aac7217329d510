"""Host inspection for the Kind node: where the NVIDIA driver's libraries, tools and device nodes are.

The node container sees only what the kind config mounts into it, so the config generator needs the
exact host paths: each library as the loader finds it (``libcuda.so.1``, a symlink) AND the real
file it resolves to (``libcuda.so.580.159.04``), because a bind mount of a symlink whose target is
not mounted too leaves a dangling link in the node. Drivers installed by hand or by cloud images
often live in non-standard folders such as /usr/local/nvidia/lib64, which ``ldconfig -p`` may list
and which we also search directly (``LabConfig.extra_lib_dirs``).
"""

from __future__ import annotations

import glob
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from labcheck import cmd

LIBRARIES = ("libnvidia-ml.so.1", "libcuda.so.1", "libnvidia-ptxjitcompiler.so.1")
BINARIES = ("nvidia-smi", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server")
DEVICE_PATTERNS = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset",
                   "/dev/nvidia[0-9]*", "/dev/nvidia-caps")
# Where distributions and installers put driver libraries (searched after ldconfig's cache).
STANDARD_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64",
                     "/usr/lib", "/lib", "/usr/lib/aarch64-linux-gnu")
STANDARD_BIN_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin")
# The machine (``uname -m``) => (Debian multiarch triplet, the arch flag ``ldconfig -p`` prints for it).
# WHY the triplet: the kind node is Debian-based, and NVIDIA's DRA driver looks for libnvidia-ml.so.1 in
# /usr/lib/<triplet> (among a few fixed folders), so the node gets the libraries there whatever the host layout.
MACHINES = {"x86_64": ("x86_64-linux-gnu", "x86-64"), "amd64": ("x86_64-linux-gnu", "x86-64"),
            "aarch64": ("aarch64-linux-gnu", "AArch64"), "arm64": ("aarch64-linux-gnu", "AArch64")}
_LDCONFIG_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")


@dataclass(frozen=True)
class HostFile:
    """One thing the node needs. ``path`` is where it was found, ``real`` what it resolves to."""

    name: str
    kind: str  # "library" | "binary" | "device"
    path: str = ""
    real: str = ""
    problem: str = ""  # "" when usable

    @property
    def ok(self) -> bool:
        return bool(self.path) and not self.problem

    @property
    def host_paths(self) -> tuple[str, ...]:
        """The link and its target (once when they are the same file)."""
        if not self.ok:
            return ()
        return (self.path,) if self.real in ("", self.path) else (self.path, self.real)


@dataclass(frozen=True)
class Inspection:
    libraries: tuple[HostFile, ...]
    binaries: tuple[HostFile, ...]
    devices: tuple[HostFile, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def files(self) -> tuple[HostFile, ...]:
        return self.libraries + self.binaries

    @property
    def problems(self) -> list[HostFile]:
        return [f for f in self.files if not f.ok]

    @property
    def lib_dirs(self) -> tuple[str, ...]:
        """Folders of the libraries as found (the node's loader must search them)."""
        out: list[str] = []
        for f in self.libraries:
            if f.ok and os.path.dirname(f.path) not in out:
                out.append(os.path.dirname(f.path))
        return tuple(out)


def host_machine(machine: str = "") -> str:
    """``machine`` if given (tests), else this host's ``uname -m``, lowercased."""
    return (machine or platform.machine()).lower()


def triplet(machine: str = "") -> str:
    """The Debian multiarch triplet for ``machine`` (x86_64-linux-gnu when unknown: the node images are x86_64
    or arm64 only, and kind names no other)."""
    return MACHINES.get(host_machine(machine), MACHINES["x86_64"])[0]


def ldconfig_arch(machine: str = "") -> str:
    return MACHINES.get(host_machine(machine), MACHINES["x86_64"])[1]


def parse_ldconfig(text: str, arch: str = "x86-64") -> dict[str, list[str]]:
    """``ldconfig -p`` output => {soname: [paths in cache order]}, keeping entries of ``arch`` (or no arch)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _LDCONFIG_LINE.match(line)
        if not m:
            continue
        flags = m[2]
        if arch and "," in flags and arch not in flags:
            continue
        out.setdefault(m[1], []).append(m[3])
    return out


def resolve(path: str) -> tuple[str, str]:
    """(real path, problem). A dangling or looping symlink is a problem, not an exception."""
    try:
        real = os.path.realpath(path, strict=True)
    except (OSError, RuntimeError) as exc:
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        reason = "symlink loop" if isinstance(exc, RuntimeError) or "loop" in str(exc).lower() else "dangling symlink"
        return "", f"{path} is a {reason} (-> {target})"
    if not os.path.isfile(real):
        return real, f"{path} resolves to {real}, which is not a regular file"
    return real, ""


def find_library(name: str, cache: dict[str, list[str]], dirs: Sequence[str]) -> HostFile:
    """First usable candidate: ldconfig's cache first (what the loader uses), then ``dirs`` in order.

    When every candidate is broken, report the first one's problem (e.g. a dangling symlink) rather
    than "missing": that tells the attendee what to repair.
    """
    candidates = list(cache.get(name, []))
    candidates += [os.path.join(d, name) for d in dirs]
    first_problem = ""
    seen: set[str] = set()
    for cand in candidates:
        if cand in seen or not os.path.lexists(cand):
            continue
        seen.add(cand)
        real, problem = resolve(cand)
        if not problem:
            return HostFile(name, "library", cand, real)
        first_problem = first_problem or problem
    if first_problem:
        return HostFile(name, "library", problem=first_problem)
    where = ", ".join(dict.fromkeys([*(os.path.dirname(c) for c in cache.get(name, [])), *dirs]))
    return HostFile(name, "library", problem=f"{name} not found (ldconfig cache and {where})")


def find_binary(name: str, dirs: Sequence[str]) -> HostFile:
    path = cmd.which(name, list(dirs))
    if path is None:
        for d in dirs:  # a broken link is worth naming
            cand = os.path.join(d, name)
            if os.path.lexists(cand):
                return HostFile(name, "binary", problem=resolve(cand)[1] or f"{cand} is not executable")
        return HostFile(name, "binary", problem=f"{name} not found on PATH or in {', '.join(dirs)}")
    real, problem = resolve(path)
    return HostFile(name, "binary", path if not problem else "", real, problem)


def find_devices(patterns: Sequence[str] = DEVICE_PATTERNS) -> tuple[HostFile, ...]:
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            out.append(HostFile(os.path.basename(path), "device", path, path))
    return tuple(out)


def ldconfig_cache(timeout: float = 30.0) -> tuple[str, str]:
    """(``ldconfig -p`` output, note). ldconfig lives in /sbin, which is not on every user's PATH."""
    for exe in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        res = cmd.run([exe, "-p"], timeout=timeout)
        if res.ok:
            return res.stdout, ""
        if not res.missing:
            return "", f"ldconfig -p failed: {res.describe()}"
    return "", "ldconfig not found: searched the usual library folders only"


def inspect_host(lib_dirs: Sequence[str] = (), bin_dirs: Sequence[str] = (), *, ldconfig_text: str | None = None,
                 device_patterns: Sequence[str] = DEVICE_PATTERNS, timeout: float = 30.0,
                 standard_dirs: bool = True, machine: str = "") -> Inspection:
    """Find every library, binary and device node the node container needs.

    ``lib_dirs``/``bin_dirs`` (non-standard folders, searched first after the ldconfig cache) come from
    LabConfig; tests pass their own folders, their own ldconfig text and ``standard_dirs=False``.
    """
    notes: list[str] = []
    if ldconfig_text is None:
        ldconfig_text, note = ldconfig_cache(timeout)
        if note:
            notes.append(note)
    cache = parse_ldconfig(ldconfig_text, ldconfig_arch(machine))
    ldirs = [*lib_dirs, *(STANDARD_LIB_DIRS if standard_dirs else ())]
    bdirs = [*bin_dirs, *(STANDARD_BIN_DIRS if standard_dirs else ())]
    libs = tuple(find_library(n, cache, ldirs) for n in LIBRARIES)
    bins = tuple(find_binary(n, bdirs) if standard_dirs else _find_binary_only_in(n, bdirs) for n in BINARIES)
    return Inspection(libs, bins, find_devices(device_patterns), tuple(notes))


def _find_binary_only_in(name: str, dirs: Sequence[str]) -> HostFile:
    """Like find_binary, without PATH (tests: only the given folders count)."""
    for d in dirs:
        cand = os.path.join(d, name)
        if os.path.lexists(cand):
            real, problem = resolve(cand)
            if not problem and not os.access(real, os.X_OK):
                problem = f"{cand} is not executable"
            return HostFile(name, "binary", cand if not problem else "", real, problem)
    return HostFile(name, "binary", problem=f"{name} not found in {', '.join(dirs)}")
