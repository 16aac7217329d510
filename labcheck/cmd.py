"""Run external commands with a timeout, never through a shell.

Every probe that calls a program goes through :func:`run`, so that a missing binary, a hung
command or a crash becomes a value a verdict can explain instead of an exception that kills the run.
"""

from __future__ import annotations

import contextlib
import locale
import os
import re
import select
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from labcheck import fsio

DEFAULT_TIMEOUT = 30.0
# WHY a bound: a tool that answers without end (a broken or hostile stand-in, `yes`) filled memory at ~0.4 GB/s
# until the timeout (1.1 GB of stdout and 4.2 GB RSS in 3 s). The largest real answer the suite reads is
# ``ps -ww -eo`` or ``ldconfig -p`` on a big host: hundreds of KB.
MAX_OUTPUT = 8 * 1024 * 1024  # bytes per stream (stdout, stderr)
_CHUNK = 65536

# Every child started through run() (or tracked()) that has not been reaped yet, with the thread that
# started it: stop_threads() stops those of threads gathering facts when the run ends (labcheck.prefetch).
_running: dict[subprocess.Popen, int] = {}
_stopped: set[int] = set()  # threads whose children are killed as soon as they start
_running_lock = threading.Lock()


@dataclass(frozen=True)
class CmdResult:
    """What one command did. ``rc`` is None when it never ran to completion."""

    argv: tuple[str, ...]
    rc: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    missing: bool = False
    error: str = ""
    timeout: float = DEFAULT_TIMEOUT
    overflow: str = ""  # "stdout" or "stderr": it printed more than max_output bytes there and was killed
    max_output: int = MAX_OUTPUT

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def cmdline(self) -> str:
        return " ".join(_quote(a) for a in self.argv)

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()

    def describe(self) -> str:
        """One line saying what happened, for a verdict message."""
        if self.missing:
            return f"`{self.argv[0]}` not found on PATH"
        if self.timed_out:
            return f"`{self.cmdline}` hung: no answer within {self.timeout:g}s"
        if self.overflow:
            return (f"`{self.cmdline}` printed more than {self.max_output} bytes on {self.overflow}: stopped it "
                    "there (no answer of the tool this suite asks is that long; is it the right program?)")
        if self.error:
            return f"`{self.cmdline}` could not start: {self.error}"
        tail = self.output.splitlines()[-1] if self.output else "no output"
        return f"`{self.cmdline}` exited {self.rc}: {tail}"


def _quote(arg: str) -> str:
    return shlex.quote(arg)


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,  # noqa: A002 - mirrors subprocess.run
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    max_output: int = MAX_OUTPUT,
) -> CmdResult:
    """Run ``argv`` (a list, no shell) and capture its output.

    ``extra_env`` is merged over the current environment; ``env`` replaces it. The child gets its own
    process group so a timeout kills it and everything it spawned; so does more than ``max_output`` bytes
    on stdout or stderr (``overflow`` names the stream; the first ``max_output`` bytes are kept).
    Output is decoded as ``text=True`` did (the locale's encoding, undecodable bytes replaced, universal newlines).
    """
    args = tuple(str(a) for a in argv)
    if env is None and extra_env:
        env = {**os.environ, **extra_env}
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CmdResult(args, None, missing=True, timeout=timeout)
    except OSError as exc:
        return CmdResult(args, None, error=str(exc), timeout=timeout)
    with tracked(proc):
        return _wait(proc, args, input, timeout, max_output)


