"""The suite's own files in shared folders (the MPS state record in /tmp/dra-labcheck-UID, lock files and their
holders, the Docker and CDI locks there too) and those folders themselves: whatever another process put there -- a
record of the wrong shape, a FIFO, a symlink, the folder itself made first by another user -- is a clear message
in the failing check, never a crash, a hang or a write through a link.

Real files, FIFOs and processes; the MPS control daemon is tests/test_mps_probe.py's FAKE_CONTROL (a real
background process answering like nvidia-cuda-mps-control). A step that would hang if the guard broke runs in a
child process with a timeout, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fixtures.cdi  # noqa: F401 - registers the module 0 CDI facts (prefetch.REGISTRY)
import fixtures.mps  # noqa: F401 - registers the module 0 MPS facts (prefetch.REGISTRY)
from fixtures.mps import release_daemon
from fixtures.node import _release_host_daemon
from labcheck import cmd, fsio, lock, prefetch, state
from labcheck.config import LabConfig
from labcheck.probes.cdi import probe_cdi
from labcheck.probes.docker import DaemonJson, EngineFacts
from labcheck.probes.mps import probe_mps
from labcheck.remedy import Shell
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import docker as docker_v
from labcheck.verdicts import kindconfig as kind_v
from labcheck.verdicts import mps as mps_v
from setup_actions import cluster as cluster_action
from setup_actions.mps_daemon import MpsDaemon, StateFileProblem, _alive
from setup_actions.outcome import Outcome
from tests.planted import OTHER_UID, assert_refused_fix, plant, snapshot
from tests.shell_text import commands, parses
from tests.test_mps_probe import FAKE_CONTROL, _script

ROOT = Path(__file__).resolve().parent.parent


def _in_child(code: str, timeout: float = 20) -> cmd.CmdResult:
    """``code`` run by a fresh interpreter of this checkout: a hang is a timed-out result, not a hung test."""
    return cmd.run([sys.executable, "-c", code], timeout=timeout, extra_env={"PYTHONPATH": str(ROOT)})


class _Provisioning:
    """The pytest config as the MPS start fact reads it: provisioning on (no --no-provision)."""

    def getoption(self, name: str, default=None):
        return False


@pytest.fixture
def user_daemon(tmp_path):
    """A daemon already answering on the pipe dir (as a run that started it, or the user, left it), its action."""
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    pipe.mkdir()
    assert cmd.run([ctl, "-d"], extra_env={"CUDA_MPS_PIPE_DIRECTORY": str(pipe)}, timeout=10).ok
    daemon = int((pipe / "nvidia-cuda-mps-control.pid").read_text())
    action = MpsDaemon(ctl, str(pipe), str(log), 10, state_root=tmp_path / "state", shell=Shell())
    action.state_file.parent.mkdir(parents=True)
    yield action, daemon
    cmd.run([ctl], input="quit\n", extra_env={"CUDA_MPS_PIPE_DIRECTORY": str(pipe)}, timeout=10)


def _provision(action: MpsDaemon):
    """fixtures.mps's start fact for ``action``, as a run with provisioning on gathers it."""
    registry = {"mps_daemon_action": prefetch.Fact("mps_daemon_action", lambda facts: action),
                "mps_provisioned": prefetch.REGISTRY["mps_provisioned"]}
    facts = prefetch.Facts(_Provisioning(), None, registry)
    try:
        facts.start(["mps_provisioned"])
        return facts.get("mps_provisioned")
    finally:
        facts.close()


BAD_RECORDS = [
    ({"phase": "started", "pid": None, "users": 5}, "'users' is 5"),
    ({"phase": "started", "pid": None, "users": [{"a": 1}]}, "'users' is [{\"a\": 1}]"),
    ({"phase": "started", "pid": None, "users": ["h:1", 2]}, "'users' is [\"h:1\", 2]"),
    ({"phase": ["starting"], "users": []}, "'phase' is [\"starting\"]"),
    ({"phase": "starting", "since_boot": "0", "until_boot": 1e12}, "'since_boot' is \"0\""),
    ({"phase": "started", "pid": None, "pipe_dir": 7}, "'pipe_dir' is 7"),
    ({"phase": "started", "pid": True}, "'pid' is true"),
    ({"phase": "started", "pid": None, "boot_id": 5}, "'boot_id' is 5"),
]


