"""Probe the Docker engine and the NVIDIA runtime: CLI, engine, daemon.json and a real container.

WHY a real container: a runtime listed by ``docker info`` may still fail every container (its binary
is missing, ``nvidia-container-cli`` cannot load the driver). Only starting one proves the runtime
usable, and only seeing ``/dev/nvidia*`` (and ``nvidia-smi -L``) inside proves it hands out GPUs.

Probes never raise: every failure becomes a field a verdict in :mod:`labcheck.verdicts.docker`
can explain. Every call has a timeout (``LabConfig.command_timeout``): the docker SDK's per-request
timeout for the engine, :func:`labcheck.cmd.run` for the CLI.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import struct
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labcheck import cmd, docker_endpoint, fsio, versions
from labcheck.config import LabConfig
from labcheck.probes import docker_client

DEFAULT_ENDPOINT = docker_endpoint.DEFAULT
OWNED_LABEL = "labcheck.owned"
OWNER_HOST_LABEL = "labcheck.host"
OWNER_PID_LABEL = "labcheck.pid"
PROBE_PREFIX = "labcheck-runtime-probe-"
PULL_FALLBACK = "busybox:latest"
# The applets the probe script needs, linked to busybox in the image we build.
_APPLETS = ("sh", "ls", "sed", "cat", "echo", "true")
# Runs inside the probe container (not on the host): lists the GPU device nodes the runtime injected
# and, where the image can run it, what ``nvidia-smi -L`` (which the NVIDIA runtime injects) sees.
PROBE_SCRIPT = (
    'for d in /dev/nvidia*; do [ -e "$d" ] && echo "LABCHECK_DEV $d"; done; '
    "if command -v nvidia-smi >/dev/null 2>&1; then "
    "nvidia-smi -L >/tmp/labcheck-smi 2>&1; echo \"LABCHECK_SMI_RC $?\"; "
    "sed 's/^/LABCHECK_SMI /' /tmp/labcheck-smi; fi; "
    "echo LABCHECK_DONE"
)


# --- CLI -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CliFacts:
    """``docker --version``: client only, it never talks to the engine (so it cannot hang on one)."""

    result: cmd.CmdResult
    path: str | None
    version: str


def cli_version(stdout: str) -> str:
    """The version field of ``docker --version`` ("Docker version 20.10.24+dfsg1, build 297e128": "20.10.24+dfsg1";
    "v24.0.7" as printed), or "" when that field is not there or is no version (:func:`labcheck.versions.parse`
    reads it from its start: "Docker version ???" is none). Its own field, not "api version" or the build."""
    m = re.search(r"\bDocker version\s+(v?[0-9][^\s,]*)", stdout or "", re.IGNORECASE)
    return m.group(1) if m and versions.parse(m.group(1)) is not None else ""


def probe_cli(cfg: LabConfig) -> CliFacts:
    """The CLI's version as it prints it (:func:`cli_version`)."""
    res = cmd.run(["docker", "--version"], timeout=cfg.command_timeout)
    return CliFacts(res, cmd.which("docker"), cli_version(res.stdout) if res.ok else "")


# --- Engine ----------------------------------------------------------------------------------------

@dataclass
class EngineFacts:
    """What the engine said (or why it said nothing). ``client`` is live; keep it out of reports.

    ``remote``: the host of the engine when it runs on another machine ("" on this one). Left out, it is read from
    ``endpoint`` alone (:func:`labcheck.docker_endpoint.remote_host`); the probe also resolves the host's name.
    """

    endpoint: str
    timeout: float
    client: Any | None = None
    error: str = ""
    timed_out: bool = False
    server_version: str = ""
    api_version: str = ""
    runtimes: dict[str, dict] = field(default_factory=dict)
    default_runtime: str = ""
    info_error: str = ""
    # Only asked when the SDK could not connect: does the CLI (docker contexts!) reach an engine?
    cli_server_version: str = ""
    remote: str | None = None

    def __post_init__(self) -> None:
        if self.remote is None:
            self.remote = docker_endpoint.remote_host(self.endpoint)

    @property
    def reachable(self) -> bool:
        return self.client is not None


def endpoint(cfg: LabConfig) -> str:
    return docker_endpoint.chosen(cfg.docker_host)


