"""MPS probes and the daemon setup action against real processes, sockets and folders.

The real nvidia-cuda-mps-control and a real CUDA client need a GPU (tests/test_gpu_host.py runs them
there). Here they are test doubles, each a real process: FAKE_CONTROL stands for
nvidia-cuda-mps-control (``-d`` forks a real background daemon process and writes the pid file; a
query answers like the real one, including "Cannot find MPS control daemon process" and "An instance
of this daemon is already running", taken from tests/data/h100-host), and the fake clients stand for
the ctypes CUDA client, printing the same ``call rc`` lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import fixtures.mps  # noqa: F401 - registers the module 0 MPS facts (prefetch.REGISTRY)
from labcheck import cmd, mps, mps_idle, prefetch
from labcheck.probes import mps as probe
from labcheck.remedy import Shell
from labcheck.verdicts import mps as v
from setup_actions.mps_daemon import MpsDaemon, _alive
from tests import needs
from tests.mps_client import H100_GPU, NODE_DAEMON, run_one
from tests.shell_fix import HOSTILE_NAMES, parses
from tests.standins import executable

FAKE_CONTROL = r"""#!/bin/sh
# Test double of nvidia-cuda-mps-control (see the module docstring).
P="${CUDA_MPS_PIPE_DIRECTORY:-/tmp/nvidia-mps}"
running() {
  pid=$(cat "$P/nvidia-cuda-mps-control.pid" 2>/dev/null) || return 1
  state=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
if [ "$1" = "-d" ]; then
  if running; then echo "An instance of this daemon is already running"; exit 1; fi
  mkdir -p "$P" || exit 1
  rm -f "$P/quit"
  sh -c 'while [ ! -f "$0/quit" ]; do sleep 0.05; done' "$P" </dev/null >/dev/null 2>&1 &
  echo $! > "$P/nvidia-cuda-mps-control.pid"
  exit 0
fi
read cmd
if ! running; then echo "Cannot find MPS control daemon process"; exit 1; fi
case "$cmd" in
  quit) touch "$P/quit" ;;
  get_server_list) cat "$P/servers" 2>/dev/null ;;
esac
exit 0
"""


def _script(path: Path, body: str) -> str:
    return str(executable(path, body))


@pytest.fixture
def control(tmp_path):
    return _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)


@pytest.fixture
def dirs(tmp_path, control):
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    yield str(pipe), str(log)
    probe.control_query(control, "quit", str(pipe), 5)  # never leave a fake daemon behind


# --- pipe dir and /proc ---------------------------------------------------------------------------

def test_pipe_dir_with_a_real_control_socket_and_pid_file(tmp_path):
    pipe = tmp_path / "mps"
    pipe.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(pipe / "control"))
    (pipe / "nvidia-cuda-mps-control.pid").write_text("425")
    try:
        p = probe.probe_pipe_dir(str(pipe))
    finally:
        sock.close()
    assert p.exists and p.is_dir and p.accessible and p.control_socket and p.pid_file_pid == 425


def test_absent_pipe_dir_under_a_writable_parent_is_ready(tmp_path):
    p = probe.probe_pipe_dir(str(tmp_path / "not-yet"))
    assert not p.exists and p.creatable
    f = probe.MpsFacts(None, None, cmd.CmdResult(("ps",), 0), (), p, str(tmp_path / "not-yet"))
    assert v.pipe_dir(f, str(tmp_path / "not-yet"), "/var/log/nvidia-mps").status == "pass"


def test_pipe_dir_that_is_a_file_fails(tmp_path):
    (tmp_path / "mps").write_text("oops")
    f = probe.MpsFacts(None, None, cmd.CmdResult(("ps",), 0), (), probe.probe_pipe_dir(str(tmp_path / "mps")),
                       str(tmp_path / "mps"))
    verdict = v.pipe_dir(f, str(tmp_path / "mps"), "/var/log/nvidia-mps")
    assert verdict.status == "fail" and "not a directory" in verdict.message


@pytest.mark.needs("ps")
def test_daemon_found_in_real_ps_by_full_command_line_and_its_pipe_dir_from_proc(tmp_path, monkeypatch):
    """A real process whose command line is the daemon's (exec -a), with its own CUDA_MPS_PIPE_DIRECTORY."""
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(tmp_path / "elsewhere")}
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path / "pipe"))  # the lab's, as the attendee set it
    proc = subprocess.Popen(["bash", "-c", f'exec -a {tmp_path}/nvidia-cuda-mps-control {sys.executable} '
                                           '-c "import time; time.sleep(30)" -d'], env=env)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            facts = probe.probe_mps(str(tmp_path / "pipe"), (), 10)
            if any(p.pid == proc.pid for p in facts.daemons):
                break
            time.sleep(0.1)
        assert [p.pid for p in facts.daemons if p.pid == proc.pid] == [proc.pid]
        assert facts.daemon_pipe_dirs[proc.pid] == str(tmp_path / "elsewhere")
        verdict = v.pipe_dir(facts, str(tmp_path / "pipe"), str(tmp_path / "log"))
        assert verdict.status == "fail" and f"pid {proc.pid} uses {tmp_path / 'elsewhere'}" in verdict.message
    finally:
        proc.kill()
        proc.wait()


