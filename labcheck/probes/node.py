"""Probe the Kind node container through the docker CLI, every call with a timeout.

WHY the CLI (not the SDK): kind itself drives Docker through the same CLI, so when kind works
these calls work; each one goes through labcheck.cmd.run (argv list, no shell, timeout). Names
and paths are passed as separate arguments, never pasted into a shell string: the fixed in-node
``sh -c`` scripts below take their inputs as positional parameters ("$@").
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from labcheck import cdi, cmd, containerd, docker_endpoint, fsio, mps, versions
from labcheck.probes.cdi import CdiFacts, SpecFile
from labcheck.probes.mps import PS_ARGV, MpsFacts, host_mps_on, unless_busy
from labcheck.remedy import this_host

DOCKER = "docker"
# Where NVIDIA's DRA kubelet plugin looks for NVML and nvidia-smi under its driver root, in this order
# (NVIDIA/k8s-dra-driver-gpu cmd/gpu-kubelet-plugin/root.go, v25.8.1; ../shared/FIELD-NOTES.md).
DRA_LIB_DIRS = ("/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64",
                "/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu")
DRA_BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")


def engine_env(docker_host: str) -> dict[str, str] | None:
    """The environment override that points the docker CLI (and kind, which drives it) at the lab config's
    ``docker_host``; None keeps the caller's environment (DOCKER_HOST or the default socket)."""
    return {"DOCKER_HOST": docker_host} if docker_host else None


def docker_run(argv: Sequence[str], *, timeout: float, docker_host: str = "", input: str | None = None  # noqa: A002
               ) -> cmd.CmdResult:
    """One docker or kind CLI call (``argv`` starts with the binary) against the configured engine: the one way
    module 1 reaches the engine, so none of its calls reaches an engine on another machine (:func:`elsewhere`):
    such a call is not run, and its result says why."""
    remote = elsewhere(docker_host, timeout)
    if remote:
        return cmd.CmdResult(tuple(argv), None, error=f"not run: the engine at {remote} is on another machine, and "
                                                      "the lab must run on this host", timeout=timeout)
    return cmd.run(argv, timeout=timeout, input=input, extra_env=engine_env(docker_host))


def elsewhere(docker_host: str, timeout: float) -> str:
    """The URL of the engine ``docker_host`` (else DOCKER_HOST, else the default socket) names when it runs on
    another machine, "" when it runs on this one. WHY module 1 asks: the kind config mounts this host's driver
    files and devices, and the node checks compare the node with this host's GPUs."""
    endpoint = docker_endpoint.chosen(docker_host)
    return endpoint if docker_endpoint.remote_host(endpoint, docker_endpoint.resolver(timeout)) else ""


def exec_argv(container: str, argv: Sequence[str], env: Mapping[str, str] | None = None, *,
              interactive: bool = False, docker: str = DOCKER) -> list[str]:
    out = [docker, "exec"]
    if interactive:
        out.append("-i")
    for k, v in (env or {}).items():
        out += ["-e", f"{k}={v}"]
    return [*out, container, *argv]


def node_exec(container: str, argv: Sequence[str], env: Mapping[str, str] | None = None, *,
              input: str | None = None, timeout: float = 30.0, docker: str = DOCKER,  # noqa: A002
              docker_host: str = "") -> cmd.CmdResult:
    return docker_run(exec_argv(container, argv, env, interactive=input is not None, docker=docker),
                      timeout=timeout, input=input, docker_host=docker_host)


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
    remote: str = ""  # the engine's URL when it runs on another machine: nothing was inspected


def inspect(container: str, timeout: float = 30.0, docker: str = DOCKER, *, docker_host: str = "") -> NodeState:
    """The node container as the engine ``docker_host`` (else DOCKER_HOST, else the default socket) sees it.

    An engine on another machine is not asked: a node there has that machine's GPUs and files, not this host's
    (:func:`labcheck.docker_endpoint.remote_host`); every node check then says why it saw no node."""
    remote = elsewhere(docker_host, timeout)
    if remote:
        return NodeState(container, False, error=f"not looked for: the engine at {remote} is on another machine",
                         remote=remote)
    res = docker_run([docker, "inspect", "--type", "container", container], timeout=timeout, docker_host=docker_host)
    if not res.ok:
        if res.rc is not None and ("No such" in res.output or "no such" in res.output):
            return NodeState(container, False)
        return NodeState(container, False, error=res.describe())
    try:
        data = fsio.parse_json(res.stdout, f"`docker inspect {container}`")[0]  # the one strict JSON reader
    except (fsio.FileProblem, IndexError, TypeError, KeyError):
        return NodeState(container, False, error=f"`docker inspect {container}` printed no JSON")
    if not isinstance(data, dict):
        return NodeState(container, False, error=f"`docker inspect {container}` printed {type(data).__name__}, "
                                                 f"expected a JSON object")
    st = data.get("State") or {}
    mounts = tuple((m.get("Source", ""), m.get("Destination", ""), bool(m.get("RW", True)))
                   for m in data.get("Mounts") or [])
    host = data.get("HostConfig") or {}
    devices = tuple((d.get("PathOnHost", ""), d.get("PathInContainer", "")) for d in host.get("Devices") or [])
    return NodeState(container, True, bool(st.get("Running")), str(st.get("Status", "")), data.get("Id", ""),
                     (data.get("Config") or {}).get("Image", ""), int(st.get("Pid") or 0),
                     (data.get("Config") or {}).get("Labels") or {}, mounts, devices=devices,
                     privileged=bool(host.get("Privileged")))


