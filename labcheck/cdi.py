"""Parse CDI specs (``nvidia-ctk cdi generate`` output) and ``nvidia-ctk cdi list``.

Pure functions: a spec's text in, a :class:`Spec` (or the problems that make it unusable, each with
the line it is on) out. Reading the folders and checking that mounted files exist is the probe's job
(labcheck.probes.cdi). Line numbers come from PyYAML's node marks, so a problem names the line an
attendee has to look at rather than only the file.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import string
import struct
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
# the YAML step (go.yaml.in/yaml/v2, strict) refuses a key written twice, also one a merge key (``<<``) set
# already (kubernetes-sigs/yaml#46). encoding/json matches a key to a field case-insensitively, and every key that
# matches a field sets it again, so of `deviceNodes:` and `DeviceNodes:` in one mapping the one last in sorted
# order stays ("deviceNodes": lower case sorts after upper case; golang/go#43664 shows the exact match does not
# win). A value of the wrong Go type is an error (UnmarshalTypeError) that refuses the spec, except that the YAML
# step first turns a number or true/false bound for a string into that string (yaml.go convertToJSONableObject:
# `name: 7` is the name "7", `env: [1]` the entry "1"). _decode applies these rules to every field of every object.
# A .json spec goes through the same YAML step (JSON is YAML), so the same rules hold for it.

# Go's encoding/json compares a key with a field name under Unicode simple case folding (fold.go foldName /
# foldRune). Against the ASCII field names of specs-go that is ASCII case plus the two runes whose fold set holds
# an ASCII letter: U+212A KELVIN SIGN (k) and U+017F LATIN SMALL LETTER LONG S (s).
_FOLD = str.maketrans({**{c: c.lower() for c in string.ascii_uppercase}, "\u212a": "k", "\u017f": "s"})

# Each object's fields and the Go type each decodes into (specs-go/config.go; os.FileMode is a uint32, int is 64
# bits), which decides what is accepted and what null and a second spelling of the field do (encoding/json
# Unmarshal): a string, number or bool ("string", "int64", "bool") is replaced, and null leaves it; a pointer
# ("*uint32", "*int") is replaced, and null empties it; a list ("[]string", "[]*mount", "[]device") is replaced,
# and null empties it; a map ("map[string]string") is merged key by key, and null empties it; a struct (an object
# name) is decoded into again, so two spellings merge, and null leaves it; a pointer to one ("*intelRdt") merges
# too, and null empties it.
_FIELDS: dict[str, dict[str, str]] = {
    "spec": {"cdiVersion": "string", "kind": "string", "annotations": "map[string]string", "devices": "[]device",
             "containerEdits": "edits"},
    "device": {"name": "string", "annotations": "map[string]string", "containerEdits": "edits"},
    "edits": {"env": "[]string", "deviceNodes": "[]*deviceNode", "netDevices": "[]*netDevice", "hooks": "[]*hook",
              "mounts": "[]*mount", "intelRdt": "*intelRdt", "additionalGids": "[]uint32"},
    "deviceNode": {"path": "string", "hostPath": "string", "type": "string", "major": "int64", "minor": "int64",
                   "fileMode": "*uint32", "permissions": "string", "uid": "*uint32", "gid": "*uint32"},
    "mount": {"hostPath": "string", "containerPath": "string", "options": "[]string", "type": "string"},
    "hook": {"hookName": "string", "path": "string", "args": "[]string", "env": "[]string", "timeout": "*int"},
    "intelRdt": {"closID": "string", "l3CacheSchema": "string", "memBwSchema": "string", "schemata": "[]string",
                 "enableMonitoring": "bool"},
    "netDevice": {"hostInterfaceName": "string", "name": "string"},
}
# What each object looks like, for the message that finds something else in its place.
_OBJECT_WORDS = {"spec": "a mapping with cdiVersion, kind and devices", "device": "a mapping with name and "
                 "containerEdits", "edits": "a mapping (env, deviceNodes, mounts, hooks)", "deviceNode": "a mapping "
                 "with path", "mount": "a mapping with hostPath and containerPath", "hook": "a mapping with hookName, "
                 "path and args", "intelRdt": "a mapping (closID, schemata, ...)", "netDevice": "a mapping with "
                 "hostInterfaceName and name"}
_INT_RANGES = {"int64": (-2**63, 2**63 - 1), "int": (-2**63, 2**63 - 1), "uint32": (0, 2**32 - 1)}
_ABSENT = object()
_BAD = object()  # a list entry of the wrong type: the decoder refused it (its problem is said), the checks skip it


@dataclass
class _Obj:
    """One object of a spec (the spec, a device, a containerEdits, a mount...) as the runtime decodes it: each
    field under specs-go's name for it, whatever case it was written in, holding the value the decoder keeps
    (an _Obj for an object, a list of them for a list of objects, else the plain Go value: a number or true/false
    bound for a string is that string). ``keys`` and ``nodes`` are the YAML key and value nodes of that value, for
    line numbers (None in a JSON spec PyYAML cannot read); ``labels`` the field as written with its place
    ("containerEdits.DeviceNodes"), for messages; ``bad`` the fields a spelling of which had the wrong type (that
    problem is said once, by the decoder: the checks that look at values skip them)."""

    node: Any
    fields: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)

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
    when there is one (it keeps keys written twice, which ``value`` has lost; PyYAML has already copied the keys of
    a merge key into it). Nesting is bounded by the schema (four levels), so this never recurses deeply.
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
    seen: dict[str, Any] = {}
    for key, key_node, child_node in pairs:
        name = by_fold.get(key.translate(_FOLD)) if isinstance(key, str) else None
        if name is None:
            problems.append(Problem(path, _line(key_node) or _line(node), f"{label}: unknown field {_q(key)} (CDI "
                                    f"refuses the whole spec; fields here: {', '.join(fields)})"))
        elif key in seen:
            problems.append(Problem(path, _line(key_node), f"{label}: {_twice(key, seen[key], key_node, node)}"))
        else:
            seen[key] = key_node
            known.append((key, name, key_node, child_node))
    for key, name, key_node, child_node in sorted(known, key=lambda k: k[0]):
        child = value.get(key) if isinstance(value, dict) else None
        _set(obj, name, fields[name], child, key_node, child_node, f"{where}.{key}" if where else key, path,
             problems)
    return obj


def _twice(key: str, first, again, mapping) -> str:
    """Why a key met twice in one mapping refuses the spec, naming the merge key when one of the two came from it
    (PyYAML copies a merged mapping's keys in front of the mapping's own: a first key outside the mapping)."""
    inside = mapping is not None and first is not None and again is not None and \
        mapping.start_mark.index <= first.start_mark.index <= mapping.end_mark.index
    if inside:
        return f"{_q(key)} is written twice (CDI refuses the whole spec)"
    return (f"{_q(key)} is set twice, by a merge key (<<, from line {_line(first)}) and again here: CDI's strict "
            f"YAML decoder refuses a key a merge has set already (kubernetes-sigs/yaml#46) and so the whole spec; "
            f"drop one of the two")


def _set(obj: _Obj, name: str, kind: str, value, key_node, value_node, label: str, path: str,
         problems: list[Problem]) -> None:
    """Field ``name`` of ``obj`` after the decoder meets one more key for it (written as ``label``): the Go value
    it decodes to, or a problem when it has the wrong type (encoding/json then leaves the field as it was)."""
    obj.keys.setdefault(name, key_node)
    obj.labels.setdefault(name, label)
    if value is None and not _null_empties(kind):  # null leaves a string, number, bool or struct as it was
        return
    before = obj.fields.get(name)
    decoded, why = (None, "") if value is None else _go_value(kind, value, value_node, label, path, problems, before)
    if why:
        problems.append(Problem(path, _line(value_node) or _line(key_node), f"{label}: {why}"))
        obj.bad.add(name)
        return
    obj.fields[name], obj.keys[name], obj.nodes[name], obj.labels[name] = decoded, key_node, value_node, label


def _null_empties(kind: str) -> bool:
    """Whether JSON null empties a field of Go type ``kind`` (a pointer, list or map); else it leaves it."""
    return kind.startswith(("*", "[]", "map["))


def _go_value(kind: str, value, node, label: str, path: str, problems: list[Problem], before=None) -> tuple[Any, str]:
    """(the Go value ``value`` decodes to as Go type ``kind``, "") or (None, why it cannot): an object is decoded
    (into ``before`` when that is one: a second spelling merges), a list entry by entry (a wrong entry is its own
    problem, said here, and stays in the list as _BAD so the entries keep their indices)."""
    if kind.startswith("*"):
        return _go_value(kind[1:], value, node, label, path, problems, before)
    if kind in _FIELDS:
        if not isinstance(value, dict):
            return None, f"expected {_OBJECT_WORDS[kind]}, found {_type_name(value)}"
        return _decode(kind, value, node, label, path, problems, before if isinstance(before, _Obj) else None), ""
    if kind.startswith("[]"):
        if not isinstance(value, list):
            return None, f"expected {_list_words(kind)}, found {_type_name(value)}"
        return [_go_entry(kind[2:], item, item_node, f"{label}[{i}]", path, problems) for i, (item, item_node)
                in enumerate(zip(value, _seq(node) or [None] * len(value), strict=False))], ""
    if kind.startswith("map["):
        return _go_map(value, node, label, path, problems, before)
    return _go_scalar(kind, _go_plain(value, node))


def _go_entry(kind: str, value, node, label: str, path: str, problems: list[Problem]) -> Any:
    """One list entry: null is the Go zero value ("" for a string, an empty device), except in a list of pointers,
    where it is a nil the runtime's validation dereferences (the spec cannot be used)."""
    if value is None:
        if kind.startswith("*"):
            problems.append(Problem(path, _line(node), f"{label}: expected {_OBJECT_WORDS[kind[1:]]}, found nothing "
                                                       f"(null): the CDI runtime cannot use an empty entry"))
            return _BAD
        return _Obj(node) if kind in _FIELDS else {"string": "", "bool": False}.get(kind, 0)
    decoded, why = _go_value(kind, value, node, label, path, problems)
    if why:
        problems.append(Problem(path, _line(node), f"{label}: {why}"))
        return _BAD
    return decoded