# --- the setup action with the control double ---------------------------------------------------------

def test_start_is_idempotent_and_stop_only_stops_what_we_started(control, dirs, tmp_path):
    pipe, log = dirs
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state")
    assert action.plan() and action.started_pid is None
    first = action.apply()
    assert first.ok and first.changed and os.path.isdir(log)
    pid = action.started_pid
    assert pid and _alive(pid)
    assert action.plan() == []
    again = action.apply()
    assert again.ok and not again.changed and "already answers" in again.message
    facts = probe.probe_mps(pipe, (str(Path(control).parent),), 10)
    assert facts.answers and v.daemon(facts, pipe, log, True).status == "pass"
    stopped = action.stop()
    assert stopped.ok and stopped.changed and f"pid {pid}" in stopped.message
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert mps.NO_DAEMON in probe.control_query(control, "get_server_list", pipe, 5).output
    assert not action.stop().changed


def test_a_daemon_started_by_someone_else_is_left_running(control, dirs, tmp_path):
    pipe, log = dirs
    os.makedirs(pipe)
    r = cmd.run([control, "-d"], extra_env={"CUDA_MPS_PIPE_DIRECTORY": pipe}, timeout=10)
    assert r.ok
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state")
    out = action.apply()
    assert out.ok and not out.changed
    assert not action.stop().changed
    assert probe.control_query(control, "get_server_list", pipe, 5).ok


def test_already_running_answer_is_fine(tmp_path):
    """A control double that always answers -d like a second start on the same pipe dir (mps-start-twice.txt)."""
    ctl = _script(tmp_path / "ctl", '#!/bin/sh\n[ "$1" = "-d" ] && { echo "An instance of this daemon is already '
                                    'running"; exit 1; }\necho "Cannot find MPS control daemon process"; exit 1\n')
    out = MpsDaemon(ctl, str(tmp_path / "p"), str(tmp_path / "l"), 10, state_root=tmp_path / "s").apply()
    assert out.ok and not out.changed and "already running" in out.message


class _Provisioning:
    """The pytest config as the MPS start fact reads it: provisioning on (no --no-provision)."""

    def getoption(self, name: str, default=None):
        return False


def test_a_start_interrupted_before_the_daemon_answers_is_still_stopped_at_the_end(tmp_path):
    """Ctrl-C or ``-x`` while module 0 waits for the daemon it just started to answer: prefetch's close() kills the
    query, the start returns before the daemon answered, and the end of the run must still stop that daemon
    (else module 1 later finds "a HOST daemon already owns the pipe directory")."""
    # FAKE_CONTROL whose get_server_list hangs once the daemon runs (a slow first answer): where the run is stopped
    body = FAKE_CONTROL.replace("  get_server_list) ", '  get_server_list) touch "$P/asked"; sleep 60; ', 1)
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", body)
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    action = MpsDaemon(ctl, str(pipe), str(log), 30, state_root=tmp_path / "state", shell=Shell())
    registry = {"mps_daemon_action": prefetch.Fact("mps_daemon_action", lambda facts: action),
                "mps_provisioned": prefetch.REGISTRY["mps_provisioned"]}  # fixtures.mps
    facts = prefetch.Facts(_Provisioning(), None, registry)
    daemon = None
    try:
        facts.start(["mps_provisioned"])
        deadline = time.monotonic() + 20
        while not (pipe / "asked").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (pipe / "asked").exists(), "the start never got to asking the daemon"
        daemon = int((pipe / "nvidia-cuda-mps-control.pid").read_text())
        assert _alive(daemon)
        facts.close()  # what the plugin does when Ctrl-C or -x ends the session
        deadline = time.monotonic() + 10
        while _alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(daemon), "the daemon this run started outlived it: no record said it was ours"
        assert not action.state_file.exists()
    finally:
        probe.control_query(ctl, "quit", str(pipe), 5)


def test_a_starting_record_never_covers_a_daemon_the_user_started_before_it(control, dirs, tmp_path):
    pipe, log = dirs
    os.makedirs(pipe)
    assert cmd.run([control, "-d"], extra_env={"CUDA_MPS_PIPE_DIRECTORY": pipe}, timeout=10).ok  # the user's
    time.sleep(0.2)  # /proc start times count 1/100 s ticks
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state", shell=Shell())
    action.begin()  # a run that was interrupted right after recording its start
    out = action.stop()
    assert out.ok and not out.changed and "interrupted" in out.message
    assert probe.control_query(control, "get_server_list", pipe, 5).ok
    assert not action.state_file.exists()


def test_a_later_run_records_the_daemon_an_interrupted_start_left(control, dirs, tmp_path):
    pipe, log = dirs
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state", shell=Shell())
    action.begin()  # interrupted after recording, ...
    os.makedirs(pipe)
    assert cmd.run([control, "-d"], extra_env={"CUDA_MPS_PIPE_DIRECTORY": pipe}, timeout=10).ok  # ... its -d ran
    again = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state", shell=Shell())
    assert again.apply().ok and again.started_pid == int(Path(pipe, "nvidia-cuda-mps-control.pid").read_text())
    assert again.stop().changed


