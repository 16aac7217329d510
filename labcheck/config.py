"""Lab configuration: documented thresholds and paths, optionally overridden by a YAML file.

A bad file never stops the run: :func:`load` returns the defaults plus a list of problems, and the
``lab_config_valid`` check turns those problems into a failing verdict with file, line and fix.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from labcheck import fsio, versions

GiB = 1024**3


@dataclass(frozen=True)
class LabConfig:
    # Module 0 thresholds (../shared/seeds/module0-prerequisites.md)
    min_kernel: str = "5.15"
    min_docker: str = "24.0"
    # Docker engine and NVIDIA runtime (labcheck.probes.docker). docker_host "" = DOCKER_HOST or the default socket.
    docker_host: str = ""
    docker_daemon_json: str = "/etc/docker/daemon.json"
    docker_pidfile: str = "/var/run/docker.pid"
    docker_runtime_name: str = "nvidia"
    probe_image: str = "labcheck-probe:busybox"
    busybox_paths: tuple[str, ...] = ("/bin/busybox", "/usr/bin/busybox")
    min_kind: str = "0.24.0"
    min_helm: str = "3.10"
    min_driver: str = "535"
    min_compute_capability: str = "6.0"
    min_ctk: str = "1.14"
    cdi_dirs: tuple[str, ...] = ("/etc/cdi", "/var/run/cdi")
    mps_pipe_dir: str = "/tmp/nvidia-mps"
    mps_log_dir: str = "/var/log/nvidia-mps"
    cdi_spec_path: str = "/etc/cdi/nvidia.yaml"  # where --fix-host writes `nvidia-ctk cdi generate` output
    # Module 1
    cluster_name: str = "workshop-dra"
    # The workshop's kindest/node:v1.34.0, pinned to the digest kind v0.30.0's release notes list for it: a tag
    # can point at a build for another kind release, the digest cannot.
    node_image: str = "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
    kind_config_path: str = "manifests/kind-config.yaml"
    shm_min_bytes: int = 8 * GiB
    # Every external command's timeout, seconds
    command_timeout: float = 30.0
    cluster_create_timeout: float = 600.0
    # Where the suite records what it created (ownership: --teardown deletes only those) and its locks
    state_dir: str = "~/.local/state/dra-labcheck"
    # The kind CLI (a name on PATH or a path)
    kind_binary: str = "kind"
    extra_lib_dirs: tuple[str, ...] = field(default=("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib"))
    extra_bin_dirs: tuple[str, ...] = field(default=("/usr/local/nvidia/bin",))

    @property
    def node_name(self) -> str:
        return f"{self.cluster_name}-control-plane"


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    line: int | None
    message: str
    fix: str
    outcome: str = ""  # what the suite does meanwhile (lab config: default used, setting ignored, kept as written)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


_FIELDS = {f.name: f for f in dataclasses.fields(LabConfig)}
MAX_BYTES = 256 * 1024  # a lab config is a few dozen lines
VERSION_FIELDS = ("min_kernel", "min_docker", "min_kind", "min_helm", "min_driver", "min_compute_capability",
                  "min_ctk")
TIMEOUT_FIELDS = ("command_timeout", "cluster_create_timeout")
# kind names the node container "<cluster>-control-plane", also its hostname: an RFC 1123 label of at most 63
# characters, so the cluster name is lowercase letters, digits and '-' and at most 63 - 14 characters.
_KIND_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,47}[a-z0-9])?$")
_VERSION = re.compile(r"^v?[0-9]+(\.[0-9]+)*$")  # ASCII digits: "0.٢٤.0" would be read as version 0
# Folders the suite must never use as its state folder: it writes lock and record files there, and a record
# there is the proof of ownership --teardown acts on (a world-writable /tmp would let anyone forge one).
SYSTEM_DIRS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media",
                         "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr",
                         "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var", "/var/lib", "/var/run",
                         "/var/tmp", "/var/log"})


def load(path: str | Path | None) -> tuple[LabConfig, list[ConfigProblem]]:
    """Read ``path`` over the defaults. A FIFO, device, folder, oversize or non-UTF-8 file, bad YAML, an alias
    bomb, unknown keys, wrong types and values out of range are problems (file, line, fix), never crashes."""
    if path is None:
        return LabConfig(), []
    p = Path(path)
    try:
        text = fsio.read_text(p, MAX_BYTES)
    except FileNotFoundError:
        return LabConfig(), [
            ConfigProblem(str(p), None, "lab config file not found", f"create {p} or drop --lab-config",
                          WHOLE_FILE_DEFAULTS)
        ]
    except fsio.FileProblem as exc:
        return LabConfig(), [ConfigProblem(str(p), exc.line, exc.message, exc.fix or f"check {p}", WHOLE_FILE_DEFAULTS)]
    return parse(text, str(p))


def parse(text: str, source: str = "lab.yaml") -> tuple[LabConfig, list[ConfigProblem]]:
    try:
        root = fsio.compose_yaml(text, source)
        data = fsio.construct_yaml(root, source)
    except fsio.YamlError as exc:
        where = fsio.where(source, exc.line)
        return LabConfig(), [ConfigProblem(source, exc.line, exc.problem, f"fix the YAML at {where}",
                                             WHOLE_FILE_DEFAULTS)]
    if data is None:
        return LabConfig(), []
    if not isinstance(data, dict):
        return LabConfig(), [
            ConfigProblem(source, 1, f"expected a mapping of settings, found {type(data).__name__}",
                          f"write {source} as 'key: value' lines, e.g. 'min_docker: \"24.0\"'",
                          WHOLE_FILE_DEFAULTS)
        ]
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    nodes = {str(k.value): (k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    values: dict = {}
    problems: list[ConfigProblem] = []
    for key, value in data.items():
        key_node, value_node = nodes.get(str(key), (None, None))
        line = fsio.line_of(key_node)
        f = _FIELDS.get(str(key))
        if f is None:
            problems.append(ConfigProblem(source, line, f"unknown setting {key!r}",
                                          f"remove it; known settings: {', '.join(sorted(_FIELDS))}", "ignored"))
            continue
        default = f.default
        if f.name in VERSION_FIELDS and isinstance(value_node, yaml.ScalarNode) and not isinstance(value, bool):
            value = value_node.value  # as written: `min_helm: 3.10` is "3.10", never the float 3.1
        try:
            coerced = _coerce(value, default)
        except (TypeError, ValueError):
            problems.append(ConfigProblem(
                source, line, f"{key}: expected {_kind(default)}, found {_shown(value)}",
                f"set {key} to a value like {default!r}", _default_used(default)))
            continue
        bad = _value_problem(f.name, coerced, default)
        if bad:
            # The default stands in for a value that cannot be used. Not for cluster_name (see below).
            outcome = KEPT_AS_WRITTEN if f.name == "cluster_name" else _default_used(default)
            problems.append(ConfigProblem(source, line, f"{key}: {bad[0]}", bad[1], outcome))
            if f.name != "cluster_name":
                # The default stands in for a value that cannot be used. Not for cluster_name: the default would
                # point the suite at another cluster (possibly someone else's); docker and kind refuse it instead.
                continue
        values[f.name] = coerced
    return LabConfig(**values), problems


WHOLE_FILE_DEFAULTS = "the file is not used: the documented defaults apply"
KEPT_AS_WRITTEN = "kept as written (a default would point the suite at another cluster): docker and kind refuse it"


def _default_used(default) -> str:
    shown = ", ".join(default) if isinstance(default, tuple) else default
    return f"the documented default {shown!r} is used instead" if shown != "" else "the documented default is used"


def _value_problem(name: str, value, default) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) for a well-typed value the suite cannot use, else None."""
    if name in TIMEOUT_FIELDS:
        if not math.isfinite(value) or value <= 0:
            return (f"expected a finite number of seconds > 0, found {value!r}", f"set {name}: {default:g}")
    elif name in VERSION_FIELDS:
        if not _VERSION.match(value) or versions.parse(value) is None:  # None: a part past 18 digits
            return (f"expected a version such as {default!r}, found {value!r}", f'set {name}: "{default}"')
    elif name == "cluster_name":
        if not _KIND_NAME.match(value):
            return (f"{value!r} is not a valid kind cluster name: lowercase letters, digits and '-', starting and "
                    "ending with a letter or digit, at most 49 characters (the node is <name>-control-plane, a "
                    "63-character host name)",
                    f"set cluster_name: {default}")
    elif name == "state_dir":
        real = os.path.realpath(os.path.expanduser(value)) if value else ""
        if not value or real in SYSTEM_DIRS or real == os.path.realpath(os.path.expanduser("~")):
            return (f"{value!r} ({real or 'empty'}) is a system or shared folder: the suite keeps its lock and "
                    "ownership records there", f"set state_dir: {default}")
    elif name == "shm_min_bytes" and value <= 0:
        return (f"expected a number of bytes > 0, found {value!r}", f"set {name}: {default}")
    return None


def _kind(default) -> str:
    if isinstance(default, tuple):
        return "a list of strings"
    return {bool: "true or false", int: "a whole number", float: "a number"}.get(type(default), "a string")


def _shown(value) -> str:
    """A value for a message, bounded: a long list (or an alias-built one) is never printed whole."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _coerce(value, default):
    if isinstance(default, tuple):
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TypeError
    return value