def _go_map(value, node, label: str, path: str, problems: list[Problem], before) -> tuple[Any, str]:
    """A map[string]string (annotations): merged into ``before`` key by key; a value that is no string is a problem."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    if not isinstance(value, dict):
        return None, f"expected a mapping of names to strings, found {_type_name(value)}"
    nodes = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)} \
        if isinstance(node, yaml.MappingNode) else {}
    out = dict(before) if isinstance(before, dict) else {}
    for key, item in value.items():
        text = _go_string(key) or str(key)
        if item is None:
            out[text] = ""
            continue
        decoded, why = _go_scalar("string", _go_plain(item, nodes.get(str(key))))
        if why:
            problems.append(Problem(path, _line(nodes.get(str(key))) or _line(node), f"{label}.{key}: {why}"))
        else:
            out[text] = decoded
    return out, ""


def _list_words(kind: str) -> str:
    elem = kind[2:]
    return {"string": "a list of strings", "uint32": "a list of whole numbers from 0 to 4294967295"}.get(
        elem, "a list")


def _go_scalar(kind: str, value) -> tuple[Any, str]:
    """``value`` (a plain value, as go-yaml resolved it) as Go's ``kind``: a string (a number or true/false becomes
    one: sigs.k8s.io/yaml), a whole number in the type's range (12.0 is 12: it reaches encoding/json as 12), a bool.
    """
    if value is None:
        return None, ""
    if kind == "string":
        text = _go_string(value)
        return (text, "") if text is not None else (None, f"expected a string, found {_type_name(value)}")
    if kind == "bool":
        return (value, "") if isinstance(value, bool) else \
            (None, f"expected true or false, found {fsio.shown(value, 40, kinds=True)}")
    low, high = _INT_RANGES[kind]
    number = value if isinstance(value, int) and not isinstance(value, bool) else \
        int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 1e21 else None
    if number is None or not low <= number <= high or (low == 0 and isinstance(value, float)
                                                       and math.copysign(1, value) < 0):
        return None, f"expected a whole number from {low} to {high}, found {fsio.shown(value, 40, kinds=True)}"
    return number, ""


_q = fsio.shown  # a value quoted for a message, bounded: a spec's value can be a line of megabytes


def _go_string(value) -> str | None:
    """The string the YAML step makes of a plain value bound for a Go string (sigs.k8s.io/yaml
    convertToJSONableObject: strconv.FormatInt, FormatFloat(v, 'g', -1, 32), "true"/"false"); None for a list or
    mapping, which no string field takes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float32_text(value)
    return None