def test_workers_share_the_daemon_and_only_the_last_may_stop_it(control, dirs, tmp_path):
    pipe, log = dirs
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state")
    with action.lock():
        action.apply()
        action.register("gw0")
    other = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state")
    with other.lock():
        assert not other.apply().changed
        other.register("gw1")
    assert action.unregister("gw0") == 1
    assert other.unregister("gw1") == 0
    assert other.stop().changed  # the second worker may stop what the suite started


def test_daemon_killed_mid_run_is_a_clear_verdict(control, dirs, tmp_path):
    pipe, log = dirs
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state")
    assert action.apply().changed
    pid = action.started_pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    run = run_one(pipe, control, None, 10)
    verdict = v.functional(run, log, action.started_pid)
    assert verdict.status == "fail" and f"this suite started (pid {pid}) no longer answers" in verdict.message
    facts = probe.probe_mps(pipe, (str(Path(control).parent),), 10)
    assert v.daemon(facts, pipe, log, True).status == "fail"
    gone = action.stop()
    assert gone.ok and not gone.changed and "already gone" in gone.message


def test_hung_control_times_out_everywhere(tmp_path):
    """A control double that never answers: a client blocked on a dead daemon's pipe."""
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", "#!/bin/sh\nsleep 60\n")
    pipe, log = str(tmp_path / "pipe"), str(tmp_path / "log")
    start = time.monotonic()
    out = MpsDaemon(ctl, pipe, log, 0.5, state_root=tmp_path / "s").apply()
    assert not out.ok and "hung" in out.message
    facts = probe.probe_mps(pipe, (str(tmp_path / "bin"),), 0.5)
    d = v.daemon(facts, pipe, log, True)
    assert d.status == "fail" and "nvidia-cuda-mps-control` hung: no answer within 0.5s" in d.message
    run = run_one(pipe, ctl, None, 0.5)
    assert "hung" in v.functional(run, log).message
    assert time.monotonic() - start < 20


def test_log_dir_that_cannot_be_created_says_so(control, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = MpsDaemon(control, str(tmp_path / "pipe"), str(blocker / "log"), 10, state_root=tmp_path / "s",
                    shell=Shell()).apply()
    assert not out.ok and "cannot create" in out.message
    assert re.match(rf"sudo mv -n -- {blocker} {blocker}\.labcheck-[0-9]{{14}}(-[0-9]+)?\.bak && if \[ -d ",
                    out.remediation), out.remediation
    assert 'else sudo install -d -o "$(id -un)" ' in out.remediation


def test_a_pipe_dir_that_is_a_file_is_moved_aside_not_mkdir_ed(control, tmp_path):
    """``mkdir -p FILE`` fails with "File exists": the fix moves the file aside, as the pipe-dir check's does."""
    pipe = tmp_path / "pipefile"
    pipe.write_text("not a folder")
    out = MpsDaemon(control, str(pipe), str(tmp_path / "log"), 10, state_root=tmp_path / "s", shell=Shell()).apply()
    assert not out.ok and "cannot create" in out.message
    assert re.match(rf"sudo mv -n -- {pipe} {pipe}\.labcheck-[0-9]{{14}}(-[0-9]+)?\.bak && if \[ -d {pipe} \]",
                    out.remediation), out.remediation
    assert f'else sudo install -d -o "$(id -un)" -- {pipe}; fi' in out.remediation
    assert "mkdir" not in out.remediation


def test_start_fixes_carry_no_sudo_for_root(tmp_path):
    """Seen as root on the GPU host: a failed ``-d`` was answered with ``sudo install -d ...`` (a root shell may
    have no sudo)."""
    ctl = _script(tmp_path / "ctl", '#!/bin/sh\n[ "$1" = "-d" ] && { echo "Failed to start" >&2; exit 1; }\n'
                                    'echo "Cannot find MPS control daemon process"; exit 1\n')
    root = Shell(root=True)
    out = MpsDaemon(ctl, str(tmp_path / "p"), str(tmp_path / "l"), 10, state_root=tmp_path / "s", shell=root).apply()
    assert not out.ok and out.remediation.startswith("if [ -d ") and "sudo " not in out.remediation
    assert 'else install -d -o "$(id -un)" ' in out.remediation
    hung = _script(tmp_path / "hung", "#!/bin/sh\nsleep 60\n")
    out = MpsDaemon(hung, str(tmp_path / "p"), str(tmp_path / "l"), 0.5, state_root=tmp_path / "s", shell=root).apply()
    assert not out.ok and f" -m labcheck.mps_idle {tmp_path / 'p'}) && {{ rm -f -- " in out.remediation
    assert "sudo " not in out.remediation
    out = MpsDaemon(None, str(tmp_path / "p"), str(tmp_path / "l"), 1, state_root=tmp_path / "s", shell=root).apply()
    assert not out.ok and "sudo " not in out.remediation


def test_failing_start_is_reported(tmp_path):
    ctl = _script(tmp_path / "ctl", '#!/bin/sh\n[ "$1" = "-d" ] && { echo "Failed to start: permission denied" >&2; '
                                    'exit 1; }\necho "Cannot find MPS control daemon process"; exit 1\n')
    out = MpsDaemon(ctl, str(tmp_path / "p"), str(tmp_path / "l"), 10, state_root=tmp_path / "s").apply()
    assert not out.ok and "exited 1: Failed to start: permission denied" in out.message


# --- the client orchestration with client doubles ---------------------------------------------------

def _client(tmp_path, body: str) -> Path:
    return Path(_script(tmp_path / "client.py", "import os, sys\n" + body))


def test_client_holding_its_context_is_asked_about_while_it_holds(control, dirs, tmp_path):
    """Client double printing every line in ONE write (regression: buffered lines must not look like a hang)."""
    pipe, log = dirs
    MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "s").apply()
    script = _client(tmp_path, 'sys.stdout.write("cuInit 0\\ncuDeviceGetCount 0 1\\ncuDeviceGet 0\\n'
                               'cuDeviceGetUuid 0 %s\\ncuCtxCreate_v2 0\\nHOLDING %d\\n" '
                               '% (os.environ["CUDA_VISIBLE_DEVICES"], os.getpid())); sys.stdout.flush()\n'
                               'sys.stdin.readline(); print("cuCtxDestroy_v2 0")\n')
    run = run_one(pipe, control, None, 10, script=script)
    assert run.held and run.rc == 0 and not run.timed_out_at
    assert run.gpu == H100_GPU and run.device_uuid == H100_GPU.uuid  # pinned: it saw only that GPU's UUID
    assert [s.call for s in run.steps][-1] == "cuCtxDestroy_v2"
    verdict = v.functional(run, log)
    assert verdict.status == "fail" and "no MPS server appeared" in verdict.message  # the double serves nobody


