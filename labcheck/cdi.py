"""Parse CDI specs (``nvidia-ctk cdi generate`` output) and ``nvidia-ctk cdi list``.

Pure functions: a spec's text in, a :class:`Spec` (or the problems that make it unusable, each with
the line it is on) out. Reading the folders and checking that mounted files exist is the probe's job
(labcheck.probes.cdi). Line numbers come from PyYAML's node marks, so a problem names the line an
attendee has to look at rather than only the file.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from labcheck import fsio, versions
from labcheck.remedy import DEFAULT as DEFAULT_SHELL
from labcheck.remedy import Shell

NVIDIA_KIND = "nvidia.com/gpu"
DEFAULT_SPEC_PATH = "/etc/cdi/nvidia.yaml"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
# Names as container-device-interface pkg/parser/parser.go validates them (ValidateVendorName, ValidateClassName,
# ValidateDeviceName; ParseQualifier splits the kind at its first '/'): ASCII only; a vendor or class starts with
# a letter, a device name with a letter or digit; each ends with a letter or digit; between, letters, digits and
# '_', '-', '.' (and ':' in a device name, for MIG devices such as "0:1").
_VENDOR_OR_CLASS = r"[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?"
_KIND_RE = re.compile(f"{_VENDOR_OR_CLASS}/{_VENDOR_OR_CLASS}")
_DEVICE_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?")
# Driver versions have a three-digit major (535, 550, 580); other NVIDIA libraries mounted by the spec
# (libnvidia-egl-wayland.so.1.1.13, libnvidia-egl-gbm.so.1.1.2) have their own numbering and are ignored. ASCII
# digits only: libcuda.so.٥٨٠.١٥٩.٠٤ names no driver version (nvidia-ctk writes the driver's own ASCII one).
_LIB_VERSION = re.compile(r"\.so\.([0-9]{3}\.[0-9]+(?:\.[0-9]+)?)$")
_FW_VERSION = re.compile(r"/nvidia/([0-9]{3}\.[0-9]+(?:\.[0-9]+)?)/")
_HOOK_VERSION = re.compile(r"(?:--host-driver-version=|\.so\.)([0-9]{3}\.[0-9]+(?:\.[0-9]+)?)(?:$|::)")
_CDI_LIST_COUNT = re.compile(r"Found ([0-9]+) CDI devices?")
_CDI_LIST_NAME = re.compile(r"^([a-z0-9.-]+/[\w.-]+)=(\S+)$")


def generate_command(spec_path: str = DEFAULT_SPEC_PATH, shell: Shell = DEFAULT_SHELL) -> str:
    """The one command that (re)writes the NVIDIA spec at the configured path (lab config cdi_spec_path)."""
    return shell.sudo(f"nvidia-ctk cdi generate {shlex.quote('--output=' + spec_path)}")


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
        """Whole-GPU devices named by index ("0", "1": ASCII digits); MIG devices ("0:1") are not GPUs."""
        return tuple(n for n in self.device_names if versions.ascii_int(n) is not None)

    @property
    def gpu_uuids(self) -> tuple[str, ...]:
        return tuple(n for n in self.device_names if n.startswith("GPU-"))


# --- YAML with line numbers -------------------------------------------------------------------------

# Spec versions the CDI project has released (container-device-interface SPEC.md "Released versions"); a
# runtime refuses a spec whose cdiVersion it does not know.
KNOWN_CDI_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
_line = fsio.line_of


def _map_get(node, key: str):
    """(key node, value node) of ``key`` in a YAML mapping node, or (None, None)."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    if not isinstance(node, yaml.MappingNode):
        return None, None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None, None