def _go_float32_text(x: float) -> str:
    """Go's strconv.FormatFloat(x, 'g', -1, 32): the shortest digits that read back as the same float32, in
    exponent form when the exponent is below -4 or 6 and above ("1.5", "1e+06", "1.8446744e+19")."""
    if math.isnan(x):
        return "NaN"
    try:
        f = _float32(x)
    except OverflowError:
        f = math.copysign(math.inf, x)
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    text = next(t for p in range(9) if _float32(float(t := f"{abs(f):.{p}e}")) == abs(f))
    mantissa, _, exp = text.partition("e")
    digits, e, sign = mantissa.replace(".", "").rstrip("0") or "0", int(exp), "-" if f < 0 else ""
    if e < -4 or e >= 6:
        return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if e < 0:
        return f"{sign}0.{'0' * (-e - 1)}{digits}"
    return f"{sign}{digits[:e + 1].ljust(e + 1, '0')}{'.' + digits[e + 1:] if len(digits) > e + 1 else ''}"


def _float32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


# go-yaml v2's resolve.go: how a plain (unquoted, untagged) scalar is read, where PyYAML's YAML 1.1 rules differ
# (PyYAML reads `1:0` as the base-60 number 60, `2001-01-01` as a date, `1e3` and `0o17` as text, `y` as text).
_GO_PLAIN = {**dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
             **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
             **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
             **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
             **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
             **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf)}
