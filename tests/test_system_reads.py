"""Reads of system files (/etc/os-release, /proc/sys, /proc/driver/nvidia/version, /proc/PID/environ and cgroup)
and pid files: bounded, regular files only, so a FIFO bound over one (``mount --bind``) or a huge file is "cannot
read", never a hang at start or a MemoryError. Each probe is given a real FIFO through its configurable path, in
a child process with a timeout: a regression fails the test instead of hanging the suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from labcheck import cmd, fsio
from labcheck.probes import host
from setup_actions.mps_daemon import MpsDaemon
from tests.standins import executable

ROOT = Path(__file__).resolve().parent.parent


def _in_child(code: str, timeout: float = 20) -> cmd.CmdResult:
    return cmd.run([sys.executable, "-c", code], timeout=timeout, extra_env={"PYTHONPATH": str(ROOT)})


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


READERS = {
    "os-release": ("etc/os-release", "from labcheck.probes.host import probe_host\n"
                                     "print(repr(probe_host(Path(F)).os_name))", "''"),
    "sysctl": ("sys/fs/inotify/max_user_watches", "from labcheck.probes import sysctl\n"
                                                  "print(sysctl.read('fs.inotify.max_user_watches', R + '/sys'))",
               "FIFO"),
    "nvidia version": ("driver/nvidia/version",
                       "from labcheck.probes.gpu import probe_gpus\n"
                       "print(repr(probe_gpus(use_nvml=False, proc_version=Path(F)).kernel_module))", "''"),
    "environ": ("proc/4242/environ", "from labcheck.probes.mps import read_proc_pipe_dir\n"
                                     "print(read_proc_pipe_dir(4242, R + '/proc'))", "None"),
    "cgroup": ("proc/4242/cgroup", "from labcheck.probes.node import in_container\n"
                                   "print(in_container(4242, 'abc', R + '/proc'))", "None"),
    "pid file": ("run/docker.pid", "from labcheck import fsio\nprint(fsio.read_pid(F))", "None"),
}


@pytest.mark.parametrize("name", READERS)
def test_a_fifo_in_place_of_a_system_file_is_unreadable_not_a_hang(tmp_path, name):
    rel, code, expected = READERS[name]
    fifo = _fifo(tmp_path / rel)
    r = _in_child(f"from pathlib import Path\nR, F = {str(tmp_path)!r}, {str(fifo)!r}\n{code}\n")
    assert r.ok, r.describe()
    assert expected in r.stdout, r.stdout


def test_a_huge_os_release_is_no_os_release(tmp_path):
    """/dev/zero bound over /usr/lib/os-release was a MemoryError at start: past its bound, no distribution."""
    f = tmp_path / "os-release"
    f.write_text('ID=ubuntu\nPRETTY_NAME="Ubuntu 24.04 LTS"\n' + "#" * host.MAX_OS_RELEASE)
    assert host.probe_host(f).os_name == ""
    f.write_text('ID=ubuntu\nPRETTY_NAME="Ubuntu 24.04 LTS"\nBAD=\xff\n')
    assert (host.probe_host(f).os_name, host.probe_host(f).os_id) == ("Ubuntu 24.04 LTS", "ubuntu")


def test_a_pid_file_that_is_a_symlink_is_no_pid(tmp_path):
    """A daemon writes its pid file itself: a link there was planted (it could name pid 1 through a file that
    says 1)."""
    (tmp_path / "one").write_text("1\n")
    (tmp_path / "x.pid").symlink_to(tmp_path / "one")
    assert fsio.read_pid(tmp_path / "x.pid") is None
    assert fsio.read_pid(tmp_path / "one") == 1


def test_a_daemon_launcher_that_prints_without_end_is_stopped_at_the_bound(tmp_path):
    """``nvidia-cuda-mps-control -d`` goes to a temp file (a forked daemon must not hold a pipe): a launcher printing
    without end filled /tmp until the timeout and was then read back whole into memory. Stopped at the bound,
    and said so (not "hung")."""
    ctl = executable(tmp_path / "bin" / "nvidia-cuda-mps-control",
                     '#!/bin/sh\n[ "$1" = "-d" ] && exec yes "starting"\necho "Cannot find MPS control daemon process"'
                     "\nexit 1\n")
    action = MpsDaemon(str(ctl), str(tmp_path / "pipe"), str(tmp_path / "log"), 20, state_root=tmp_path / "s")
    out = action.apply()
    assert not out.ok and f"printed more than {cmd.MAX_OUTPUT} bytes" in out.message and "hung" not in out.message
    assert "nvidia-cuda-mps-control -d" in out.remediation
