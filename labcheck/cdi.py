"""Parse CDI specs (``nvidia-ctk cdi generate`` output) and ``nvidia-ctk cdi list``.

Pure functions: a spec's text in, a :class:`Spec` (or the problems that make it unusable, each with
the line it is on) out. Reading the folders and checking that mounted files exist is the probe's job
(labcheck.probes.cdi). Line numbers come from PyYAML's node marks, so a problem names the line an
attendee has to look at rather than only the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

NVIDIA_KIND = "nvidia.com/gpu"
GENERATE = "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
_KIND_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$")
# Driver versions have a three-digit major (535, 550, 580); other NVIDIA libraries mounted by the spec
# (libnvidia-egl-wayland.so.1.1.13, libnvidia-egl-gbm.so.1.1.2) have their own numbering and are ignored.
_LIB_VERSION = re.compile(r"\.so\.(\d{3}\.\d+(?:\.\d+)?)$")
_FW_VERSION = re.compile(r"/nvidia/(\d{3}\.\d+(?:\.\d+)?)/")
_HOOK_VERSION = re.compile(r"(?:--host-driver-version=|\.so\.)(\d{3}\.\d+(?:\.\d+)?)(?:$|::)")
_CDI_LIST_COUNT = re.compile(r"Found (\d+) CDI devices?")
_CDI_LIST_NAME = re.compile(r"^([a-z0-9.-]+/[\w.-]+)=(\S+)$")


@dataclass(frozen=True)
class Problem:
    """Something that makes a spec unusable: where it is and what is wrong."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Device:
    name: str
    line: int | None
    device_nodes: tuple[str, ...]


@dataclass(frozen=True)
class Spec:
    path: str
    cdi_version: str
    kind: str
    kind_line: int | None
    devices: tuple[Device, ...]
    host_paths: tuple[str, ...]  # every file the spec makes a container depend on (mounts, nodes, hooks)
    driver_versions: tuple[str, ...]  # driver versions named in library file names, firmware paths, hooks
    problems: tuple[Problem, ...] = field(default=())

    @property
    def device_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)

    @property
    def gpu_indices(self) -> tuple[str, ...]:
        """Whole-GPU devices named by index ("0", "1"); MIG devices ("0:1") are not GPUs."""
        return tuple(n for n in self.device_names if n.isdigit())

    @property
    def gpu_uuids(self) -> tuple[str, ...]:
        return tuple(n for n in self.device_names if n.startswith("GPU-"))


# --- YAML with line numbers -------------------------------------------------------------------------

def _line(node) -> int | None:
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def _map_get(node, key: str):
    """(key node, value node) of ``key`` in a YAML mapping node, or (None, None)."""
    if not isinstance(node, yaml.MappingNode):
        return None, None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None, None


def _compose(text: str, path: str) -> tuple[object | None, Problem | None]:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, Problem(path, line, f"not valid YAML: {problem}")


def parse_spec(text: str, path: str) -> Spec | Problem:
    """A spec, or the one problem that stops it from being read at all (bad syntax, not a mapping).

    Problems that leave the spec readable (wrong kind, no devices, duplicate device names) are kept in
    ``Spec.problems`` so the caller can still report what the spec contains.
    """
    if path.endswith(".json"):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return Problem(path, exc.lineno, f"not valid JSON: {exc.msg}")
    root, err = _compose(text, path)
    if err is not None:
        return err
    if root is None:
        return Problem(path, None, "empty file: no CDI spec in it")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # composes but does not construct (e.g. an unknown tag)
        return Problem(path, _line(root), f"not valid YAML: {exc}")
    if not isinstance(data, dict):
        return Problem(path, _line(root), f"expected a mapping with cdiVersion, kind and devices, "
                                          f"found {type(data).__name__}")

    problems: list[Problem] = []
    kind_key, _ = _map_get(root, "kind")
    kind = data.get("kind")
    kind_line = _line(kind_key) if kind_key is not None else None
    if not isinstance(kind, str) or not kind:
        problems.append(Problem(path, kind_line or 1, f"no 'kind' (expected kind: {NVIDIA_KIND})"))
        kind = ""
    elif not _KIND_RE.match(kind):
        problems.append(Problem(path, kind_line, f"kind {kind!r} is not of the form vendor.com/class "
                                                 f"(expected {NVIDIA_KIND})"))
    if not isinstance(data.get("cdiVersion"), str | int | float):
        problems.append(Problem(path, 1, "no 'cdiVersion'"))

    devices, dev_problems = _devices(root, data, path)
    problems += dev_problems
    host_paths, versions = _dependencies(data)
    return Spec(path, str(data.get("cdiVersion", "")), kind, kind_line, tuple(devices), tuple(host_paths),
                tuple(versions), tuple(problems))