_GO_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _go_plain(value, node) -> Any:
    """``value`` as go-yaml v2 reads it: PyYAML's value, except for a plain scalar whose type PyYAML implied from
    its text (an explicit tag or quotes keep PyYAML's value), which is read again by go-yaml's rules."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    if not isinstance(node, yaml.ScalarNode) or node.style or \
            yaml.resolver.Resolver().resolve(yaml.ScalarNode, node.value, (True, False)) != node.tag:
        return value
    text = node.value
    if text in _GO_PLAIN:
        return _GO_PLAIN[text]
    if text[:1] == ".":
        return _go_float(text) if _GO_YAML_FLOAT.fullmatch(text) else text
    if text[:1] not in tuple("+-0123456789"):
        return text
    # A timestamp (2001-01-01) reaches a Go interface{} as its text (decode.go, "backward compatibility"): the
    # text, as is everything that reads as no number.
    plain = text.replace("_", "")
    number = _go_int(plain)
    if number is None and _GO_YAML_FLOAT.fullmatch(plain):
        number = _go_float(plain)
    return text if number is None else number


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), or ParseUint for what only fits 64 bits unsigned; None when neither reads it.
    Base 0: "0x", "0o", "0b" prefixes, and a leading 0 for octal ("017" is 15, "08" no integer)."""
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text[1:]) if text[:1] == "+" else (1, text)
    prefix = digits[:2].lower()
    base, digits = ({"0x": 16, "0o": 8, "0b": 2}[prefix], digits[2:]) if prefix in ("0x", "0o", "0b") else \
        (8, digits[1:]) if len(digits) > 1 and digits[0] == "0" else (10, digits)
    if not digits or any(c not in "0123456789abcdef"[:base] for c in digits.lower()):
        return None
    number = sign * int(digits, base)
    fits = -2**63 <= number < 2**63 or (text[:1] not in "+-" and 0 <= number < 2**64)
    return number if fits else None


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat of a decimal text, None when out of float64 range (go-yaml then keeps the text)."""
    number = float(text)
    return None if math.isinf(number) else number


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
        text = text.removeprefix("\ufeff")  # the runtime reads a .json spec as YAML, which skips a byte order mark
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
                                               f"found {_type_name(data)}")

    problems: list[Problem] = []
    spec = _decode("spec", data, root, "", path, problems)
    kind = spec.get("kind") or ""
    kind_line = _line(spec.keys.get("kind"))
    if "kind" in spec.bad:
        pass  # of the wrong type: the decoder said so
    elif not kind:
        problems.append(Problem(path, kind_line or 1, f"no 'kind' (expected kind: {NVIDIA_KIND})"))
    elif not _KIND_RE.fullmatch(kind):
        problems.append(Problem(path, kind_line, f"kind {_q(kind)} is not of the form vendor.com/class "
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
    if "cdiVersion" in spec.bad:
        return "", None  # of the wrong type (a list, a mapping): the decoder said so
    if value is None:
        return "", Problem(path, line, "no 'cdiVersion' (nvidia-ctk writes e.g. cdiVersion: 0.5.0)")
    text = node.value if isinstance(node, yaml.ScalarNode) else value  # as written: `1.0` is "1" to Go
    found = _release(text)
    if found is None:
        return text, Problem(path, line, f"unknown cdiVersion {_q(text)}: CDI runtimes read only the released "
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
        yield "0.6.0", f"a '.' in the class of kind {_q(kind)}", _line(spec.keys.get("kind"))
    for d in devices:  # 0.5.0: a device name starting with a digit, a device node's hostPath
        text = d.get("name") or ""
        if text[:1] in tuple("0123456789"):
            yield "0.5.0", f"a device name starting with a digit ({_q(text)})", _line(d.keys.get("name"))
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
    return f"devices[{name}]" if name and len(name) <= 60 else f"devices[{index}]"


def _devices(spec: _Obj, path: str) -> tuple[list[Device], list[Problem], list[tuple]]:
    raw = spec.get("devices")
    if "devices" in spec.bad and not raw:
        return [], [], []  # of the wrong type: the decoder said so
    if not raw:
        return [], [Problem(path, _line(spec.keys.get("devices")) or 1, "no devices: the spec lists no GPU, so "
                                                                        "nothing can be requested from it")], []
    nodes = _seq(spec.nodes.get("devices")) or [None] * len(raw)
    devices: list[Device] = []
    problems: list[Problem] = []
    edits: list[tuple] = []
    seen: dict[str, int | None] = {}
    for index, (item, node) in enumerate(zip(raw, nodes, strict=False)):
        line = _line(node)
        if not isinstance(item, _Obj) or "name" in item.bad:
            continue  # of the wrong type: the decoder said so
        name = item.get("name") or ""
        if not name:
            problems.append(Problem(path, line, "a device without a name"))
            continue
        line = _line(item.keys.get("name")) or line
        if name in seen:
            problems.append(Problem(path, line, f"duplicate device name {_q(name)} (first at line {seen[name]})"))
            continue
        seen[name] = line
        if not _DEVICE_NAME_RE.fullmatch(name):
            problems.append(Problem(path, line, f"device name {_q(name)}: CDI names are ASCII letters, digits and "
                                                f"'_', '-', '.', ':', starting and ending with a letter or digit"))
        edit = item.get("containerEdits")
        edit_node = item.nodes.get("containerEdits")
        if "containerEdits" in item:
            edits.append((f"{_device_label(item, index)}.containerEdits", edit, edit_node or node))
        if "containerEdits" in item.bad:
            pass  # of the wrong type: the decoder said so
        elif edit is None or (isinstance(edit, _Obj) and not any(_filled(edit.get(f)) for f in _EDIT_FIELDS)):
            # container-device-interface pkg/cdi/device.go Device.validate: "invalid device, empty device edits"
            # (an absent containerEdits too); the runtime then refuses the whole spec, every device in it
            problems.append(Problem(path, _line(edit_node) or _line(item.keys.get("containerEdits")) or line,
                                    f"device {_q(name)} has no containerEdits (no {', '.join(_EDIT_FIELDS)}): CDI "
                                    f"refuses the whole spec for it"))
        dnodes = ()
        if isinstance(edit, _Obj):
            dnodes = tuple(d.get("path") for d in _objects(edit.get("deviceNodes")) if d.get("path"))
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
    if value.find("=") <= 0:
        return f"{_q(value)} is not KEY=VALUE: CDI refuses the whole spec for it"
    return ""


def _type_name(value) -> str:
    return "a mapping" if isinstance(value, _Obj) else fsio.value_kind(value)


def _host_path_problem(value: str | None) -> str:
    """Why ``value`` is not a usable host path ("" when it is): CDI paths on the host are absolute."""
    if not value:
        return f"expected an absolute path, found {'nothing' if value is None else repr(value)}"
    if not value.startswith("/"):
        return f"host path {_q(value)} is relative: CDI host paths must be absolute"
    if ".." in value.split("/"):
        return f"host path {_q(value)} contains '..': write the path without it"
    return ""


def _dependencies(where: str, edits, node, path: str, paths: list[str], versions: list[str]) -> list[Problem]:
    """Check one containerEdits as the runtime's validation does (container-device-interface pkg/cdi/
    container-edits.go ContainerEdits.Validate; the types were checked by the decoder, and what it refused is
    skipped here) and collect the host files it relies on and the driver versions it names."""
    if not isinstance(edits, _Obj):
        return []  # of the wrong type: the decoder said so
    problems: list[Problem] = []

    def entries(field: str) -> list[tuple[int, Any, Any]]:
        value = edits.get(field) or []
        vnodes = _seq(edits.nodes.get(field)) or [edits.keys.get(field)] * len(value)
        return [(i, v, n) for i, (v, n) in enumerate(zip(value, vnodes, strict=False)) if v is not _BAD]

    def bad(n, message: str) -> None:
        problems.append(Problem(path, _line(n), f"{where}.{message}"))

    def strings(item: _Obj, field: str) -> list[str]:
        return [v for v in item.get(field) or () if v is not _BAD]

    for i, env, n in entries("env"):
        if (why := _env_problem(env)):
            bad(n, f"env[{i}]: {why}")
    for i, m, n in entries("mounts"):
        host = m.get("hostPath")
        if "hostPath" in m.bad:
            pass
        elif (why := _host_path_problem(host)):
            bad(n, f"mounts[{i}].hostPath: {why}")
        else:
            paths.append(host)
            for rx in (_LIB_VERSION, _FW_VERSION):
                if (mv := rx.search(host)) is not None:
                    versions.append(mv.group(1))
        if "containerPath" not in m.bad and not m.get("containerPath"):
            bad(n, f"mounts[{i}].containerPath: expected a path, found nothing (CDI refuses an empty one)")
    for i, d, n in entries("deviceNodes"):
        field = "hostPath" if d.get("hostPath") or "hostPath" in d.bad else "path"  # "" is no hostPath to Go
        if field in d.bad:
            pass
        elif (why := _host_path_problem(d.get(field))):
            bad(n, f"deviceNodes[{i}].{field}: {why}")
        else:
            paths.append(d.get(field))
        if (why := _device_node_problem(d)):
            bad(n, f"deviceNodes[{i}]: {why}")
    for i, h, n in entries("hooks"):
        if "hookName" not in h.bad and h.get("hookName") not in HOOK_NAMES:
            bad(n, f"hooks[{i}].hookName: expected one of {', '.join(HOOK_NAMES)}, found {_q(h.get('hookName'))}")
        if "path" in h.bad:
            pass
        elif (why := _host_path_problem(h.get("path"))):
            bad(n, f"hooks[{i}].path: {why}")
        else:
            paths.append(h.get("path"))
        for arg in strings(h, "args"):
            for mv in _HOOK_VERSION.finditer(arg):
                versions.append(mv.group(1))
        for j, env in enumerate(strings(h, "env")):
            if (why := _env_problem(env)):
                bad(n, f"hooks[{i}].env[{j}]: {why}")
    problems += [Problem(path, _line(n), f"{where}.{why}") for n, why in _net_device_problems(entries("netDevices"))]
    rdt = edits.get("intelRdt")
    if isinstance(rdt, _Obj) and "closID" not in rdt.bad and (why := _clos_id_problem(rdt.get("closID") or "")):
        bad(rdt.nodes.get("closID") or edits.nodes.get("intelRdt"), f"intelRdt.closID: {why}")
    return problems


def _net_device_problems(entries: list[tuple[int, Any, Any]]) -> Iterator[tuple[Any, str]]:
    """(node, why) for each netDevices entry ValidateNetDevices refuses: an empty hostInterfaceName or name, or one
    another entry has already."""
    seen: dict[str, dict[str, int]] = {"hostInterfaceName": {}, "name": {}}
    for i, dev, node in entries:
        for name in ("hostInterfaceName", "name"):
            value = dev.get(name)
            if name in dev.bad:
                continue
            if not value:
                yield node, f"netDevices[{i}].{name}: expected a name, found nothing (CDI refuses an empty one)"
            elif value in seen[name]:
                yield node, (f"netDevices[{i}].{name}: {_q(value)} is netDevices[{seen[name][value]}]'s already "
                             f"(CDI refuses a duplicate)")
            else:
                seen[name][value] = i


def _clos_id_problem(clos: str) -> str:
    """Why IntelRdt.Validate refuses ``clos`` ("" when fine): it must be a Linux file name, or "/" (the root CLOS)."""
    if clos == "/" or not (len(clos) >= 4096 or clos in (".", "..") or "/" in clos or "\n" in clos):
        return ""
    return f"{_q(clos)} is not a file name (nor '/'): CDI refuses it"


_NODE_TYPES = ("", "b", "c", "u", "p")  # container-device-interface pkg/cdi/container-edits.go DeviceNode.Validate


def _device_node_problem(node: _Obj) -> str:
    """What DeviceNode.Validate (container-device-interface pkg/cdi/container-edits.go) refuses ("" when fine): no
    container ``path`` (also when hostPath is given), a type other than b, c, u, p, permissions other than letters
    of "rwm" or "none". A field of the wrong type was said by the decoder and is skipped."""
    if "path" not in node.bad and not node.get("path"):
        return "path: expected the device's path in the container, found nothing"
    kind = node.get("type")
    if kind is not None and kind not in _NODE_TYPES:
        return f"type {_q(kind)}: expected one of b, c, u, p (or none)"
    perms = node.get("permissions")
    if perms is not None and not (perms == "none" or not perms.strip("rwm")):
        return f"permissions {_q(perms)}: expected letters of rwm (e.g. rw) or none"
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
