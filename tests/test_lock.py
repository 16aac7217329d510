"""labcheck.lock: the one file lock of the setup steps (xdist workers and concurrent runs)."""

from __future__ import annotations

import errno
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from labcheck import lock, state
from tests import needs
from tests.other_user import run_as_nobody
from tests.planted import OTHER_UID, aside_fix_pattern, home_fix, plant, snapshot

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
            "with lock.held(docker.LOCK_DIR, docker.LOCK_NAME, 5, private=True):\n    print('held', docker.LOCK_DIR)\n")
    res = run_as_nobody(code)
    assert res.returncode == 0, res.stderr
    assert f"held /tmp/dra-labcheck-{NOBODY_UID}" in res.stdout, res.stdout


# --- the suite's own temp folder (labcheck.state.temp_dir) and configured state folders in shared places --------

TEMP_CHILD = ("import os, stat, tempfile\nfrom labcheck import lock, state\n"
              "with lock.held(state.temp_dir(), 'x.lock', 5, private=True):\n"
              "    print(tempfile.gettempdir(), oct(stat.S_IMODE(os.stat(state.temp_dir()).st_mode)))\n")


def run_fix_then(fix: str, code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``fix`` pasted into a shell, then the suite's Python run in that same shell (as a rerun would be)."""
    script = f"{fix}\n{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_the_suites_temp_folder_is_made_0700(sticky_tmp):
    with lock.held(state.temp_dir(), "x.lock", 1, private=True) as path:
        assert path == state.temp_dir() / "x.lock"
    st = os.lstat(state.temp_dir())
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    with lock.held(state.temp_dir(), "x.lock", 1, private=True):  # and used as it is the next time
        pass


@pytest.mark.needs("root")
def test_another_users_temp_folder_is_refused_with_the_tmpdir_fix_that_works_and_left_as_it_was(sticky_tmp, tmp_path,
                                                                                               monkeypatch):
    """/tmp/dra-labcheck-UID made first by another local user (this test runs as root: /tmp/dra-labcheck-0, the
    name a root run uses). Its owner could hold or delete the suite's locks there and plant its records: refused,
    nothing in it touched, and the fix (TMPDIR to a folder of the user's own, made first because gettempdir()
    ignores a TMPDIR that does not exist) works when pasted, then the suite's folder there is 0700. The fix a user
    without root gets (root's: test_as_root_the_refused_temp_folder_is_moved_aside_not_deleted)."""
    monkeypatch.setattr(lock, "_by_root", lambda: False)
    folder = state.temp_dir()
    before = plant(folder)
    with pytest.raises(lock.LockProblem) as caught, lock.held(folder, "docker-runtime.lock", 1, private=True):
        pytest.fail("the block ran in another user's folder")
    text = str(caught.value)
    assert not caught.value.timed_out and caught.value.path == folder / "docker-runtime.lock"
    assert f"the suite's temp folder {folder} is a folder that belongs to uid {OTHER_UID} (" in text, text
    assert f"not to you (uid {os.geteuid()}), in {sticky_tmp}, where anyone may create files" in text, text
    assert "nothing in it was changed" in text and "TMPDIR" not in text, text
    assert caught.value.fix == home_fix(tmp_path / "my home"), caught.value.fix
    assert snapshot(folder) == before
    res = run_fix_then(caught.value.fix, TEMP_CHILD)
    assert res.returncode == 0, res.stderr
    moved = tmp_path / "my home" / ".cache" / "dra-labcheck-tmp"
    assert res.stdout.rstrip("\n").rsplit(" ", 1) == [str(moved), "0o700"], res.stdout
    assert stat.S_IMODE(os.stat(moved).st_mode) == 0o700
    assert snapshot(folder) == before
    # A TMPDIR exported without making its folder first is ignored by Python: the message says so.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "absent"))
    monkeypatch.setattr(tempfile, "tempdir", str(sticky_tmp))
    with pytest.raises(lock.LockProblem, match=rf"TMPDIR={tmp_path}/absent is set but not used: Python takes it "
                                               rf"only when it names a folder it can write to; it took {sticky_tmp}"), \
            lock.held(folder, "x.lock", 1, private=True):
        pass


@pytest.mark.needs("root")
def test_a_link_or_a_file_at_the_temp_folders_name_is_refused_and_never_followed(sticky_tmp, tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "_by_root", lambda: False)  # the fix a user without root gets
    folder = state.temp_dir()
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    folder.symlink_to(target)  # the user's own link
    with pytest.raises(lock.LockProblem) as caught, lock.held(folder, "x.lock", 1, private=True):
        pytest.fail("the block ran through a link")
    assert f"{folder} is a symlink to {target}, not a folder" in str(caught.value), caught.value
    assert f"the link is yours: removing it, rm {folder}, also works" in str(caught.value)
    assert caught.value.fix == home_fix(tmp_path / "my home")
    assert list(target.iterdir()) == [] and folder.is_symlink()
    os.lchown(folder, OTHER_UID, OTHER_UID)  # another user's link
    with pytest.raises(lock.LockProblem, match=rf"{folder} is a symlink that belongs to uid {OTHER_UID} "), \
            lock.held(folder, "x.lock", 1, private=True):
        pass
    assert list(target.iterdir()) == []
    folder.unlink()
    folder.write_text("mine\n")
    with pytest.raises(lock.LockProblem, match=rf"{folder} is a regular file, not a folder"), \
            lock.held(folder, "x.lock", 1, private=True):
        pass
    assert folder.read_text() == "mine\n"


@pytest.mark.needs("root")
def test_the_users_own_temp_folder_left_open_is_refused_with_the_chmod_fix_which_closes_it(sticky_tmp):
    """Theirs, but mode 0777, with nothing of anyone else in it: ``chmod 700`` closes it (only the owner may, so only
    then is it the fix), and pasted it makes the folder usable."""
    folder = state.temp_dir()
    folder.mkdir()
    os.chmod(folder, 0o777)
    (folder / "docker-runtime.lock").write_text("")  # the user's own
    before = snapshot(folder)
    with pytest.raises(lock.LockProblem) as caught, lock.held(folder, "docker-runtime.lock", 1, private=True):
        pytest.fail("the block ran in a folder open to everyone")
    assert f"{folder} is writable by others (mode 0777)" in str(caught.value), caught.value
    assert caught.value.fix == f"chmod 700 {folder}", caught.value.fix
    assert snapshot(folder) == before
    res = run_fix_then(caught.value.fix, TEMP_CHILD)
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip("\n").rsplit(" ", 1) == [str(sticky_tmp), "0o700"], res.stdout


@pytest.mark.needs("root")
def test_the_users_own_open_temp_folder_with_others_files_in_it_is_moved_aside_not_emptied(sticky_tmp):
    """Open, and another user put a folder with a file of theirs in it: a user cannot delete inside another's
    folder (so a "delete what is not mine" fix fails half-way and leaves the folder to be used), so the fix moves
    the whole folder aside, deletes nothing, and the rerun makes a new 0700 one."""
    folder = state.temp_dir()
    folder.mkdir()
    os.chmod(folder, 0o777)
    theirs = folder / "theirs"
    theirs.mkdir()
    (theirs / "f").write_text("planted\n")
    for path in (theirs / "f", theirs):
        os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.raises(lock.LockProblem) as caught, lock.held(folder, "docker-runtime.lock", 1, private=True):
        pytest.fail("the block ran in a folder open to everyone")
    assert re.match(aside_fix_pattern(folder), caught.value.fix), caught.value.fix
    res = run_fix_then(caught.value.fix, TEMP_CHILD)
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip("\n").rsplit(" ", 1) == [str(sticky_tmp), "0o700"], res.stdout
    aside = caught.value.fix.split()[3]
    assert (Path(aside) / "theirs" / "f").read_text() == "planted\n"  # nothing deleted


@pytest.mark.needs("root")
def test_as_root_the_refused_temp_folder_is_moved_aside_not_deleted(sticky_tmp, tmp_path, monkeypatch):
    """A root run is mostly ``sudo pytest``: sudo (setuid) never passes TMPDIR on, so the TMPDIR fix would bring
    the same refusal back on every rerun. Root can rename anything in a sticky /tmp: the fix moves the other
    user's folder aside, with everything in it as it was, and the rerun makes its own 0700 folder."""
    monkeypatch.setattr(lock, "_by_root", lambda: True)
    folder = state.temp_dir()
    before = plant(folder)
    with pytest.raises(lock.LockProblem) as caught, lock.held(folder, "x.lock", 1, private=True):
        pytest.fail("the block ran in another user's folder")
    assert re.match(aside_fix_pattern(folder), caught.value.fix), caught.value.fix
    assert "TMPDIR" not in caught.value.fix
    assert snapshot(folder) == before
    res = run_fix_then(caught.value.fix, TEMP_CHILD)
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip("\n").rsplit(" ", 1) == [str(sticky_tmp), "0o700"], res.stdout
    aside = Path(caught.value.fix.split()[3])
    moved = {k.replace(str(aside), str(folder), 1): v for k, v in snapshot(aside).items()}
    assert moved == before  # the same inodes, owners, modes and bytes, only renamed


@pytest.mark.needs("root")
def test_the_tmpdir_fix_prefers_the_users_own_runtime_folder(sticky_tmp, tmp_path, monkeypatch):
    """/run/user/UID (XDG_RUNTIME_DIR) is emptied at reboot, as /tmp is (the MPS record must not outlive the
    daemon): the fix names it when it is the user's alone, else a folder under the home (a user without root)."""
    monkeypatch.setattr(lock, "_by_root", lambda: False)
    plant(state.temp_dir())
    runtime = tmp_path / "run user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    with pytest.raises(lock.LockProblem) as caught, lock.held(state.temp_dir(), "x.lock", 1, private=True):
        pass
    assert caught.value.fix == f"export TMPDIR={shlex.quote(str(runtime))}   # then rerun in this shell"
    os.chown(runtime, OTHER_UID, OTHER_UID)
    with pytest.raises(lock.LockProblem) as caught, lock.held(state.temp_dir(), "x.lock", 1, private=True):
        pass
    assert caught.value.fix == home_fix(tmp_path / "my home")


@pytest.mark.needs("root")
def test_a_configured_state_dir_is_refused_only_where_another_user_owns_a_step_of_it_in_a_shared_folder(
        sticky_tmp, tmp_path):
    """state_dir is the user's choice: their own link (also in /tmp) and their own folder, however open, are used
    as they are. Refused: a folder or link another user made in a world-writable folder on the way (as written
    or as resolved), with nothing made in it."""
    mine = tmp_path / "my state"
    mine.mkdir()
    (sticky_tmp / "my-link").symlink_to(mine)  # the user's own link in /tmp
    (tmp_path / "home-link").symlink_to(sticky_tmp / "my-link")
    (sticky_tmp / "open").mkdir(mode=0o777)
    os.chmod(sticky_tmp / "open", 0o777)
    for folder in (sticky_tmp / "my-link", tmp_path / "home-link", sticky_tmp / "open", sticky_tmp / "new" / "s"):
        with lock.held(folder, "x.lock", 1):
            assert (folder / "x.lock").is_file()
    theirs = sticky_tmp / "lab"
    before = plant(theirs)
    (sticky_tmp / "their-link").symlink_to(mine)
    os.lchown(sticky_tmp / "their-link", OTHER_UID, OTHER_UID)
    (tmp_path / "link-into-theirs").symlink_to(theirs)
    their_link = sticky_tmp / "their-link"
    cases = [(theirs / "state", theirs, ""), (theirs, theirs, ""), (their_link, their_link, " (a symlink)"),
             (tmp_path / "link-into-theirs" / "state", theirs, "")]
    for folder, culprit, kind in cases:
        with pytest.raises(lock.LockProblem) as caught, lock.held(folder, "x.lock", 1):
            pytest.fail(f"the block ran in {folder}")
        text = str(caught.value)
        named = f"the state folder {folder}{kind}" if culprit == folder else \
            f"{culprit}{kind}, on the way to the state folder {folder},"
        assert text.startswith(f"{named} belongs to uid {OTHER_UID} ("), text
        assert f"and is in {sticky_tmp}, where anyone may create files" in text, text
        assert caught.value.fix == (f"ls -ld -- {culprit}   # set state_dir in the lab config to a folder of your "
                                    f"own, not in {sticky_tmp}"), caught.value.fix
    assert snapshot(theirs) == before
    assert sorted(p.name for p in mine.iterdir()) == ["x.lock", "x.lock.holder"]


def test_a_user_without_root_is_refused_a_temp_folder_root_made_and_the_tmpdir_fix_works_for_them():
    """A user without sudo cannot remove or rename another user's folder (here root's: an earlier sudo run, or
    any other user) in a sticky /tmp: only moving TMPDIR works, and it does, run as that user. (The rerun is the
    system's python3: the venv's interpreter may lie under a home that user cannot enter.)"""
    needs.skip_unless("other_user")  # chown to nobody and running as nobody need root
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no /usr/bin/python3 for the rerun as nobody")
    root = Path(tempfile.mkdtemp(prefix="lc-sticky-", dir="/tmp"))
    try:
        os.chmod(root, 0o1777)
        home = root / "nobody home"
        home.mkdir()
        os.chown(home, NOBODY_UID, NOBODY_UID)
        before = plant(root / f"dra-labcheck-{NOBODY_UID}", uid=0, mode=0o755)
        code = ("import os, subprocess, sys, tempfile\n"
                "os.environ.update(TMPDIR=sys.argv[1], HOME=sys.argv[2])\n"
                "from labcheck import lock, state\n"
                "try:\n    lock.held(state.temp_dir(), 'docker-runtime.lock', 5, private=True).__enter__()\n"
                "except lock.LockProblem as exc:\n    print('refused:', exc)\n"
                f"    rerun = {python!r} + ' -c ' + {shlex.quote(TEMP_CHILD)!r}\n"
                "    res = subprocess.run(['bash', '-c', exc.fix + chr(10) + rerun], capture_output=True, text=True,\n"
                "                         timeout=30)\n"
                "    print('rerun:', res.stdout.strip(), res.stderr.strip())\n")
        res = run_as_nobody(code, str(root), str(home))
        assert res.returncode == 0, res.stderr
        assert f"refused: the suite's temp folder {root}/dra-labcheck-{NOBODY_UID} is a folder that belongs to uid 0 " \
               f"(root), not to you (uid {NOBODY_UID})" in res.stdout, res.stdout
        assert f"rerun: {home}/.cache/dra-labcheck-tmp 0o700" in res.stdout, res.stdout
        assert snapshot(root / f"dra-labcheck-{NOBODY_UID}") == before
    finally:
        subprocess.run(["rm", "-rf", "--", str(root)], timeout=60)