# Resolve each path inside the node: "OK<TAB>path<TAB>real" (a regular file), "DIR<TAB>..." (a directory, e.g. what
# Docker makes of a missing bind-mount source), "NONE<TAB>path<TAB>" (nothing there) or "BAD<TAB>..." (a dangling
# link or something else). Tab-separated: paths may hold spaces.
_RESOLVE = ('for p do r=$(readlink -f -- "$p" 2>/dev/null); '
            'if [ -n "$r" ] && [ -f "$r" ]; then s=OK; elif [ -n "$r" ] && [ -d "$r" ]; then s=DIR; '
            'elif [ -e "$p" ] || [ -L "$p" ]; then s=BAD; else s=NONE; r=; fi; '
            'printf "%s\\t%s\\t%s\\n" "$s" "$p" "$r"; done')
_KINDS = {"OK": "file", "DIR": "dir", "NONE": "missing", "BAD": "other"}


@dataclass(frozen=True)
class NodeFile:
    path: str
    real: str
    ok: bool
    kind: str = "file"  # "file" | "dir" | "missing" | "other" (what the path resolves to in the node)


def resolve_files(container: str, paths: Sequence[str], timeout: float = 30.0,
                  docker: str = DOCKER, *, docker_host: str = "") -> tuple[dict[str, NodeFile], cmd.CmdResult]:
    res = node_exec(container, ["sh", "-c", _RESOLVE, "sh", *paths], timeout=timeout, docker=docker,
                    docker_host=docker_host)
    out: dict[str, NodeFile] = {}
    for line in res.stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) >= 2 and parts[0] in _KINDS:
            out[parts[1]] = NodeFile(parts[1], parts[2] if len(parts) > 2 else "", parts[0] == "OK",
                                     _KINDS[parts[0]])
    return out, res


_LIST_SPECS = 'for d do for f in "$d"/*.yaml "$d"/*.json; do [ -f "$f" ] && echo "$f"; done; done; true'


def cdi_spec_files(container: str, dirs: Sequence[str], timeout: float = 30.0, docker: str = DOCKER,
                   *, docker_host: str = ""
                   ) -> tuple[list[str], cmd.CmdResult]:
    res = node_exec(container, ["sh", "-c", _LIST_SPECS, "sh", *dirs], timeout=timeout, docker=docker,
                    docker_host=docker_host)
    return [ln.strip() for ln in res.stdout.splitlines() if ln.strip()], res


def cdi_facts(container: str, dirs: Sequence[str], timeout: float = 30.0, *, docker_host: str = ""
              ) -> tuple[CdiFacts, cmd.CmdResult]:
    """The CDI specs in the node's ``dirs``, each read there and parsed by module 0's parser (labcheck.cdi), so
    the node's CDI check judges them by the same rules as the host's. The listing result comes along."""
    paths, res = cdi_spec_files(container, dirs, timeout, docker_host=docker_host)
    files = []
    for path in paths:
        r = read_file(container, path, timeout, docker_host=docker_host)
        if not r.ok:
            files.append(SpecFile(path, None, cdi.Problem(path, None, f"cannot read in the node: {r.describe()}")))
            continue
        parsed = cdi.parse_spec(r.stdout, path)
        files.append(SpecFile(path, None, parsed) if isinstance(parsed, cdi.Problem) else SpecFile(path, parsed, None))
    return CdiFacts(tuple(dirs), tuple(files), shell=this_host()), res  # the fixes run on the host


CONTAINERD_DUMP = ("containerd", "config", "dump")


def containerd_cdi(container: str, timeout: float = 30.0, *, docker_host: str = ""
                   ) -> tuple[containerd.CriCdi | None, cmd.CmdResult]:
    """``containerd config dump`` in the node, and what it says about CDI (labcheck.containerd.dump_cdi; None when the
    command failed: the result says why). WHY the dump: it is the node's own containerd merging its defaults (CDI
    off in 1.7, on in 2.x) with /etc/containerd/config.toml as kind patched it, with no daemon to ask."""
    res = node_exec(container, list(CONTAINERD_DUMP), timeout=timeout, docker_host=docker_host)
    return (containerd.dump_cdi(res.stdout) if res.ok else None), res


