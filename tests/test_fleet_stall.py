"""A host that stalls after connecting (before its first check) delays no other host, and its time limit
counts from its own start (labcheck.fleet_session: hosts start independently, each with its own timer).

Real sshd servers on loopback (tests/sshd.py). The stalling host's ``python`` answers the fleet probe
(so SSH and Python look fine), then hangs when execnet bootstraps its gateway: a machine that is
swapping, or whose home folder sits on a hung NFS mount, behaves like this.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fleet_project import suite_copy
from tests.sshd import ClientKey, Sshd
from tests.standins import executable

pytestmark = [pytest.mark.slow, pytest.mark.needs("sshd")]
STALL_LIMIT = 30  # the stalling host's inventory timeout, seconds

DEMO = '''
import os, time
import pytest
from labcheck.plugin import host_name
from labcheck.verdict import passed

pytestmark = pytest.mark.module0


def stalled_now():
    """Whether the stalling host's hung process is running at this moment (same machine: loopback)."""
    try:
        pids = open({pids!r}).read().split()
    except OSError:
        return False
    return any(os.path.exists(f"/proc/{{p}}") for p in pids)


def test_first_check(check):
    with open(os.path.join({marks!r}, host_name()), "w") as f:
        f.write(f"{{time.time()}} {{stalled_now()}}")
    check(passed("answered"))
'''


def _project(base: Path) -> Path:
    """A copy of the suite whose tests_env holds one check that notes when it ran."""
    (base / "marks").mkdir()
    return suite_copy(base, DEMO.format(marks=str(base / "marks"), pids=str(base / "stall-pids")))


def _stalling_python(base: Path) -> Path:
    """Runs the first command (the fleet probe) with the real Python, then hangs on every later one."""
    count, pids = base / "stall-count", base / "stall-pids"
    return executable(base / "stalling-python", f"""#!/bin/sh
n=$(cat '{count}' 2>/dev/null || echo 0)
echo $((n + 1)) > '{count}'
if [ "$n" -ge 1 ]; then
    echo $$ >> '{pids}'
    exec sleep 300
fi
exec '{sys.executable}' "$@"
""")


def test_a_host_that_stalls_after_connecting_delays_no_other_host(tmp_path):
    key = ClientKey.generate(tmp_path)
    servers = [Sshd(tmp_path / f"sshd{i}", key).start() for i in range(2)]
    try:
        proj = _project(tmp_path)
        hosts = [{"name": "staller", "ssh": "root@127.0.0.1", "port": servers[0].port,
                  "python": str(_stalling_python(tmp_path)), "timeout": STALL_LIMIT},
                 {"name": "prompt", "ssh": "root@127.0.0.1", "port": servers[1].port}]
        inv = tmp_path / "hosts.yaml"
        inv.write_text(json.dumps({"defaults": {"python": sys.executable, "connect_timeout": 10, "timeout": 300,
                                                "workdir": str(tmp_path / "remote"),
                                                "ssh_options": key.ssh_options()}, "hosts": hosts}))
        out, printed = tmp_path / "fleet.json", tmp_path / "stdout.txt"
        start = time.time()
        with printed.open("w") as sink:  # a file, not a pipe: ssh masters left behind would hold a pipe open
            proc = subprocess.Popen([sys.executable, "-m", "pytest", f"--hosts={inv}", "-m", "module0", "tests_env",
                                     f"--results-json={out}", "-p", "no:cacheprovider"],
                                    cwd=proj, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=STALL_LIMIT + 90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the fleet run still ran {STALL_LIMIT + 90}s after its start: the stalled host held it up")
        wall = time.time() - start
        proc.stdout = printed.read_text()
    finally:
        for s in servers:
            s.stop()
        _end_stalled(tmp_path / "stall-pids")
    fleet = {h["name"]: h for h in json.loads(out.read_text())["fleet"]["hosts"]}
    assert fleet["prompt"]["status"] == "ok" and fleet["prompt"]["ready"], proc.stdout
    # the prompt host ran its check while the staller was stalled: its start waited for nobody
    checked_at, staller_was_stalled = (tmp_path / "marks" / "prompt").read_text().split()
    assert staller_was_stalled == "True", (float(checked_at) - start, proc.stdout)
    assert fleet["staller"]["status"] == "timed out", proc.stdout
    assert "not started within its 30s time limit" in fleet["staller"]["message"]
    assert not (tmp_path / "marks" / "staller").exists()
    # cut at its own limit, counted from its own start (not after the other hosts, not never)
    assert STALL_LIMIT <= wall < STALL_LIMIT + 90, wall
    assert proc.returncode == 1


def _end_stalled(pids: Path) -> None:
    if pids.exists():
        for pid in pids.read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