def _seq(node) -> list:
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def parse_spec(text: str, path: str) -> Spec | Problem:
    """A spec, or the one problem that stops it from being read at all (bad syntax, not a mapping).

    Problems that leave the spec readable (wrong kind, no devices, duplicate device names, a field of the wrong
    type, an unknown cdiVersion, a relative host path) are kept in ``Spec.problems`` so the caller can still
    report what the spec contains. A ``.json`` spec is read as JSON (tab indentation included); its node tree,
    for line numbers, comes from the same text with tabs as spaces (valid JSON has tabs only between tokens).
    """
    data = None
    if path.endswith(".json"):
        try:
            data = fsio.parse_json(text, path)  # as strict as Go's decoder: no NaN, no crash on deep nesting
        except fsio.FileProblem as exc:
            return Problem(path, exc.line, exc.message)
        try:
            root = fsio.compose_yaml(text.replace("\t", " "), path)
        except fsio.YamlError:
            root = None  # lines unknown; the JSON value is what counts
        if data is None:
            return Problem(path, None, "empty file: no CDI spec in it")
    else:
        try:
            root = fsio.compose_yaml(text, path)
            if root is None:
                return Problem(path, None, "empty file: no CDI spec in it")
            data = fsio.construct_yaml(root, path)
        except fsio.YamlError as exc:
            return Problem(path, exc.line, exc.problem)
    if not isinstance(data, dict):
        return Problem(path, _line(root) or 1, f"expected a mapping with cdiVersion, kind and devices, "
                                               f"found {type(data).__name__}")

    problems: list[Problem] = _unknown_fields(data, root, "spec", "", path)
    kind_key, _ = _map_get(root, "kind")
    kind = data.get("kind")
    kind_line = _line(kind_key) if kind_key is not None else None
    if not isinstance(kind, str) or not kind:
        problems.append(Problem(path, kind_line or 1, f"no 'kind' (expected kind: {NVIDIA_KIND})"))
        kind = ""
    elif not _KIND_RE.fullmatch(kind):
        problems.append(Problem(path, kind_line, f"kind {kind!r} is not of the form vendor.com/class "
                                                 f"(expected {NVIDIA_KIND})"))
    version, version_problem = _cdi_version(root, data, path)
    if version_problem is not None:
        problems.append(version_problem)

    _, top_node = _map_get(root, "containerEdits")
    edits = [("containerEdits", data.get("containerEdits"), top_node)] if "containerEdits" in data else []
    devices, dev_problems, dev_edits = _devices(root, data, path)
    problems += dev_problems
    edits += dev_edits
    host_paths: list[str] = []
    versions: list[str] = []
    for where, value, node in edits:
        problems += _dependencies(where, value, node, path, host_paths, versions)
    return Spec(path, version, kind, kind_line, tuple(devices), tuple(dict.fromkeys(host_paths)),
                tuple(dict.fromkeys(versions)), tuple(problems))


