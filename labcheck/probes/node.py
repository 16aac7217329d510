"""Probe the Kind node container through the docker CLI, every call with a timeout.

WHY the CLI (not the SDK): kind itself drives Docker through the same CLI, so when kind works
these calls work; each one goes through labcheck.cmd.run (argv list, no shell, timeout). Names
and paths are passed as separate arguments, never pasted into a shell string: the fixed in-node
``sh -c`` scripts below take their inputs as positional parameters ("$@").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from labcheck import cmd, mps
from labcheck.probes.mps import PS_ARGV, read_proc_pipe_dir

DOCKER = "docker"


def exec_argv(container: str, argv: Sequence[str], env: Mapping[str, str] | None = None, *,
              interactive: bool = False, docker: str = DOCKER) -> list[str]:
    out = [docker, "exec"]
    if interactive:
        out.append("-i")
    for k, v in (env or {}).items():
        out += ["-e", f"{k}={v}"]
    return [*out, container, *argv]


def node_exec(container: str, argv: Sequence[str], env: Mapping[str, str] | None = None, *,
              input: str | None = None, timeout: float = 30.0, docker: str = DOCKER) -> cmd.CmdResult:  # noqa: A002
    return cmd.run(exec_argv(container, argv, env, interactive=input is not None, docker=docker),
                   timeout=timeout, input=input)


@dataclass(frozen=True)
class NodeState:
    name: str
    exists: bool
    running: bool = False
    status: str = ""
    id: str = ""
    image: str = ""
    pid: int = 0
    labels: dict = field(default_factory=dict)
    mounts: tuple[tuple[str, str, bool], ...] = ()  # (source, destination, rw)
    error: str = ""
    devices: tuple[tuple[str, str], ...] = ()  # (host path, container path) given with --device
    privileged: bool = False


def inspect(container: str, timeout: float = 30.0, docker: str = DOCKER) -> NodeState:
    res = cmd.run([docker, "inspect", "--type", "container", container], timeout=timeout)
    if not res.ok:
        if res.rc is not None and ("No such" in res.output or "no such" in res.output):
            return NodeState(container, False)
        return NodeState(container, False, error=res.describe())
    try:
        data = json.loads(res.stdout)[0]
    except (ValueError, IndexError, TypeError):
        return NodeState(container, False, error=f"`docker inspect {container}` printed no JSON")
    st = data.get("State") or {}
    mounts = tuple((m.get("Source", ""), m.get("Destination", ""), bool(m.get("RW", True)))
                   for m in data.get("Mounts") or [])
    host = data.get("HostConfig") or {}
    devices = tuple((d.get("PathOnHost", ""), d.get("PathInContainer", "")) for d in host.get("Devices") or [])
    return NodeState(container, True, bool(st.get("Running")), str(st.get("Status", "")), data.get("Id", ""),
                     (data.get("Config") or {}).get("Image", ""), int(st.get("Pid") or 0),
                     (data.get("Config") or {}).get("Labels") or {}, mounts, devices=devices,
                     privileged=bool(host.get("Privileged")))


# Resolve each path inside the node: "OK<TAB>path<TAB>real" or "BAD<TAB>path<TAB>real-or-empty" (paths may
# hold spaces, so tab-separated).
_RESOLVE = ('for p do r=$(readlink -f -- "$p" 2>/dev/null); '
            'if [ -n "$r" ] && [ -f "$r" ]; then s=OK; else s=BAD; fi; printf "%s\\t%s\\t%s\\n" "$s" "$p" "$r"; done')


@dataclass(frozen=True)
class NodeFile:
    path: str
    real: str
    ok: bool


def resolve_files(container: str, paths: Sequence[str], timeout: float = 30.0,
                  docker: str = DOCKER) -> tuple[dict[str, NodeFile], cmd.CmdResult]:
    res = node_exec(container, ["sh", "-c", _RESOLVE, "sh", *paths], timeout=timeout, docker=docker)
    out: dict[str, NodeFile] = {}
    for line in res.stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) >= 2 and parts[0] in ("OK", "BAD"):
            out[parts[1]] = NodeFile(parts[1], parts[2] if len(parts) > 2 else "", parts[0] == "OK")
    return out, res


_LIST_SPECS = 'for d do for f in "$d"/*.yaml "$d"/*.json; do [ -f "$f" ] && echo "$f"; done; done; true'


def cdi_spec_files(container: str, dirs: Sequence[str], timeout: float = 30.0, docker: str = DOCKER
                   ) -> tuple[list[str], cmd.CmdResult]:
    res = node_exec(container, ["sh", "-c", _LIST_SPECS, "sh", *dirs], timeout=timeout, docker=docker)
    return [ln.strip() for ln in res.stdout.splitlines() if ln.strip()], res


def read_file(container: str, path: str, timeout: float = 30.0, docker: str = DOCKER) -> cmd.CmdResult:
    return node_exec(container, ["cat", "--", path], timeout=timeout, docker=docker)


def processes(container: str, timeout: float = 30.0, docker: str = DOCKER) -> tuple[list[mps.Proc], cmd.CmdResult]:
    """The node's processes with full command lines (procps ``ps -eo``; busybox takes ``-o`` alone)."""
    fmt = "pid,ppid,stat,comm,args"
    # -ww: procps cuts lines at 80 columns when not writing to a terminal, which can drop the "-d" of a
    # daemon in a long folder (labcheck.probes.mps.PS_ARGV); busybox then gets the plain form below.
    res = node_exec(container, ["ps", "-ww", "-eo", fmt], timeout=timeout, docker=docker)
    if not res.ok and not res.timed_out:
        res = node_exec(container, ["ps", "-o", fmt], timeout=timeout, docker=docker)
    return (mps.parse_ps(res.stdout) if res.ok else []), res


