"""Module 0 gathers its facts concurrently (labcheck.prefetch), with the verdicts of a serial run.

Not timed tests: the concurrency is asserted by counting stand-in tool calls that ran at the same
moment (tests/standins.py ``slow_tools``), which holds on a loaded 2-core machine as on a GPU host.
The speed figures are printed by benchmarks/module0.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labcheck import cmd, prefetch
from setup_actions import mps_daemon
from tests.child_signals import default_signals
from tests.standins import calls, overlap, slow_tools

ROOT = Path(__file__).resolve().parents[1]
DELAY = 0.3


def run_module0(tmp_path: Path, name: str, *args: str, env: dict | None = None,
                timeout: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / f"{name}.json"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", f"--results-json={out}", *args],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


_VOLATILE = [(re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b"), "<time>"), (re.compile(r"\b\d{3,}\b"), "<n>")]


def _comparable(doc: dict) -> list[tuple]:
    """Each check's verdict and words; durations, pids and other run-to-run numbers masked."""
    def mask(text: str) -> str:
        for pattern, repl in _VOLATILE:
            text = pattern.sub(repl, text or "")
        return text

    return [(r["nodeid"], r["verdict"], mask(r["message"]), mask(r["remediation"]), mask(r["details"]))
            for r in doc["records"]]


def test_concurrent_and_serial_runs_give_the_same_verdicts(tmp_path):
    """On this host, module 0 both ways: the same checks, verdicts, messages, fixes and environment facts.

    Also run on the GPU host (the real nvidia-smi, MPS daemon start and CUDA client, Docker engine).
    """
    fast, concurrent = run_module0(tmp_path, "concurrent")
    slow, serial = run_module0(tmp_path, "serial", env={prefetch.ENV: "0"})
    assert fast.returncode == slow.returncode, fast.stdout + slow.stdout
    assert _comparable(concurrent) == _comparable(serial)
    assert list(concurrent["environment"]) == list(serial["environment"])  # same facts, same order
    assert concurrent["summary"] == serial["summary"]


@pytest.fixture
def slow_host(tmp_path):
    """PATH with stand-ins for nvidia-smi, nvidia-ctk, kind, helm and nvidia-cuda-mps-control, each
    taking 0.3 s; the real ps, docker and the real Docker engine (when there is one)."""
    log = tmp_path / "calls.log"
    bindir = slow_tools(tmp_path / "bin", DELAY, log)
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"extra_bin_dirs: []\nmps_pipe_dir: {tmp_path / 'pipe'}\nmps_log_dir: {tmp_path / 'mpslog'}\n")
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    return log, lab, env


def test_module0_tool_calls_run_at_the_same_time(tmp_path, slow_host):
    log, lab, env = slow_host
    run_module0(tmp_path, "concurrent", f"--lab-config={lab}", "--no-provision", env=env)
    calls, most, span = overlap(log)
    assert calls >= 5, log.read_text()  # kind, helm, nvidia-ctk (version, cdi list), nvidia-smi, mps control
    assert most >= 3, f"at most {most} of {calls} tool calls ran at one moment:\n{log.read_text()}"
    # wall grows by the longest chain of calls (nvidia-smi, then nvidia-smi --version), not one per call
    assert span < calls * DELAY, (span, calls)


def test_module0_tool_calls_run_one_after_another_with_prefetch_off(tmp_path, slow_host):
    """The baseline the test above is measured against (and proof that it can tell the two apart)."""
    log, lab, env = slow_host
    run_module0(tmp_path, "serial", f"--lab-config={lab}", "--no-provision", env={**env, prefetch.ENV: "0"})
    calls, most, span = overlap(log)
    assert calls >= 5 and most == 1, log.read_text()
    assert span >= calls * DELAY


def test_ctrl_c_while_facts_are_gathered_ends_the_run_and_its_commands(tmp_path):
    """A hung nvidia-smi (and kind, helm...) in prefetch threads: Ctrl-C ends the run at once, and kills them."""
    log = tmp_path / "calls.log"
    bindir = slow_tools(tmp_path / "bin", 60, log)
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"extra_bin_dirs: []\ncommand_timeout: 120\nmps_pipe_dir: {tmp_path / 'pipe'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PATH"] = f"{bindir}:{env['PATH']}"
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT then prints every thread's stack: what kept it alive, if it hangs
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "-q", "-p", "no:cacheprovider",
         f"--lab-config={lab}", "--no-provision"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=default_signals)  # a suite run in the background inherits SIGINT ignored: the child must hear it
    deadline = time.monotonic() + 60
    while len(_sleepers(bindir)) < 3:  # wait until several stand-ins hang at once
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground process group
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGABRT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"the run did not end within 20 s of Ctrl-C: a fact thread kept it alive; its threads:\n{out}")
    assert proc.returncode == 2, out  # pytest's "interrupted"
    # killed ones go within moments (on a loaded machine, not always within half a second); a leaked stand-in
    # would sleep its full 60 s
    gone = time.monotonic() + 5
    while _sleepers(bindir) and time.monotonic() < gone:
        time.sleep(0.1)
    assert _sleepers(bindir) == [], "stand-ins still running 5 s after the run ended"