def engine_elsewhere(cfg: LabConfig) -> str:
    """The host of the engine the lab config (or DOCKER_HOST) names when it is another machine, "" when it is this
    one; its name resolved as the SDK's connect resolves it, within the lab config's command_timeout."""
    return docker_endpoint.remote_host(endpoint(cfg), docker_endpoint.resolver(cfg.command_timeout))


def is_timeout(text: str) -> bool:
    low = text.lower()
    return "timed out" in low or "timeout" in low


def probe_engine(cfg: LabConfig) -> EngineFacts:
    """Ping the engine, then read its version and runtimes (``info``). An engine on another machine is asked too:
    its version shows in the report, and the checks say it is not this host's."""
    facts = EngineFacts(endpoint(cfg), cfg.command_timeout, remote=engine_elsewhere(cfg))
    conn = docker_client.connect(timeout=cfg.command_timeout, base_url=cfg.docker_host or None)
    if not conn.ok:
        facts.error = conn.error
        facts.timed_out = is_timeout(conn.error)
        if not facts.timed_out:
            facts.cli_server_version = _cli_server_version(cfg)
        return facts
    facts.client = conn.client
    try:
        version = conn.client.version()
        info = conn.client.info()
    except Exception as exc:  # the engine may die or hang between two requests
        facts.info_error = describe_exception(exc)
        return facts
    return fill_from_api(facts, version, info)


def fill_from_api(facts: EngineFacts, version: Any, info: Any) -> EngineFacts:
    """Copy what the engine's ``/version`` and ``/info`` answers say into ``facts`` (pure; the same JSON
    ``docker version --format json`` shows under "Server" and ``docker info --format json`` prints).

    WHY every field's type is checked: the answer comes from whatever listens on DOCKER_HOST (a proxy, a
    half-compatible engine, another program on the socket). An answer not shaped like Docker's API (a list
    where an object belongs, ``"Runtimes": ["runc"]``, a number for a version) is ``info_error`` naming the
    field, which the engine check reports as a failure, never an AttributeError in the probe.
    """
    problem = _api_shape_problem(version, info)
    if problem:
        facts.info_error = f"the engine's answer is not Docker's API: {problem}"
        return facts
    facts.server_version = version.get("Version") or info.get("ServerVersion") or ""
    facts.api_version = version.get("ApiVersion") or ""
    facts.runtimes = dict(info.get("Runtimes") or {})
    facts.default_runtime = info.get("DefaultRuntime") or ""
    return facts


# The fields of /version and /info the probes read, and the JSON type each has in Docker's API (null: absent).
_VERSION_STRINGS = ("Version", "ApiVersion")
_INFO_STRINGS = ("ServerVersion", "DefaultRuntime")


def _api_shape_problem(version: Any, info: Any) -> str:
    """What is not of Docker's shape in the fields read from the two answers ("" when all are)."""
    for what, answer in (("/version", version), ("/info", info)):
        if not isinstance(answer, dict):
            return f"{what} answered {_json_type(answer)}, expected an object"
    for what, answer, keys in (("/version", version, _VERSION_STRINGS), ("/info", info, _INFO_STRINGS)):
        for key in keys:
            if answer.get(key) is not None and not isinstance(answer[key], str):
                return f"{what} {key} is {_json_type(answer[key])}, expected a string"
    runtimes = info.get("Runtimes")
    if runtimes is not None and not isinstance(runtimes, dict):
        return f"/info Runtimes is {_json_type(runtimes)}, expected an object of runtimes"
    for name, rt in (runtimes or {}).items():
        if not isinstance(rt, dict):
            return f"/info Runtimes.{name} is {_json_type(rt)}, expected an object like {{\"path\": \"runc\"}}"
        if rt.get("path") is not None and not isinstance(rt["path"], str):
            return f"/info Runtimes.{name}.path is {_json_type(rt['path'])}, expected a string"
    return ""


def _cli_server_version(cfg: LabConfig) -> str:
    env = {"DOCKER_HOST": cfg.docker_host} if cfg.docker_host else None
    res = cmd.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=cfg.command_timeout,
                  extra_env=env)
    return res.stdout.strip() if res.ok else ""


