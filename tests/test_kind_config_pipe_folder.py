"""The MPS pipe folder the kind config step creates belongs to the user who runs the workshop, also under sudo.

WHY: module 0's fix starts the host MPS daemon as that user (no sudo), and the daemon creates its pipes in this
folder; a root-owned one under sticky /tmp stops it and cannot even be removed by the user. Real processes: the
step runs in a child process as root with the SUDO_UID/SUDO_GID sudo sets, and the user (nobody, through
setpriv) then creates a FIFO in the folder the way the daemon creates its pipes.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from labcheck.verdicts import kindconfig as kv
from setup_actions import kind_config as kind_config_action
from setup_actions.privilege import sudo_invoker
from tests.other_user import run_as_nobody
from tests.test_kindconfig import gpu_cfg, gpu_host_inspection

REPO = Path(__file__).resolve().parent.parent
MKFIFO = "import os, sys\nos.mkfifo(sys.argv[1])\n"  # what the MPS daemon does in its pipe folder
NOBODY = (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)


@pytest.fixture
def shared_tmp():
    """A folder under /tmp that nobody may enter (pytest's tmp_path lies under a 0700 folder of root's)."""
    base = Path(tempfile.mkdtemp(prefix="lc-pipe-", dir="/tmp"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _make_in_child(path: Path, **sudo: str) -> subprocess.CompletedProcess:
    """setup_actions.kind_config.make_pipe_folder in a fresh process whose environment holds ``sudo``."""
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_UID", "SUDO_GID")} | sudo
    code = ("import sys\nfrom setup_actions import kind_config as k\n"
            "o = k.make_pipe_folder(sys.argv[1])\nprint(o.ok, o.message, o.remediation, sep='\\n')\n")
    return subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


def _owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


@pytest.mark.needs("other_user")
def test_pipe_folder_made_under_sudo_belongs_to_the_user_who_ran_sudo(shared_tmp):
    pipe = shared_tmp / "run" / "nvidia-mps"  # its parent is missing too: both are created, both given
    res = _make_in_child(pipe, SUDO_UID=str(NOBODY[0]), SUDO_GID=str(NOBODY[1]))
    assert res.returncode == 0 and res.stdout.startswith("True\n"), res.stdout + res.stderr
    assert _owner(pipe) == NOBODY and _owner(pipe.parent) == NOBODY
    assert _owner(shared_tmp) == (0, 0)  # was there already: never chowned
    made = run_as_nobody(MKFIFO, str(pipe / "control"))
    assert made.returncode == 0, made.stderr
    assert (pipe / "control").is_fifo()


@pytest.mark.needs("other_user")
def test_without_sudo_the_folder_stays_roots_and_the_user_cannot_make_pipes_in_it(shared_tmp):
    """The contrast that makes the test above mean something: root's folder refuses nobody's pipe."""
    pipe = shared_tmp / "nvidia-mps"
    res = _make_in_child(pipe)
    assert res.returncode == 0 and res.stdout.startswith("True\n"), res.stdout + res.stderr
    assert _owner(pipe) == (0, 0)
    made = run_as_nobody(MKFIFO, str(pipe / "control"))
    assert made.returncode != 0 and "PermissionError" in made.stderr


@pytest.mark.needs("root")
def test_a_folder_that_was_there_is_never_chowned(shared_tmp):
    pipe = shared_tmp / "nvidia-mps"
    pipe.mkdir()
    res = _make_in_child(pipe, SUDO_UID=str(NOBODY[0]), SUDO_GID=str(NOBODY[1]))
    assert res.returncode == 0 and res.stdout.startswith("True\n"), res.stdout + res.stderr
    assert _owner(pipe) == (0, 0)


GARBAGE = [
    ({"SUDO_UID": "alice", "SUDO_GID": "1000"}, "SUDO_UID='alice' is not a user/group id"),
    ({"SUDO_UID": "1000", "SUDO_GID": "-1"}, "SUDO_GID='-1' is not a user/group id"),
    ({"SUDO_UID": "4294967295", "SUDO_GID": "1000"}, "SUDO_UID='4294967295' is not a user/group id"),
    ({"SUDO_UID": "\uff11\uff10", "SUDO_GID": "1000"}, "is not a user/group id"),  # full-width digits
    ({"SUDO_UID": "1000"}, "SUDO_GID is not set but SUDO_UID is"),
    ({"SUDO_UID": "", "SUDO_GID": ""}, "SUDO_UID='' is not a user/group id"),
]


@pytest.mark.needs("root")
@pytest.mark.parametrize(("sudo", "said"), GARBAGE)
def test_garbage_sudo_ids_are_a_clear_failure_never_a_crash(shared_tmp, sudo, said):
    pipe = shared_tmp / "nvidia-mps"
    res = _make_in_child(pipe, **sudo)
    assert res.returncode == 0, res.stderr  # no traceback
    ok, message, fix = res.stdout.splitlines()
    assert ok == "False" and said in message and f"{pipe} owned by root" in message
    assert fix.startswith(f'sudo chown "$(id -u):$(id -g)" {pipe}')
    assert _owner(pipe) == (0, 0)


@pytest.mark.needs("root")
def test_a_pipe_folder_left_to_root_fails_the_kind_config_check_with_the_fix(tmp_path, monkeypatch):
    """Through apply and the verdict: the config is still written (and said), the check fails with the chown."""
    monkeypatch.setenv("SUDO_UID", "not-a-number")
    monkeypatch.setenv("SUDO_GID", "0")
    pipe = tmp_path / "nvidia-mps"
    cfg = gpu_cfg(mps_pipe_dir=str(pipe), kind_config_path=str(tmp_path / "kind-config.yaml"))
    out = kind_config_action.apply(cfg, gpu_host_inspection())
    assert not out.ok and out.action == "create" and out.changed and Path(cfg.kind_config_path).is_file()
    verdict = kv.config_generated(out, [], False, cfg.kind_config_path)
    assert verdict.status == "fail" and f"{cfg.kind_config_path} created" in verdict.message
    assert "SUDO_UID='not-a-number'" in verdict.message and verdict.remediation.startswith("sudo chown ")


def test_sudo_invoker_reads_what_sudo_sets():
    assert sudo_invoker({}) is None
    assert sudo_invoker({"SUDO_UID": "1000", "SUDO_GID": "1001", "SUDO_USER": "alice"}) == (1000, 1001)
    with pytest.raises(ValueError, match="SUDO_UID is not set but SUDO_GID is"):
        sudo_invoker({"SUDO_GID": "1000"})


def test_a_folder_another_process_made_meanwhile_still_gets_the_folders_below_it(tmp_path, monkeypatch):
    """Two workers create the pipe folder at once: the one whose mkdir of a parent loses the race must still make
    the folders below it (and say it created them), not stop and report the pipe folder as there."""
    target = tmp_path / "a" / "b" / "pipe"
    real_mkdir = os.mkdir

    def racing_mkdir(path, *args, **kwargs):  # the other worker makes "a" just before this one does
        if Path(path) == tmp_path / "a":
            real_mkdir(path, *args, **kwargs)
            raise FileExistsError(17, "File exists", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    out = kind_config_action.make_pipe_folder(str(target), environ={})
    assert target.is_dir() and out.ok and out.changed and "is there" not in out.message, out
