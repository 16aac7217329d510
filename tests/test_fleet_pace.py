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
HOLD = 5.0  # seconds the controller is kept busy when a host's collection comes in (margin for a loaded CI machine)
WAIT = 20.0  # seconds the slow host's check waits (at most) to see the quick host's connection closed

DEMO = '''
import os, time
import pytest
from labcheck.plugin import host_name
from labcheck.verdict import passed

pytestmark = pytest.mark.module0
MARKS, QUICK_LISTENER, WAIT = {marks!r}, {quick_listener!r}, {wait!r}


def sessions_of(listener):
    """The sshd processes serving a listener's connections: none once its one connection has closed
    (no such file is an error, not "none": the test must not pass without looking)."""
    return open(f"/proc/{{listener}}/task/{{listener}}/children").read().split()


def test_first_check(check):
    with open(os.path.join(MARKS, host_name() + ".started"), "w") as f:
        f.write(repr(time.time()))
    if host_name() == "slow":
        deadline = time.time() + WAIT
        quick_started = os.path.join(MARKS, "quick.started")
        while not os.path.exists(quick_started) and time.time() < deadline:  # its connection is up by then
            time.sleep(0.1)
        while sessions_of(QUICK_LISTENER) and time.time() < deadline:
            time.sleep(0.1)
        seen = os.path.exists(quick_started) and not sessions_of(QUICK_LISTENER)
        with open(os.path.join(MARKS, "quick closed while slow ran"), "w") as f:
            f.write(str(seen))
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


def _fleet(tmp_path: Path, names: list[str], controller_plugin: str = "", demo: str = "", conftest_extra: str = "",
           other_file: str = "", args: tuple[str, ...] = (), expect_rc: int | None = 0) -> dict:
    key = ClientKey.generate(tmp_path)
    servers = {n: Sshd(tmp_path / f"sshd-{n}", key).start() for n in names}
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        listener = servers["quick"].proc.pid if "quick" in servers else 0
        proj = suite_copy(tmp_path, demo or DEMO.format(marks=str(marks), quick_listener=listener, wait=WAIT),
                          conftest_extra)
        if other_file:
            (proj / "tests_env" / "test_other.py").write_text(other_file)
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
                                   f"--results-json={out}", "-p", "no:cacheprovider", *extra, *args],
                                  cwd=proj, stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=180)
        text = printed.read_text()
        assert "INTERNALERROR" not in text and proc.returncode != pytest.ExitCode.INTERNAL_ERROR, text
        if expect_rc is not None:
            assert proc.returncode == expect_rc, text
        hosts = {h["name"]: h for h in json.loads(out.read_text())["fleet"]["hosts"]}
        if expect_rc == 0:
            assert all(h["ready"] for h in hosts.values()), text
        return {"marks": marks, "stdout": text, "hosts": hosts, "rc": proc.returncode}
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


TWO_CHECKS = """
import pytest
from labcheck.plugin import host_name
from labcheck.verdict import failed, passed

pytestmark = pytest.mark.module0


def test_a(check):
    check(failed("broken here", "fix it") if host_name() == "fail" else passed("fine"))


def test_b(check):
    check(passed("fine"))
"""
LATE_COLLECTION = """
def pytest_collection_modifyitems(items):
    import os, time
    if os.environ.get("LABCHECK_HOST_NAME") == "late":
        time.sleep(4)
"""


def test_a_stopping_fleet_takes_a_late_hosts_reports_without_a_crash(tmp_path):
    """-x: one host fails at once and the session stops taking collections; the other host collects later but
    was told "run all" at its start, so its checks still report (before: INTERNALERROR in the scheduler, and
    that host READY with a check "not run")."""
    run = _fleet(tmp_path, ["fail", "late"], demo=TWO_CHECKS, conftest_extra=LATE_COLLECTION, args=("-x",),
                 expect_rc=None)
    assert run["rc"] in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED), run["stdout"]
    assert not run["hosts"]["fail"]["ready"], run["stdout"]
    for host in run["hosts"].values():  # READY only with every check run
        assert not host["ready"] or "not run" not in host["checks"].values(), (host, run["stdout"])


BROKEN_ON_ONE_HOST = """
import pytest
from labcheck.plugin import host_name
from labcheck.verdict import passed

pytestmark = pytest.mark.module0
if host_name() == "broken":
    raise ImportError("a module this check needs is missing on this host")


def test_other(check):
    check(passed("fine"))
"""


def test_a_check_file_that_does_not_collect_on_one_host_fails_that_host(tmp_path):
    """A check file that cannot be imported on one host: its checks never ran there, so that host fails
    (``checks_collected``, with the error and the command that shows it in full), never READY."""
    run = _fleet(tmp_path, ["good", "broken"], demo=TWO_CHECKS, other_file=BROKEN_ON_ONE_HOST, expect_rc=1)
    good, broken = run["hosts"]["good"], run["hosts"]["broken"]
    assert good["ready"], run["stdout"]
    assert broken["state"] == "NOT READY" and broken["checks"]["module0::checks_collected"] == "fail", broken
    assert "tests_env/test_other.py could not be collected" in broken["message"], broken
    assert "a module this check needs is missing on this host" in broken["message"], broken
    assert "-m pytest" in broken["first_remediation"], broken
    assert "FAIL broken module0::checks_collected: broken: tests_env/test_other.py could not be collected" \
        in run["stdout"], run["stdout"]