def describe_exception(exc: BaseException) -> str:
    """The engine's own words when it gave some (APIError.explanation), else the exception."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return str(explanation)
    return f"{type(exc).__name__}: {exc}"


# --- the engine's process: which dockerd, run by what -----------------------------------------------

# sd_booted(3): this folder exists only while systemd is the init (PID 1); in a container, on WSL without systemd
# or under another init it is absent, and `systemctl` cannot work there.
SYSTEMD_BOOTED = "/run/systemd/system"
DOCKERD = "dockerd"


@dataclass(frozen=True)
class Dockerd:
    """The running dockerd that serves the engine, and whether systemd runs it: what decides how it is made to
    re-read daemon.json (:func:`labcheck.verdicts.docker.reload_runtimes`; the --fix-host reload uses the same).

    ``pid``: the dockerd process, None when none is known. ``found_by``: where the pid came from. ``unit``: the
    systemd service it runs in ("docker.service"), "" when systemd does not run it. ``problem``: why no pid is
    known (what was tried). ``remote``: the engine's host when it is another machine (nothing here to signal).
    ``user_unit``: the service of a user's own systemd manager it runs in (rootless Docker's "docker.service",
    driven with ``systemctl --user``), "" for none.
    """

    pid: int | None = None
    found_by: str = ""
    unit: str = ""
    problem: str = ""
    remote: str = ""
    user_unit: str = ""


def probe_dockerd(endpoint: str, pidfile: str, timeout: float, proc: str = "/proc",
                  booted: str = SYSTEMD_BOOTED) -> Dockerd:
    """Find the dockerd behind ``endpoint`` (the engine the checks talk to; "" for none) and ``pidfile`` (the lab
    config's docker_pidfile), and what runs it. Never raises.

    WHY these two sources, in this order: the process listening on the engine's unix socket IS that engine (the
    kernel says who, SO_PEERCRED: one cheap connect), whatever pidfile it was started with (dockerd --pidfile, or
    "pidfile" in daemon.json, moves it); the pidfile is what is left for tcp://localhost, or when the socket's
    listener is not dockerd (systemd's socket activation) or is in another pid namespace (pid 0). Not `pidof
    dockerd`: it lists every engine on the host (a CI engine, a rootless one) or none, and cannot say which one the
    checks examined. Each candidate counts only when /proc says it runs ``dockerd`` (a stale pidfile names a pid
    that may belong to another program by now).
    """
    host = docker_endpoint.remote_host(endpoint, docker_endpoint.resolver(timeout))
    if host:
        return Dockerd(problem=f"the engine at {endpoint} runs on {host}, not on this machine", remote=host)
    tried = []
    sock = docker_endpoint.unix_socket(endpoint)
    if sock:
        pid, why = _socket_peer(sock, timeout)
        if pid is not None:
            why = _not_dockerd(pid, proc)
            if not why:
                return Dockerd(pid, f"the process listening on {sock}", systemd_unit(pid, proc, booted),
                               user_unit=user_unit(pid, proc, booted))
        tried.append(f"socket {sock}: {why}")
    pid = fsio.read_pid(pidfile)  # docker_pidfile comes from the lab config: a FIFO there must not block
    why = _pidfile_problem(pidfile) if pid is None else _not_dockerd(pid, proc)
    if not why:
        return Dockerd(pid, f"pidfile {pidfile}", systemd_unit(pid, proc, booted),
                       user_unit=user_unit(pid, proc, booted))
    tried.append(f"pidfile {pidfile}: {why}")
    return Dockerd(problem="; ".join(tried))


def _socket_peer(path: str, timeout: float) -> tuple[int | None, str]:
    """The pid of the process listening on unix socket ``path`` (SO_PEERCRED: its credentials when it called
    listen()), or None and why not. Connecting starts no request: the engine sees a connection close."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            pid, _uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                               struct.calcsize("3i")))
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        return None, f"cannot connect ({getattr(exc, 'strerror', None) or exc})"
    if pid <= 0:  # the listener is in a pid namespace this process cannot see (the suite runs in a container)
        return None, "its listener is in another pid namespace"
    return pid, ""


def _not_dockerd(pid: int, proc: str) -> str:
    """"" when process ``pid`` runs dockerd, else what it is."""
    try:
        comm = fsio.read_text(f"{proc}/{pid}/comm", 64, errors="replace").strip()
    except FileNotFoundError:
        return f"no process {pid} is running"
    except (OSError, fsio.FileProblem) as exc:
        return f"cannot tell what process {pid} is ({exc})"
    return "" if comm == DOCKERD else f"process {pid} is {comm!r}, not {DOCKERD}"


def _pidfile_problem(path: str) -> str:
    """Why ``path`` gave no pid (fsio.read_pid said None)."""
    try:
        fsio.read_text(path, 64, follow_symlinks=False)
    except FileNotFoundError:
        return "absent"
    except fsio.FileProblem as exc:
        return exc.message  # the path is named already
    except (OSError, ValueError) as exc:
        return str(exc)
    return "holds no process id"


def systemd_unit(pid: int, proc: str = "/proc", booted: str = SYSTEMD_BOOTED) -> str:
    """The systemd system service process ``pid`` runs in, when systemd is the init and that service is Docker's
    ("docker.service", Snap's "snap.docker.dockerd.service"); "" otherwise.

    WHY the process's own cgroup, not `systemctl is-active docker`: on a systemd host a dockerd started by hand (a
    second engine, a CI one) is not docker.service's, and restarting docker.service would not reload it. systemd
    puts each service's processes in a cgroup named after the unit (/system.slice/docker.service), so
    /proc/PID/cgroup says which unit runs this very process: its systemd line ("name=systemd" on cgroup v1 and
    hybrid hosts, the only line "0::" on v2). Taken only when the unit's cgroup is the process's own (a dockerd
    in a container has /docker/<id> or a .scope there), names docker (not a CI runner's service that started
    dockerd itself: restarting it would do more than reload the engine) and is not under a user's own manager
    (user@UID.service: rootless Docker, `systemctl --user`). All else gets the SIGHUP, which works whatever runs
    dockerd.
    """
    parts = _systemd_cgroup(pid, proc, booted)
    if parts and parts[-1].endswith(".service") and "docker" in parts[-1] and \
            not any(p.startswith("user@") for p in parts):
        return parts[-1]
    return ""


def user_unit(pid: int, proc: str = "/proc", booted: str = SYSTEMD_BOOTED) -> str:
    """The service of a user's systemd manager (``user@UID.service``) process ``pid`` runs in when it is Docker's:
    rootless Docker's docker.service (``systemctl --user``, not the system's ``sudo systemctl``); "" otherwise."""
    parts = _systemd_cgroup(pid, proc, booted)
    if parts and parts[-1].endswith(".service") and "docker" in parts[-1] and \
            any(p.startswith("user@") and p.endswith(".service") for p in parts[:-1]):
        return parts[-1]
    return ""


def _systemd_cgroup(pid: int, proc: str, booted: str) -> list[str]:
    """The parts of the systemd cgroup path of process ``pid`` ([] when systemd is not the init or it is unreadable):
    its systemd line ("name=systemd" on cgroup v1 and hybrid hosts, the only line "0::" on v2)."""
    if not os.path.isdir(booted):
        return []
    try:
        text = fsio.read_text(f"{proc}/{pid}/cgroup", 64 * 1024, errors="replace")
    except (OSError, ValueError, fsio.FileProblem):
        return []
    paths = {}
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controllers == "name=systemd" or (hid == "0" and controllers == ""):
            paths[controllers] = path
    # hybrid hosts have both: the v1 systemd tree follows a container's processes, the unified one may not
    return [p for p in paths.get("name=systemd", paths.get("", "")).split("/") if p]


# --- daemon.json -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DaemonJson:
    path: str
    exists: bool
    data: dict | None = None
    error: str = ""
    line: int | None = None
    column: int | None = None

    @property
    def runtimes(self) -> dict:
        rt = (self.data or {}).get("runtimes")
        return rt if isinstance(rt, dict) else {}


def read_daemon_json(path: str | Path) -> DaemonJson:
    """Read and parse Docker's daemon.json; a bad file is a value with line and column, never an exception."""
    p = str(path)
    try:
        text = fsio.read_text(p)  # a FIFO, device or folder is refused without blocking
    except FileNotFoundError:
        return DaemonJson(p, False)
    except fsio.FileProblem as exc:
        return DaemonJson(p, True, error=exc.message, line=exc.line, column=1 if exc.line else None)
    return parse_daemon_json(text, p)


def parse_daemon_json(text: str, path: str) -> DaemonJson:
    """daemon.json read as dockerd reads it (:func:`labcheck.fsio.parse_json`: NaN, Infinity, nesting a hundred
    levels deep are refused, as dockerd refuses them, never a crash)."""
    try:
        data = fsio.parse_json(text, path)
    except fsio.FileProblem as exc:
        return DaemonJson(path, True, error=exc.message, line=exc.line or 1, column=exc.column or 1)
    if data is None:  # `null`: dockerd decodes it to no settings and starts (checked with dockerd 20.10)
        data = {}
    if not isinstance(data, dict):
        return DaemonJson(path, True, error=f"expected a JSON object, found {fsio.value_kind(data)}", line=1,
                          column=1)
    problem = daemon_json_type_problem(data)
    if problem:
        key, message = problem
        line = next((i for i, ln in enumerate(text.splitlines(), 1) if f'"{key}"' in ln), 1)
        return DaemonJson(path, True, error=message, line=line, column=1)
    return DaemonJson(path, True, data)


_RUNTIME_EXAMPLE = '{"path": "nvidia-container-runtime", "args": []}'


def daemon_json_type_problem(data: dict) -> tuple[str, str] | None:
    """(key, message) for a value of the wrong type in the settings the suite reads or writes, else None.

    WHY: dockerd decodes daemon.json into typed Go structs and refuses to start on a type mismatch
    (``"runtimes": {"nvidia": "garbage"}``: "cannot unmarshal string into ... types.Runtime"), so such a file
    is not valid even though it parses, and reloading or restarting Docker with it takes Docker down. JSON null
    decodes to nothing in Go and is accepted; the cases here are those a real dockerd 20.10 refuses
    (tests/test_bad_input.py starts one with each).
    """
    runtimes = data.get("runtimes")
    if runtimes is not None and not isinstance(runtimes, dict):
        return "runtimes", f"runtimes: expected an object of runtimes, found {_json_type(runtimes)}"
    for name, rt in (runtimes or {}).items():
        if rt is None:
            continue
        if not isinstance(rt, dict):
            return name, (f"runtimes.{name}: expected an object like {_RUNTIME_EXAMPLE}, found {_json_type(rt)} "
                          f"{json.dumps(rt)[:60]}: dockerd refuses to start with it")
        if rt.get("path") is not None and not isinstance(rt["path"], str):
            return name, f"runtimes.{name}.path: expected a string, found {_json_type(rt['path'])}"
        args = rt.get("runtimeArgs")
        if args is not None and not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
            return name, f"runtimes.{name}.runtimeArgs: expected a list of strings, found {json.dumps(args)[:60]}"
    default = data.get("default-runtime")
    if default is not None and not isinstance(default, str):
        return "default-runtime", f"default-runtime: expected a string, found {_json_type(default)}"
    features = data.get("features")
    if features is not None and not (isinstance(features, dict)
                                     and all(isinstance(v, bool) or v is None for v in features.values())):
        return "features", f"features: expected an object of true/false values, found {json.dumps(features)[:60]}"
    return None


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


# --- GPUs on the host ------------------------------------------------------------------------------

_DEV_GPU = re.compile(r"^nvidia[0-9]+$")


def host_gpu_count(dev: str | Path = "/dev", proc_gpus: str | Path = "/proc/driver/nvidia/gpus") -> int:
    """GPUs the host kernel exposes (``/dev/nvidiaN`` nodes, or driver entries): 0 means no GPU here."""
    try:
        nodes = sum(1 for n in os.listdir(dev) if _DEV_GPU.match(n))
    except OSError:
        nodes = 0
    try:
        entries = len(os.listdir(proc_gpus))
    except OSError:
        entries = 0
    return max(nodes, entries)


# --- Runtime probe ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeOutput:
    devices: tuple[str, ...] = ()
    smi_rc: int | None = None
    smi_lines: tuple[str, ...] = ()
    complete: bool = False


def parse_probe_output(text: str) -> ProbeOutput:
    devices, smi, rc, done = [], [], None, False
    for line in text.splitlines():
        if line.startswith("LABCHECK_DEV "):
            devices.append(line.split(" ", 1)[1].strip())
        elif line.startswith("LABCHECK_SMI_RC "):
            rc = versions.ascii_int(line.split(" ", 1)[1].strip())  # the shell's $?: ASCII digits or no answer
        elif line.startswith("LABCHECK_SMI "):
            smi.append(line.split(" ", 1)[1])
        elif line.strip() == "LABCHECK_DONE":
            done = True
    return ProbeOutput(tuple(devices), rc, tuple(smi), done)


@dataclass(frozen=True)
class RuntimeProbe:
    """One short-lived container started with the runtime under test."""

    runtime: str
    attempted: bool
    image: str = ""
    image_note: str = ""
    image_error: str = ""
    container: str = ""
    error: str = ""  # the engine's exact words when create/start failed
    timed_out: bool = False
    hung_step: str = ""
    engine_lost: bool = False
    exit_code: int | None = None
    logs: str = ""
    output: ProbeOutput = ProbeOutput()
    cleanup_error: str = ""
    seconds: float = 0.0
    leftovers_removed: tuple[str, ...] = ()  # probe containers of runs that were killed before removing theirs


def probe_runtime(engine: EngineFacts, cfg: LabConfig) -> RuntimeProbe:
    """Start ``PROBE_SCRIPT`` in a container with ``runtime=cfg.docker_runtime_name``; always remove it.

    Not attempted when the engine is unreachable, on another machine (a container there proves nothing about this
    host's GPUs) or does not list the runtime (the verdict says why).
    """
    name = cfg.docker_runtime_name
    if not engine.reachable or engine.remote or name not in engine.runtimes:
        return RuntimeProbe(name, attempted=False)
    start = time.monotonic()
    image, note, image_error = ensure_probe_image(engine.client, cfg)
    if image_error:
        lost = _looks_lost(image_error)
        return RuntimeProbe(name, True, image_error=image_error, engine_lost=lost,
                            timed_out=is_timeout(image_error), hung_step="looking up the probe image",
                            seconds=time.monotonic() - start)
    cname = f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"
    result = dict(runtime=name, attempted=True, image=image, image_note=note, container=cname,
                  leftovers_removed=remove_leftover_probes(engine.client))
    container = None
    step = "creating the probe container"
    try:
        container = engine.client.containers.create(
            image, ["/bin/sh", "-c", PROBE_SCRIPT], name=cname, labels=_owner_labels(), runtime=name,
            environment={"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "utility"},
            network_mode="none", detach=True)
        step = f"starting the probe container with runtime {name!r}"
        container.start()
        step = "waiting for the probe container to exit"
        result["exit_code"] = _exit_code(container.wait(timeout=cfg.command_timeout))
        step = "reading the probe container's output"
        logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        result["logs"] = logs
        result["output"] = parse_probe_output(logs)
    except Exception as exc:
        text = describe_exception(exc)
        result["error"] = text
        if is_timeout(text):
            result["timed_out"] = True
            result["hung_step"] = step
        elif _looks_lost(text):
            result["engine_lost"] = True
            result["hung_step"] = step
    finally:
        result["cleanup_error"] = _remove(engine.client, container, cname)
    result["seconds"] = time.monotonic() - start
    return RuntimeProbe(**result)


def _exit_code(status: Any) -> int:
    """StatusCode of the engine's answer to ``wait`` ({"StatusCode": 0}); any other shape is a ValueError that
    says so (probe_runtime reports it as the step's error)."""
    code = status.get("StatusCode") if isinstance(status, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        raise ValueError(f"the engine answered wait with {json.dumps(status, default=str)[:80]}, "
                         f"expected an object with a number StatusCode")
    return code


def _owner_labels() -> dict[str, str]:
    """Ours, and which process made it: lets a later run tell a leftover from another worker's live probe."""
    return {OWNED_LABEL: "1", OWNER_HOST_LABEL: socket.gethostname(), OWNER_PID_LABEL: str(os.getpid())}


def _pid_alive(pid: int) -> bool:
    return cmd.process_alive(pid)


def remove_leftover_probes(client: Any) -> tuple[str, ...]:
    """Remove probe containers whose creating run is gone (killed before its own cleanup); their names.

    Only containers this suite made (our label and name prefix), made on this host by a process that
    no longer exists: a probe of another live run (an xdist worker, a second terminal) is never touched.
    Best effort: a failure here must not stop the probe itself.
    """
    removed = []
    try:
        found = client.containers.list(all=True, filters={"label": OWNED_LABEL})
    except Exception:
        return ()
    for c in found:
        try:  # the SDK reads name and labels from the engine's answer: Config.Labels a list, Name a number
            name, labels = c.name, c.labels
        except Exception:
            continue
        if not isinstance(name, str) or not isinstance(labels, dict):
            continue  # not of Docker's shape: not provably ours, so never removed
        pid = versions.ascii_int(str(labels.get(OWNER_PID_LABEL, "")))  # a label anyone can set: not ours when no pid
        if (not name.startswith(PROBE_PREFIX) or labels.get(OWNER_HOST_LABEL) != socket.gethostname()
                or pid is None or _pid_alive(pid)):
            continue
        try:
            c.remove(force=True)
        except Exception:
            continue
        removed.append(name)
    return tuple(removed)


def _looks_lost(text: str) -> bool:
    """The engine went away (socket gone, connection refused/reset) rather than refusing the request."""
    low = text.lower()
    return any(s in low for s in ("connection aborted", "connection refused", "no such file or directory')",
                                  "filenotfounderror", "connectionreseterror", "remotedisconnected",
                                  "max retries exceeded"))


def _remove(client: Any, container: Any, cname: str) -> str:
    """Remove the probe container: the one object we created (by our own unique name)."""
    try:
        if container is None:
            # create may have succeeded server-side before a timeout: look it up by its unique name
            found = client.containers.list(all=True, filters={"name": cname, "label": OWNED_LABEL})
            container = next((c for c in found if c.name == cname), None)
            if container is None:
                return ""
        container.remove(force=True)
    except Exception as exc:
        return describe_exception(exc)
    return ""


# --- Probe image -----------------------------------------------------------------------------------

def ensure_probe_image(client: Any, cfg: LabConfig) -> tuple[str, str, str]:
    """(image, how we got it, error): use ``probe_image`` if present, else build it from a static busybox.

    WHY build: no registry may be reachable in a lab. A static busybox (Debian's busybox-static) needs no
    libraries, so a one-file rootfs piped through ``docker import`` is a complete image. Pulling
    ``busybox`` is the last resort.
    """
    import docker  # lazy: the docker SDK costs start-up; only this fallback and the engine probe need it

    image = cfg.probe_image
    try:
        client.images.get(image)
        return image, f"image {image} present locally", ""
    except docker.errors.ImageNotFound:
        pass
    except Exception as exc:
        return "", "", f"cannot look up image {image}: {describe_exception(exc)}"
    busybox = static_busybox(cfg.busybox_paths)
    tried = []
    if busybox:
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
        try:
            client.api.import_image_from_data(busybox_rootfs_tar(busybox), repository=repo, tag=tag,
                                              changes=[f"LABEL {OWNED_LABEL}=1"])
            client.images.get(image)
            return image, f"image {image} built from {busybox} (docker import)", ""
        except Exception as exc:
            tried.append(f"importing a rootfs made from {busybox} failed: {describe_exception(exc)}")
    else:
        tried.append(f"no static busybox at {', '.join(cfg.busybox_paths)} to build it from")
    try:
        pulled = client.images.pull(PULL_FALLBACK)
        pulled.tag(image)
        return image, f"image {image} tagged from pulled {PULL_FALLBACK}", ""
    except Exception as exc:
        tried.append(f"pulling {PULL_FALLBACK} failed: {describe_exception(exc)}")
    return "", "", f"probe image {image} is not present locally; " + "; ".join(tried)


def static_busybox(paths: tuple[str, ...] | list[str]) -> str | None:
    for p in paths:
        if os.path.isfile(p) and os.access(p, os.X_OK) and is_static_elf(p):
            return p
    return None


def is_static_elf(path: str | Path) -> bool:
    """True for a 64-bit little-endian ELF with no PT_INTERP (no dynamic loader needed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return False
            phoff = struct.unpack_from("<Q", head, 0x20)[0]
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    for i in range(phnum):
        off = i * phentsize
        if off + 4 > len(table):
            return False
        if struct.unpack_from("<I", table, off)[0] == 3:  # PT_INTERP
            return False
    return True


def busybox_rootfs_tar(busybox: str) -> bytes:
    """A tar of a minimal rootfs: /bin/busybox, applet symlinks, /tmp and /dev (docker import input)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "dev", "proc", "sys", "etc"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox", recursive=False)
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buf.getvalue()