def _wait(proc: subprocess.Popen, args: tuple[str, ...], input: str | None,  # noqa: A002
          timeout: float, max_output: int) -> CmdResult:
    encoding = locale.getpreferredencoding(False)  # what text=True decoded with
    pipes = _Pipes(proc, input.encode(encoding, "replace") if input is not None else None, max_output)
    deadline = time.monotonic() + timeout

    def result(rc: int | None, **how) -> CmdResult:
        out, err = (_text(b, encoding) for b in pipes.output())
        return CmdResult(args, rc, out, err, timeout=timeout, max_output=max_output, **how)

    try:
        overflow = pipes.read(deadline)
        if not overflow:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            pipes.read(time.monotonic() + 5)  # what it printed before it was killed
        _reap(proc)
        return result(None, timed_out=True)
    except BaseException:
        # Ctrl-C (KeyboardInterrupt) or a signal turned into an exception: the child runs in its own
        # session, so the terminal's SIGINT never reached it. Stop it (and what it spawned) now, or an
        # interrupted setup step would go on changing the host after the run ended.
        kill_group(proc)
        _reap(proc)
        raise
    finally:
        pipes.close()
    if overflow:
        kill_group(proc)
        _reap(proc)
        return result(None, overflow=overflow)
    return result(proc.returncode)


def _reap(proc: subprocess.Popen) -> None:
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


def _text(data: bytes, encoding: str) -> str:
    """Bytes as ``Popen(text=True).communicate()`` gave them: decoded, "\r\n" and "\r" turned into "\n"."""
    return data.decode(encoding, "replace").replace("\r\n", "\n").replace("\r", "\n")