@pytest.mark.parametrize(("record", "said"), BAD_RECORDS, ids=[s for _r, s in BAD_RECORDS])
def test_a_state_record_of_the_wrong_shape_is_said_in_setup_and_teardown_never_a_crash(user_daemon, record, said):
    """{"users": 5} was a TypeError in every MPS check's setup ('int' object is not iterable; a dict in the list:
    unhashable), and the teardown would have raised too. Now: the start's outcome says the record is unusable
    and that the daemon is left running; teardown leaves it running, the record untouched (it may be the only
    trace of a daemon this suite started); stop() says why, with the commands to run."""
    action, daemon = user_daemon
    text = json.dumps(record)
    action.state_file.write_text(text)
    outcome = _provision(action)
    assert outcome.ok and "already answers" in outcome.message, outcome
    assert said in outcome.message and "leaves the MPS control daemon" in outcome.message, outcome.message
    assert str(action.state_file) in outcome.message
    release_daemon(action)  # the run's teardown
    assert _alive(daemon) and action.state_file.read_text() == text
    assert action.other_users("me:1") == [] and action.unregister("me:1") == 0
    out = action.stop()
    assert not out.ok and not out.changed and said in out.message and "left running" in out.message, out.message
    assert "echo quit | CUDA_MPS_PIPE_DIRECTORY=" in out.remediation and str(action.state_file) in out.remediation
    assert _alive(daemon) and action.state_file.read_text() == text


OTHER_BOOT = "0f0e0d0c-0b0a-4909-8807-060504030201"


@pytest.mark.parametrize("boot", [OTHER_BOOT, None], ids=["another boot", "no boot id"])
def test_a_record_of_another_boot_is_forgotten_and_nothing_is_stopped(user_daemon, boot):
    """The record can outlive a reboot (the suite's temp folder may be under ~/.cache): a "started" record naming
    the pid of a daemon the user started since (its pid reused) made the teardown quit the user's daemon. A
    record of another boot (or with no boot id: one cannot tell) is not ours: forgotten, nothing stopped."""
    action, daemon = user_daemon
    record = {"phase": "started", "pid": daemon, "pipe_dir": action.pipe_dir, "log_dir": action.log_dir,
              "started": time.time(), "since_boot": 0.0, "until_boot": 1.0, "users": []}
    if boot:
        record["boot_id"] = boot
    action.state_file.write_text(json.dumps(record))
    assert action.started_pid is None  # the functional check does not count it as the suite's daemon
    out = action.stop()
    said = f"is from an earlier boot (boot id '{OTHER_BOOT}'" if boot else "names no boot"
    assert out.ok and not out.changed and "left alone" in out.message and said in out.message, out
    assert _alive(daemon) and action.query().ok  # the user's daemon still answers
    assert not action.state_file.exists()  # forgotten
    action.state_file.write_text(json.dumps(record))
    outcome = _provision(action)  # a run's start and its teardown with such a record: same
    assert outcome.ok and "already answers" in outcome.message, outcome
    release_daemon(action)
    assert _alive(daemon) and not action.state_file.exists()


def test_a_record_of_this_boot_is_the_suites_and_its_daemon_is_stopped(user_daemon):
    """The same record with this boot's id (what begin() writes): the daemon it names is the suite's, so stop()
    quits it. Proves the test above would see a stop."""
    action, daemon = user_daemon
    assert action.begin()["boot_id"] == cmd.boot_id() != ""
    record = {**json.loads(action.state_file.read_text()), "phase": "started", "pid": daemon}
    action.state_file.write_text(json.dumps(record))
    assert action.started_pid == daemon
    out = action.stop()
    assert out.ok and out.changed and f"(pid {daemon})" in out.message, out
    assert not _alive(daemon)


