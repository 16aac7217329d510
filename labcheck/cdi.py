"""Parse CDI specs (``nvidia-ctk cdi generate`` output) and ``nvidia-ctk cdi list``.

Pure functions: a spec's text in, a :class:`Spec` (or the problems that make it unusable, each with
the line it is on) out. Reading the folders and checking that mounted files exist is the probe's job
(labcheck.probes.cdi). Line numbers come from PyYAML's node marks, so a problem names the line an
attendee has to look at rather than only the file.
"""

from __future__ import annotations

import os
import re
import shlex
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from labcheck import fsio, versions
from labcheck.remedy import DEFAULT as DEFAULT_SHELL
from labcheck.remedy import Shell, program

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
# The Kind node's own CDI folders (NVIDIA's DRA driver writes one spec per claim there: CDI_ROOT=/var/run/cdi): never
# the host's, so a host folder by these names is never mounted into the node (labcheck.kindconfig.mounts).
NODE_OWN_DIRS = ("/var/run/cdi", "/run/cdi")
NODE_STATIC_DIR = "/etc/cdi"  # where the node's containerd reads the host's specs: the kind config mounts one there


def static_dirs(cdi_dirs: tuple[str, ...] | list[str]) -> list[str]:
    """The host's CDI folders (lab.yaml cdi_dirs) that the kind config may mount into the node: all but the node's
    own (NODE_OWN_DIRS, by normalised name), in their order."""
    return [d for d in cdi_dirs if os.path.normpath(d) not in NODE_OWN_DIRS]


def mounted_dir(cdi_dirs: tuple[str, ...] | list[str]) -> str:
    """The host folder the kind config mounts read-only at the node's /etc/cdi: the first of :func:`static_dirs`
    ('' when cdi_dirs lists only the node's own folders). The one answer for the config generator
    (labcheck.kindconfig.mounts), the lab config's cross-check and module 0's "CDI spec found"."""
    return next(iter(static_dirs(cdi_dirs)), "")


def generate_command(spec_path: str = DEFAULT_SPEC_PATH, shell: Shell = DEFAULT_SHELL, ctk: str | None = None) -> str:
    """The one command that (re)writes the NVIDIA spec at the configured path (lab config cdi_spec_path), with the
    nvidia-ctk found at ``ctk`` (None: not found; after installing the toolkit it is on PATH), named as every fix
    names it (:func:`labcheck.remedy.program`: one only in extra_bin_dirs by its path)."""
    return shell.sudo(f"{shlex.quote(program(ctk, 'nvidia-ctk'))} cdi generate {shlex.quote('--output=' + spec_path)}")


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


# --- reading a spec as the CDI library reads it --------------------------------------------------------------

# The cdiVersion values the CDI library knows, oldest first (container-device-interface specs-go/version.go
# validSpecVersions, v1.1.0; SPEC.md "Released versions"). One leading "v" is allowed (newVersion trims it). A
# runtime refuses any other value, and one below EARLIEST_CDI_VERSION (vEarliest) whatever the spec holds.
KNOWN_CDI_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0")
EARLIEST_CDI_VERSION = "0.3.0"
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
_line = fsio.line_of

# How the library reads a spec (pkg/cdi/spec.go ParseSpec): sigs.k8s.io/yaml UnmarshalStrict turns the YAML into
# JSON, each mapping's keys sorted (encoding/json Marshal sorts a map's keys; yaml.go yamlToJSONTarget), and
# encoding/json decodes that JSON into specs-go's structs, refusing a key no field matches (DisallowUnknownFields);
# the YAML step refuses a key written twice. encoding/json matches a key to a field case-insensitively, and
# every key that matches a field sets it again, so of `deviceNodes:` and `DeviceNodes:` in one mapping the one
# last in sorted order stays ("deviceNodes": lower case sorts after upper case; golang/go#43664 shows the exact
# match does not win). _decode applies that one rule to every field of every object.

# Go's encoding/json compares a key with a field name under Unicode simple case folding (fold.go foldName /
# foldRune). Against the ASCII field names of specs-go that is ASCII case plus the two runes whose fold set holds
# an ASCII letter: U+212A KELVIN SIGN (k) and U+017F LATIN SMALL LETTER LONG S (s).
_FOLD = str.maketrans({**{c: c.lower() for c in string.ascii_uppercase}, "\u212a": "k", "\u017f": "s"})

