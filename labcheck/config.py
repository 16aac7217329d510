"""Lab configuration: documented thresholds and paths, optionally overridden by a YAML file.

A bad file never stops the run: :func:`load` returns the defaults plus a list of problems, and the
``lab_config_valid`` check turns those problems into a failing verdict with file, line and fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


_FIELDS = {f.name: f for f in dataclasses.fields(LabConfig)}


def load(path: str | Path | None) -> tuple[LabConfig, list[ConfigProblem]]:
    """Read ``path`` over the defaults. Unknown keys and wrong types are problems, not crashes."""
    if path is None:
        return LabConfig(), []
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LabConfig(), [
            ConfigProblem(str(p), None, "lab config file not found", f"create {p} or drop --lab-config")
        ]
    except OSError as exc:
        return LabConfig(), [ConfigProblem(str(p), None, f"cannot read: {exc}", f"check permissions on {p}")]
    return parse(text, str(p))


def parse(text: str, source: str = "lab.yaml") -> tuple[LabConfig, list[ConfigProblem]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return LabConfig(), [
            ConfigProblem(source, line, f"not valid YAML: {problem}", f"fix the YAML syntax at {source}:{line}")
        ]
    if data is None:
        return LabConfig(), []
    if not isinstance(data, dict):
        return LabConfig(), [
            ConfigProblem(source, 1, f"expected a mapping of settings, found {type(data).__name__}",
                          f"write {source} as 'key: value' lines, e.g. 'min_docker: \"24.0\"'")
        ]
    lines = _key_lines(text)
    values: dict = {}
    problems: list[ConfigProblem] = []
    for key, value in data.items():
        f = _FIELDS.get(str(key))
        if f is None:
            problems.append(ConfigProblem(source, lines.get(str(key)), f"unknown setting {key!r}",
                                          f"remove it; known settings: {', '.join(sorted(_FIELDS))}"))
            continue
        default = f.default
        try:
            values[f.name] = _coerce(value, default)
        except (TypeError, ValueError):
            problems.append(ConfigProblem(
                source, lines.get(str(key)),
                f"{key}: expected {type(default).__name__}, found {value!r}",
                f"set {key} to a value like {default!r}"))
    return LabConfig(**values), problems


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


def _key_lines(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if line and not line[0].isspace() and ":" in line and not line.startswith("#"):
            out.setdefault(line.split(":", 1)[0].strip().strip("'\""), i)
    return out