def test_the_boot_id_is_read_bounded_and_only_as_one_uuid(tmp_path):
    f = tmp_path / "boot_id"
    f.write_text(OTHER_BOOT + "\n")
    assert cmd.boot_id(str(f)) == OTHER_BOOT
    for text in ("", "not a uuid\n", OTHER_BOOT * 40, OTHER_BOOT.upper()):
        f.write_text(text)
        assert cmd.boot_id(str(f)) == "", text
    os.mkfifo(tmp_path / "fifo")  # never opened for a blocking read
    assert cmd.boot_id(str(tmp_path / "fifo")) == "" and cmd.boot_id(str(tmp_path / "absent")) == ""
    assert cmd.boot_id() == cmd.boot_id() != ""  # this host's, the same all along this boot


def test_a_symlink_at_the_state_record_is_never_written_through(tmp_path):
    """The record lives in /tmp/dra-labcheck-UID: a link planted there had root's atomic write replace the file
    it points at with JSON. The start now fails clearly before it runs ``-d``, and the linked file is untouched."""
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    action = MpsDaemon(ctl, str(tmp_path / "pipe"), str(tmp_path / "log"), 10, state_root=tmp_path / "state",
                       shell=Shell())
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    action.state_file.parent.mkdir(parents=True)
    action.state_file.symlink_to(victim)
    outcome = _provision(action)
    assert not outcome.ok and "is a symlink" in outcome.message and "refusing to write" in outcome.message, outcome
    assert victim.read_text() == "root's file\n" and action.state_file.is_symlink()
    assert not (tmp_path / "pipe" / "nvidia-cuda-mps-control.pid").exists(), "it started a daemon it cannot record"
    with pytest.raises(StateFileProblem):  # an OSError: every teardown that leaves the daemon alone handles it
        action.begin()


def test_a_fifo_at_the_state_record_is_a_clear_failure_not_a_hang(tmp_path):
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    state_root = tmp_path / "state"
    state_root.mkdir()
    code = (f"from setup_actions.mps_daemon import MpsDaemon\nfrom labcheck.remedy import Shell\n"
            f"a = MpsDaemon({ctl!r}, {str(tmp_path / 'pipe')!r}, {str(tmp_path / 'log')!r}, 5, "
            f"state_root=__import__('pathlib').Path({str(state_root)!r}), shell=Shell())\n"
            "import os; os.mkfifo(a.state_file)\n"
            "try:\n    a.begin()\nexcept OSError as exc:\n    print('refused:', exc)\n")
    r = _in_child(code)
    assert r.ok and "refused:" in r.stdout and "FIFO" in r.stdout, r.describe()


def test_state_records_are_neither_read_nor_written_through_a_symlink(tmp_path):
    """labcheck.state, for the cluster record as for the MPS one."""
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"phase": "started", "pid": 1}')
    link = tmp_path / "record.json"
    link.symlink_to(elsewhere)
    assert state.read_json(link) is None
    with pytest.raises(fsio.FileProblem, match="is a symlink"):
        state.write_json(link, {"x": 1})
    assert elsewhere.read_text() == '{"phase": "started", "pid": 1}'


# --- lock files and their holders ----------------------------------------------------------------------