def read_file(container: str, path: str, timeout: float = 30.0, docker: str = DOCKER,
              *, docker_host: str = "") -> cmd.CmdResult:
    return node_exec(container, ["cat", "--", path], timeout=timeout, docker=docker, docker_host=docker_host)


def processes(container: str, timeout: float = 30.0, docker: str = DOCKER,
              *, docker_host: str = "") -> tuple[list[mps.Proc], cmd.CmdResult]:
    """The node's processes with full command lines (procps ``ps -eo``; busybox takes ``-o`` alone)."""
    fmt = "pid,ppid,stat,comm,args"
    # -ww: procps cuts lines at 80 columns when not writing to a terminal, which can drop the "-d" of a
    # daemon in a long folder (labcheck.probes.mps.PS_ARGV); busybox then gets the plain form below.
    res = node_exec(container, ["ps", "-ww", "-eo", fmt], timeout=timeout, docker=docker, docker_host=docker_host)
    if not res.ok and not res.timed_out:
        res = node_exec(container, ["ps", "-o", fmt], timeout=timeout, docker=docker, docker_host=docker_host)
    return (mps.parse_ps(res.stdout) if res.ok else []), res


def parse_df_k(text: str) -> int | None:
    """Size in bytes from ``df -k PATH``: the 1K-blocks column, the word after the filesystem name (POSIX; the
    line may wrap after the name). None when that word is no number in ASCII digits ("²", "١٢"): the next
    number on the line is the space used, never the size."""
    tokens = " ".join(text.splitlines()[1:]).split()
    size = versions.ascii_int(tokens[1]) if len(tokens) > 1 else None
    return size * 1024 if size is not None else None


def shm_bytes(container: str, timeout: float = 30.0, docker: str = DOCKER,
              *, docker_host: str = "") -> tuple[int | None, cmd.CmdResult]:
    res = node_exec(container, ["df", "-k", "/dev/shm"], timeout=timeout, docker=docker, docker_host=docker_host)
    return (parse_df_k(res.stdout) if res.ok else None), res


def mps_query(container: str, control: str, query: str, env: Mapping[str, str], timeout: float = 30.0,
              docker: str = DOCKER, *, docker_host: str = "") -> cmd.CmdResult:
    """``echo QUERY | nvidia-cuda-mps-control`` in the node (stdin through ``docker exec -i``; asked again while
    the node's daemon is busy, as on the host)."""
    return unless_busy(lambda: node_exec(container, [control], env, input=query + "\n", timeout=timeout,
                                         docker=docker, docker_host=docker_host))


def command_path(container: str, name: str, timeout: float = 30.0, *, docker_host: str = "") -> cmd.CmdResult:
    """``command -v NAME`` in the node with the exec's default environment (the image's PATH, nothing added):
    what ``docker exec NODE NAME`` will run."""
    return node_exec(container, ["sh", "-c", 'command -v -- "$1"', "sh", name], timeout=timeout,
                     docker_host=docker_host)


_WRITABLE = 'mkdir -p -- "$1" && t="$1/.labcheck-write-test.$$" && : > "$t" && rm -f -- "$t"'


def dir_writable(container: str, path: str, timeout: float = 30.0, *, docker_host: str = "") -> cmd.CmdResult:
    """Create ``path`` if needed and write (then remove) a file in it, inside the node."""
    return node_exec(container, ["sh", "-c", _WRITABLE, "sh", path], timeout=timeout, docker_host=docker_host)


_DEVICES = ('for p do if [ -c "$p" ]; then s=CHR; elif [ -d "$p" ]; then s=DIR; elif [ -e "$p" ]; then s=OTHER; '
            'else s=NONE; fi; printf "%s\\t%s\\n" "$s" "$p"; done')


def device_nodes(container: str, paths: Sequence[str], timeout: float = 30.0, *, docker_host: str = ""
                 ) -> tuple[dict[str, str], cmd.CmdResult]:
    """path => "CHR" (character device) | "DIR" | "OTHER" | "NONE", as the node sees it."""
    res = node_exec(container, ["sh", "-c", _DEVICES, "sh", *paths], timeout=timeout, docker_host=docker_host)
    out = {}
    for line in res.stdout.splitlines():
        kind, _, path = line.partition("\t")
        if kind in ("CHR", "DIR", "OTHER", "NONE"):
            out[path] = kind
    return out, res