def _devices(root, data: dict, path: str) -> tuple[list[Device], list[Problem]]:
    devs_key, devs_node = _map_get(root, "devices")
    raw = data.get("devices")
    if not isinstance(raw, list) or not raw:
        line = _line(devs_key) if devs_key is not None else 1
        return [], [Problem(path, line, "no devices: the spec lists no GPU, so nothing can be requested from it")]
    nodes = devs_node.value if isinstance(devs_node, yaml.SequenceNode) else [None] * len(raw)
    devices: list[Device] = []
    problems: list[Problem] = []
    seen: dict[str, int | None] = {}
    for item, node in zip(raw, nodes, strict=False):
        line = _line(node)
        if not isinstance(item, dict) or not isinstance(item.get("name"), str | int) or item.get("name") == "":
            problems.append(Problem(path, line, "a device without a name"))
            continue
        name = str(item["name"])
        name_key, _ = _map_get(node, "name")
        line = _line(name_key) or line
        if name in seen:
            problems.append(Problem(path, line, f"duplicate device name {name!r} (first at line {seen[name]})"))
            continue
        seen[name] = line
        edits = item.get("containerEdits") or {}
        dnodes = tuple(str(d.get("path")) for d in edits.get("deviceNodes") or [] if isinstance(d, dict))
        devices.append(Device(name, line, dnodes))
    return devices, problems


def _dependencies(data: dict) -> tuple[list[str], list[str]]:
    """Host files the spec relies on, and the driver versions it names."""
    paths: list[str] = []
    versions: list[str] = []
    edits = [data.get("containerEdits") or {}]
    edits += [(d.get("containerEdits") or {}) for d in data.get("devices") or [] if isinstance(d, dict)]
    for e in edits:
        if not isinstance(e, dict):
            continue
        for m in e.get("mounts") or []:
            if isinstance(m, dict) and m.get("hostPath"):
                hp = str(m["hostPath"])
                paths.append(hp)
                for rx in (_LIB_VERSION, _FW_VERSION):
                    if (mv := rx.search(hp)) is not None:
                        versions.append(mv.group(1))
        for d in e.get("deviceNodes") or []:
            if isinstance(d, dict) and d.get("path"):
                paths.append(str(d.get("hostPath") or d["path"]))
        for h in e.get("hooks") or []:
            if not isinstance(h, dict):
                continue
            if h.get("path"):
                paths.append(str(h["path"]))
            for arg in h.get("args") or []:
                for mv in _HOOK_VERSION.finditer(str(arg)):
                    versions.append(mv.group(1))
    return list(dict.fromkeys(paths)), list(dict.fromkeys(versions))


@dataclass(frozen=True)
class CdiList:
    """What ``nvidia-ctk cdi list`` printed. Its exit code is 0 even with no devices: count, don't trust rc."""

    count: int | None
    names: tuple[str, ...]


def parse_cdi_list(output: str) -> CdiList:
    m = _CDI_LIST_COUNT.search(output)
    names = tuple(f"{mm[1]}={mm[2]}" for line in output.splitlines() if (mm := _CDI_LIST_NAME.match(line.strip())))
    return CdiList(int(m.group(1)) if m else None, names)
