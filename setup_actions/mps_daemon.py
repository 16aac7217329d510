"""Start (and, on request, stop) the host MPS control daemon: ``nvidia-cuda-mps-control -d``.

Idempotent: a daemon that already answers on the pipe directory is left alone ("already running" is
fine). The suite records the daemon it started in a small state file, so a later stop only ever
stops a daemon this suite started, never one the attendee started by hand. Under pytest-xdist every
worker runs the session fixture: a file lock serialises the start, and the state file counts the
workers using the daemon so only the last one out may stop it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from shlex import quote as sh

from labcheck import cmd, fsio, mps, remedy, versions
from labcheck import state as labstate
from labcheck.lock import held
from labcheck.probes import mps as mps_probe
from labcheck.remedy import Shell
from labcheck.verdicts.mps import (
    containers_in_the_way,
    install_mps,
    make_dir_command,
    quit_command,
    stale_pipe_fix,
    start_command,
)
from setup_actions.outcome import Outcome

TICK = 0.02  # /proc start times count clock ticks (1/100 s): a process started right after a record can read earlier
START_GRACE = 5.0  # seconds after the launcher's timeout in which the daemon it forked may still show up


def state_dir() -> Path:
    """Where the record of the daemon this suite started lives: in /tmp, not in ``state_dir`` of lab.yaml.

    WHY: the record must not outlive the daemon. /tmp is emptied at reboot, as the daemon is gone; a record kept
    across a reboot could name a reused pid and make the suite quit a daemon that the user started since.
    """
    return labstate.temp_dir()


def _run_detaching(argv: list[str], env: dict[str, str], timeout: float,
                   max_output: int = cmd.MAX_OUTPUT) -> cmd.CmdResult:
    """Run a command that forks a daemon, with a timeout; its stdout and stderr together are the result's stdout.

    Not labcheck.cmd.run: that reads stdout/stderr through pipes until EOF, and a forked daemon that
    keeps the inherited pipe open would hold the run until the timeout. Output goes to a temp file
    instead, watched while the launcher runs: past ``max_output`` bytes (a launcher that prints without
    end would fill /tmp, and reading it back the memory) the launcher is killed, as on timeout -- only
    the launcher, never the daemon it may have started -- and only ``max_output`` bytes are read back.
    """
    args = tuple(argv)
    if cmd.stopped():  # the run is ending (labcheck.cmd.stop_threads): start nothing that would outlive it
        return cmd.CmdResult(args, None, error="not started: the run is ending", timeout=timeout)
    with tempfile.TemporaryFile(mode="w+b") as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        except FileNotFoundError:
            return cmd.CmdResult(args, None, missing=True, timeout=timeout)
        except OSError as exc:
            return cmd.CmdResult(args, None, error=str(exc), timeout=timeout)
        try:
            rc, too_much = _wait_launcher(proc, out.fileno(), timeout, max_output)
        except BaseException:  # Ctrl-C: stop the launcher too (it is in its own session)
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        text = out.read(max_output).decode(errors="replace").strip()
    return cmd.CmdResult(args, rc, text, timed_out=rc is None and not too_much, timeout=timeout,
                         overflow="its output" if too_much else "", max_output=max_output)


def _wait_launcher(proc: subprocess.Popen, out_fd: int, timeout: float, max_output: int) -> tuple[int | None, bool]:
    """(exit status, False) once ``proc`` exits; (None, False) past ``timeout``, (None, True) once the file
    ``out_fd`` holds more than ``max_output`` bytes: the launcher killed in both cases. Also killed, (None, False),
    once the run stops this thread (labcheck.cmd.stop_threads: Ctrl-C while facts are gathered): the launcher is
    not one of labcheck.cmd.run's children, which that kills, and a hung one outlived the run (test_prefetch)."""
    deadline = time.monotonic() + timeout
    pause = 0.0005  # as Popen.wait(timeout) polls: a launcher that exits at once is seen at once
    while (rc := proc.poll()) is None:
        too_much = os.fstat(out_fd).st_size > max_output
        if too_much or time.monotonic() >= deadline or cmd.stopped():
            proc.kill()
            proc.wait()
            return None, too_much
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, 0.02)
    return rc, False