# Ask the node's own glibc loader where it finds a library: ``LD_PRELOAD=LIB ld.so --list BINARY`` prints the
# preloaded object with the path the loader resolved (as ldd does), using the node's cache and default folders.
# LD_PRELOAD is set for the loader's run only, never for the shell. A program the loader cannot run (a script) is
# skipped for the next one.
_LOADER = ('lib=$1; shift; for ld in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1; do '
           '[ -x "$ld" ] || continue; for b do [ -f "$b" ] || continue; '
           'LD_PRELOAD=$lib "$ld" --list "$b" && exit 0; done; '
           'echo "no dynamically linked program to run the loader on among: $*" >&2; exit 3; done; '
           'echo "no glibc loader (/lib64/ld-linux-x86-64.so.2, /lib/ld-linux-aarch64.so.1)" >&2; exit 127')


def loader_resolve(container: str, library: str, programs: Sequence[str], timeout: float = 30.0, *,
                   docker_host: str = "") -> cmd.CmdResult:
    """The node's loader's answer for ``library`` (run on the first of ``programs`` that exists there)."""
    return node_exec(container, ["sh", "-c", _LOADER, "sh", library, *programs], timeout=timeout,
                     docker_host=docker_host)


def parse_loader_list(text: str, library: str) -> str:
    """The path ``ld.so --list`` resolved ``library`` to ('' when it did not: "not found" or absent)."""
    for line in text.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if arrow and name == library:
            path = rest.split(" (")[0].strip()
            return path if path.startswith("/") else ""
    return ""


def ps_aux(container: str, timeout: float = 30.0, *, docker_host: str = "") -> cmd.CmdResult:
    """The seed's literal verification command, ``docker exec NODE ps aux``."""
    return node_exec(container, ["ps", "aux"], timeout=timeout, docker_host=docker_host)


# --- the host side of a shared pipe directory ---------------------------------------------------------------

TOP_FORMAT = ("-eo", "pid,args")


def parse_top_pids(text: str) -> frozenset[int] | None:
    """The PID column of ``docker top NODE -eo pid,args`` (None when the output is not that table: a header
    ``PID ...``, then one row per process whose first word is its pid in ASCII digits)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].split()[0] != "PID":
        return None
    pids = [versions.ascii_int(ln.split()[0]) for ln in lines[1:]]
    return None if None in pids else frozenset(p for p in pids if p is not None)


def top_pids(container: str, timeout: float = 30.0, docker: str = DOCKER, *, docker_host: str = ""
             ) -> tuple[frozenset[int] | None, cmd.CmdResult]:
    """The host pids of the container's processes, as ``docker top`` lists them (None: it cannot be told: no such
    container, the engine unreachable or on another machine, output not understood), and the call's result.

    WHY ``docker top``: the engine lists them (from the container's cgroup) for any user allowed to use docker; the
    kind node's MPS daemon runs as root, and a user cannot read a root process's /proc/PID/environ. Through
    :func:`docker_run`: an engine on another machine is not asked (its pids are another host's)."""
    res = docker_run([docker, "top", container, *TOP_FORMAT], timeout=timeout, docker_host=docker_host)
    return (parse_top_pids(res.stdout) if res.ok else None), res



def with_lab_node(facts: MpsFacts, container: str, timeout: float = 30.0, *, docker_host: str = "") -> MpsFacts:
    """``facts`` with the lab's kind node (``container``) and the host pids of its processes when a container's
    daemon answers on the lab's pipe folder (:attr:`MpsFacts.node_daemons_on_pipe`); as they are otherwise (no docker
    call on a host with no container daemon there). WHY: module 1 starts the node's daemon on the folder it shares
    with the host, so a second run of the suite finds it answering there in module 0."""
    if not (facts.answers and facts.containers_on_pipe and container):
        return facts
    pids, res = top_pids(container, timeout, docker_host=docker_host)
    return replace(facts, lab_node=container, node_pids=pids, node_top=res)


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
    try:  # bounded: a process's cgroup is one line per hierarchy (a dozen at most)
        text = fsio.read_text(os.path.join(proc, str(pid), "cgroup"), 64 * 1024, errors="replace")
    except (OSError, fsio.FileProblem):
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
    procs, res = host_process_list(timeout)
    # the host's own (labcheck.probes.mps.host_mps_on: not another pid namespace's), and not the node's by its cgroup
    found = [h for h in host_mps_on(procs, pipe_dir_host, daemons_only=True) if not in_container(h.proc.pid, node_id)]
    return [HostDaemon(h.proc.pid, h.pipe_dir or "") for h in found], res


def host_daemons_on(pipe_dir_host: str, node_id: str, timeout: float = 30.0) -> list[HostDaemon]:
    """MPS control daemons running on the host (not inside the node) whose pipe dir is ``pipe_dir_host``."""
    return host_daemon_scan(pipe_dir_host, node_id, timeout)[0]