def _cdi_version(root, data: dict, path: str) -> tuple[str, Problem | None]:
    """cdiVersion as written (the scalar's source text: ``0.5`` unquoted stays "0.5", never the float 0.5)."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    key, node = _map_get(root, "cdiVersion")
    value = data.get("cdiVersion")
    line = _line(key) or 1
    if value is None:
        return "", Problem(path, line, "no 'cdiVersion' (nvidia-ctk writes e.g. cdiVersion: 0.5.0)")
    text = node.value if isinstance(node, yaml.ScalarNode) else value
    if not isinstance(text, str) or isinstance(value, list | dict):
        return "", Problem(path, line, f"cdiVersion: expected a version string such as 0.5.0, found "
                                       f"{type(value).__name__}")
    if text not in KNOWN_CDI_VERSIONS:
        return text, Problem(path, line, f"unknown cdiVersion {text!r}: CDI runtimes read only the released "
                                         f"versions ({', '.join(KNOWN_CDI_VERSIONS)})")
    return text, None


def _devices(root, data: dict, path: str) -> tuple[list[Device], list[Problem], list[tuple]]:
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    devs_key, devs_node = _map_get(root, "devices")
    raw = data.get("devices")
    if not isinstance(raw, list) or not raw:
        line = _line(devs_key) if devs_key is not None else 1
        return [], [Problem(path, line, "no devices: the spec lists no GPU, so nothing can be requested from it")], []
    nodes = devs_node.value if isinstance(devs_node, yaml.SequenceNode) else [None] * len(raw)
    devices: list[Device] = []
    problems: list[Problem] = []
    edits: list[tuple] = []
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
        if not _DEVICE_NAME_RE.fullmatch(name):
            problems.append(Problem(path, line, f"device name {name!r}: CDI names are ASCII letters, digits and "
                                                f"'_', '-', '.', ':', starting and ending with a letter or digit"))
        edit = item.get("containerEdits")
        _, edit_node = _map_get(node, "containerEdits")
        if "containerEdits" in item:
            edits.append((f"devices[{name}].containerEdits", edit, edit_node or node))
        if edit is None or (isinstance(edit, dict) and not any(edit.get(f) for f in _EDIT_FIELDS)):
            # container-device-interface pkg/cdi/device.go Device.validate: "invalid device, empty device edits"
            # (an absent containerEdits too); the runtime then refuses the whole spec, every device in it
            problems.append(Problem(path, _line(edit_node) or line, f"device {name!r} has no containerEdits "
                                    f"(no {', '.join(_EDIT_FIELDS)}): CDI refuses the whole spec for it"))
        dnodes = ()
        if isinstance(edit, dict) and isinstance(edit.get("deviceNodes"), list):
            dnodes = tuple(str(d["path"]) for d in edit["deviceNodes"] if isinstance(d, dict)
                           and isinstance(d.get("path"), str))
        devices.append(Device(name, line, dnodes))
    return devices, problems, edits


# What a containerEdits can hold (container-device-interface specs-go/config.go ContainerEdits); one of them
# non-empty makes a device's edits non-empty (pkg/cdi/container-edits.go ContainerEdits.isEmpty).
_EDIT_FIELDS = ("env", "deviceNodes", "hooks", "mounts", "additionalGids", "intelRdt", "netDevices")

# The fields of each object of a spec (container-device-interface specs-go/config.go): pkg/cdi/spec.go ParseSpec
# reads a spec with sigs.k8s.io/yaml UnmarshalStrict, which refuses a field the struct does not have and a key
# written twice in one mapping (field names match case-insensitively, as Go's encoding/json matches them).
# A value is the kind of object (or, in a list, of each item) a field holds; None: a plain value.
_FIELDS: dict[str, dict[str, str | None]] = {
    "spec": {"cdiVersion": None, "kind": None, "annotations": None, "devices": "[device]",
             "containerEdits": "edits"},
    "device": {"name": None, "annotations": None, "containerEdits": "edits"},
    "edits": {"env": None, "deviceNodes": "[deviceNode]", "netDevices": "[netDevice]", "hooks": "[hook]",
              "mounts": "[mount]", "intelRdt": "intelRdt", "additionalGids": None},
    "deviceNode": dict.fromkeys(("path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid",
                                 "gid")),
    "mount": dict.fromkeys(("hostPath", "containerPath", "options", "type")),
    "hook": dict.fromkeys(("hookName", "path", "args", "env", "timeout")),
    "intelRdt": dict.fromkeys(("closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring")),
    "netDevice": dict.fromkeys(("hostInterfaceName", "name")),
}


def _unknown_fields(value, node, kind: str, where: str, path: str) -> list[Problem]:
    """A field CDI's strict decoding refuses (unknown to ``kind``, or a key given twice), in ``value`` and below.

    Walks the YAML node tree when there is one (it keeps keys written twice, which the constructed value has lost),
    else the value. Nesting is bounded by the schema (four levels), so this never recurses deeply.
    """
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    known = {k.lower(): sub for k, sub in _FIELDS[kind].items()}
    if isinstance(node, yaml.MappingNode):
        pairs = [(k.value if isinstance(k, yaml.ScalarNode) else None, k, v) for k, v in node.value]
    elif isinstance(value, dict):
        pairs = [(k, None, None) for k in value]
    else:
        return []  # not a mapping: the type checks say so
    problems: list[Problem] = []
    seen: set[str] = set()
    label = where or "the spec's top level"
    for key, key_node, child_node in pairs:
        if not isinstance(key, str) or key.lower() not in known:
            problems.append(Problem(path, _line(key_node) or _line(node), f"{label}: unknown field {key!r} (CDI "
                                    f"refuses the whole spec; fields here: {', '.join(_FIELDS[kind])})"))
            continue
        if key in seen:
            problems.append(Problem(path, _line(key_node), f"{label}: {key!r} is written twice (CDI refuses "
                                                            f"the whole spec)"))
            continue
        seen.add(key)
        sub = known[key.lower()]
        child = value.get(key) if isinstance(value, dict) else None
        here = f"{where}.{key}" if where else key
        if sub is None:
            continue
        if not sub.startswith("["):
            problems += _unknown_fields(child, child_node, sub, here, path)
            continue
        items = child if isinstance(child, list) else []
        nodes = _seq(child_node) or [None] * len(items)
        for i, (item, item_node) in enumerate(zip(items, nodes, strict=False)):
            problems += _unknown_fields(item, item_node, sub[1:-1], f"{here}[{i}]", path)
    return problems


def _env_problem(value) -> str:
    """Why ``value`` is not an environment entry CDI takes ("" when it is): container-device-interface
    pkg/cdi/container-edits.go ValidateEnv refuses an entry without '=' after at least one character."""
    if not isinstance(value, str):
        return f"expected a string KEY=VALUE, found {_type_name(value)}"
    if value.find("=") <= 0:
        return f"{value!r} is not KEY=VALUE: CDI refuses the whole spec for it"
    return ""


def _type_name(value) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _host_path_problem(value) -> str:
    """Why ``value`` is not a usable host path ("" when it is): CDI paths on the host are absolute."""
    if not isinstance(value, str) or not value:
        return f"expected an absolute path, found {_type_name(value)}"
    if not value.startswith("/"):
        return f"host path {value!r} is relative: CDI host paths must be absolute"
    if ".." in value.split("/"):
        return f"host path {value!r} contains '..': write the path without it"
    return ""


def _dependencies(where: str, edits, node, path: str, paths: list[str], versions: list[str]) -> list[Problem]:
    """Type-check one containerEdits and collect the host files it relies on and the driver versions it names."""
    if not isinstance(edits, dict):
        return [Problem(path, _line(node), f"{where}: expected a mapping (env, deviceNodes, mounts, hooks), "
                                           f"found {_type_name(edits)}")]
    problems: list[Problem] = []

    def entries(field: str) -> list[tuple[int, object, object]]:
        value = edits.get(field)
        key, vnode = _map_get(node, field)
        if value is None:
            return []
        if not isinstance(value, list):
            problems.append(Problem(path, _line(key) or _line(node), f"{where}.{field}: expected a list, "
                                                                     f"found {_type_name(value)}"))
            return []
        vnodes = _seq(vnode) or [key] * len(value)
        return [(i, v, n) for i, (v, n) in enumerate(zip(value, vnodes, strict=False))]

    def bad(n, message: str) -> None:
        problems.append(Problem(path, _line(n), f"{where}.{message}"))

    def strings(field: str, item: dict, n, label: str) -> list[str]:
        value = item.get(field)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            bad(n, f"{label}.{field}: expected a list of strings, found {_type_name(value)}")
            return []
        return value

    for i, env, n in entries("env"):
        if (why := _env_problem(env)):
            bad(n, f"env[{i}]: {why}")
    for i, m, n in entries("mounts"):
        if not isinstance(m, dict):
            bad(n, f"mounts[{i}]: expected a mapping with hostPath and containerPath, found {_type_name(m)}")
            continue
        if (why := _host_path_problem(m.get("hostPath"))):
            bad(n, f"mounts[{i}].hostPath: {why}")
        else:
            paths.append(m["hostPath"])
            for rx in (_LIB_VERSION, _FW_VERSION):
                if (mv := rx.search(m["hostPath"])) is not None:
                    versions.append(mv.group(1))
        if not isinstance(m.get("containerPath"), str) or not m.get("containerPath"):
            bad(n, f"mounts[{i}].containerPath: expected a path, found {_type_name(m.get('containerPath'))}")
        strings("options", m, n, f"mounts[{i}]")
    for i, d, n in entries("deviceNodes"):
        if not isinstance(d, dict):
            bad(n, f"deviceNodes[{i}]: expected a mapping with path, found {_type_name(d)}")
            continue
        host = d.get("hostPath") if d.get("hostPath") is not None else d.get("path")
        if (why := _host_path_problem(host)):
            bad(n, f"deviceNodes[{i}].{'hostPath' if d.get('hostPath') is not None else 'path'}: {why}")
        else:
            paths.append(host)
        if (why := _device_node_problem(d)):
            bad(n, f"deviceNodes[{i}]: {why}")
    for i, h, n in entries("hooks"):
        if not isinstance(h, dict):
            bad(n, f"hooks[{i}]: expected a mapping with hookName, path and args, found {_type_name(h)}")
            continue
        if h.get("hookName") not in HOOK_NAMES:
            bad(n, f"hooks[{i}].hookName: expected one of {', '.join(HOOK_NAMES)}, found {h.get('hookName')!r}")
        if (why := _host_path_problem(h.get("path"))):
            bad(n, f"hooks[{i}].path: {why}")
        else:
            paths.append(h["path"])
        for arg in strings("args", h, n, f"hooks[{i}]"):
            for mv in _HOOK_VERSION.finditer(arg):
                versions.append(mv.group(1))
        for j, env in enumerate(strings("env", h, n, f"hooks[{i}]")):
            if (why := _env_problem(env)):
                bad(n, f"hooks[{i}].env[{j}]: {why}")
    return problems


_NODE_TYPES = ("", "b", "c", "u", "p")  # container-device-interface pkg/cdi/container-edits.go DeviceNode.Validate


def _device_node_problem(node: dict) -> str:
    """What DeviceNode.Validate (container-device-interface pkg/cdi/container-edits.go) refuses ("" when fine): no
    container ``path`` (also when hostPath is given), a type other than b, c, u, p, permissions other than letters
    of "rwm" or "none"."""
    if not isinstance(node.get("path"), str) or not node["path"]:
        return f"path: expected the device's path in the container, found {_type_name(node.get('path'))}"
    kind = node.get("type")
    if kind is not None and kind not in _NODE_TYPES:
        return f"type {kind!r}: expected one of b, c, u, p (or none)"
    perms = node.get("permissions")
    if perms is not None and not (perms == "none" or (isinstance(perms, str) and not perms.strip("rwm"))):
        return f"permissions {perms!r}: expected letters of rwm (e.g. rw) or none"
    return ""


@dataclass(frozen=True)
class CdiList:
    """What ``nvidia-ctk cdi list`` printed. Its exit code is 0 even with no devices: count, don't trust rc."""

    count: int | None
    names: tuple[str, ...]


def parse_cdi_list(output: str) -> CdiList:
    m = _CDI_LIST_COUNT.search(output)
    names = tuple(f"{mm[1]}={mm[2]}" for line in output.splitlines() if (mm := _CDI_LIST_NAME.match(line.strip())))
    return CdiList(versions.ascii_int(m.group(1)) if m else None, names)  # 5000 digits: no count, not int's crash
