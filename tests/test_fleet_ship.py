"""labcheck.fleet_ship: the suite goes to a fleet host as one archive, only when the host's copy differs.

The host side's code (fleet_ship.HOST_FUNCTIONS) runs here as it runs on a host: plain Python in a work folder.
The end-to-end path over real SSH is in tests/test_fleet_ssh.py."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from labcheck import fleet_ship


def _host(workdir: Path) -> dict:
    """The host side's functions, executed in ``workdir`` as the gateway does."""
    env: dict = {}
    exec(compile(fleet_ship.HOST_FUNCTIONS, "<host>", "exec"), env)
    return env


@pytest.fixture
def suite(tmp_path):
    src = tmp_path / "src"
    (src / "labcheck" / "sub").mkdir(parents=True)
    (src / "labcheck" / "__init__.py").write_text("")
    (src / "labcheck" / "sub" / "m.py").write_text("X = 1\n")
    (src / "labcheck" / "__pycache__").mkdir()
    (src / "labcheck" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (src / "labcheck" / ".hidden").write_text("no")
    (src / "labcheck" / "m.py~").write_text("editor backup")
    (src / "conftest.py").write_text("pytest_plugins = []\n")
    os.chmod(src / "conftest.py", 0o664)  # group write: cleared on the host by tarfile's data filter
    return src


def _sources(src: Path) -> list[tuple[str, Path]]:
    return [("conftest.py", src / "conftest.py"), ("labcheck", src / "labcheck")]


def test_the_host_copy_matches_the_bundle_after_unpacking_and_again_on_the_next_run(suite, tmp_path, monkeypatch):
    b = fleet_ship.bundle(_sources(suite))
    names = list(b.names)
    work = tmp_path / "host"
    work.mkdir()
    monkeypatch.chdir(work)
    host = _host(work)
    assert host["digest_of"](names) is None  # nothing there yet: it must receive the archive
    host["unpack"](b.data, names)
    assert sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()) == [
        "conftest.py", "labcheck/__init__.py", "labcheck/sub/m.py"]  # no byte code, dot-names, backups
    assert host["digest_of"](names) == b.digest  # the next run sends nothing
    assert fleet_ship.bundle(_sources(suite)).digest == b.digest  # the same tree, the same digest


@pytest.mark.parametrize("change", ["stale file on the host", "edited on the host", "edited in the suite",
                                    "missing on the host"])
def test_any_difference_makes_the_host_receive_the_archive_and_leaves_no_stale_file(suite, tmp_path, monkeypatch,
                                                                                    change):
    b = fleet_ship.bundle(_sources(suite))
    work = tmp_path / "host"
    work.mkdir()
    monkeypatch.chdir(work)
    host = _host(work)
    host["unpack"](b.data, list(b.names))
    (work / ".pycache").mkdir()  # the host's byte code, outside the shipped names: kept
    if change == "stale file on the host":
        (work / "labcheck" / "rogue.py").write_text("print('not from the suite')\n")
    elif change == "edited on the host":
        (work / "labcheck" / "sub" / "m.py").write_text("X = 2  # edited there\n")
    elif change == "edited in the suite":
        (suite / "labcheck" / "sub" / "m.py").write_text("X = 3\n")
        os.utime(suite / "labcheck" / "sub" / "m.py", (1, 1))
        b = fleet_ship.bundle(_sources(suite))
    else:
        (work / "conftest.py").unlink()
    assert host["digest_of"](list(b.names)) != b.digest
    host["unpack"](b.data, list(b.names))
    assert host["digest_of"](list(b.names)) == b.digest
    assert not (work / "labcheck" / "rogue.py").exists() and (work / ".pycache").is_dir()
    assert (work / "labcheck" / "sub" / "m.py").read_text() == (suite / "labcheck" / "sub" / "m.py").read_text()


def test_an_archive_member_outside_the_work_folder_is_never_written(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("../evil.py", "/tmp/abs-evil.py", "labcheck/ok.py"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"x=1"))
        link = tarfile.TarInfo("labcheck/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    work = tmp_path / "host" / "w"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    _host(work)["unpack"](buf.getvalue(), ["labcheck"])
    assert (work / "labcheck" / "ok.py").read_text() == "x=1"
    assert not (tmp_path / "host" / "evil.py").exists() and not Path("/tmp/abs-evil.py").exists()
    assert not (work / "labcheck" / "link").is_symlink()


def test_a_link_or_non_file_in_the_suite_is_not_shipped(suite, tmp_path):
    (suite / "labcheck" / "to-passwd").symlink_to("/etc/passwd")
    os.mkfifo(suite / "labcheck" / "fifo")
    b = fleet_ship.bundle(_sources(suite))
    with tarfile.open(fileobj=io.BytesIO(b.data)) as tar:
        assert sorted(tar.getnames()) == ["conftest.py", "labcheck/__init__.py", "labcheck/sub/m.py"]