def test_client_hanging_before_its_context_is_killed_and_named(control, dirs, tmp_path):
    pipe, log = dirs
    MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "s").apply()
    script = _client(tmp_path, 'print("cuInit 0", flush=True)\nimport time; time.sleep(60)\n')
    start = time.monotonic()
    run = run_one(pipe, control, None, 1, script=script)
    assert time.monotonic() - start < 15
    verdict = v.functional(run, log)
    assert verdict.status == "fail"
    assert "hung while creating its CUDA context (last output: cuInit 0)" in verdict.message
    assert not _alive(run.pid)


def test_client_cuda_error_is_reported_with_its_code(control, dirs, tmp_path):
    pipe, log = dirs
    MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "s").apply()
    script = _client(tmp_path, 'print("cuInit 0\\ncuDeviceGetCount 0 1\\ncuDeviceGet 0\\ncuCtxCreate_v2 805")\n'
                               "sys.exit(3)\n")
    verdict = v.functional(run_one(pipe, control, None, 10, script=script), log)
    assert "cuCtxCreate_v2 returned 805 (CUDA_ERROR_MPS_CONNECTION_FAILED)" in verdict.message


def test_real_client_script_without_libcuda_fails_clearly(control, dirs, tmp_path):
    if cmd.run([sys.executable, "-c", "import ctypes; ctypes.CDLL('libcuda.so.1')"], timeout=10).ok:
        pytest.skip("libcuda.so.1 is installed here")
    pipe, log = dirs
    MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "s").apply()
    verdict = v.functional(run_one(pipe, control, None, 10), log)
    assert verdict.status == "fail" and "could not load libcuda.so.1" in verdict.message


def test_module1_releases_the_host_daemon_only_after_other_workers_are_done_with_it(control, dirs, tmp_path):
    """Under pytest-xdist, module 1 on one worker must not quit the host daemon while another worker's
    module 0 MPS checks still use it; once that worker is done, the daemon this suite started is stopped."""
    import subprocess
    import sys

    from fixtures.mps import mps_user
    from fixtures.node import _release_host_daemon

    pipe, log = dirs
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state")
    assert action.apply().changed
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # another live worker
    try:
        other_user = mps_user().rsplit(":", 1)[0] + f":{other.pid}"
        action.register(other_user)
        action.register(mps_user())
        _release_host_daemon(action, wait=1.0)
        assert action.started_pid and _alive(action.started_pid), "stopped while another worker used it"
        action.unregister(other_user)  # that worker's module 0 checks are done
        _release_host_daemon(action, wait=1.0)
        assert action.started_pid is None
        assert mps.NO_DAEMON in probe.control_query(control, "get_server_list", pipe, 5).output
    finally:
        other.kill()
        other.wait()
        action.stop()


BUSY_CONTROL = """#!/bin/sh
# Stands for nvidia-cuda-mps-control against a daemon that other control clients keep busy: it answers
# "Cannot send command to MPS control daemon process" (exit 1; tests/data/h200-speed/busy-daemon.txt) the first
# BUSY times it is asked, then answers like the real one.
n=$(cat '{count}' 2>/dev/null || echo 0); echo $((n + 1)) > '{count}'
read -r asked
if [ "$n" -lt {busy} ]; then echo "{message}"; exit 1; fi
echo 705
"""


@pytest.mark.parametrize("busy, message, calls, ok", [
    (2, "Cannot send command to MPS control daemon process", 3, True),   # busy twice: asked again, answered
    (99, "Cannot send command to MPS control daemon process", 6, False),  # busy for good: bounded, then reported
    (99, "Cannot find MPS control daemon process", 1, False),             # no daemon: a final answer, asked once
])
def test_a_busy_daemon_is_asked_again_and_only_a_busy_one(tmp_path, busy, message, calls, ok):
    count = tmp_path / "count"
    control = executable(tmp_path / "nvidia-cuda-mps-control",
                         BUSY_CONTROL.format(count=count, busy=busy, message=message))
    start = time.monotonic()
    res = probe.control_query(str(control), "get_server_list", str(tmp_path), 10)
    assert res.ok is ok and int(count.read_text()) == calls
    assert (res.stdout.strip() == "705") if ok else (message in res.output)
    assert time.monotonic() - start < 5


