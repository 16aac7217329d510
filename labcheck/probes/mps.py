"""Probe MPS on the host: binaries, daemon processes, the pipe directory, and real CUDA clients (one per GPU).

Every call to ``nvidia-cuda-mps-control`` goes through labcheck.cmd with a timeout: a client
invocation blocks forever on a pipe directory whose daemon died without cleaning up, and such a hang
must become a verdict that names the command, not a stuck run.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labcheck import cmd, fsio, mps, versions
from labcheck.probes.gpu import Gpu

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
    owner: int | None = None  # the folder's owner (uid), None when it does not exist
    mine: bool = False  # owned by the user the suite runs as: the only folder a fix may change the mode of


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
    # pid -> whether that daemon is in this host's pid namespace (cmd.in_own_pid_namespace); False: a container's,
    # e.g. the kind node's daemon, which ps on the host lists too. A pid not here counts as the host's.
    daemon_in_host: dict[int, bool | None] = field(default_factory=dict)
    # pid of a container's daemon -> whether its pipe folder is the lab's (container_daemons_on); not here: not known
    container_on_pipe: dict[int, bool | None] = field(default_factory=dict)
    # the lab's kind node container (LabConfig.node_name) and the host pids of its processes (``docker top``), asked
    # only when a container's daemon answers on the folder; None: not asked, or it cannot be told
    lab_node: str = ""
    node_pids: frozenset[int] | None = None
    node_top: cmd.CmdResult | None = None  # the ``docker top`` call, when one was made

    @property
    def daemons(self) -> list[mps.Proc]:
        """The host's MPS control daemons: a container's (the kind node's) is not one (:attr:`container_daemons`)."""
        return [p for p in mps.control_daemons(list(self.procs)) if self.daemon_in_host.get(p.pid) is not False]

    @property
    def host_pipe_dirs(self) -> dict[int, str | None]:
        """:attr:`daemon_pipe_dirs` of the host's daemons only (a container's path names a folder in its own mounts)."""
        return {pid: d for pid, d in self.daemon_pipe_dirs.items() if self.daemon_in_host.get(pid) is not False}

    @property
    def container_daemons(self) -> list[mps.Proc]:
        """Control daemons in another pid namespace (a container): neither the host's daemon nor the fixes'."""
        return [p for p in mps.control_daemons(list(self.procs)) if self.daemon_in_host.get(p.pid) is False]

    @property
    def containers_on_pipe(self) -> list[mps.Proc]:
        """:attr:`container_daemons` whose pipe folder is the lab's: through a mount, as the kind node's is."""
        return [p for p in self.container_daemons if self.container_on_pipe.get(p.pid) is True]

    @property
    def containers_maybe_on_pipe(self) -> list[mps.Proc]:
        """:attr:`container_daemons` of which it cannot be told whether their pipe folder is the lab's."""
        return [p for p in self.container_daemons if self.container_on_pipe.get(p.pid) is None]

    @property
    def node_daemons_on_pipe(self) -> list[mps.Proc]:
        """:attr:`containers_on_pipe` that are processes of the lab's own kind node (by ``docker top``): module 1
        starts that daemon on the folder the node shares with the host, and it serves this host's clients there."""
        pids = self.node_pids or frozenset()
        return [p for p in self.containers_on_pipe if p.pid in pids]

    @property
    def foreign_on_pipe(self) -> list[mps.Proc]:
        """:attr:`containers_on_pipe` not known to be the lab's kind node's (another container's, or not told)."""
        node = {p.pid for p in self.node_daemons_on_pipe}
        return [p for p in self.containers_on_pipe if p.pid not in node]

    def host_daemons_on(self, pipe_dir: str) -> list[int]:
        """The pids of this host's control daemons whose pipe folder is ``pipe_dir`` (one whose folder cannot be read
        counts: the one answering there may be it)."""
        return [p.pid for p in self.daemons
                if (self.host_pipe_dirs.get(p.pid) or pipe_dir).rstrip("/") == pipe_dir.rstrip("/")]

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
    try:
        owner = os.stat(p).st_uid if exists else None
    except OSError:
        owner = None
    if is_dir:
        try:
            control = (p / "control").is_socket()
        except OSError:
            control = False
        pid = fsio.read_pid(p / "nvidia-cuda-mps-control.pid")
    return PipeDir(str(p), exists, is_dir, accessible, creatable, control, pid, _blocking_file(p), owner,
                   owner == os.geteuid())


def _blocking_file(path: Path) -> str:
    """The nearest existing ancestor of ``path`` when it is not a directory ("" when it is, or path exists)."""
    for parent in path.parents:
        if os.path.lexists(parent):
            return "" if os.path.isdir(parent) else str(parent)
    return ""


MAX_ENVIRON = 4 * 1024 * 1024


def read_proc_pipe_dir(pid: int, proc_root: str = "/proc") -> str | None:
    """The CUDA_MPS_PIPE_DIRECTORY of process ``pid`` (None: unreadable, or more environment than a process
    may have: ARG_MAX's 2 MiB for arguments and environment together, under the default stack limit)."""
    try:
        return mps.pipe_dir_from_environ(fsio.read_bytes(Path(proc_root, str(pid), "environ"), MAX_ENVIRON))
    except (OSError, fsio.FileProblem):
        return None


BUSY_RETRIES = (0.02, 0.05, 0.1, 0.2, 0.4)  # pauses before asking a busy daemon again: 0.8 s at most


def unless_busy(ask: Callable[[], cmd.CmdResult]) -> cmd.CmdResult:
    """``ask()``, asked again after a short pause while the daemon answers that it is busy (:data:`mps.BUSY`).

    WHY: one daemon serves every control client of the host one at a time; several asking at once (xdist workers,
    a fleet of workers on one machine, a user's own script) made one of them fail "Cannot send command to MPS
    control daemon process" and a check report a live daemon as not answering. Any other answer is final."""
    res = ask()
    for pause in BUSY_RETRIES:
        if res.ok or mps.BUSY not in res.output or cmd.stopped():
            break
        time.sleep(pause)
        res = ask()
    return res


def control_query(control_path: str, command: str, pipe_dir: str, timeout: float) -> cmd.CmdResult:
    """``echo COMMAND | nvidia-cuda-mps-control`` against ``pipe_dir`` (asked again while the daemon is busy)."""
    return unless_busy(lambda: cmd.run([control_path], input=command + "\n",
                                       extra_env={"CUDA_MPS_PIPE_DIRECTORY": pipe_dir}, timeout=timeout))


def probe_mps(pipe_dir: str, extra_bin_dirs: tuple[str, ...] = (), timeout: float = 30.0) -> MpsFacts:
    control = cmd.which(CONTROL, extra_bin_dirs)
    server = cmd.which(SERVER, extra_bin_dirs)
    ps = cmd.run(PS_ARGV, timeout=timeout)
    procs = tuple(mps.parse_ps(ps.stdout))  # parse even on a non-zero exit: ps can warn and still list
    daemons = mps.control_daemons(list(procs))
    in_host = {p.pid: cmd.in_own_pid_namespace(p.pid) for p in daemons}
    pipes = {p.pid: read_proc_pipe_dir(p.pid) for p in daemons if in_host[p.pid] is not False}
    pipe = probe_pipe_dir(pipe_dir)
    theirs = container_daemons_on([p for p in daemons if in_host[p.pid] is False], pipe_dir, pipe.pid_file_pid)
    query = control_query(control, "get_server_list", pipe_dir, timeout) if control else None
    return MpsFacts(control, server, ps, procs, pipe, os.environ.get("CUDA_MPS_PIPE_DIRECTORY"), pipes, query,
                    in_host, theirs)


def container_daemons_on(procs: Sequence[mps.Proc], pipe_dir: str, pid_file_pid: int | None,
                         proc_root: str = "/proc") -> dict[int, bool | None]:
    """For each MPS control daemon of another pid namespace in ``procs``: whether its pipe folder is ``pipe_dir``
    (:func:`mps_users`), or, where that cannot be read, whether its own pid (the last of NSpid, readable by all) is
    the one in the folder's pid file ``pid_file_pid``; None: it cannot be told.

    WHY the pid file: the kind node's daemon runs as root, and a user cannot read a root process's environment or
    root folder; the pid it writes into the shared folder is its pid in the node, which NSpid shows."""
    users = {u.proc.pid: u for u in mps_users(procs, pipe_dir, proc_root, daemons_only=True)}
    found: dict[int, bool | None] = {}
    for p in mps.control_daemons(list(procs)):
        if cmd.in_own_pid_namespace(p.pid, proc_root) is not False:
            continue
        u = users.get(p.pid)
        own = (cmd.ns_pids(str(p.pid), proc_root) or [""])[-1]
        in_pid_file = pid_file_pid is not None and own == str(pid_file_pid)
        found[p.pid] = False if u is None else True if u.sure or in_pid_file else None
    return found


CONTAINER_PROCESS = "a container's process (another pid namespace, e.g. the kind node's)"


@dataclass(frozen=True)
class MpsUser:
    """An MPS process (control daemon, server or control client), of this host or of a container, that uses a pipe
    folder, or may."""

    proc: mps.Proc
    pipe_dir: str | None  # its CUDA_MPS_PIPE_DIRECTORY (the default when unset), a path in ITS mounts; None: unreadable
    in_host: bool | None = True  # in this host's pid namespace (cmd.in_own_pid_namespace); False: a container's
    sure: bool = True  # its folder was seen to be this one; False: it cannot be told (it may be)

    @property
    def why(self) -> str:
        """What is known of it, for a listing ("" for a process of this host seen on the folder)."""
        whose = CONTAINER_PROCESS + ", whose pipe folder " if self.in_host is False else "its pipe folder "
        if self.sure:
            return f"{whose}is this one" if self.in_host is False else ""
        return f"{whose}may be this one (its environment or its root is not readable: run this as root to tell)"


def _folder_id(path: str) -> tuple[int, int] | None | bool:
    """(st_dev, st_ino) of the folder ``path``; False when it does not exist; None when it cannot be told."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return None
    return st.st_dev, st.st_ino


def seen_from(pid: int, path: str, want: tuple[int, int] | None | bool, proc_root: str = "/proc") -> bool | None:
    """Whether ``path`` as process ``pid`` names it (in its own mounts: its CUDA_MPS_PIPE_DIRECTORY) is the folder
    whose :func:`_folder_id` is ``want``: the same (st_dev, st_ino) seen through ``/proc/PID/root``. None: it cannot
    be told (the process's root is closed to this user, a relative or undecodable path, a symbolic link on the way).

    WHY through /proc/PID/root: the kind node mounts the host's pipe folder at the same path (labcheck.kindconfig),
    so its daemon keeps its control socket in the host's folder; the same path in another container names a folder
    of its own. WHY not past a symbolic link: the kernel resolves an absolute link under /proc/PID/root from OUR root,
    so the answer would be about another folder. ``..`` is resolved by name (no link on the way: the same)."""
    if want is False:  # no such folder here: nobody uses it
        return False
    if want is None or not path.startswith("/") or "\ufffd" in path:
        return None
    cur = os.path.join(proc_root, str(pid), "root")
    st = None
    for part in os.path.normpath(path).split("/"):
        if not part:
            continue
        cur = os.path.join(cur, part)
        try:
            st = os.lstat(cur)
        except (FileNotFoundError, NotADirectoryError):  # not in its mounts (or the process is gone): not its folder
            return False
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return None
    if st is None:  # the process's root folder itself
        try:
            st = os.stat(cur)
        except OSError:
            return None
    return (st.st_dev, st.st_ino) == want if stat.S_ISDIR(st.st_mode) else False


def mps_users(procs: Sequence[mps.Proc], pipe_dir: str, proc_root: str = "/proc",
              daemons_only: bool = False) -> list[MpsUser]:
    """The MPS processes (comm ``nvidia-cuda-mps``; with ``daemons_only`` the control daemons) of ANY pid namespace
    whose pipe folder is ``pipe_dir``, or may be: the guard of the stale-pipe fix (:mod:`labcheck.mps_idle`).

    One of this host's counts when its folder is ``pipe_dir`` by name (after realpath) or by :func:`seen_from`; a
    container's when :func:`seen_from` says it is. Either counts, as "may use" (``sure`` False), when it cannot be
    told: its environment or root is another user's, or its namespace cannot be told.

    WHY containers too: the kind node's daemon keeps its control socket and pid file in the host's folder (the
    folder is mounted into the node, FIELD-NOTES "MPS across namespaces"); the fix once skipped every process of
    another pid namespace, then removed the live node daemon's socket and started a second daemon on its folder."""
    want_name, want = os.path.realpath(pipe_dir), _folder_id(pipe_dir)
    found = []
    for p in mps.control_daemons(list(procs)) if daemons_only else mps.mps_processes(list(procs)):
        in_host = cmd.in_own_pid_namespace(p.pid, proc_root)
        pd = read_proc_pipe_dir(p.pid, proc_root)
        uses = _uses(p.pid, pd, in_host, want_name, want, proc_root)
        if uses is not False:
            found.append(MpsUser(p, pd, in_host, sure=uses is True))
    return found


def _uses(pid: int, pd: str | None, in_host: bool | None, want_name: str, want: tuple[int, int] | None | bool,
          proc_root: str) -> bool | None:
    """Whether process ``pid``, whose pipe folder is ``pd`` in its mounts, uses the folder named ``want_name`` (after
    realpath) whose :func:`_folder_id` is ``want`` (None: it cannot be told, see :func:`mps_users`)."""
    if pd is None:
        return None
    absolute = pd.startswith("/") and "\ufffd" not in pd
    if in_host is not False and absolute and os.path.realpath(pd) == want_name:
        return True
    same = seen_from(pid, pd, want, proc_root)
    if same is not None:
        return same
    # this host's process with another absolute path names another folder; anything else cannot be told
    return False if in_host is True and absolute else None


def host_mps_on(procs: Sequence[mps.Proc], pipe_dir: str, proc_root: str = "/proc",
                daemons_only: bool = False) -> list[MpsUser]:
    """:func:`mps_users` of this host's pid namespace only (one whose namespace cannot be told counts): the host's
    daemon on ``pipe_dir`` (the setup step's pid, module 1's conflict check), never the kind node's.

    WHY: ``pgrep -x nvidia-cuda-mps`` also listed the kind node's daemon and the daemons of other pipe folders, so a
    check took another daemon for the lab's host daemon."""
    return [u for u in mps_users(procs, pipe_dir, proc_root, daemons_only) if u.in_host is not False]


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
    before: cmd.CmdResult | None = None
    gpu: Gpu | None = None  # the GPU this client was pinned to (CUDA_VISIBLE_DEVICES=its UUID); None: not pinned
    smi_mps_on: tuple[tuple[int | None, int], ...] = ()  # (GPU index, pid) of each process nvidia-smi shows as M+C

    @property
    def device_uuid(self) -> str:
        """The UUID of the device the client opened (its ``cuDeviceGetUuid 0 GPU-...`` line), "" if not printed."""
        step = next((s for s in self.steps if s.call == "cuDeviceGetUuid" and s.rc == 0), None)
        return step.extra.split()[0] if step is not None and step.extra else ""

    @property
    def smi_mps_clients(self) -> tuple[int, ...]:
        """The pids nvidia-smi showed as M+C (any GPU)."""
        return tuple(pid for _gpu, pid in self.smi_mps_on)


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
        drained = False
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
                # past the deadline, still take what already waits in the pipe once: clients are waited on in
                # turn with one deadline, and one that printed in time must not be judged by a slower one's wait
                if drained:
                    return lines, False
                drained = True
            if self.sel.select(timeout=max(left, 0.0)):
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


@dataclass(frozen=True)
class ClientSpec:
    """How to start one CUDA client: its command line, its full environment, the GPU it is pinned to (None: the
    client is not pinned and opens whatever device 0 its environment shows)."""

    argv: tuple[str, ...]
    env: dict[str, str]
    gpu: Gpu | None = None


def client_specs(pipe_dir: str, gpus: Sequence[Gpu], hold: float, lib_dirs: Sequence[str] = (),
                 python: str = sys.executable, script: Path = CLIENT_SCRIPT,
                 base_env: Mapping[str, str] | None = None) -> list[ClientSpec]:
    """One client per GPU, each with CUDA_VISIBLE_DEVICES=<that GPU's UUID> and ``--device 0`` (the only device it
    then sees); with no GPU given, one unpinned client (the caller's CUDA_VISIBLE_DEVICES left as it is).

    WHY the UUID, not the index: CUDA's device order (fastest first) need not be nvidia-smi's (PCI bus order);
    a UUID names the same GPU in both. ``-S``: no site module: the client uses only the standard library, and
    site's processing of every installed package's .pth files is start-up on module 0's longest chain.
    """
    argv = [python, "-S", str(script), "--hold", str(hold), "--device", "0"]
    for d in lib_dirs:
        argv += ["--lib-dir", d]
    env = {**(os.environ if base_env is None else base_env), "CUDA_MPS_PIPE_DIRECTORY": pipe_dir}
    if not gpus:
        return [ClientSpec(tuple(argv), env)]
    return [ClientSpec(tuple(argv), {**env, "CUDA_VISIBLE_DEVICES": g.uuid}, g) for g in gpus]


def control_asker(control_path: str | None, pipe_dir: str, timeout: float) -> Callable[[str], cmd.CmdResult] | None:
    """``ask(command)``: one nvidia-cuda-mps-control query on the host against ``pipe_dir``."""
    if not control_path:
        return None
    return lambda command: control_query(control_path, command, pipe_dir, timeout)


class _Client:
    """One started client: its process, its output reader and what it printed so far."""

    def __init__(self, spec: ClientSpec, proc: subprocess.Popen | None, error: str = "") -> None:
        self.spec, self.proc, self.error = spec, proc, error
        self.reader = _LineReader(proc) if proc is not None else None
        self.lines: list[str] = []
        self.held = False
        self.holding_pid: int | None = None
        self.timed_out_at = ""

    def wait_holding(self, deadline: float) -> None:
        if self.reader is None:
            return
        lines, self.held = self.reader.until("HOLDING", deadline)
        self.lines += lines
        if self.held:  # "HOLDING <pid>": its pid as the daemon that serves it sees it (in the node: the node's)
            words = lines[-1].split()  # not one ASCII pid ("HOLDING ١٢"): the started process's pid stands in
            self.holding_pid = versions.ascii_int(words[1]) if len(words) == 2 else None
        if not self.held and self.reader.eof:  # it closed its output: let it finish exiting before judging
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if not self.held and self.proc.poll() is None:
            last = self.lines[-1] if self.lines else "no output yet"
            self.timed_out_at = f"creating its CUDA context (last output: {last})"

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.proc.stdin.write(b"\n")
                self.proc.stdin.flush()

    def finish(self, deadline: float) -> None:
        if self.reader is None or self.timed_out_at:
            return
        rest, _ = self.reader.until("\0never", deadline)
        self.lines += rest
        try:
            self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.timed_out_at = "releasing its CUDA context"

    def close(self) -> None:
        if self.proc is None:
            return
        self.reader.close()
        if self.proc.poll() is None:
            _kill(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()


def _start(spec: ClientSpec) -> _Client:
    try:
        return _Client(spec, subprocess.Popen(list(spec.argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, env=spec.env, start_new_session=True))
    except OSError as exc:
        return _Client(spec, None, f"cannot start: {exc}")


def run_cuda_clients(pipe_dir: str, specs: Sequence[ClientSpec], ask: Callable[[str], cmd.CmdResult] | None,
                     smi_path: str | None, timeout: float = 60.0) -> tuple[ClientRun, ...]:
    """Start every client of ``specs`` at once and, while they all hold their contexts, ask MPS (``ask``: one
    nvidia-cuda-mps-control query, on the host or in the node) and nvidia-smi who is served: one ClientRun each.

    WHY together: the clients are independent, so N GPUs cost about one client's time (module 0 must stay fast),
    and one get_server_list / get_client_list / nvidia-smi round sees them all. Each client runs in its own
    process group and is killed if it does not reach each stage in time.
    """
    before = ask("get_server_list") if ask else None
    answered = before is not None and before.ok
    servers_before = tuple(mps.parse_server_list(before.stdout)) if answered else ()
    if not answered:  # without a daemon the clients would run without MPS: nothing to learn from them
        return tuple(ClientRun(pipe_dir, False, (), (), None, False, None, before=before, gpu=s.gpu) for s in specs)
    clients: list[_Client] = []
    during = smi = None
    servers_during: tuple[int, ...] = ()
    client_lists: dict[int, tuple[int, ...]] = {}
    smi_on: tuple[tuple[int | None, int], ...] = ()
    with contextlib.ExitStack() as tracking:
        for spec in specs:  # each tracked as soon as it exists: Ctrl-C while starting the next kills it too
            c = _start(spec)
            clients.append(c)
            if c.proc is not None:
                tracking.enter_context(cmd.tracked(c.proc))  # killed with the other probes if the run ends now
            tracking.callback(c.close)
        deadline = time.monotonic() + timeout
        for c in clients:  # they start together: waiting for each in turn costs the slowest one's time
            c.wait_holding(deadline)
        if any(c.held for c in clients):
            if ask:
                during = ask("get_server_list")
                if during.ok:
                    servers_during = tuple(mps.parse_server_list(during.stdout))
                    for spid in servers_during:
                        listed = ask(f"get_client_list {spid}")
                        if listed.ok:
                            client_lists[spid] = tuple(mps.parse_server_list(listed.stdout))
            if smi_path:
                smi = cmd.run([smi_path], timeout=timeout)
                if smi.ok:
                    smi_on = tuple(mps.smi_mps_clients(smi.stdout))
        for c in clients:
            c.release()
        deadline = time.monotonic() + timeout
        for c in clients:
            c.finish(deadline)
    runs = []
    for c in clients:
        out = "\n".join(c.lines) if c.proc is not None else c.error
        runs.append(ClientRun(pipe_dir, answered, servers_before, tuple(mps.parse_client_steps(out)),
                              c.holding_pid or (c.proc.pid if c.proc is not None else None), c.held,
                              None if c.timed_out_at or c.proc is None else c.proc.returncode, c.timed_out_at, out,
                              during, servers_during, client_lists, smi, before,
                              gpu=c.spec.gpu, smi_mps_on=smi_on))
    return tuple(runs)
