"""The terminal output of a fleet run over real SSH (real sshd servers on loopback, tests/sshd.py).

Two hosts run demo checks (the kernel module check fails on both, the same line but for the host; good1
cannot show its GPU: NOT VERIFIED); a third host refuses the connection (a synthetic host_connection failure).
What is checked: each lab readiness line names its host, and pytest's FAILURES section, which would
repeat every host's failures in full, is left out unless a traceback style is asked for, while the
HTML report and the JSON results stay the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from tests.fleet_project import suite_copy
from tests.sshd import ClientKey, Sshd, closed_port

pytestmark = [pytest.mark.slow, pytest.mark.needs("sshd")]
HOSTS = ("good1", "good2", "refused")  # inventory order
DESELECTED = "not run: deselected by -k/-m/node id"
DEMO = '''
import pytest
from labcheck.plugin import host_name
from labcheck.verdict import failed, passed, skipped

pytestmark = pytest.mark.module0


def test_docker_present(check):
    check(passed("docker answers"))


def test_gpu_present(check):
    if host_name() == "good1":
        check(skipped("no GPU on this machine"))
    check(passed("GPU 0"))


def test_kernel_modules(check):
    check(failed("nvidia_uvm is not loaded", "sudo modprobe nvidia_uvm"))
'''


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A project with the demo checks and an inventory of two real sshd hosts and one refusing host."""
    base = tmp_path_factory.mktemp("fleetterm")
    key = ClientKey.generate(base)
    servers = {name: Sshd(base / name, key).start() for name in HOSTS[:2]}
    hosts = [{"name": n, "ssh": "root@127.0.0.1", "port": s.port} for n, s in servers.items()]
    hosts.append({"name": "refused", "ssh": "root@127.0.0.1", "port": closed_port()})
    doc = {"defaults": {"python": sys.executable, "connect_timeout": 5, "timeout": 120,
                        "workdir": str(base / "remote"), "ssh_options": key.ssh_options()},
           "hosts": hosts}
    inv = base / "hosts.yaml"
    inv.write_text(json.dumps(doc))  # JSON is YAML
    yield suite_copy(base, DEMO), inv
    for s in servers.values():
        s.stop()


def _run(fleet, *args: str) -> str:
    proj, inv = fleet
    # docker_present is left out: NOT VERIFIED (deselected) on both hosts, the same line twice but for the host
    res = subprocess.run([sys.executable, "-m", "pytest", f"--hosts={inv}", "-m", "module0", "tests_env",
                          "-k", "not docker_present", *args], cwd=proj, capture_output=True, text=True, timeout=180)
    assert res.returncode == 1, res.stdout + res.stderr
    return res.stdout


def _readiness_lines(stdout: str) -> list[str]:
    section = stdout.split(" lab readiness ", 1)[1].split(" fleet readiness ", 1)[0]
    return [ln for ln in section.splitlines() if ln.startswith(("FAIL ", "NOT VERIFIED "))]


def test_fleet_readiness_lines_name_their_host(fleet):
    lines = _readiness_lines(_run(fleet))
    # host by host, in inventory order; the refused host's line is its synthetic connection failure
    assert lines[:2] == ["FAIL good1 module0::kernel_modules: nvidia_uvm is not loaded",
                         "FAIL good2 module0::kernel_modules: nvidia_uvm is not loaded"], lines
    assert lines[2].startswith("FAIL refused module0::host_connection: refused: unreachable: "), lines
    assert "Connection refused" in lines[2]
    assert lines[3:] == ["NOT VERIFIED good1 module0::gpu_present: skipped: no GPU on this machine",
                         f"NOT VERIFIED good1 module0::docker_present: {DESELECTED}",
                         f"NOT VERIFIED good2 module0::docker_present: {DESELECTED}"], lines


def _html_logs(html: Path) -> dict[str, list[str]]:
    """pytest-html's stored log of every test (its data blob), by test id."""
    blob = re.search(r'data-jsonblob="([^"]*)"', html.read_text()).group(1)
    data = json.loads(unescape(blob))
    return {tid: [r["log"] for r in runs] for tid, runs in data["tests"].items()}


def _comparable(doc: dict) -> dict:
    """The JSON results without what differs from run to run: durations, host timings, the order the hosts'
    reports arrived in."""
    summary = {**doc["summary"], "unverified": sorted(doc["summary"]["unverified"], key=json.dumps)}
    return {"summary": summary, "environment": doc["environment"], "setup_steps": doc["setup_steps"],
            "records": {r["nodeid"]: {**r, "duration": None} for r in doc["records"]},
            "fleet": {**doc["fleet"], "checks": sorted(doc["fleet"]["checks"]),
                      "hosts": {h["name"]: {**h, "timings": None} for h in doc["fleet"]["hosts"]}}}


def test_fleet_leaves_out_pytests_failures_section_unless_a_traceback_style_is_chosen(fleet, tmp_path):
    outputs = {}
    for tb in ("", "--tb=short"):
        html, out = tmp_path / f"r{tb}.html", tmp_path / f"r{tb}.json"
        stdout = _run(fleet, *[a for a in (tb,) if a], f"--html={html}", "--self-contained-html",
                      f"--results-json={out}")
        outputs[tb] = stdout, _html_logs(html), _comparable(json.loads(out.read_text()))
        # the short test summary stays either way
        assert "FAILED good2::tests_env/test_demo.py::test_kernel_modules - " in stdout, stdout
        assert "FAILED refused::fleet::test_host_connection - " in stdout, stdout
    default, short = outputs[""][0], outputs["--tb=short"][0]
    assert "= FAILURES =" not in default, default
    assert "= FAILURES =" in short and "_ test_kernel_modules _" in short, short
    assert "Remediation: sudo modprobe nvidia_uvm" in short
    # the HTML report renders each report's own traceback, the JSON results come from the records: both unchanged
    logs = outputs[""][1]
    assert logs == outputs["--tb=short"][1]
    assert "Remediation: sudo modprobe nvidia_uvm" in logs["good2::tests_env/test_demo.py::test_kernel_modules"][0]
    assert outputs[""][2] == outputs["--tb=short"][2]