# --- who uses a pipe folder, on a fake /proc: this host's processes and containers' -----------------------------

NODE_PS = ("    PID    PPID STAT COMMAND         COMMAND\n"
           "   4242       1 Ssl  nvidia-cuda-mps nvidia-cuda-mps-control -d\n")


def _fake_proc(tmp_path: Path, root: str | None, environ: bytes | None = b"CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps\0",
               nspid: str | None = "4242\t77") -> str:
    """A /proc holding this process (NSpid one deep: the host's namespace) and the kind node's daemon, host pid 4242
    (NSpid "4242 77": another pid namespace; None: no NSpid line), with ``environ`` (None: unreadable) and its root
    folder a link to ``root`` (None: none)."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "status").write_text("Name:\tpython\nNSpid:\t100\n")
    node = proc / "4242"
    node.mkdir()
    (node / "status").write_text("Name:\tnvidia-cuda-mps\n" + (f"NSpid:\t{nspid}\n" if nspid is not None else ""))
    if environ is not None:
        (node / "environ").write_bytes(environ)
    if root is not None:
        (node / "root").symlink_to(root)
    return str(proc)


def _node_root(tmp_path: Path) -> tuple[Path, Path]:
    """(the node's root folder, the host's pipe folder): the node's /tmp/nvidia-mps IS the host's folder."""
    root = tmp_path / "node-root"
    pipe = root / "tmp" / "nvidia-mps"
    pipe.mkdir(parents=True)
    return root, pipe


def test_a_containers_daemon_whose_folder_is_the_hosts_uses_it_but_is_not_the_hosts_daemon(tmp_path):
    """The reviewer's case: the node's daemon (another pid namespace), CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps in its
    mounts, which is the host's pipe folder. host_mps_on (the host's daemon) leaves it out, as it must; mps_users
    (the stale-pipe guard) lists it, sure: its folder seen through /proc/4242/root is the host's (st_dev, st_ino)."""
    root, pipe = _node_root(tmp_path)
    procs = mps.parse_ps(NODE_PS)
    proc = _fake_proc(tmp_path, str(root))
    assert cmd.in_own_pid_namespace(4242, proc) is False
    assert probe.host_mps_on(procs, str(pipe), proc_root=proc) == []
    assert probe.mps_users(procs, str(pipe), proc_root=proc) == [probe.MpsUser(procs[0], "/tmp/nvidia-mps", False)]
    assert probe.container_daemons_on(procs, str(pipe), None, proc) == {4242: True}
    other = tmp_path / "host-tmp" / "nvidia-mps"  # the same path names another folder on the host
    other.mkdir(parents=True)
    assert probe.mps_users(procs, str(other), proc_root=proc) == []
    assert probe.container_daemons_on(procs, str(other), None, proc) == {4242: False}


@pytest.mark.parametrize("case", ["environ unreadable", "root unreadable", "a link on the way", "relative path",
                                  "undecodable path", "namespace unknown"])
def test_a_process_whose_folder_cannot_be_told_may_use_it(tmp_path, case):
    """Where it cannot be read whether a container's process uses the folder (a user cannot read root's environment
    nor root folder in the node), it counts as "may use": the guard then refuses, and nothing is removed."""
    root, pipe = _node_root(tmp_path)
    environ, nspid, where = b"CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps\0", "4242\t77", str(root)
    if case in ("root unreadable", "namespace unknown"):  # not a "no such folder": an error (EACCES for a user)
        where = str(tmp_path / "loop")
        os.symlink(where, where)
    if case == "namespace unknown":  # no NSpid line (a kernel before 4.1), no readable ns link: and its path
        nspid = None  # names no folder of this host by name either
    elif case == "environ unreadable":
        environ = None
    elif case == "a link on the way":  # the kernel would resolve an absolute link from OUR root
        (root / "srv").symlink_to("/tmp")
        environ = b"CUDA_MPS_PIPE_DIRECTORY=/srv/nvidia-mps\0"
    elif case == "relative path":
        environ = b"CUDA_MPS_PIPE_DIRECTORY=nvidia-mps\0"
    elif case == "undecodable path":
        environ = b"CUDA_MPS_PIPE_DIRECTORY=/tmp/\xff\0"
    procs = mps.parse_ps(NODE_PS)
    proc = _fake_proc(tmp_path, where, environ, nspid)
    found = probe.mps_users(procs, str(pipe), proc_root=proc)
    assert [(u.proc.pid, u.sure) for u in found] == [(4242, False)], found
    assert "may be this one" in found[0].why and "run this as root to tell" in found[0].why
    assert probe.container_daemons_on(procs, str(pipe), None, proc) == ({} if case == "namespace unknown"
                                                                         else {4242: None})


