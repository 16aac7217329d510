"""The fleet end to end over real SSH: real sshd servers on loopback, the real ssh client, execnet
gateways and pytest-xdist workers, one per host.

Hosts: three good ones; one whose port is closed (refused); one that accepts the connection and
never answers (silent); one whose Python path does not exist; one with a Python lacking the suite's
packages (Debian's /usr/bin/python3, when it lacks pytest); one whose conftest cannot be imported
(worker failed); one whose sshd and sessions are killed while its checks run (died); and one whose
run exceeds its per-host time limit (timed out). The checks are a small demo file shipped like the
real ones; the hosts are named in the inventory and told apart by LABCHECK_HOST_NAME.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labcheck import inventory
from labcheck.probes import fleet as fleet_probe
from tests.fleet_project import suite_copy
from tests.sshd import ClientKey, Sshd, closed_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.needs("sshd")]

DEMO = '''
import os, time
import pytest
from labcheck.plugin import host_name, record_env
from labcheck.verdict import failed, passed, skipped, warned

pytestmark = pytest.mark.module0
SETUP_LOG = {setup_log!r}
MARKS = {marks!r}


@pytest.fixture(scope="session")
def host_setup(pytestconfig):
    """Session setup: must run once per host."""
    record_env(pytestconfig, "Demo host", host_name())
    with open(os.path.join(SETUP_LOG, host_name()), "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    return host_name()


def test_docker_present(check, host_setup):
    check(passed(f"docker answers on {{host_setup}}"))


@pytest.mark.optional(reason="advisory")
def test_compute_mode(check, host_setup):
    check(warned("compute mode is Default", "sudo nvidia-smi -c EXCLUSIVE_PROCESS"))


def test_gpu_present(check):
    if host_name() == "good1":  # a criterion that cannot be shown: good1 is NOT VERIFIED
        check(skipped("no GPU on this machine"))
    check(passed("GPU 0"))


def test_kernel_modules(check):
    if host_name() == "good2":
        check(failed("nvidia_uvm is not loaded", "sudo modprobe nvidia_uvm"))
    check(passed("modules loaded"))


def test_slow_answer(check):
    if host_name() == "victim":
        open(os.path.join(MARKS, host_name()), "w").close()
        parent = os.getppid()
        for _ in range(1200):  # hang, but leave once the SSH session that started us is gone
            if os.getppid() != parent:
                os._exit(3)
            time.sleep(0.1)
    if host_name() == "slowpoke":  # hang for good: the fleet must stop this process on the host
        with open(os.path.join(MARKS, host_name()), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
    check(passed("answered"))
'''


BREAK_ON_ONE_HOST = """
import os
if os.environ.get("LABCHECK_HOST_NAME") == "broken":  # this host's worker cannot start
    import module_missing_on_this_host  # noqa: F401