# Each object's fields (specs-go/config.go) and the kind of Go value each decodes into, which decides what a second
# spelling of the field and a null do (encoding/json Unmarshal): "scalar" (a string, number or bool: replaced;
# null leaves it), "pointer" (to a number: replaced; null empties it), "list" (of plain values: replaced; null
# empties it), "map" (merged key by key; null empties it), an object name (a struct: the next spelling is decoded
# into the same struct, so the two merge; null leaves it), "*" + name (a pointer to one: merged; null empties it),
# "[" + name + "]" (a list of those objects: replaced; null empties it).
_FIELDS: dict[str, dict[str, str]] = {
    "spec": {"cdiVersion": "scalar", "kind": "scalar", "annotations": "map", "devices": "[device]",
             "containerEdits": "edits"},
    "device": {"name": "scalar", "annotations": "map", "containerEdits": "edits"},
    "edits": {"env": "list", "deviceNodes": "[deviceNode]", "netDevices": "[netDevice]", "hooks": "[hook]",
              "mounts": "[mount]", "intelRdt": "*intelRdt", "additionalGids": "list"},
    "deviceNode": {"path": "scalar", "hostPath": "scalar", "type": "scalar", "major": "scalar", "minor": "scalar",
                   "fileMode": "pointer", "permissions": "scalar", "uid": "pointer", "gid": "pointer"},
    "mount": {"hostPath": "scalar", "containerPath": "scalar", "options": "list", "type": "scalar"},
    "hook": {"hookName": "scalar", "path": "scalar", "args": "list", "env": "list", "timeout": "pointer"},
    "intelRdt": {"closID": "scalar", "l3CacheSchema": "scalar", "memBwSchema": "scalar", "schemata": "list",
                 "enableMonitoring": "scalar"},
    "netDevice": {"hostInterfaceName": "scalar", "name": "scalar"},
}
_ABSENT = object()


@dataclass
class _Obj:
    """One object of a spec (the spec, a device, a containerEdits, a mount...) as the runtime decodes it: each
    field under specs-go's name for it, whatever case it was written in, holding the value the decoder keeps
    (an _Obj for an object, a list of them for a list of objects, else the plain value). ``keys`` and ``nodes``
    are the YAML key and value nodes of that value, for line numbers (None in a JSON spec PyYAML cannot read);
    ``labels`` the field as written with its place ("containerEdits.DeviceNodes"), for messages."""

    node: Any
    fields: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.fields.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.fields


def _seq(node) -> list:
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _decode(kind: str, value: dict, node, where: str, path: str, problems: list[Problem],
            into: _Obj | None = None) -> _Obj:
    """``value`` (a mapping; ``node`` its YAML node, or None) as CDI's decoder reads an object of ``kind``, decoded
    into ``into`` when this is a second spelling of an object field (encoding/json merges the two).

    In file order, a key that matches no field of ``kind`` or is written twice is a problem (strict decoding
    refuses the spec). The keys that match are then set in the decoder's order, sorted. The node tree is walked
    when there is one (it keeps keys written twice, which ``value`` has lost). Nesting is bounded by the schema
    (four levels), so this never recurses deeply.
    """
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    obj = into if into is not None else _Obj(node)
    fields = _FIELDS[kind]
    by_fold = {n.translate(_FOLD): n for n in fields}
    if isinstance(node, yaml.MappingNode):
        pairs = [(k.value if isinstance(k, yaml.ScalarNode) else None, k, v) for k, v in node.value]
    else:
        pairs = [(k, None, None) for k in value]
    label = where or "the spec's top level"
    known: list[tuple[str, str, Any, Any]] = []
    seen: set[str] = set()
    for key, key_node, child_node in pairs:
        name = by_fold.get(key.translate(_FOLD)) if isinstance(key, str) else None
        if name is None:
            problems.append(Problem(path, _line(key_node) or _line(node), f"{label}: unknown field {key!r} (CDI "
                                    f"refuses the whole spec; fields here: {', '.join(fields)})"))
        elif key in seen:
            problems.append(Problem(path, _line(key_node), f"{label}: {key!r} is written twice (CDI refuses "
                                                            f"the whole spec)"))
        else:
            seen.add(key)
            known.append((key, name, key_node, child_node))
    for key, name, key_node, child_node in sorted(known, key=lambda k: k[0]):
        child = value.get(key) if isinstance(value, dict) else None
        _set(obj, name, fields[name], child, key_node, child_node, f"{where}.{key}" if where else key, path,
             problems)
    return obj