def test_the_pid_in_the_folders_pid_file_tells_a_root_daemon_of_the_node_uses_it(tmp_path):
    """A user cannot read the node daemon's environment (it runs as root); the pid it wrote into the shared folder's
    pid file is its pid in the node (77), which NSpid (readable by all) shows: that tells it is on the folder."""
    _root, pipe = _node_root(tmp_path)
    procs = mps.parse_ps(NODE_PS)
    proc = _fake_proc(tmp_path, None, environ=None)
    assert probe.container_daemons_on(procs, str(pipe), 77, proc) == {4242: True}
    assert probe.container_daemons_on(procs, str(pipe), 78, proc) == {4242: None}
    assert probe.container_daemons_on(procs, str(pipe), 4242, proc) == {4242: None}  # the host's number is not it


# --- the stale-pipe fix, run on a real folder ------------------------------------------------------------------

def _dead_daemons_leftovers(pipe: Path) -> list[str]:
    """What a dead nvidia-cuda-mps-control -d leaves in its pipe folder (real-captures/h100-host/mps-pipe-dir.txt):
    the control sockets (real ones, bound then closed), the lock, the log FIFO, a pid file naming no process."""
    pipe.mkdir(parents=True)
    short = Path(tempfile.mkdtemp(prefix="mps"))  # a socket's path is at most 107 bytes: bound there, moved here
    for name in ("control", "control_privileged"):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(short / name))
        sock.close()
        os.rename(short / name, pipe / name)
    short.rmdir()
    (pipe / "control_lock").write_text("")
    os.mkfifo(pipe / "log")
    (pipe / "nvidia-cuda-mps-control.pid").write_text("4194303")  # above any pid this kernel gives
    assert sorted(os.listdir(pipe)) == sorted(mps.PIPE_ENTRIES)
    return sorted(mps.PIPE_ENTRIES)