class _Pipes:
    """The child's stdin, stdout and stderr, served as ``communicate`` does (one poll loop, no thread), but
    each output stream kept to ``limit`` bytes: :meth:`read` stops at the first stream that goes past it."""

    def __init__(self, proc: subprocess.Popen, data: bytes | None, limit: int) -> None:
        self.limit = limit
        self.selector = selectors.PollSelector()
        self.names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
        self.chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        self.sizes = {"stdout": 0, "stderr": 0}
        self.files = [f for f in (proc.stdin, proc.stdout, proc.stderr) if f is not None]
        for fd in self.names:
            self.selector.register(fd, selectors.EVENT_READ)
        self.data = memoryview(data or b"")
        self.stdin = proc.stdin
        if self.stdin is not None:
            if data:
                self.selector.register(self.stdin.fileno(), selectors.EVENT_WRITE)
            else:
                self._close_stdin()

    def read(self, deadline: float) -> str:
        """Serve the pipes until both outputs end (""), one passes the limit (its name), or ``deadline``
        (subprocess.TimeoutExpired)."""
        while self.selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("", left)
            for key, _ in self.selector.select(left):
                if key.fd not in self.names:
                    self._write(key.fd)
                    continue
                name = self.names[key.fd]
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    self.selector.unregister(key.fd)
                    continue
                self.chunks[name].append(chunk)
                self.sizes[name] += len(chunk)
                if self.sizes[name] > self.limit:
                    return name
        return ""

    def _write(self, fd: int) -> None:
        try:
            self.data = self.data[os.write(fd, self.data[:select.PIPE_BUF]):]
        except BrokenPipeError:  # the child does not read its input: as communicate(), not an error
            self.data = self.data[:0]
        if not self.data:
            self.selector.unregister(fd)
            self._close_stdin()

    def _close_stdin(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.stdin.close()

    def output(self) -> tuple[bytes, bytes]:
        return tuple(b"".join(self.chunks[n])[:self.limit] for n in ("stdout", "stderr"))

    def close(self) -> None:
        self.selector.close()
        for f in self.files:
            with contextlib.suppress(OSError):
                f.close()


@contextlib.contextmanager
def tracked(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Count ``proc`` among the running children (see :func:`stop_threads`) while the block runs."""
    me = threading.get_ident()
    with _running_lock:
        stopped = me in _stopped
        if not stopped:
            _running[proc] = me
    if stopped:  # this thread was stopped: whatever it starts now ends at once (run() returns rc -9)
        kill_group(proc)
    try:
        yield proc
    finally:
        with _running_lock:
            _running.pop(proc, None)


def stop_threads(idents: set[int]) -> int:
    """SIGKILL the process groups of the children the threads ``idents`` still run, and of any they start
    from now on (until :func:`forget_thread`); returns how many were running. For a run that ends while
    facts are still being gathered: their run() calls return as killed (rc -9)."""
    with _running_lock:
        _stopped.update(idents)
        procs = [p for p, t in _running.items() if t in idents and p.poll() is None]
    for proc in procs:
        kill_group(proc)
    return len(procs)


def stopped() -> bool:
    """:func:`stop_threads` stopped the calling thread: a loop that waits on commands should give up now."""
    with _running_lock:
        return threading.get_ident() in _stopped


def forget_thread(ident: int) -> None:
    """A stopped thread has ended (its ident may be reused by a new thread)."""
    with _running_lock:
        _stopped.discard(ident)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``run`` gave the command (start_new_session), so its children die too."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


_STAT_BYTES = 4096  # /proc/PID/stat: 52 numbers and a 16-byte name; procfs, so no FIFO can be there


def process_alive(pid: int) -> bool:
    """Running and not a zombie (a process that exited but was not reaped shows as Z in /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            stat = fh.read(_STAT_BYTES)
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def process_start(pid: int) -> float | None:
    """When ``pid`` started, in seconds since boot (``/proc/PID/stat`` field 22, the clock of
    ``time.CLOCK_BOOTTIME``); None when it is gone or unreadable. With the pid it tells a process from
    a later one that reused the pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            fields = fh.read(_STAT_BYTES).rsplit(")", 1)[-1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def in_own_pid_namespace(pid: int, proc: str = "/proc") -> bool | None:
    """Whether process ``pid`` is in this process's pid namespace (the host's, when the suite runs on the host);
    False for a process of a container (the kind node's MPS daemon, visible on the host with a host pid); None when
    it cannot be told (gone, or a kernel before 4.1 without NSpid).

    WHY: ``ps`` and ``pgrep`` on the host list every container's processes too, so "an MPS daemon runs" was true of
    the kind node's. The namespace links (``/proc/PID/ns/pid``) say it exactly, but only to root or the process's
    owner; ``NSpid`` in ``/proc/PID/status`` (readable by all) lists the pid in each namespace from the one /proc
    belongs to down to the process's own, so a process of our namespace has as many entries as we do.
    """
    try:
        return os.readlink(f"{proc}/{pid}/ns/pid") == os.readlink(f"{proc}/self/ns/pid")
    except OSError:
        pass
    theirs, ours = ns_pids(str(pid), proc), ns_pids("self", proc)
    return None if theirs is None or ours is None else len(theirs) == len(ours)


def ns_pids(pid: str, proc: str = "/proc") -> list[str] | None:
    """The NSpid line of ``/proc/PID/status``: the process's pid in each pid namespace, from the one /proc belongs to
    down to its own (None: no such line or file). The last is the pid the process itself sees (and writes into a pid
    file: the kind node's MPS daemon into the pipe folder it shares with the host)."""
    try:
        text = fsio.read_text(f"{proc}/{pid}/status", 64 * 1024, errors="replace")
    except (OSError, fsio.FileProblem):
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("NSpid:")), "")
    return line.split()[1:] if line else None


def boot_clock() -> float:
    """Now, on the clock of :func:`process_start`."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


BOOT_ID = "/proc/sys/kernel/random/boot_id"
_BOOT_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def boot_id(path: str = BOOT_ID) -> str:
    """This boot's id: the UUID the kernel makes anew at each boot (random(4)); "" when it cannot be read.

    WHY: pids and :func:`boot_clock` times start over at each boot, so a record naming a process is only proof of
    ownership in the boot that wrote it. Read bounded, regular files only (labcheck.fsio); anything but one UUID
    line is no id.
    """
    try:
        text = fsio.read_text(path, 64, errors="replace").strip()
    except (OSError, fsio.FileProblem):
        return ""
    return text if _BOOT_ID_RE.fullmatch(text) else ""


def which(name: str, extra_dirs: Sequence[str] = ()) -> str | None:
    """Find ``name`` on PATH, then in ``extra_dirs`` (drivers often live outside PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None
