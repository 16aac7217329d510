"""A fleet run that stops early (Ctrl-C) never leaves a host READY on the checks it had not finished.

Real loopback sshd servers (tests/sshd.py), the real ssh client and pytest-xdist; the demo checks are stand-ins
that pass, except where a host's name says otherwise, and one that holds its host for a while.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.child_signals import default_signals
from tests.fleet_project import suite_copy
from tests.sshd import ClientKey, Sshd

pytestmark = [pytest.mark.slow, pytest.mark.needs("sshd")]

DEMO = '''
import time
import pytest
from labcheck.plugin import host_name
from labcheck.verdict import failed, passed

pytestmark = pytest.mark.module0


def test_first(check):
    check(failed("broken here", "fix it") if host_name() == "fail" else passed("first ok"))


def test_second_long(check):
    if host_name() != "fail":
        open({mark!r}, "w").close()
        time.sleep(30)
    check(passed("second ok"))


def test_third(check):
    check(passed("third ok"))
'''


def _start(tmp_path: Path, names: list[str]):
    key = ClientKey.generate(tmp_path)
    servers = [Sshd(tmp_path / f"sshd-{n}", key).start() for n in names]
    mark = tmp_path / "second-started"
    proj = suite_copy(tmp_path, DEMO.format(mark=str(mark)))
    inv = tmp_path / "hosts.yaml"
    inv.write_text(json.dumps({
        "defaults": {"python": sys.executable, "connect_timeout": 10, "timeout": 120,
                     "workdir": str(tmp_path / "remote"), "ssh_options": key.ssh_options()},
        "hosts": [{"name": n, "ssh": "root@127.0.0.1", "port": s.port} for n, s in zip(names, servers, strict=True)]}))
    out, printed = tmp_path / "fleet.json", tmp_path / "stdout.txt"
    sink = printed.open("w")  # a file, not a pipe: an ssh master left behind would hold a pipe open
    proc = subprocess.Popen([sys.executable, "-m", "pytest", f"--hosts={inv}", "-m", "module0", "tests_env",
                             f"--results-json={out}", "-p", "no:cacheprovider"],
                            cwd=proj, stdout=sink, stderr=subprocess.STDOUT,
                            preexec_fn=default_signals)  # a suite started in the background ignores SIGINT
    return proc, servers, mark, out, printed, sink


def _finish(proc, servers, out: Path, printed: Path, sink) -> tuple[dict, str]:
    try:
        proc.wait(timeout=90)
    finally:
        sink.close()
        for s in servers:
            s.stop()
    text = printed.read_text()
    assert "INTERNALERROR" not in text, text
    return json.loads(out.read_text()), text


def _wait_for(path: Path, proc) -> None:
    deadline = time.monotonic() + 60
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), "the host never reached its long check"


def test_ctrl_c_while_the_only_host_runs_leaves_it_not_ready(tmp_path):
    """Before: the host's first check passed, its other two had no record and no other host ran them, so the
    JSON said READY (exit 2 only). Now the host is `stopped` and NOT READY, its fix is a rerun of that host."""
    proc, servers, mark, out, printed, sink = _start(tmp_path, ["h1"])
    _wait_for(mark, proc)
    time.sleep(2.0)  # the controller well inside its run loop, on a loaded machine too
    proc.send_signal(signal.SIGINT)
    doc, text = _finish(proc, servers, out, printed, sink)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    host = doc["fleet"]["hosts"][0]
    assert host["status"] == "stopped" and host["state"] == "NOT READY" and not host["ready"], (host, text)
    assert "while this host was still running its checks" in host["message"], host
    assert host["first_remediation"].endswith("--fleet-host=h1"), host
    assert not doc["fleet"]["ready"] and doc["fleet"]["state"] == "NOT READY", doc["fleet"]
    assert not doc["summary"]["ready"], doc["summary"]

