"""Folders another local user made first where the suite keeps its own (the suite's temp folder, a state_dir in
/tmp): a /tmp-like temp root for a test, the planting, and a snapshot to show nothing in them was changed.

"Another user" is nobody (tests/other_user.py's): planting chowns to them, so those tests need root.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import stat
import tempfile
from pathlib import Path

import pytest

from labcheck import state
from tests import needs

OTHER_UID = pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def sticky_tmp(tmp_path, monkeypatch) -> Path:
    """A folder as /tmp is (root's, world-writable, sticky) as this process's temp root, through TMPDIR as a run
    gets it (children inherit it); HOME is a folder of this test (with a space: the fixes are quoted);
    XDG_RUNTIME_DIR unset."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again (and again after the test)
    monkeypatch.setenv("HOME", str(tmp_path / "my home"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert state.temp_dir() == tmp / f"dra-labcheck-{os.getuid()}"
    return tmp


def snapshot(folder: Path) -> dict:
    """Everything about ``folder`` and what is in it that a write, chmod, chown or swap would change."""
    out = {}
    for path in (folder, *sorted(folder.rglob("*"))):
        st = os.lstat(path)
        body = path.read_bytes() if stat.S_ISREG(st.st_mode) else os.readlink(path) if path.is_symlink() else None
        out[str(path)] = (st.st_uid, st.st_mode, st.st_mtime_ns, st.st_ino, body)
    return out


def plant(folder: Path, uid: int = OTHER_UID, mode: int = 0o777) -> dict:
    """Another user's folder at ``folder``, made first, open to its maker, with a lock and an MPS record of theirs in
    it (as they would leave it to hold the suite's lock or plant a record); its snapshot. Skips where this test is
    not root (making a file another user's needs CAP_CHOWN)."""
    needs.skip_unless("root")
    folder.mkdir()
    (folder / "docker-runtime.lock").write_text("")
    (folder / "mps-daemon-0123456789ab.json").write_text('{"phase": "started", "pid": 1, "users": []}')
    for path in (*folder.iterdir(), folder):
        os.chown(path, uid, uid)
    os.chmod(folder, mode)
    return snapshot(folder)


def home_fix(home: Path) -> str:
    """The fix labcheck.lock gives a user without root for a refused temp folder when the home is ``home`` (no
    XDG_RUNTIME_DIR)."""
    root = shlex.quote(str(home / ".cache" / "dra-labcheck-tmp"))
    return f"mkdir -p -m 700 {root} && export TMPDIR={root}   # then rerun in this shell"


def aside_fix_pattern(folder: Path) -> str:
    """The fix labcheck.lock gives root (or this user's own folder left open with others' files in it): the folder
    moved aside to a new name beside it, nothing deleted; a regex (for a ``folder`` that needs no shell quoting, as
    the test folders here do)."""
    return rf"mv -- {re.escape(str(folder))} {re.escape(str(folder))}\.set-aside-\d{{8}}-\d{{6}}   # "


def assert_refused_fix(fix: str, folder: Path, home: Path) -> None:
    """The fix for a temp folder another user made: as root, moving it aside (TMPDIR would not pass through
    sudo); otherwise TMPDIR to a folder under the home."""
    if os.geteuid() == 0:
        assert re.match(aside_fix_pattern(folder), fix), fix
    else:
        assert fix == home_fix(home), fix