def _set(obj: _Obj, name: str, kind: str, value, key_node, value_node, label: str, path: str,
         problems: list[Problem]) -> None:
    """Field ``name`` of ``obj`` after the decoder meets one more key for it (written as ``label``)."""
    if value is None and (kind == "scalar" or kind in _FIELDS):
        obj.keys.setdefault(name, key_node)  # null leaves a string, number, bool or struct as it was
        obj.labels.setdefault(name, label)
        return
    before = obj.fields.get(name, _ABSENT)
    if before is not _ABSENT and (why := _shape_problem(kind, before)):
        # the spelling decoded before this one is overridden, but the decoder met it, and refused it, all the same
        problems.append(Problem(path, _line(obj.keys.get(name)), f"{obj.labels[name]}: {why} (CDI reads every "
                                f"spelling of a field, and refuses the whole spec for this one even though "
                                f"{label!r} comes after it)"))
    target = kind.lstrip("*")
    if target in _FIELDS and isinstance(value, dict):
        value = _decode(target, value, value_node, label, path, problems,
                        into=before if isinstance(before, _Obj) else None)
    elif kind.startswith("[") and isinstance(value, list):
        nodes = _seq(value_node) or [None] * len(value)
        value = [_decode(kind[1:-1], item, item_node, f"{label}[{i}]", path, problems) if isinstance(item, dict)
                 else item for i, (item, item_node) in enumerate(zip(value, nodes, strict=False))]
    elif kind == "map" and isinstance(value, dict) and isinstance(before, dict):
        value = {**before, **value}
    obj.fields[name], obj.keys[name], obj.nodes[name], obj.labels[name] = value, key_node, value_node, label


def _shape_problem(kind: str, value) -> str:
    """Why encoding/json cannot decode ``value`` into a field of ``kind`` at all ("" when it can, as far as the
    value's shape goes); the checks below look closer at the value the decoder keeps."""
    if value is None:
        return ""
    if kind in ("scalar", "pointer"):
        return f"expected a single value, found {_type_name(value)}" if isinstance(value, list | dict | _Obj) else ""
    if kind == "list" or kind.startswith("["):
        return "" if isinstance(value, list) else f"expected a list, found {_type_name(value)}"
    return "" if isinstance(value, dict | _Obj) else f"expected a mapping, found {_type_name(value)}"