def _paste(fix: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``fix`` as the user pastes it, in bash, from a folder of its own (nothing may appear there)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(["bash", "-c", fix], cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=60)


# A process the kernel names nvidia-cuda-mps (a script's comm is its file name, cut to 15 characters) that stays
# until killed: what ps shows for a stuck daemon; with -d it counts as a control daemon (labcheck.mps).
STUCK_MPS = "#!/bin/sh\nsleep 60\n"


@contextlib.contextmanager
def _mps_process(tmp_path: Path, pipe: Path, *prefix: str):
    """A stuck MPS control daemon on ``pipe`` (its environment names it), started by ``prefix`` (unshare ...)."""
    script = _script(Path(tempfile.mkdtemp(prefix="stuck", dir=tmp_path)) / "nvidia-cuda-mps-control", STUCK_MPS)
    proc = subprocess.Popen([*prefix, script, "-d"], env={**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(pipe)},
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _daemons_of(script) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _daemons_of(script), "the stand-in MPS process did not start"
        yield _daemons_of(script)[0]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _daemons_of(script: str) -> list[mps.Proc]:
    procs = mps.parse_ps(cmd.run(list(probe.PS_ARGV), timeout=10).stdout)
    return [p for p in mps.control_daemons(procs) if script in p.args]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.needs("ps")  # the guard lists processes with ps: without it, it refuses (exit 2)
def test_the_stale_pipe_fix_removes_only_the_daemons_entries_and_starts_a_daemon_there(tmp_path, control, name):
    """The fix printed for a hung control client, pasted in bash, in a pipe folder of a hostile but valid name that
    also holds the user's own file and folder: only the dead daemon's entries go (never the folder, nor what else
    is there: the fix once was `rm -rf <pipe dir>`, with mps_pipe_dir: /tmp `rm -rf /tmp`), and a daemon starts on
    exactly that folder (its pid file appears there)."""
    pipe, log = tmp_path / name / "pipe", tmp_path / name / "log"
    _dead_daemons_leftovers(pipe)
    (pipe / "notes.txt").write_text("mine")
    (pipe / "keep").mkdir()
    fix = v.stale_pipe_fix(str(pipe), str(log), control, Shell(root=True))  # root: no sudo in a test
    assert not parses(fix), fix
    try:
        res = _paste(fix, tmp_path)  # no MPS process uses this folder
        assert res.returncode == 0, res.stderr
        assert sorted(os.listdir(pipe)) == ["keep", "notes.txt", "nvidia-cuda-mps-control.pid"]
        assert (pipe / "notes.txt").read_text() == "mine" and log.is_dir()
        assert probe.control_query(control, "get_server_list", str(pipe), 5).ok  # the new daemon, on this folder
        assert not (tmp_path / "cwd" / "pwned").exists() and os.listdir(tmp_path / "cwd") == []
    finally:
        probe.control_query(control, "quit", str(pipe), 5)


@pytest.mark.needs("ps")  # the guard lists processes with ps: without it, it refuses (exit 2)
def test_the_stale_pipe_fix_touches_nothing_while_an_mps_process_of_this_host_uses_the_folder(tmp_path, control):
    """A stuck daemon of this host on the folder: the guard lists it, nothing is removed, none is started."""
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    entries = _dead_daemons_leftovers(pipe)
    fix = v.stale_pipe_fix(str(pipe), str(log), control, Shell(root=True))
    with _mps_process(tmp_path, pipe) as stuck:
        res = _paste(fix, tmp_path)
    assert res.returncode == 1 and f"{stuck.pid} {stuck.args}" in res.stdout, res
    assert sorted(os.listdir(pipe)) == entries and not log.exists()


@pytest.mark.needs("ps")  # the guard lists processes with ps: without it, it refuses (exit 2)
def test_the_stale_pipe_fix_is_not_stopped_by_another_folders_daemon_nor_by_a_container_on_another_folder(
        tmp_path, control):
    """`pgrep -ax nvidia-cuda-mps` listed every MPS process, so another pipe folder's daemon and a container's daemon
    on its own folder stopped the fix for good. Neither uses this folder: the container's (another pid and mount
    namespace, as a kind node of another cluster) names the same path, which in its mounts is a folder of its own
    (a tmpfs over the parent), and /proc/PID/root shows it is not this one."""
    needs.skip_unless("root")  # unshare --pid --mount, mount
    pipe, log = tmp_path / "node" / "pipe", tmp_path / "log"
    _dead_daemons_leftovers(pipe)
    fix = v.stale_pipe_fix(str(pipe), str(log), control, Shell(root=True))
    own_folder = ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private", "sh", "-c",
                  'mount -t tmpfs none "$0" && mkdir -p "$1" && shift && exec "$@"', str(pipe.parent), str(pipe)]
    try:
        with _mps_process(tmp_path, tmp_path / "other pipe"), _mps_process(tmp_path, pipe, *own_folder) as node:
            assert cmd.in_own_pid_namespace(node.pid) is False
            assert probe.read_proc_pipe_dir(node.pid) == str(pipe)  # the same path, in its own mounts
            facts = probe.probe_mps(str(pipe), (), 10)
            assert node.pid in [p.pid for p in facts.container_daemons]
            assert node.pid not in [p.pid for p in facts.daemons] and facts.containers_on_pipe == []
            res = _paste(fix, tmp_path)
            assert res.returncode == 0, (res.stdout, res.stderr)
        assert sorted(os.listdir(pipe)) == ["nvidia-cuda-mps-control.pid"] and log.is_dir()
        assert probe.control_query(control, "get_server_list", str(pipe), 5).ok
    finally:
        probe.control_query(control, "quit", str(pipe), 5)


@pytest.mark.needs("ps")  # the guard lists processes with ps: without it, it refuses (exit 2)
def test_the_stale_pipe_fix_touches_nothing_while_a_containers_daemon_uses_the_folder(tmp_path, control):
    """The kind node mounts the host's pipe folder at the same path (labcheck.kindconfig), so its daemon keeps its
    socket and pid file in the host's folder. The guard skipped every process of another pid namespace: it let the
    fix remove the live node daemon's control socket and pid file, then start a second daemon on its folder. A
    daemon in another pid namespace whose folder, seen through /proc/PID/root, is this one stops the fix; the
    setup step starts no daemon there either; the probe names it as a container's on the folder."""
    needs.skip_unless("root")  # unshare --pid
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    entries = _dead_daemons_leftovers(pipe)
    fix = v.stale_pipe_fix(str(pipe), str(log), control, Shell(root=True))
    with _mps_process(tmp_path, pipe, "unshare", "--pid", "--fork", "--mount-proc") as node:
        assert cmd.in_own_pid_namespace(node.pid) is False
        res = _paste(fix, tmp_path)
        assert res.returncode == 1 and f"{node.pid} {node.args}" in res.stdout, res
        assert "a container's process" in res.stdout and "whose pipe folder is this one" in res.stdout
        assert sorted(os.listdir(pipe)) == entries and not log.exists()
        facts = probe.probe_mps(str(pipe), (str(Path(control).parent),), 10)
        assert [p.pid for p in facts.containers_on_pipe] == [node.pid] and facts.daemons == []
        out = MpsDaemon(control, str(pipe), str(log), 5, state_root=tmp_path / "s", shell=Shell(root=True)).apply()
        assert not out.ok and f"pid {node.pid} on this host" in out.message and "would share" in out.message
        assert out.remediation.startswith(f"kill {node.pid}   # ")
        verdict = v.daemon(facts, str(pipe), str(log), True, out.message, out.remediation, shell=Shell(root=True))
        assert verdict.status == "fail" and (verdict.message, verdict.remediation) == (out.message, out.remediation)
    assert sorted(os.listdir(pipe)) == entries and not log.exists()




class _OneGpu:
    gpus = (H100_GPU,)

    @staticmethod
    def list_problems() -> list[str]:
        return []


@pytest.mark.needs("ps")  # the guard lists processes with ps: without it, it refuses (exit 2)
def test_a_container_daemon_answering_on_the_hosts_folder_is_named_not_taken_for_the_hosts(tmp_path, control):
    """Module 0 checks the HOST's daemon. The kind node's, answering on the host's folder through the node's mount,
    passed as "MPS control daemon (pid not visible in ps) answers". Now it fails naming the container's pid, its
    client check does not run (it would test the node's daemon), the setup step starts nothing, the stale-pipe guard
    refuses, and the fix, pasted, quits the node's daemon through the folder (it removes its own files)."""
    needs.skip_unless("root")  # unshare --pid
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    pipe.mkdir()
    script = _script(tmp_path / "node" / "nvidia-cuda-mps-control", NODE_DAEMON)
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", script, "-d"],
                            env={**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(pipe)}, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _daemons_of(script) and time.monotonic() < deadline:
            time.sleep(0.05)
        node = _daemons_of(script)[0]
        facts = probe.probe_mps(str(pipe), (str(Path(control).parent),), 10)
        while not facts.answers and time.monotonic() < deadline:
            time.sleep(0.05)
            facts = probe.probe_mps(str(pipe), (str(Path(control).parent),), 10)
        assert facts.answers and facts.daemons == [] and [p.pid for p in facts.containers_on_pipe] == [node.pid]
        action = MpsDaemon(control, str(pipe), str(log), 5, state_root=tmp_path / "s", shell=Shell(root=True))
        assert action.apply().action == "none" and not log.exists()
        verdict = v.daemon(facts, str(pipe), str(log), True, shell=Shell(root=True))
        assert verdict.status == "fail" and f"a container's, not this host's: pid {node.pid}" in verdict.message
        assert "not visible in ps" not in verdict.message
        lab = type("Lab", (), {"mps_pipe_dir": str(pipe), "extra_bin_dirs": (), "extra_lib_dirs": (),
                               "command_timeout": 5})
        skip = fixtures.mps._client_runs(lab, _OneGpu, facts)
        assert isinstance(skip, str) and f"a container's (pid {node.pid}" in skip
        guard = _paste(v.stale_pipe_fix(str(pipe), str(log), control, Shell(root=True)), tmp_path)
        assert guard.returncode == 1 and str(node.pid) in guard.stdout and os.listdir(pipe) != []
        assert verdict.remediation.startswith(v.quit_command(str(pipe), control, Shell(root=True)) + "   # ")
        res = _paste(verdict.remediation, tmp_path)
        assert res.returncode == 0, res
        proc.wait(timeout=10)  # the node's daemon quit, as asked through the folder
        assert os.listdir(pipe) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _without_labcheck(tmp_path: Path) -> str:
    """A Python of this machine that cannot import labcheck outside the project (skip when there is none)."""
    env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}
    for python in dict.fromkeys(["/usr/bin/python3", shutil.which("python3") or "", sys.executable]):
        if python and subprocess.run([python, "-c", "import labcheck"], cwd=tmp_path, env=env,
                                     capture_output=True, timeout=30).returncode != 0:
            return python
    pytest.skip("every Python here imports labcheck from anywhere")


