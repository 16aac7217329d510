"""The fleet runner's pace (labcheck.fleet_session): a host starts its checks without waiting for the controller,
and a host that is done has its connection closed while other hosts still run.

Real sshd servers on loopback (tests/sshd.py) and the real ssh client; the checks are demo checks that note, on
the host's side, when they ran and what they saw of the other host's connection (same machine: loopback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fleet_project import suite_copy
from tests.sshd import ClientKey, Sshd

pytestmark = [pytest.mark.slow, pytest.mark.needs("sshd")]
HOLD = 3.0  # seconds the controller is kept busy when a host's collection comes in
WAIT = 20.0  # seconds the slow host's check waits (at most) to see the quick host's connection closed

DEMO = '''
import os, time
import pytest
from labcheck.plugin import host_name
from labcheck.verdict import passed

pytestmark = pytest.mark.module0
MARKS, QUICK_LISTENER, WAIT = {marks!r}, {quick_listener!r}, {wait!r}


def sessions_of(listener):
    """The sshd processes serving a listener's connections: none once its one connection has closed."""
    try:
        return open(f"/proc/{{listener}}/task/{{listener}}/children").read().split()
    except OSError:
        return []


def test_first_check(check):
    with open(os.path.join(MARKS, host_name() + ".started"), "w") as f:
        f.write(repr(time.time()))
    if host_name() == "slow":
        deadline = time.time() + WAIT
        while sessions_of(QUICK_LISTENER) and time.time() < deadline:
            time.sleep(0.1)
        with open(os.path.join(MARKS, "quick closed while slow ran"), "w") as f:
            f.write(str(not sessions_of(QUICK_LISTENER)))
    check(passed("answered"))
'''

# On the controller only (-p, not sent to the hosts): the controller is busy for HOLD s when a collection arrives.
BUSY_CONTROLLER = '''
import time

def pytest_xdist_node_collection_finished(node, ids):
    with open({mark!r}, "a") as f:
        f.write(f"{{time.time()}} ")
    time.sleep({hold!r})
    with open({mark!r}, "a") as f:
        f.write(f"{{time.time()}}\\n")
'''


def _fleet(tmp_path: Path, names: list[str], quick_listener: int = 0, controller_plugin: str = "") -> dict:
    key = ClientKey.generate(tmp_path)
    servers = {n: Sshd(tmp_path / f"sshd-{n}", key).start() for n in names}
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        listener = servers["quick"].proc.pid if "quick" in servers else quick_listener
        proj = suite_copy(tmp_path, DEMO.format(marks=str(marks), quick_listener=listener, wait=WAIT))
        inv = tmp_path / "hosts.yaml"
        inv.write_text(json.dumps({
            "defaults": {"python": sys.executable, "connect_timeout": 10, "timeout": 120,
                         "workdir": str(tmp_path / "remote"), "ssh_options": key.ssh_options()},
            "hosts": [{"name": n, "ssh": "root@127.0.0.1", "port": s.port} for n, s in servers.items()]}))
        env = dict(os.environ)
        extra = []
        if controller_plugin:
            (tmp_path / "ctl").mkdir()
            (tmp_path / "ctl" / "busy_controller.py").write_text(controller_plugin)
            env["PYTHONPATH"] = f"{tmp_path / 'ctl'}{os.pathsep}{env.get('PYTHONPATH', '')}"
            extra = ["-p", "busy_controller"]
        out, printed = tmp_path / "fleet.json", tmp_path / "stdout.txt"
        with printed.open("w") as sink:  # a file, not a pipe: an ssh master left behind would hold a pipe open
            proc = subprocess.run([sys.executable, "-m", "pytest", f"--hosts={inv}", "-m", "module0", "tests_env",
                                   f"--results-json={out}", "-p", "no:cacheprovider", *extra],
                                  cwd=proj, stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=180)
        text = printed.read_text()
        assert proc.returncode == 0, text
        hosts = {h["name"]: h for h in json.loads(out.read_text())["fleet"]["hosts"]}
        assert all(h["ready"] for h in hosts.values()), text
        return {"marks": marks, "stdout": text, "hosts": hosts}
    finally:
        for s in servers.values():
            s.stop()


def test_a_host_starts_its_checks_while_the_controller_is_busy_with_its_collection(tmp_path):
    """The host was told "run all" when its worker started, so it does not wait for the controller to read
    its collection (on a controller busy with 30 hosts' events, that wait came behind all of them)."""
    mark = tmp_path / "controller-busy"
    run = _fleet(tmp_path, ["host"], controller_plugin=BUSY_CONTROLLER.format(mark=str(mark), hold=HOLD))
    busy_from, busy_until = map(float, mark.read_text().split())
    started = float((run["marks"] / "host.started").read_text())
    assert started < busy_until, (f"the check started {started - busy_from:.2f}s after the controller got the "
                                  f"collection, {started - busy_until:.2f}s after it was free again", run["stdout"])


def test_a_done_hosts_connection_closes_while_another_host_still_runs(tmp_path):
    """A host that finished has its remote Python and its shared ssh connection ended at once, not when the
    last host finishes (which made a 30-host run's end wait for 30 closes)."""
    run = _fleet(tmp_path, ["quick", "slow"])
    seen = (run["marks"] / "quick closed while slow ran").read_text()
    for host in run["hosts"].values():  # each host's own clock came back with its results (benchmarks/fleet.py)
        own = {k: v for k, v in host["timings"].items() if k.startswith("host: ")}
        assert set(own) == {"host: CPU at start-up", "host: collected", "host: finished", "host: CPU"}, host
        assert 0 < own["host: collected"] < own["host: finished"] and own["host: CPU"] > 0, host
    assert seen == "True", (f"the quick host's sshd session was still open {WAIT:g}s into the slow host's check",
                            run["stdout"])