"""


def _system_python_without_pytest() -> str | None:
    for cand in ("/usr/bin/python3",):
        if os.path.exists(cand) and os.path.realpath(cand) != os.path.realpath(sys.executable):
            res = subprocess.run([cand, "-c", "import pytest"], capture_output=True, timeout=30)
            if res.returncode != 0:
                return cand
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("fleet")
    key = ClientKey.generate(base)
    servers = {name: Sshd(base / name, key).start() for name in ("good0", "good1", "good2", "victim")}
    yield base, key, servers
    for s in servers.values():
        s.stop()


def _project(base: Path) -> Path:
    """A copy of the suite whose tests_env holds only the demo checks."""
    (base / "setup-log").mkdir()
    (base / "marks").mkdir()
    return suite_copy(base, DEMO.format(setup_log=str(base / "setup-log"), marks=str(base / "marks")),
                      BREAK_ON_ONE_HOST)


def _inventory(base: Path, key: ClientKey, servers: dict[str, Sshd], extra: list[dict]) -> Path:
    hosts = [{"name": n, "ssh": "root@127.0.0.1", "port": servers[n].port} for n in ("good0", "good1", "good2")]
    hosts.append({"name": "victim", "ssh": "root@127.0.0.1", "port": servers["victim"].port})
    hosts.append({"name": "refused", "ssh": "root@127.0.0.1", "port": closed_port()})
    hosts.append({"name": "nopython", "ssh": "root@127.0.0.1", "port": servers["good0"].port,
                  "python": "/nonexistent/bin/python3"})
    # its time limit counts from its own start (probe, shipping, start-up): room to start on a loaded CI machine
    hosts.append({"name": "slowpoke", "ssh": "root@127.0.0.1", "port": servers["good1"].port, "timeout": 45})
    hosts.append({"name": "broken", "ssh": "root@127.0.0.1", "port": servers["good2"].port})
    hosts += extra
    doc = {"defaults": {"python": sys.executable, "connect_timeout": 5, "timeout": 120,
                        "workdir": str(base / "remote"), "ssh_options": key.ssh_options()},
           "hosts": hosts}
    path = base / "hosts.yaml"
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    return path


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word: a hung machine or a black-holing firewall."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(srv.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join(5)
    for c in held:
        c.close()
    srv.close()


def test_fleet_over_ssh_reports_every_host(lab, silent_port):
    base, key, servers = lab
    proj = _project(base)
    system_python = _system_python_without_pytest()
    extra = [{"name": "silent", "ssh": "root@127.0.0.1", "port": silent_port, "connect_timeout": 3}]
    if system_python:
        extra.append({"name": "nopkgs", "ssh": "root@127.0.0.1", "port": servers["good2"].port,
                      "python": system_python})
    inv = _inventory(base, key, servers, extra)
    html, out = base / "fleet.html", base / "fleet.json"
    argv = [sys.executable, "-m", "pytest", f"--hosts={inv}", "-m", "module0", "tests_env",
            f"--html={html}", "--self-contained-html", f"--results-json={out}"]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not (base / "marks" / "victim").exists():  # the victim is inside its slow check: kill it
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the victim host never started its slow check"
            time.sleep(0.1)
        # The victim's reports of the checks before the slow one may still be on their way through ssh (on a
        # loaded machine); killing now would lose them, and the controller would rightly name the first check it
        # has no report of. Give them time to arrive: the victim waits in its slow check for minutes.
        time.sleep(2)
        servers["victim"].kill()
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    wall = time.monotonic() - start
    assert proc.returncode == 1, stdout
    doc = json.loads(out.read_text())
    fleet = {h["name"]: h for h in doc["fleet"]["hosts"]}

    # Every host is accounted for, in inventory order, with its connection status.
    expected = {"good0": "ok", "good1": "ok", "good2": "ok", "victim": "died", "refused": "unreachable",
                "nopython": "no python", "slowpoke": "timed out", "broken": "worker failed"}
    expected["silent"] = "unreachable"
    if system_python:
        expected["nopkgs"] = "missing packages"
    assert {n: h["status"] for n, h in fleet.items()} == expected, stdout
    assert [h["name"] for h in doc["fleet"]["hosts"]] == list(expected)

    # Where each host's time went: every step a good host reached, in order; an unreachable host stops at its probe.
    steps = ["probed", "connected", "shipped", "worker started", "collected", "finished"]
    for name in ("good0", "good1"):
        t = fleet[name]["timings"]
        assert [k for k in t if not k.startswith("host: ")] == ["start", *steps], t  # "host: ...": its own clock
        assert all(0 <= t[a] <= t[b] for a, b in zip(steps, steps[1:], strict=False)), t
    assert list(fleet["refused"]["timings"]) == ["start", "probed"], fleet["refused"]["timings"]

    # Good hosts ran every check; good2's failing check makes it NOT READY with its fix first; good1's skipped
    # criterion makes it NOT VERIFIED (the optional warning on both does not).
    for name, gpu in (("good0", "pass"), ("good1", "skip")):
        assert fleet[name]["checks"] == {
            "module0::docker_present": "pass", "module0::compute_mode": "warn", "module0::gpu_present": gpu,
            "module0::kernel_modules": "pass", "module0::slow_answer": "pass"}
    assert fleet["good0"]["ready"] and fleet["good0"]["state"] == "READY", fleet["good0"]
    assert not fleet["good1"]["ready"] and fleet["good1"]["state"] == "NOT VERIFIED", fleet["good1"]
    assert fleet["good1"]["unverified"] == ["gpu_present"] and "no GPU on this machine" in fleet["good1"]["message"]
    assert fleet["good2"]["state"] == "NOT READY"
    assert not fleet["good2"]["ready"]
    assert fleet["good2"]["checks"]["module0::kernel_modules"] == "fail"
    assert fleet["good2"]["first_remediation"] == "sudo modprobe nvidia_uvm"

    # The dead and the slow host keep what they finished; the rest is "not run".
    for name in ("victim", "slowpoke"):
        assert not fleet[name]["ready"]
        assert fleet[name]["checks"]["module0::docker_present"] == "pass"
        assert fleet[name]["checks"]["module0::slow_answer"] == "not run"
    assert "slow_answer" in fleet["victim"]["message"]
    assert "time limit" in fleet["slowpoke"]["message"]
    hung = int((base / "marks" / "slowpoke").read_text())
    assert not Path(f"/proc/{hung}").exists() or "zombie" in Path(f"/proc/{hung}/status").read_text().lower()
    assert fleet["refused"]["first_remediation"].startswith("ssh -p ")
    assert "Connection refused" in fleet["refused"]["message"]
    assert "timed out" in fleet["silent"]["message"]  # ssh's ConnectTimeout covers the banner exchange
    assert "/nonexistent/bin/python3" in fleet["nopython"]["message"]
    assert "module_missing_on_this_host" in fleet["broken"]["message"]
    assert "-m pytest" in fleet["broken"]["first_remediation"]  # reproduces the start-up error on the host
    if system_python:
        assert "pip install" in fleet["nopkgs"]["first_remediation"]
        assert "pytest" in fleet["nopkgs"]["first_remediation"]
    assert doc["fleet"]["ready"] is False
    assert doc["fleet"]["line"] == f"FLEET NOT READY: 1 of {len(expected)} hosts ready, 1 not verified"

    # Every record names its host; session setup ran exactly once per host that started.
    assert all(r["host"] in expected for r in doc["records"])
    assert {r["host"] for r in doc["records"] if r["check"] == "docker_present"} == {
        "good0", "good1", "good2", "victim", "slowpoke"}
    for name in ("good0", "good1", "good2", "victim", "slowpoke"):
        assert len((base / "setup-log" / name).read_text().split()) == 1, name
    assert doc["environment"]["good0"] == {"Demo host": "good0"}
    assert set(doc["environment"]) == {"good0", "good1", "good2"}  # finished hosts send their facts

    # The HTML report: the matrix on top, the Host column in the table.
    text = html.read_text()
    assert ">Host</th>" in text and "col-host" in text  # rows are stored escaped in the page's data
    assert text.index("labcheck-fleet-matrix") < text.index('id="results-table"')
    assert text.index("FLEET NOT READY") < text.index("NOT READY:")  # the fleet view tops the summary
    assert 'class="labcheck-fleet-matrix"' in text
    for name in expected:
        assert f'data-host="{name}"' in text
    assert "sudo modprobe nvidia_uvm" in text
    assert "FLEET NOT READY: 1 of" in stdout and "NOT VERIFIED" in stdout
    assert 'data-host="good1" data-state="NOT VERIFIED"' in text
    assert wall < 100, f"fleet run took {wall:.0f}s"


def test_fleet_with_no_reachable_host_still_reports(tmp_path):
    inv = tmp_path / "hosts.txt"
    inv.write_text(f"# one line per host\nclosed root@127.0.0.1:{closed_port()}\n")
    out = tmp_path / "r.json"
    res = subprocess.run([sys.executable, "-m", "pytest", f"--hosts={inv}", "-m", "module0",
                          f"--results-json={out}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    doc = json.loads(out.read_text())
    assert [(h["name"], h["status"], h["ready"]) for h in doc["fleet"]["hosts"]] == [("closed", "unreachable", False)]
    assert doc["records"][0]["check"] == "host_connection"
    assert doc["records"][0]["verdict"] == "fail"
    assert "FLEET NOT READY: 0 of 1 hosts ready" in res.stdout


def test_probe_classifies_real_hosts(lab, tmp_path):
    base, key, servers = lab
    opts = tuple(key.ssh_options())
    port = servers["good0"].port

    def host(name, **kw):
        return inventory.Host(name=name, ssh="root@127.0.0.1", port=kw.pop("port", port), ssh_options=opts,
                              python=kw.pop("python", sys.executable), connect_timeout=5,
                              workdir=str(tmp_path / "wd"), **kw)

    good = fleet_probe.probe(host("good"))
    assert good.status == "ok", good
    assert (tmp_path / "wd" / "good").is_dir()  # the probe makes the work folder, and marks it the fleet's
    assert (tmp_path / "wd" / "good" / fleet_probe.OWNED).is_file()
    assert fleet_probe.probe(host("good")).status == "ok"  # its own folder, marked: used again
    # A folder that was there already, not made by the fleet (an attendee's home, say): refused, left untouched.
    own = tmp_path / "wd" / "attendee"
    (own / "reports").mkdir(parents=True)
    (own / "lab.yaml").write_text("mine\n")
    (own / ".pycache").mkdir()  # names a fleet run leaves too, but no copy of the suite: still refused
    (own / "reports" / "essay.txt").write_text("mine\n")
    theirs = fleet_probe.probe(host("attendee"))
    assert theirs.status == fleet_probe.FOREIGN_WORKDIR and not theirs.ok, theirs
    assert f"{own} exists and was not made by the fleet runner (it holds .pycache, lab.yaml, reports)" in theirs.message
    assert f"mv {own} {own}.moved" in theirs.remediation and "workdir:" in theirs.remediation
    assert sorted(p.name for p in own.iterdir()) == [".pycache", "lab.yaml", "reports"]  # no marker written there
    # An empty folder, or an earlier version's copy (only what fleet runs leave: no .pycache before 2026-12-02,
    # none either where PYTHONDONTWRITEBYTECODE is set): taken, and marked.
    (tmp_path / "wd" / "empty").mkdir()
    oldest = tmp_path / "wd" / "oldest"
    for sub in ("labcheck", "tests_env", "_pytest", "pytest"):
        (oldest / sub).mkdir(parents=True)
    for name in ("conftest.py", "pyproject.toml", "lab.yaml", "labcheck/__init__.py"):
        (oldest / name).write_text("")
    for name in ("empty", "oldest"):
        assert fleet_probe.probe(host(name)).status == "ok"
        assert (tmp_path / "wd" / name / fleet_probe.OWNED).is_file()
    refused = fleet_probe.probe(host("refused", port=closed_port()))
    assert refused.status == "unreachable" and "Connection refused" in refused.message
    nopy = fleet_probe.probe(host("nopy", python="/nonexistent/python3"))
    assert nopy.status == "no python", nopy
    notpy = fleet_probe.probe(host("notpy", python="/bin/false"))
    assert notpy.status == "no python" and "did not run the probe" in notpy.message
    system_python = _system_python_without_pytest()
    if system_python:
        bare = fleet_probe.probe(host("bare", python=system_python))
        assert bare.status == "missing packages", bare
        assert "pytest" in bare.remediation


def test_shipping_over_ssh_replaces_a_changed_copy_and_leaves_an_unchanged_one_alone(lab, tmp_path):
    """labcheck.fleet_ship over a real sshd: the first run sends the suite and pytest itself, a file planted in
    the host's copy is gone after the next run, and a run with nothing changed rewrites nothing there."""
    base, key, servers = lab
    proj = _project(tmp_path)
    doc = {"defaults": {"python": sys.executable, "connect_timeout": 5, "timeout": 120,
                        "workdir": str(tmp_path / "remote"), "ssh_options": key.ssh_options()},
           "hosts": [{"name": "one", "ssh": "root@127.0.0.1", "port": servers["good0"].port}]}
    inv = tmp_path / "one.yaml"
    inv.write_text(json.dumps(doc))
    argv = [sys.executable, "-m", "pytest", f"--hosts={inv}", "-m", "module0", "tests_env", "-k", "docker_present"]

    def run() -> None:
        res = subprocess.run(argv, cwd=proj, capture_output=True, text=True, timeout=120)
        assert "1 passed" in res.stdout, res.stdout + res.stderr

    host = tmp_path / "remote" / "one"
    run()
    assert (host / "labcheck" / "plugin.py").is_file() and (host / "_pytest" / "main.py").is_file()
    assert (host / ".pycache").is_dir()  # byte code of the host's runs, outside the shipped folders
    rogue = host / "tests_env" / "test_rogue.py"
    rogue.write_text("def test_rogue():\n    pass\n")
    run()
    assert not rogue.exists(), "a file added to the host's copy survived the next run"
    inode = (host / "labcheck" / "plugin.py").stat().st_ino
    # A dangling link planted where the worker writes its pid file: nothing is created through it.
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    (host / ".labcheck-worker.pid").symlink_to(victim)
    run()
    assert (host / "labcheck" / "plugin.py").stat().st_ino == inode, "an up-to-date copy was shipped again"
    assert (host / ".pycache").is_dir()
    assert not victim.exists(), "the worker's pid file was written through a planted link"