def parse_spec(text: str, path: str) -> Spec | Problem:
    """A spec, or the one problem that stops it from being read at all (bad syntax, not a mapping).

    Problems that leave the spec readable (wrong kind, no devices, duplicate device names, a field of the wrong
    type, an unknown cdiVersion or one too low for what the spec uses, a relative host path) are kept in
    ``Spec.problems`` so the caller can still report what the spec contains. A ``.json`` spec is read as JSON (tab
    indentation included); its node tree, for line numbers, comes from the same text with tabs as spaces (valid
    JSON has tabs only between tokens). Every field is read through :func:`_decode`, as the runtime reads it.
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

    problems: list[Problem] = []
    spec = _decode("spec", data, root, "", path, problems)
    kind = spec.get("kind")
    kind_line = _line(spec.keys.get("kind"))
    if not isinstance(kind, str) or not kind:
        problems.append(Problem(path, kind_line or 1, f"no 'kind' (expected kind: {NVIDIA_KIND})"))
        kind = ""
    elif not _KIND_RE.fullmatch(kind):
        problems.append(Problem(path, kind_line, f"kind {kind!r} is not of the form vendor.com/class "
                                                 f"(expected {NVIDIA_KIND})"))
    version, version_problem = _cdi_version(spec, path)
    if version_problem is not None:
        problems.append(version_problem)

    edits = [("containerEdits", spec.get("containerEdits"), spec.nodes.get("containerEdits"))] \
        if "containerEdits" in spec else []
    devices, dev_problems, dev_edits = _devices(spec, path)
    problems += dev_problems
    edits += dev_edits
    host_paths: list[str] = []
    versions: list[str] = []
    for where, value, node in edits:
        problems += _dependencies(where, value, node, path, host_paths, versions)
    return Spec(path, version, kind, kind_line, tuple(devices), tuple(dict.fromkeys(host_paths)),
                tuple(dict.fromkeys(versions)), tuple(problems))


def _release(version: str) -> str | None:
    """The released version ``version`` names ("v0.5.0" and "0.5.0" are 0.5.0), None for any other text."""
    bare = version[1:] if version.startswith("v") else version
    return bare if bare in KNOWN_CDI_VERSIONS else None


def _cdi_version(spec: _Obj, path: str) -> tuple[str, Problem | None]:
    """cdiVersion as written (the scalar's source text: ``0.5`` unquoted stays "0.5", never the float 0.5), and
    what makes the runtime refuse it: unknown (ValidateVersion's "invalid version"), or lower than what the
    spec's content needs (its "the spec version must be at least")."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    node, value = spec.nodes.get("cdiVersion"), spec.get("cdiVersion")
    line = _line(spec.keys.get("cdiVersion")) or 1
    if value is None:
        return "", Problem(path, line, "no 'cdiVersion' (nvidia-ctk writes e.g. cdiVersion: 0.5.0)")
    text = node.value if isinstance(node, yaml.ScalarNode) else value
    if not isinstance(text, str) or isinstance(value, list | dict):
        return "", Problem(path, line, f"cdiVersion: expected a version string such as 0.5.0, found "
                                       f"{type(value).__name__}")
    found = _release(text)
    if found is None:
        return text, Problem(path, line, f"unknown cdiVersion {text!r}: CDI runtimes read only the released "
                                         f"versions ({', '.join(KNOWN_CDI_VERSIONS)})")
    need, what, where = _required_version(spec)
    if KNOWN_CDI_VERSIONS.index(found) >= KNOWN_CDI_VERSIONS.index(need):
        return text, None
    at = f" at line {where}" if where else ""
    return text, Problem(path, line, f"cdiVersion {text} is too low: {what}{at} needs cdiVersion {need} or later, "
                                     f"and CDI refuses the whole spec below that (\"the spec version must be at "
                                     f"least v{need}\"); regenerate the spec (nvidia-ctk writes the version "
                                     f"its content needs) or set cdiVersion: {need}")


def _required_version(spec: _Obj) -> tuple[str, str, int | None]:
    """The lowest cdiVersion the spec's content allows, what needs it and that thing's line (specs-go/version.go
    MinimumRequiredVersion: the newest version one of requiresV110 ... requiresV040 finds a feature of, else
    the earliest). The first feature found of that version is named."""
    needs = list(_needs(spec))
    if not needs:
        return EARLIEST_CDI_VERSION, "every spec", None
    top = max(KNOWN_CDI_VERSIONS.index(v) for v, _, _ in needs)
    return next((v, what, line) for v, what, line in needs if KNOWN_CDI_VERSIONS.index(v) == top)


def _needs(spec: _Obj) -> Iterator[tuple[str, str, int | None]]:
    """Each thing in ``spec`` that needs a cdiVersion above the earliest, as (version, what, line), by the rules
    of specs-go/version.go (requiresV040 to requiresV110) over the values the decoder keeps."""
    devices = [d for d in spec.get("devices") or () if isinstance(d, _Obj)] \
        if isinstance(spec.get("devices"), list) else []
    scopes = [("containerEdits", spec.get("containerEdits"))]
    scopes += [(f"{_device_label(d, i)}.containerEdits", d.get("containerEdits")) for i, d in enumerate(devices)]
    scopes = [(where, e) for where, e in scopes if isinstance(e, _Obj)]
    for where, edits in scopes:  # 1.1.0: netDevices; intelRdt's schemata or enableMonitoring
        rdt = edits.get("intelRdt")
        if isinstance(rdt, _Obj):
            if rdt.get("schemata") is not None:
                yield "1.1.0", f"{where}.intelRdt.schemata", _line(rdt.keys.get("schemata"))
            if rdt.get("enableMonitoring") is True:
                yield "1.1.0", f"{where}.intelRdt.enableMonitoring", _line(rdt.keys.get("enableMonitoring"))
        if isinstance(edits.get("netDevices"), list) and edits.get("netDevices"):
            yield "1.1.0", f"{where}.netDevices", _line(edits.keys.get("netDevices"))
    for where, edits in scopes:  # 0.7.0: intelRdt, additionalGids
        if edits.get("intelRdt") is not None:
            yield "0.7.0", f"{where}.intelRdt", _line(edits.keys.get("intelRdt"))
        if isinstance(edits.get("additionalGids"), list) and edits.get("additionalGids"):
            yield "0.7.0", f"{where}.additionalGids", _line(edits.keys.get("additionalGids"))
    owners = [("the spec's annotations", spec)]  # 0.6.0: annotations, a '.' in the kind's class
    owners += [(f"{_device_label(d, i)}.annotations", d) for i, d in enumerate(devices)]
    for where, obj in owners:
        if isinstance(obj.get("annotations"), dict) and obj.get("annotations"):
            yield "0.6.0", where, _line(obj.keys.get("annotations"))
    kind = spec.get("kind")
    if isinstance(kind, str) and "." in kind.partition("/")[2]:
        yield "0.6.0", f"a '.' in the class of kind {kind!r}", _line(spec.keys.get("kind"))
    for d in devices:  # 0.5.0: a device name starting with a digit, a device node's hostPath
        name = d.get("name")
        text = str(name) if isinstance(name, str | int) and not isinstance(name, bool) else ""
        if text[:1] in tuple("0123456789"):
            yield "0.5.0", f"a device name starting with a digit ({text!r})", _line(d.keys.get("name"))
    for where, edits in scopes:
        for i, node in enumerate(_objects(edits.get("deviceNodes"))):
            if node.get("hostPath") not in (None, ""):
                yield "0.5.0", f"{where}.deviceNodes[{i}].hostPath", _line(node.keys.get("hostPath"))
    for where, edits in scopes:  # 0.4.0: a mount's type
        for i, mount in enumerate(_objects(edits.get("mounts"))):
            if mount.get("type") not in (None, ""):
                yield "0.4.0", f"{where}.mounts[{i}].type", _line(mount.keys.get("type"))


def _objects(value) -> list[_Obj]:
    return [v for v in value if isinstance(v, _Obj)] if isinstance(value, list) else []


def _device_label(device: _Obj, index: int) -> str:
    name = device.get("name")
    return f"devices[{name}]" if isinstance(name, str | int) and not isinstance(name, bool) and name != "" \
        else f"devices[{index}]"


def _devices(spec: _Obj, path: str) -> tuple[list[Device], list[Problem], list[tuple]]:
    raw = spec.get("devices")
    if not isinstance(raw, list) or not raw:
        return [], [Problem(path, _line(spec.keys.get("devices")) or 1, "no devices: the spec lists no GPU, so "
                                                                        "nothing can be requested from it")], []
    nodes = _seq(spec.nodes.get("devices")) or [None] * len(raw)
    devices: list[Device] = []
    problems: list[Problem] = []
    edits: list[tuple] = []
    seen: dict[str, int | None] = {}
    for item, node in zip(raw, nodes, strict=False):
        line = _line(node)
        if not isinstance(item, _Obj) or not isinstance(item.get("name"), str | int) or item.get("name") == "":
            problems.append(Problem(path, line, "a device without a name"))
            continue
        name = str(item.get("name"))
        line = _line(item.keys.get("name")) or line
        if name in seen:
            problems.append(Problem(path, line, f"duplicate device name {name!r} (first at line {seen[name]})"))
            continue
        seen[name] = line
        if not _DEVICE_NAME_RE.fullmatch(name):
            problems.append(Problem(path, line, f"device name {name!r}: CDI names are ASCII letters, digits and "
                                                f"'_', '-', '.', ':', starting and ending with a letter or digit"))
        edit = item.get("containerEdits")
        edit_node = item.nodes.get("containerEdits")
        if "containerEdits" in item:
            edits.append((f"devices[{name}].containerEdits", edit, edit_node or node))
        if edit is None or (isinstance(edit, _Obj) and not any(_filled(edit.get(f)) for f in _EDIT_FIELDS)):
            # container-device-interface pkg/cdi/device.go Device.validate: "invalid device, empty device edits"
            # (an absent containerEdits too); the runtime then refuses the whole spec, every device in it
            problems.append(Problem(path, _line(edit_node) or _line(item.keys.get("containerEdits")) or line,
                                    f"device {name!r} has no containerEdits (no {', '.join(_EDIT_FIELDS)}): CDI "
                                    f"refuses the whole spec for it"))
        dnodes = ()
        if isinstance(edit, _Obj):
            dnodes = tuple(d.get("path") for d in _objects(edit.get("deviceNodes")) if isinstance(d.get("path"), str))
        devices.append(Device(name, line, dnodes))
    return devices, problems, edits


# What a containerEdits can hold (container-device-interface specs-go/config.go ContainerEdits); one of them
# non-empty makes a device's edits non-empty (pkg/cdi/container-edits.go ContainerEdits.isEmpty: a list with an
# entry, or an intelRdt at all, even an empty one).
_EDIT_FIELDS = ("env", "deviceNodes", "hooks", "mounts", "additionalGids", "intelRdt", "netDevices")


def _filled(value) -> bool:
    return isinstance(value, _Obj) or bool(value)


def _env_problem(value) -> str:
    """Why ``value`` is not an environment entry CDI takes ("" when it is): container-device-interface
    pkg/cdi/container-edits.go ValidateEnv refuses an entry without '=' after at least one character."""
    if not isinstance(value, str):
        return f"expected a string KEY=VALUE, found {_type_name(value)}"
    if value.find("=") <= 0:
        return f"{value!r} is not KEY=VALUE: CDI refuses the whole spec for it"
    return ""


def _type_name(value) -> str:
    if isinstance(value, _Obj):
        return "a mapping"
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
    if not isinstance(edits, _Obj):
        return [Problem(path, _line(node), f"{where}: expected a mapping (env, deviceNodes, mounts, hooks), "
                                           f"found {_type_name(edits)}")]
    problems: list[Problem] = []

    def entries(field: str) -> list[tuple[int, object, object]]:
        value = edits.get(field)
        key = edits.keys.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            problems.append(Problem(path, _line(key) or _line(node), f"{where}.{field}: expected a list, "
                                                                     f"found {_type_name(value)}"))
            return []
        vnodes = _seq(edits.nodes.get(field)) or [key] * len(value)
        return [(i, v, n) for i, (v, n) in enumerate(zip(value, vnodes, strict=False))]

    def bad(n, message: str) -> None:
        problems.append(Problem(path, _line(n), f"{where}.{message}"))

    def strings(field: str, item: _Obj, n, label: str) -> list[str]:
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
        if not isinstance(m, _Obj):
            bad(n, f"mounts[{i}]: expected a mapping with hostPath and containerPath, found {_type_name(m)}")
            continue
        host = m.get("hostPath")
        if (why := _host_path_problem(host)):
            bad(n, f"mounts[{i}].hostPath: {why}")
        else:
            paths.append(host)
            for rx in (_LIB_VERSION, _FW_VERSION):
                if (mv := rx.search(host)) is not None:
                    versions.append(mv.group(1))
        if not isinstance(m.get("containerPath"), str) or not m.get("containerPath"):
            bad(n, f"mounts[{i}].containerPath: expected a path, found {_type_name(m.get('containerPath'))}")
        strings("options", m, n, f"mounts[{i}]")
    for i, d, n in entries("deviceNodes"):
        if not isinstance(d, _Obj):
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
        if not isinstance(h, _Obj):
            bad(n, f"hooks[{i}]: expected a mapping with hookName, path and args, found {_type_name(h)}")
            continue
        if h.get("hookName") not in HOOK_NAMES:
            bad(n, f"hooks[{i}].hookName: expected one of {', '.join(HOOK_NAMES)}, found {h.get('hookName')!r}")
        if (why := _host_path_problem(h.get("path"))):
            bad(n, f"hooks[{i}].path: {why}")
        else:
            paths.append(h.get("path"))
        for arg in strings("args", h, n, f"hooks[{i}]"):
            for mv in _HOOK_VERSION.finditer(arg):
                versions.append(mv.group(1))
        for j, env in enumerate(strings("env", h, n, f"hooks[{i}]")):
            if (why := _env_problem(env)):
                bad(n, f"hooks[{i}].env[{j}]: {why}")
    return problems


_NODE_TYPES = ("", "b", "c", "u", "p")  # container-device-interface pkg/cdi/container-edits.go DeviceNode.Validate


def _device_node_problem(node: _Obj) -> str:
    """What DeviceNode.Validate (container-device-interface pkg/cdi/container-edits.go) refuses ("" when fine): no
    container ``path`` (also when hostPath is given), a type other than b, c, u, p, permissions other than letters
    of "rwm" or "none"."""
    if not isinstance(node.get("path"), str) or not node.get("path"):
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