def parse_df_k(text: str) -> int | None:
    """Size in bytes from ``df -k PATH`` (POSIX; the number may wrap onto a second line)."""
    tokens = " ".join(text.splitlines()[1:]).split()
    nums = [t for t in tokens if t.isdigit()]
    return int(nums[0]) * 1024 if nums else None


def shm_bytes(container: str, timeout: float = 30.0, docker: str = DOCKER) -> tuple[int | None, cmd.CmdResult]:
    res = node_exec(container, ["df", "-k", "/dev/shm"], timeout=timeout, docker=docker)
    return (parse_df_k(res.stdout) if res.ok else None), res


def mps_query(container: str, control: str, query: str, env: Mapping[str, str], timeout: float = 30.0,
              docker: str = DOCKER) -> cmd.CmdResult:
    """``echo QUERY | nvidia-cuda-mps-control`` in the node (stdin through ``docker exec -i``)."""
    return node_exec(container, [control], env, input=query + "\n", timeout=timeout, docker=docker)


# --- the host side of a shared pipe directory ---------------------------------------------------------------

def host_process_list(timeout: float = 30.0) -> tuple[list[mps.Proc], cmd.CmdResult]:
    """The host's processes and the ``ps`` result: an empty list from a failed ``ps`` is not "no process"."""
    res = cmd.run(list(PS_ARGV), timeout=timeout)  # -ww: without a terminal ps cuts lines, dropping "-d"
    return (mps.parse_ps(res.stdout) if res.ok else []), res


def host_processes(timeout: float = 30.0) -> list[mps.Proc]:
    return host_process_list(timeout)[0]


def in_container(pid: int, container_id: str, proc: str = "/proc") -> bool | None:
    """Whether host process ``pid`` runs in the container (by its cgroup path); None when unreadable."""
    if not container_id:
        return None
    try:
        with open(os.path.join(proc, str(pid), "cgroup"), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    return container_id in text


@dataclass(frozen=True)
class HostDaemon:
    pid: int
    pipe_dir: str  # "" when unknown


def host_daemon_scan(pipe_dir_host: str, node_id: str, timeout: float = 30.0
                     ) -> tuple[list[HostDaemon], cmd.CmdResult]:
    """MPS control daemons on the host (not inside the node) whose pipe dir is ``pipe_dir_host``, and the
    ``ps`` result they were read from (WHY: a ``ps`` that failed lists no daemon, which proves nothing)."""
    out = []
    want = os.path.realpath(pipe_dir_host)
    procs, res = host_process_list(timeout)
    for p in mps.control_daemons(procs):
        if in_container(p.pid, node_id):
            continue
        pd = read_proc_pipe_dir(p.pid)
        if pd is None or os.path.realpath(pd) == want:
            out.append(HostDaemon(p.pid, pd or ""))
    return out, res


def host_daemons_on(pipe_dir_host: str, node_id: str, timeout: float = 30.0) -> list[HostDaemon]:
    """MPS control daemons running on the host (not inside the node) whose pipe dir is ``pipe_dir_host``."""
    return host_daemon_scan(pipe_dir_host, node_id, timeout)[0]