def _sleepers(bindir: Path) -> list[int]:
    """Pids of stand-in scripts from ``bindir`` still running."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(a.startswith(str(bindir).encode()) for a in args) and cmd.process_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


# --- the gatherer itself ----------------------------------------------------------------------------

class _Config:
    def __init__(self, **options):
        self.options = options

    def getoption(self, name):
        return self.options.get(name, False)


def _registry(log: list, gate: threading.Event | None = None) -> dict[str, prefetch.Fact]:
    def setup(facts):
        log.append("setup")
        return "configured"

    def engine(facts):
        if gate is not None:
            gate.wait(5)
        log.append(f"engine after {facts.get('setup')}")
        return "engine"

    def undo(facts, value):
        log.append(f"undo {value}")

    return {"setup": prefetch.Fact("setup", setup, acts=lambda c: c.getoption("--fix-host"), release=undo),
            "engine": prefetch.Fact("engine", engine, needs=("setup",)),
            "tools": prefetch.Fact("tools", lambda f: log.append("tools") or "tools")}


def test_a_fact_waits_for_the_setup_it_needs():
    log: list = []
    facts = prefetch.Facts(_Config(), None, _registry(log))
    assert facts.start(["engine"]) == ["setup", "engine"]
    assert facts.take("engine") == "engine"
    assert log == ["setup", "engine after configured"]


def test_an_xdist_worker_prefetches_only_what_merely_reads():
    log: list = []
    facts = prefetch.Facts(_Config(**{"--fix-host": True}), None, _registry(log))
    assert facts.start(["engine", "tools"], only_reads=True) == ["tools"]  # engine needs a setup that acts
    without_fix = prefetch.Facts(_Config(), None, _registry([]))
    assert without_fix.start(["engine", "tools"], only_reads=True) == ["setup", "engine", "tools"]


def test_a_setup_no_fixture_took_is_undone_at_the_end():
    log: list = []
    facts = prefetch.Facts(_Config(), None, _registry(log))
    facts.start(["setup"])
    facts.close()
    assert log == ["setup", "undo configured"]
    owned = prefetch.Facts(_Config(), None, _registry(log2 := []))
    owned.take("setup")  # its fixture undoes it
    owned.close()
    assert log2 == ["setup"]


def test_an_error_in_a_thread_reaches_the_fixture_that_asks():
    def broken(facts):
        raise RuntimeError("probe bug")

    facts = prefetch.Facts(_Config(), None, {"x": prefetch.Fact("x", broken)})
    facts.start(["x"])
    with pytest.raises(RuntimeError, match="probe bug"):
        facts.take("x")


def test_close_kills_the_commands_still_running():
    facts = prefetch.Facts(_Config(), None, {"hung": prefetch.Fact("hung", lambda f: cmd.run(["sleep", "30"]))})
    facts.start(["hung"])
    deadline = time.monotonic() + 10
    while not cmd._running and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    facts.close()
    result = facts.get("hung")
    assert result.rc == -signal.SIGKILL and time.monotonic() - started < 5


def test_prefetch_switch():
    assert prefetch.enabled({}) and prefetch.enabled({prefetch.ENV: "1"})
    assert not prefetch.enabled({prefetch.ENV: "0"}) and not prefetch.enabled({prefetch.ENV: "off"})


def test_the_mps_daemon_starts_before_the_probes_that_read_it(tmp_path, slow_host):
    """Provisioning on: ``nvidia-cuda-mps-control -d`` (the setup step) ends before module 0's MPS probe
    asks the daemon; only the step's own "is one already running?" query comes before it."""
    log, lab, env = slow_host
    run_module0(tmp_path, "concurrent", f"--lab-config={lab}", env=env)
    mps = [(s, e, what) for s, e, what in calls(log) if what.startswith("nvidia-cuda-mps-control")]
    starts = [c for c in mps if c[2].endswith(" -d")]
    assert len(starts) == 1, mps
    before = [c for c in mps if c[0] < starts[0][1] and c is not starts[0]]
    assert [what for _, _, what in before] == ["nvidia-cuda-mps-control get_server_list"], mps
    assert all(c[0] >= starts[0][1] for c in mps if c not in before and c is not starts[0]), mps


def test_a_stopped_fact_thread_starts_no_mps_daemon_launcher_and_kills_a_running_one(tmp_path):
    """The MPS daemon's launcher is started with Popen, not labcheck.cmd.run (whose children stop_threads kills):
    after Ctrl-C a fact thread went on to start it and it outlived the run (test above, 1 run in 4 under load)."""
    def in_a_thread(stop_first: bool) -> tuple[cmd.CmdResult, float]:
        out = {}

        def body() -> None:
            if stop_first:
                cmd.stop_threads({threading.get_ident()})
            t0 = time.monotonic()
            out["res"] = mps_daemon._run_detaching(["sleep", "30"], dict(os.environ), 20, 1000)
            out["took"] = time.monotonic() - t0
            cmd.forget_thread(threading.get_ident())

        worker = threading.Thread(target=body)
        worker.start()
        if not stop_first:
            time.sleep(0.3)
            cmd.stop_threads({worker.ident})
        worker.join(30)
        return out["res"], out["took"]

    res, took = in_a_thread(True)
    assert res.rc is None and "not started" in res.error and took < 1, res
    res, took = in_a_thread(False)
    assert res.rc is None and took < 5, (res, took)