class _Backoff:
    """Sleeps between polls of the daemon: 10 ms first, doubling up to 200 ms.

    WHY: the daemon answers (after ``-d``) or exits (after ``quit``) within tens of milliseconds; a fixed 0.2 s
    step made each start wait up to 0.2 s in module 0's longest chain of facts (start -> probe -> CUDA client)
    on the GPU host, and each stop as long in the run's teardown. A daemon that takes longer is still polled
    only every 0.2 s, within the same deadline.
    """

    FIRST, LONGEST = 0.01, 0.2

    def __init__(self) -> None:
        self.delay = self.FIRST

    def __call__(self) -> None:
        time.sleep(self.delay)
        self.delay = min(2 * self.delay, self.LONGEST)


def _alive(pid: int) -> bool:
    """Running and not a zombie (a quit daemon whose parent has not reaped it shows as Z)."""
    return cmd.process_alive(pid)


def _record_pid(value: object) -> int | None:
    """The daemon's pid in a state record, as :meth:`MpsDaemon.apply` writes it (a JSON integer), else None.

    WHY not ``int(value)``: the record is a file in /tmp that anything may have changed. ``int`` raised on "²" (a
    traceback of every teardown), read the string "١٢" (Arabic-Indic) as pid 12 and ``true`` as pid 1 (init).
    A pid is above 0 and below 2**22 (PID_MAX_LIMIT, linux/threads.h), so no huge number reaches /proc or a kill.
    """
    return value if type(value) is int and 0 < value < 1 << 22 else None


def _is_number(value: object) -> bool:
    return type(value) in (int, float)  # not bool (True is an int)


# Each field of the state record, what apply writes there, and the test of it. WHY every field: the record is a
# file in /tmp that anything may have changed; {"users": 5} was a TypeError out of every MPS check's setup.
_RECORD_FIELDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "phase": ('"starting" or "started"', lambda v: v in ("starting", "started")),
    "pid": ("a process id or null", lambda v: v is None or _record_pid(v) is not None),
    "pipe_dir": ("a folder's path", lambda v: type(v) is str),
    "log_dir": ("a folder's path", lambda v: type(v) is str),
    "started": ("a time (a number)", _is_number),
    "since_boot": ("a time (a number)", _is_number),
    "until_boot": ("a time (a number)", _is_number),
    "boot_id": ("the boot id of the boot that wrote it (a text)", lambda v: type(v) is str),
    "users": ('a list of "host:pid" texts', lambda v: type(v) is list and all(type(u) is str for u in v)),
}


def record_problem(record: dict) -> str:
    """"" when every field of a state record is of the kind :meth:`MpsDaemon.apply` writes (absent is fine);
    else which field is wrong, what it holds and what was expected."""
    for name, (expected, fits) in _RECORD_FIELDS.items():
        if name in record and not fits(record[name]):
            return f"its {name!r} is {json.dumps(record[name])[:60]}, expected {expected}"
    return ""


def _other_boot(record: dict) -> str:
    """Why ``record`` is not of this boot, in words (see :meth:`MpsDaemon._of_another_boot`)."""
    now = cmd.boot_id()
    if not now:
        return f"cannot be told to be of this boot ({cmd.BOOT_ID} cannot be read)"
    if "boot_id" not in record:
        return "names no boot (an older suite's, or not this suite's), so it cannot be told to be of this one"
    return f"is from an earlier boot (boot id {fsio.shown(str(record['boot_id']), 40)}; this boot's is {now})"


class StateFileProblem(OSError):
    """The state record cannot be written (a FIFO, folder, device or symlink in its place): an OSError, so every
    caller that leaves the daemon alone on a failed write (the fixtures' teardowns) handles it too."""


def _live_users(users: list[str], me: str) -> list[str]:
    """``users`` without the runs of ``me``'s host whose process is gone.

    Users are "host:pid". A run killed with SIGKILL never unregisters; without this, its entry would
    keep every later ``--teardown`` from stopping the daemon the suite started. Entries of other hosts
    (or not of that form) are kept: their liveness cannot be seen from here.
    """
    host, _, _ = me.rpartition(":")
    out = []
    for u in users:
        h, _, text = str(u).rpartition(":")
        pid = versions.ascii_int(text)  # "host:²" or "host:١٢" is not of that form: kept
        if host and h == host and pid is not None and pid != os.getpid() and not _alive(pid):
            continue
        out.append(u)
    return out