HOLD = """
import sys, time
from labcheck import lock
with lock.held(sys.argv[1], "step.lock", 5):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_fifo_at_the_holder_file_neither_hangs_the_lock_nor_its_timeout_message(tmp_path):
    """mkfifo LOCK.holder hung the run for good: taking the lock wrote the holder (open for writing blocks until a
    reader comes), and a run that timed out read it. The Docker lock's holder is in /tmp itself."""
    os.mkfifo(tmp_path / "step.lock.holder")
    took = _in_child(f"from labcheck import lock\nwith lock.held({str(tmp_path)!r}, 'step.lock', 5):\n"
                     "    print('took it')\n")
    assert took.ok and took.stdout.strip() == "took it", took.describe()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        waited = _in_child(f"from labcheck import lock\ntry:\n    with lock.held({str(tmp_path)!r}, 'step.lock', 0.3):"
                           f"\n        pass\nexcept lock.LockProblem as exc:\n    print(exc)\n")
    finally:
        holder.kill()
        holder.wait(10)
    assert waited.ok and "holder unknown" in waited.stdout and "over 0.3s" in waited.stdout, waited.describe()
    assert stat.S_ISFIFO((tmp_path / "step.lock.holder").lstat().st_mode)


def test_a_symlink_at_the_holder_file_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    (tmp_path / "x.lock.holder").symlink_to(victim)
    with lock.held(tmp_path, "x.lock", 1):
        pass
    assert victim.read_text() == "root's file\n" and (tmp_path / "x.lock.holder").is_symlink()
    assert lock.holder(tmp_path / "x.lock") == ""  # nor read through: the link is not this suite's
    (tmp_path / "x.lock.holder").unlink()
    with lock.held(tmp_path, "x.lock", 1):
        assert lock.holder(tmp_path / "x.lock") == f"pid {os.getpid()} on {os.uname().nodename}"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a device node")
