"""labcheck.lock: the one file lock of the setup steps (xdist workers and concurrent runs)."""

from __future__ import annotations

import errno
import os
import pwd
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labcheck import lock
from tests.other_user import run_as_nobody

ROOT = Path(__file__).resolve().parent.parent
HOLD = """
import sys, time
from labcheck import lock
with lock.held(sys.argv[1], "step.lock", 5):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_lock_held_by_another_process_times_out_naming_the_lock_and_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "state")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.LockProblem) as caught, lock.held(tmp_path / "state", "step.lock", 0.3):
            pytest.fail("the block ran without the lock")
        text = str(caught.value)
        assert caught.value.timed_out and str(tmp_path / "state" / "step.lock") in text
        assert f"pid {holder.pid} " in text and "over 0.3s" in text, text
    finally:
        holder.kill()
        holder.wait(10)
    with lock.held(tmp_path / "state", "step.lock", 5) as path:  # free again once the holder is gone
        assert path == tmp_path / "state" / "step.lock"


def test_the_folder_is_created_and_an_unusable_one_is_a_clear_problem(tmp_path):
    with lock.held(tmp_path / "a" / "b", "x.lock", 1):
        assert (tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(lock.LockProblem) as caught, lock.held(blocker / "state", "x.lock", 1):
        pytest.fail("the block ran without the lock")
    assert not caught.value.timed_out
    assert f"cannot use the state folder {blocker / 'state'} for the lock x.lock" in str(caught.value)


def test_an_error_of_the_block_itself_is_not_turned_into_a_lock_problem(tmp_path):
    with pytest.raises(OSError, match="the step's own"), lock.held(tmp_path, "x.lock", 1):
        raise OSError("the step's own error")


def test_two_threads_of_one_process_exclude_each_other(tmp_path):
    """Prefetch runs setup steps in threads: the lock must hold between them too, not only between processes."""
    inside, overlaps = [], []

    def step(n: int) -> None:
        with lock.held(tmp_path, "x.lock", 10):
            inside.append(n)
            if len(inside) > 1:
                overlaps.append(tuple(inside))
            time.sleep(0.05)
            inside.remove(n)

    threads = [threading.Thread(target=step, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not overlaps, f"two threads held the lock at once: {overlaps}"


def test_a_lock_that_is_not_a_regular_file_is_a_clear_problem_and_left_as_it_was(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("the user's file\n")
    (tmp_path / "link.lock").symlink_to(target)
    os.mkfifo(tmp_path / "fifo.lock")
    for name in ("link.lock", "fifo.lock"):
        with pytest.raises(lock.LockProblem) as caught, lock.held(tmp_path, name, 1):
            pytest.fail("the block ran without the lock")
        assert not caught.value.timed_out and name in str(caught.value)
    assert (tmp_path / "link.lock").is_symlink() and target.read_text() == "the user's file\n"
    assert stat.S_ISFIFO((tmp_path / "fifo.lock").lstat().st_mode)


def test_the_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    """SIGKILL runs no cleanup: the kernel drops a dead process's flock, so the next run does not wait."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(10)
    start = time.monotonic()
    with lock.held(tmp_path, "step.lock", 5):
        assert time.monotonic() - start < 1.0


def test_a_file_system_that_refuses_locks_is_a_clear_problem(tmp_path, monkeypatch):
    """flock fails with ENOLCK on some network file systems: a LockProblem naming the file, never an OSError
    that every caller (which handles LockProblem) would turn into a traceback. The refusal is simulated: no
    such file system can be mounted here."""
    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", refuse)
    with pytest.raises(lock.LockProblem) as caught, lock.held(tmp_path, "x.lock", 1):
        pytest.fail("the block ran without the lock")
    assert not caught.value.timed_out and "No locks available" in str(caught.value)
    assert str(tmp_path / "x.lock") in str(caught.value)


NOBODY_UID = pwd.getpwnam("nobody").pw_uid  # the user tests/other_user.py runs as


def test_a_user_without_root_takes_the_machine_wide_locks_in_a_folder_of_their_own():
    """The Docker runtime lock lives in the user's /tmp/dra-labcheck-UID (labcheck.state.temp_dir), as the MPS
    record does, not in /tmp itself, where any user may plant or hold a file of that name."""
    code = ("from fixtures import docker\nfrom labcheck import lock\n"
            "with lock.held(docker.LOCK_DIR, docker.LOCK_NAME, 5):\n    print('held', docker.LOCK_DIR)\n")
    res = run_as_nobody(code)
    assert res.returncode == 0, res.stderr
    assert f"held /tmp/dra-labcheck-{NOBODY_UID}" in res.stdout, res.stdout