class MpsDaemon:
    def __init__(self, control_path: str | None, pipe_dir: str, log_dir: str, timeout: float = 30.0,
                 state_root: Path | None = None, shell: Shell | None = None) -> None:
        self.control = control_path
        self.shell = shell or remedy.this_host()  # who pastes the fixes: no sudo for root
        self.pipe_dir = pipe_dir
        self.log_dir = log_dir
        self.timeout = timeout
        key = hashlib.sha1(os.path.abspath(pipe_dir).encode()).hexdigest()[:12]
        self.state_file = (state_root or state_dir()) / f"mps-daemon-{key}.json"

    # -- state ---------------------------------------------------------------------------------
    def lock(self):
        """An inter-process lock around start/stop (xdist workers share the host); raises lock.LockProblem, also
        when the record's folder is not this user's alone (the suite's temp folder: labcheck.lock.private_folder)."""
        return held(self.state_file.parent, self.state_file.name + ".lock", self.timeout * 3, private=True)

    def _state(self) -> dict:
        return labstate.read_json(self.state_file) or {}

    def _usable_state(self) -> tuple[dict, str]:
        """(the record, "") or (the record, why it is not one apply wrote): an unusable record is kept, never
        acted on (it may be the only trace of a daemon this suite started) and never rewritten. A record of
        another boot (:meth:`_of_another_boot`) is forgotten: ({}, "")."""
        st = self._state()
        problem = record_problem(st)
        if problem:
            return st, f"{self.state_file} is not a record this suite writes ({problem})"
        if st and self._of_another_boot(st):
            self._forget()
            return {}, ""
        return st, ""

    @staticmethod
    def _of_another_boot(record: dict) -> bool:
        """Written in another boot, or in one nobody can tell is this one (no boot id in it, or none readable now).

        WHY: the record may outlive a reboot (the suite's temp folder can be under ~/.cache); the daemon it names
        is gone then, and its pid, or the pipe dir's new daemon, may be one the user started since: quitting it
        would stop the user's daemon. Not ours, so forgotten, and nothing is stopped.
        """
        now = cmd.boot_id()
        return not now or record.get("boot_id") != now

    def _save(self, state: dict) -> None:
        try:
            labstate.write_json(self.state_file, state)
        except fsio.FileProblem as exc:
            raise StateFileProblem(str(exc)) from None

    def _forget(self) -> None:
        with contextlib.suppress(OSError):
            self.state_file.unlink()

    def begin(self) -> dict:
        """Record "starting" BEFORE ``-d``: a run interrupted (Ctrl-C, ``-x``) between the start and the daemon's
        first answer still knows the daemon is its own; :meth:`stop` then stops the one this record covers."""
        now = cmd.boot_clock()
        record = {"phase": "starting", "pid": None, "pipe_dir": self.pipe_dir, "log_dir": self.log_dir,
                  "started": time.time(), "since_boot": now, "until_boot": now + self.timeout + START_GRACE,
                  "boot_id": cmd.boot_id(), "users": []}
        self._save(record)
        return record

    def covered_pid(self, record: dict) -> int | None:
        """The daemon on this pipe dir that a "starting" record covers: one whose process began after the record
        was written and while the start could still fork it. A daemon the user started before (or long after)
        the record is not ours: None."""
        since, until = record.get("since_boot"), record.get("until_boot")
        pid = self._daemon_pid()
        began = cmd.process_start(pid) if pid else None
        if began is None or not isinstance(since, (int, float)) or not isinstance(until, (int, float)):
            return None
        return pid if since - TICK <= began <= until else None

    def _settle(self) -> dict:
        """The state, with a "starting" record turned into the daemon it covers (or dropped when it covers none).
        An unusable record is returned as it is."""
        st, problem = self._usable_state()
        if problem or st.get("phase") != "starting":
            return st
        pid = self.covered_pid(st)
        if pid is None:
            self._forget()
            return {}
        st = {**st, "phase": "started", "pid": pid}
        self._save(st)
        return st

    @property
    def started_pid(self) -> int | None:
        """The daemon this suite started in this boot (and which may since have died), if any."""
        st = self._state()
        return None if self._of_another_boot(st) else _record_pid(st.get("pid"))

    def register(self, user: str) -> str:
        """Count ``user`` among the runs using the daemon this suite started; "" or, for an unusable record (left
        as it is: this run does not count), why and what the end of the run will do."""
        st, problem = self._usable_state()
        if problem:
            return (f"{problem}: this run could not count itself among the daemon's users, and the end of the run "
                    f"leaves the MPS control daemon on {self.pipe_dir} running; "
                    f"rm {sh(str(self.state_file))} if no run of this suite is using it")
        if st:
            st["users"] = sorted(set(_live_users(st.get("users", []), user)) | {user})
            self._save(st)
        return ""

    def unregister(self, user: str) -> int:
        """Drop ``user``, and runs of the same host that died without unregistering; how many are left (0 for an
        unusable record, left as it is: :meth:`stop` then says why it leaves the daemon running)."""
        st, problem = self._usable_state()
        if not st or problem:
            return 0
        st["users"] = [u for u in _live_users(st.get("users", []), user) if u != user]
        self._save(st)
        return len(st["users"])

    def other_users(self, user: str) -> list[str]:
        """Live runs other than ``user`` still using the daemon this suite started ([] when none started, or the
        record is unusable: :meth:`stop` leaves the daemon of such a record running)."""
        st, problem = self._usable_state()
        return [] if problem else [u for u in _live_users(st.get("users", []), user) if u != user]

    def _quit_cmd(self) -> str:
        return quit_command(self.pipe_dir, self.control or "nvidia-cuda-mps-control", root=False)

    def _start_cmd(self) -> str:
        return start_command(self.pipe_dir, self.log_dir, self.control or "nvidia-cuda-mps-control", self.shell)

    # -- probe ---------------------------------------------------------------------------------
    def query(self):
        return mps_probe.control_query(self.control, "get_server_list", self.pipe_dir, self.timeout)

    def plan(self) -> list[str]:
        """What apply would change (runs the read-only get_server_list query, nothing else)."""
        if self.control is None:
            return []
        q = self.query()
        if q.ok:
            return []
        return [f"start the MPS control daemon: {self._start_cmd()}"]

    # -- change --------------------------------------------------------------------------------
    def apply(self) -> Outcome:
        if self.control is None:
            return Outcome(False, "failed", "nvidia-cuda-mps-control is not installed: cannot start MPS",
                           install_mps("", self.shell))
        q = self.query()
        if q.ok:
            self._settle()  # an interrupted run's start: record the daemon it started (before one not ours comes)
            return Outcome(True, "none", f"MPS control daemon already answers on {self.pipe_dir}")
        if q.timed_out:
            return Outcome(False, "failed", f"{q.describe()}: a stuck daemon or a dead one's pipe on {self.pipe_dir}",
                           stale_pipe_fix(self.pipe_dir, self.log_dir, self.control, self.shell))
        in_the_way = self._containers_on_folder()
        if in_the_way:
            return Outcome(False, "failed", *containers_in_the_way(in_the_way, self.pipe_dir, q.describe(), self.shell))
        for d in (self.pipe_dir, self.log_dir):
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as exc:
                p = mps_probe.probe_pipe_dir(d)
                blocking = d if p.exists and not p.is_dir else p.blocking_file
                return Outcome(False, "failed", f"cannot create {d}: {exc.strerror or exc}",
                               make_dir_command(d, blocking, self.shell))
        env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": self.pipe_dir, "CUDA_MPS_LOG_DIRECTORY": self.log_dir}
        record = self.begin()
        res = _run_detaching([self.control, "-d"], env, self.timeout)
        if (res.rc is not None and res.rc != 0) or res.missing or res.error:  # it started nothing (a hung or
            self._forget()                                     # stopped launcher may have forked one: kept)
        if not res.ok:
            if mps.ALREADY_RUNNING in res.stdout:
                return Outcome(True, "none", f"MPS control daemon already running on {self.pipe_dir}")
            return Outcome(False, "failed", res.describe(), self._start_cmd())
        deadline = time.monotonic() + min(self.timeout, 15.0)
        pause = _Backoff()
        while not (q := self.query()).ok and time.monotonic() < deadline and not cmd.stopped():
            pause()
        if not q.ok:
            return Outcome(False, "start", f"started `{self.control} -d` but it does not answer on {self.pipe_dir}: "
                           f"{q.describe()}", f"tail {sh(self.log_dir.rstrip('/') + '/control.log')}", changed=True)
        pid = self._daemon_pid()
        self._save({**record, "phase": "started", "pid": pid})
        return Outcome(True, "start", f"started the MPS control daemon (pid {pid}) on {self.pipe_dir}, "
                                      f"logs in {self.log_dir}", changed=True)

    def _containers_on_folder(self) -> list[int]:
        """The MPS control daemons of containers whose pipe folder is this one (the kind node's: its folder is mounted
        from the host), seen when the folder holds a daemon's socket or pid file ([] when it holds neither: then no
        daemon uses it, and no ``ps`` is spent on module 0's longest chain of facts)."""
        pipe = mps_probe.probe_pipe_dir(self.pipe_dir)
        if not (pipe.control_socket or pipe.pid_file_pid is not None):
            return []
        procs = mps.parse_ps(mps_probe.cmd.run(mps_probe.PS_ARGV, timeout=self.timeout).stdout)
        found = mps_probe.container_daemons_on(procs, self.pipe_dir, pipe.pid_file_pid)
        return [pid for pid, on in found.items() if on]

    def _daemon_pid(self) -> int | None:
        pid = fsio.read_pid(Path(self.pipe_dir) / "nvidia-cuda-mps-control.pid")
        if pid is not None:
            return pid
        procs = mps.parse_ps(mps_probe.cmd.run(mps_probe.PS_ARGV, timeout=self.timeout).stdout)
        found = mps_probe.host_mps_on(procs, self.pipe_dir, daemons_only=True)  # never the kind node's daemon
        return found[0].proc.pid if found else None

    def stop(self) -> Outcome:
        """Quit the daemon if, and only if, this suite started it, in this boot, and it is still that daemon."""
        raw = self._state()
        earlier = bool(raw) and not record_problem(raw) and self._of_another_boot(raw)
        st, problem = self._usable_state()
        if problem:  # kept: the record is the only trace of what the suite started
            return Outcome(False, "failed", f"{problem}: cannot tell whether the MPS control daemon on "
                           f"{self.pipe_dir} is one this suite started, so it is left running",
                           f"{self._quit_cmd()} && rm -f -- {sh(str(self.state_file))}   # only if this suite "
                           "started it")
        starting = st.get("phase") == "starting"
        st = self._settle()
        pid = _record_pid(st.get("pid"))
        if not st:
            if earlier:
                return Outcome(True, "none", f"MPS control daemon on {self.pipe_dir} left alone: the suite's record "
                                             f"of the one it started {_other_boot(raw)}, so it was forgotten")
            if starting:
                return Outcome(True, "none", "no MPS control daemon to stop: the start this suite began was "
                                             "interrupted before one ran")
            return Outcome(True, "none", "MPS control daemon left alone: this suite did not start it")
        if pid and not _alive(pid):
            self._forget()
            return Outcome(True, "none", f"the MPS control daemon this suite started (pid {pid}) is already gone")
        q = mps_probe.control_query(self.control, "quit", self.pipe_dir, self.timeout)
        if not q.ok:
            return Outcome(False, "failed", f"could not stop the MPS control daemon (pid {pid}): {q.describe()}",
                           self._quit_cmd())
        deadline = time.monotonic() + min(self.timeout, 15.0)
        pause = _Backoff()
        while pid and _alive(pid) and time.monotonic() < deadline:
            pause()
        if pid and _alive(pid):
            return Outcome(False, "failed", f"asked the MPS control daemon (pid {pid}) to quit; it is still running",
                           f"kill {pid}   # the daemon runs as this user: it started it")
        self._forget()
        return Outcome(True, "stop", f"stopped the MPS control daemon this suite started (pid {pid})", changed=True)