def test_a_device_at_the_lock_is_refused_without_opening_it(tmp_path):
    """Root can meet a device node where a lock should be: refused from its lstat, never opened (opening some
    devices acts on them), and the message says what is there."""
    os.mknod(tmp_path / "x.lock", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    with pytest.raises(lock.LockProblem, match="is a character device, not a regular file"), \
            lock.held(tmp_path, "x.lock", 1):
        pytest.fail("the block ran without the lock")


# --- the suite's temp folder made first by another user: each step that locks in it fails its check ----------

class _FixHost:
    """The pytest config of a run with --fix-host (the Docker runtime and CDI steps act only then)."""

    def getoption(self, name: str, default=None):
        return name == "--fix-host"


def _gathered(config, lab_config: LabConfig | None, name: str, **stubs) -> object:
    """The fact ``name`` as a run gathers it (its own gather function), with ``stubs`` for the facts it needs."""
    registry = {n: prefetch.Fact(n, lambda facts, v=v: v) for n, v in stubs.items()}
    registry[name] = prefetch.REGISTRY[name]
    facts = prefetch.Facts(config, lab_config, registry)
    try:
        facts.start([name])
        return facts.get(name)
    finally:
        facts.close()


@pytest.mark.needs("root")
def test_another_users_temp_folder_fails_the_mps_start_with_the_tmpdir_fix_and_is_left_as_it_was(sticky_tmp,
                                                                                                tmp_path):
    """The MPS daemon's record and lock live in the suite's temp folder: one another user made first is not used.
    The start fails before ``-d`` (no daemon this run could not record), the check shows why and the TMPDIR fix,
    the run's teardown changes nothing there either. Without the check root wrote its record into their folder."""
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    action = MpsDaemon(ctl, str(pipe), str(log), 10, shell=Shell())  # the record where a run keeps it
    assert action.state_file.parent == state.temp_dir()
    before = plant(state.temp_dir())
    try:
        outcome = _provision(action)
        assert not outcome.ok and not outcome.changed, outcome
        assert f"the suite's temp folder {state.temp_dir()} is a folder that belongs to uid {OTHER_UID} (" \
               in outcome.message and outcome.message.endswith("the MPS daemon was not started by this run"), outcome
        assert_refused_fix(outcome.remediation, state.temp_dir(), tmp_path / "my home")
        verdict = mps_v.daemon(probe_mps(str(pipe), (str(tmp_path / "bin"),), 10), str(pipe), str(log), True,
                               outcome.message, outcome.remediation, "", Shell())
        assert verdict.status == "fail" and outcome.message in verdict.message, verdict
        assert verdict.remediation == outcome.remediation
        assert not (pipe / "nvidia-cuda-mps-control.pid").exists(), "it started a daemon it cannot record"
        release_daemon(action)  # the run's teardown
        start = time.monotonic()
        _release_host_daemon(action, wait=30)  # module 1's: waiting cannot make the folder usable
        assert time.monotonic() - start < 5
        assert snapshot(state.temp_dir()) == before
    finally:
        cmd.run([ctl], input="quit\n", extra_env={"CUDA_MPS_PIPE_DIRECTORY": str(pipe)}, timeout=10)


DOCKER_SETUP = """
import dataclasses, json, sys
from fixtures import docker
from labcheck import prefetch
from labcheck.config import LabConfig
class FixHost:
    def getoption(self, name, default=None):
        return name == "--fix-host"
here = sys.argv[1]
cfg = LabConfig(docker_host=f"unix://{here}/no-engine.sock", docker_daemon_json=f"{here}/daemon.json",
                docker_pidfile=f"{here}/docker.pid", command_timeout=5)
facts = prefetch.Facts(FixHost(), cfg, {"docker_runtime_setup": prefetch.REGISTRY["docker_runtime_setup"]})
facts.start(["docker_runtime_setup"])
print(docker.LOCK_DIR)
print(json.dumps(dataclasses.asdict(facts.get("docker_runtime_setup"))))
facts.close()
"""


@pytest.mark.needs("root")
def test_another_users_temp_folder_fails_the_docker_runtime_setup_with_the_tmpdir_fix(sticky_tmp, tmp_path):
    """--fix-host's runtime registration takes its machine-wide lock in the suite's temp folder, found from TMPDIR
    when the run starts (a fresh interpreter, as a run is): refused there, nothing changed, and the runtime check
    that fails says why and what to run. The engine and daemon.json are the test's own, never this machine's."""
    before = plant(state.temp_dir())
    res = cmd.run([sys.executable, "-c", DOCKER_SETUP, str(tmp_path)], timeout=60,
                  extra_env={"PYTHONPATH": str(ROOT)})
    assert res.ok, res.describe()
    lock_dir, record = res.stdout.strip().splitlines()
    assert lock_dir == str(state.temp_dir())
    outcome = Outcome(**json.loads(record))
    assert not outcome.ok and outcome.action == "failed", outcome
    assert f"the suite's temp folder {state.temp_dir()} is a folder that belongs to uid {OTHER_UID} (" \
           in outcome.message and outcome.message.endswith("; nothing was changed"), outcome
    assert_refused_fix(outcome.remediation, state.temp_dir(), tmp_path / "my home")
    engine = EngineFacts("unix:///run/docker.sock", 5, client=object(), server_version="24.0.7",
                         runtimes={"runc": {"path": "runc"}}, default_runtime="runc")
    verdict = docker_v.runtime_registered(engine, DaemonJson(str(tmp_path / "daemon.json"), False), "nvidia",
                                          outcome.note(), Shell())
    assert verdict.status == "fail", verdict
    assert outcome.message in verdict.details and f"run: {outcome.remediation}" in verdict.details, verdict.details
    assert snapshot(state.temp_dir()) == before and not (tmp_path / "daemon.json").exists()


@pytest.mark.needs("root")
def test_another_users_temp_folder_fails_the_cdi_generation_with_the_tmpdir_fix(sticky_tmp, tmp_path):
    cdi_dir = tmp_path / "cdi"
    cfg = LabConfig(cdi_dirs=(str(cdi_dir),), cdi_spec_path=str(cdi_dir / "nvidia.yaml"), command_timeout=5)
    before = plant(state.temp_dir())
    outcome = _gathered(_FixHost(), cfg, "cdi_provisioned", gpu_facts=None)
    assert not outcome.ok, outcome
    assert f"the suite's temp folder {state.temp_dir()} is a folder that belongs to uid {OTHER_UID} (" \
           in outcome.message and outcome.message.endswith("the CDI spec was not generated"), outcome
    verdict = cdi_v.with_generation(cdi_v.spec_present(probe_cdi(cfg.cdi_dirs, None, 5, cfg.cdi_spec_path)), outcome)
    assert verdict.status == "fail" and outcome.message in verdict.message, verdict
    assert_refused_fix(verdict.remediation, state.temp_dir(), tmp_path / "my home")
    assert snapshot(state.temp_dir()) == before and not cdi_dir.exists()


@pytest.mark.needs("root")
def test_a_configured_state_dir_another_user_made_in_a_shared_folder_fails_the_cluster_step(sticky_tmp, tmp_path):
    """state_dir: /tmp/lab/state, and another user made /tmp/lab first: the cluster step (its lock and ownership
    records) refuses it with the state_dir fix, makes nothing in it, and runs no kind command."""
    theirs = sticky_tmp / "lab"
    before = plant(theirs)
    cfg = LabConfig(state_dir=str(theirs / "state"), kind_binary=str(tmp_path / "no-kind"), command_timeout=5,
                    cluster_name="labcheck-planted-t", docker_host=f"unix://{tmp_path}/no-engine.sock")
    outcome = cluster_action.apply(cfg, str(tmp_path / "kind-config.yaml"))
    verdict = kind_v.cluster_provisioned(outcome.ok, outcome.message, outcome.remediation)
    assert verdict.status == "fail", verdict
    assert verdict.message.startswith(f"{theirs}, on the way to the state folder {theirs / 'state'}, belongs to uid "
                                      f"{OTHER_UID} ("), verdict.message
    assert verdict.remediation == (f"ls -ld -- {theirs}   # set state_dir in the lab config to a folder of your own, "
                                   f"not in {sticky_tmp}")
    assert snapshot(theirs) == before


# --- the start fact's own fixes are commands, the folder one quoted word (review: prose with paths) ---------------

def test_the_mps_start_held_up_by_another_run_prints_the_start_command_not_prose(tmp_path):
    """Another run holds the MPS lock past the wait: the fix was "wait for the other run to end, then rerun; or
    <start>", which bash runs as `wait for ...` (a builtin) and `or ...`. Now the start command, the rest after '#'."""
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    action = MpsDaemon(ctl, str(pipe), str(log), 0.2, state_root=tmp_path / "s", shell=Shell(root=True))
    with lock.held(action.state_file.parent, action.state_file.name + ".lock", 5, private=True):
        outcome = _provision(action)
    assert not outcome.ok and "held the lock" in outcome.message, outcome
    command, _, note = outcome.remediation.partition("   # ")
    assert command == mps_v.start_command(str(pipe), str(log), ctl, Shell(root=True)), outcome.remediation
    assert note == "starts it by hand; or wait for the other run to end, then rerun"
    assert parses(outcome.remediation) and commands(outcome.remediation)[0][0] != "wait"


def test_the_mps_record_folder_fix_is_one_quoted_word_and_runs_nothing_else(tmp_path, monkeypatch):
    """The record cannot be written: the fix was f"check that {folder} is writable, then rerun", the folder as it
    was: a state folder with a newline ran the rest of its name as a command when pasted. Now Shell.user_folder
    (quoted), which leaves a usable folder as it is."""
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    folder = tmp_path / "state\ntouch pwned\n"
    action = MpsDaemon(ctl, str(tmp_path / "pipe"), str(tmp_path / "log"), 5, state_root=folder,
                       shell=Shell(root=True))

    def no_record():
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(action, "apply", no_record)
    outcome = _provision(action)
    assert not outcome.ok and "cannot record the MPS daemon" in outcome.message, outcome
    assert outcome.remediation.startswith(Shell(root=True).user_folder(str(folder)) + "   # "), outcome.remediation
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = subprocess.run(["bash", "-c", outcome.remediation], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and os.listdir(cwd) == [], (res, os.listdir(cwd))
