"""Probe MPS on the host: binaries, daemon processes, the pipe directory, and a real CUDA client.

Every call to ``nvidia-cuda-mps-control`` goes through labcheck.cmd with a timeout: a client
invocation blocks forever on a pipe directory whose daemon died without cleaning up, and such a hang
must become a verdict that names the command, not a stuck run.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from labcheck import cmd, fsio, mps

CONTROL = "nvidia-cuda-mps-control"
SERVER = "nvidia-cuda-mps-server"
# -ww: unlimited width. Without a terminal ps cuts lines at 80 columns, which drops the "-d" of
# "/usr/local/nvidia/bin/nvidia-cuda-mps-control -d" (seen on the H100 host: the daemon was "not visible").
PS_ARGV = ("ps", "-ww", "-eo", "pid,ppid,stat,comm,args")
CLIENT_SCRIPT = Path(__file__).resolve().parent.parent / "cuda_client.py"


@dataclass(frozen=True)
class PipeDir:
    path: str
    exists: bool
    is_dir: bool
    accessible: bool  # we can enter and write it (clients connect to sockets in it)
    creatable: bool  # absent, but its parent is writable, so `nvidia-cuda-mps-control -d` can create it
    control_socket: bool  # the daemon's "control" socket is there
    pid_file_pid: int | None = None
    blocking_file: str = ""  # an ancestor that exists but is not a directory: mkdir -p would fail on it


@dataclass(frozen=True)
class MpsFacts:
    control_path: str | None
    server_path: str | None
    ps: cmd.CmdResult
    procs: tuple[mps.Proc, ...]
    pipe: PipeDir
    env_pipe_dir: str | None  # CUDA_MPS_PIPE_DIRECTORY of this process, if set
    daemon_pipe_dirs: dict[int, str | None] = field(default_factory=dict)  # None: environ not readable
    server_list: cmd.CmdResult | None = None  # get_server_list through the configured pipe dir

    @property
    def daemons(self) -> list[mps.Proc]:
        return mps.control_daemons(list(self.procs))

    @property
    def servers(self) -> list[mps.Proc]:
        return mps.servers(list(self.procs))

    @property
    def answers(self) -> bool:
        """A control daemon answered on the configured pipe directory."""
        return self.server_list is not None and self.server_list.ok


def probe_pipe_dir(path: str) -> PipeDir:
    p = Path(path)
    # os.path, not Path: Path.exists() raises PermissionError under a folder this user cannot search
    exists = os.path.lexists(p)
    is_dir = os.path.isdir(p)
    accessible = is_dir and os.access(p, os.W_OK | os.X_OK)
    parent = p.parent
    creatable = not exists and os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)
    control = False
    pid = None
    if is_dir:
        try:
            control = (p / "control").is_socket()
        except OSError:
            control = False
        pid = fsio.read_pid(p / "nvidia-cuda-mps-control.pid")
    return PipeDir(str(p), exists, is_dir, accessible, creatable, control, pid, _blocking_file(p))


def _blocking_file(path: Path) -> str:
    """The nearest existing ancestor of ``path`` when it is not a directory ("" when it is, or path exists)."""
    for parent in path.parents:
        if os.path.lexists(parent):
            return "" if os.path.isdir(parent) else str(parent)
    return ""


def read_proc_pipe_dir(pid: int, proc_root: str = "/proc") -> str | None:
    try:
        return mps.pipe_dir_from_environ(Path(proc_root, str(pid), "environ").read_bytes())
    except OSError:
        return None


def control_query(control_path: str, command: str, pipe_dir: str, timeout: float) -> cmd.CmdResult:
    """``echo COMMAND | nvidia-cuda-mps-control`` against ``pipe_dir``."""
    return cmd.run([control_path], input=command + "\n", extra_env={"CUDA_MPS_PIPE_DIRECTORY": pipe_dir},
                   timeout=timeout)


def probe_mps(pipe_dir: str, extra_bin_dirs: tuple[str, ...] = (), timeout: float = 30.0) -> MpsFacts:
    control = cmd.which(CONTROL, extra_bin_dirs)
    server = cmd.which(SERVER, extra_bin_dirs)
    ps = cmd.run(PS_ARGV, timeout=timeout)
    procs = tuple(mps.parse_ps(ps.stdout))  # parse even on a non-zero exit: ps can warn and still list
    daemons = mps.control_daemons(list(procs))
    pipes = {p.pid: read_proc_pipe_dir(p.pid) for p in daemons}
    query = control_query(control, "get_server_list", pipe_dir, timeout) if control else None
    return MpsFacts(control, server, ps, procs, probe_pipe_dir(pipe_dir),
                    os.environ.get("CUDA_MPS_PIPE_DIRECTORY"), pipes, query)


# --- functional check: a real CUDA client, served (or not) by MPS ---------------------------------

@dataclass(frozen=True)
class ClientRun:
    """What happened when a CUDA client ran against the pipe directory, and what MPS said meanwhile."""

    pipe_dir: str
    daemon_answered: bool  # get_server_list answered before the client started
    servers_before: tuple[int, ...]
    steps: tuple[mps.ClientStep, ...]
    pid: int | None
    held: bool  # the client reached HOLDING (its context exists)
    rc: int | None
    timed_out_at: str = ""  # the stage the client hung in, "" if it did not hang
    output: str = ""
    server_list: cmd.CmdResult | None = None  # while the client held its context
    servers_during: tuple[int, ...] = ()
    client_lists: dict[int, tuple[int, ...]] = field(default_factory=dict)  # server pid -> client pids
    smi: cmd.CmdResult | None = None
    smi_mps_clients: tuple[int, ...] = ()
    before: cmd.CmdResult | None = None


class _LineReader:
    """Lines from a child's stdout with a deadline.

    Reads the raw file descriptor: a buffered text stream can hold a second line in its buffer while
    select() reports the descriptor idle, which would make a client that printed its last line look hung.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.eof = False
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)

    def until(self, marker: str, deadline: float) -> tuple[list[str], bool]:
        """Lines until one starts with ``marker`` (True), or EOF / the deadline (False)."""
        lines: list[str] = []
        while True:
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.decode(errors="replace")
                lines.append(line)
                if line.startswith(marker):
                    return lines, True
            if self.eof:
                if self.buf:
                    lines.append(self.buf.decode(errors="replace"))
                    self.buf = b""
                return lines, False
            left = deadline - time.monotonic()
            if left <= 0:
                return lines, False
            if self.sel.select(timeout=left):
                chunk = os.read(self.fd, 65536)
                if chunk:
                    self.buf += chunk
                else:
                    self.eof = True

    def close(self) -> None:
        self.sel.close()