@pytest.mark.needs("ps")  # the guard lists processes with ps: without it, it refuses (exit 2)
def test_the_guard_runs_from_any_folder_and_runs_the_suites_own_module(tmp_path):
    """The fix is pasted in any folder. `python -m labcheck.mps_idle` there found no labcheck (it failed safely, but
    the fix never worked) or, in a folder holding another labcheck, ran that one. The guard runs from the folder
    this labcheck is imported from: with a Python that has no labcheck installed, from an empty folder, it answers;
    beside a stand-in labcheck whose guard says "idle", it still lists the stuck daemon on the folder."""
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}
    empty = tmp_path / "empty"
    empty.mkdir()
    res = subprocess.run(["bash", "-c", mps_idle.guard_command(str(pipe), _without_labcheck(tmp_path))], cwd=empty,
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and os.listdir(empty) == [], res
    decoy = tmp_path / "decoy"
    (decoy / "labcheck").mkdir(parents=True)
    (decoy / "labcheck" / "__init__.py").write_text("")
    (decoy / "labcheck" / "mps_idle.py").write_text("import sys\nsys.exit(0)\n")
    with _mps_process(tmp_path, pipe) as stuck:
        res = subprocess.run(["bash", "-c", mps_idle.guard_command(str(pipe))], cwd=decoy, env=env,
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == mps_idle.BUSY and f"{stuck.pid} {stuck.args}" in res.stdout, res


def test_the_guard_refuses_when_it_cannot_tell(tmp_path):
    """Anything but "no MPS process here" is a non-zero exit, so the fix's `&&` removes nothing: a relative path,
    no argument, and an interpreter that cannot import the guard."""
    assert mps_idle.main(["relative/pipe"]) == mps_idle.UNUSABLE and mps_idle.main([]) == mps_idle.UNUSABLE
    res = subprocess.run([sys.executable, "-S", "-I", "-m", "labcheck.mps_idle", str(tmp_path)], capture_output=True,
                         text=True, timeout=30, cwd=tmp_path)
    assert res.returncode != 0


def test_the_setup_step_removes_nothing_from_the_pipe_folder_of_a_hung_daemon(tmp_path):
    """MpsDaemon.apply with a control that never answers (a dead daemon's pipe, or a stuck daemon): it reports and
    prints the stale-pipe fix, and leaves the configured folder and everything in it as they were."""
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", "#!/bin/sh\nsleep 60\n")
    pipe, log = tmp_path / "it's $(x); a" / "pipe", tmp_path / "log"
    entries = _dead_daemons_leftovers(pipe)
    (pipe / "notes.txt").write_text("mine")
    out = MpsDaemon(ctl, str(pipe), str(log), 0.5, state_root=tmp_path / "s", shell=Shell()).apply()
    assert not out.ok and "hung" in out.message
    assert out.remediation == v.stale_pipe_fix(str(pipe), str(log), ctl, Shell())
    assert sorted(os.listdir(pipe)) == sorted([*entries, "notes.txt"]) and not log.exists()