def _kill(proc: subprocess.Popen) -> None:
    cmd.kill_group(proc)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def run_cuda_client(pipe_dir: str, control_path: str | None, smi_path: str | None, timeout: float = 60.0,
                    lib_dirs: tuple[str, ...] = (), python: str = sys.executable,
                    script: Path = CLIENT_SCRIPT) -> ClientRun:
    """Start the ctypes client with CUDA_MPS_PIPE_DIRECTORY=pipe_dir and ask MPS about it while it holds a context.

    The client runs in its own process group and is killed if it does not reach each stage in time.
    """
    before = control_query(control_path, "get_server_list", pipe_dir, timeout) if control_path else None
    answered = before is not None and before.ok
    servers_before = tuple(mps.parse_server_list(before.stdout)) if answered else ()
    if not answered:  # without a daemon the client would run without MPS: nothing to learn from it
        return ClientRun(pipe_dir, False, (), (), None, False, None, before=before)
    # -S: no site module. The client uses only the standard library; site's processing of every installed
    # package's .pth files (many in a GPU host's system Python) is start-up on module 0's longest chain.
    argv = [python, "-S", str(script), "--hold", str(timeout)]
    for d in lib_dirs:
        argv += ["--lib-dir", d]
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": pipe_dir}
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    except OSError as exc:
        return ClientRun(pipe_dir, answered, servers_before, (), None, False, None, "", f"cannot start: {exc}",
                         before=before)
    timed_out_at = ""
    reader = _LineReader(proc)
    tracking = contextlib.ExitStack()
    tracking.enter_context(cmd.tracked(proc))  # killed with the other probes if the run ends now
    try:
        lines, held = reader.until("HOLDING", time.monotonic() + timeout)
        if not held and reader.eof:  # it closed its output: let it finish exiting before judging
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if not held and proc.poll() is None:
            last = lines[-1] if lines else "no output yet"
            timed_out_at = f"creating its CUDA context (last output: {last})"
        during = clients = smi = None
        servers_during: tuple[int, ...] = ()
        client_lists: dict[int, tuple[int, ...]] = {}
        smi_clients: tuple[int, ...] = ()
        if held:
            if control_path:
                during = control_query(control_path, "get_server_list", pipe_dir, timeout)
                if during.ok:
                    servers_during = tuple(mps.parse_server_list(during.stdout))
                    for spid in servers_during:
                        clients = control_query(control_path, f"get_client_list {spid}", pipe_dir, timeout)
                        if clients.ok:
                            client_lists[spid] = tuple(mps.parse_server_list(clients.stdout))
            if smi_path:
                smi = cmd.run([smi_path], timeout=timeout)
                if smi.ok:
                    smi_clients = tuple(mps.smi_mps_client_pids(smi.stdout))
            try:
                proc.stdin.write(b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        if not timed_out_at:
            rest, _ = reader.until("\0never", time.monotonic() + timeout)
            lines += rest
            try:
                proc.wait(timeout=max(1.0, timeout / 4))
            except subprocess.TimeoutExpired:
                timed_out_at = "releasing its CUDA context"
    finally:
        reader.close()
        if proc.poll() is None:
            _kill(proc)
        tracking.close()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
    out = "\n".join(lines)
    return ClientRun(pipe_dir, answered, servers_before, tuple(mps.parse_client_steps(out)), proc.pid, held,
                     None if timed_out_at else proc.returncode, timed_out_at, out, during, servers_during,
                     client_lists, smi, smi_clients, before)
