"""Interrupted provisioning (issue 4): a real ``pytest tests_env`` run stopped in the middle of a setup
step with SIGINT (Ctrl-C), SIGTERM (kill) or SIGKILL (kill -9), then the next run.

What must hold: nothing of the user's is lost (the file being replaced is intact, a backup exists),
nothing half-written is visible (CDI reads only *.yaml/*.json; the partial file has another name), the
command the step was waiting on does not go on after SIGINT/SIGTERM, and the next run repairs and
finishes; a third run changes nothing. Stand-ins only for tools that cannot exist here (nvidia-smi,
nvidia-ctk, nvidia-cuda-mps-control), each saying what it stands for.
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

from labcheck.probes import cdi as cdi_probe
from labcheck.probes import mps as mps_probe
from setup_actions.mps_daemon import MpsDaemon, _alive
from tests.captures import first
from tests.child_signals import default_signals
from tests.standins import executable
from tests.test_cdi import SPEC, materialize
from tests.test_mps_probe import FAKE_CONTROL

REPO = Path(__file__).resolve().parent.parent
H100_CSV = first("h100-host/nvidia-smi-query-csv-noheader.txt").output

SMI = f'''#!/bin/sh
# Stand-in for nvidia-smi on the H100 host: prints its real --query-gpu answer (tests/data/h100-host).
cat <<"E"
{H100_CSV}
E
'''

CTK = r'''#!/bin/sh
# Stand-in for nvidia-ctk. `cdi list` prints what the real one prints for the specs in $CDI_DIR.
# `cdi generate --output=F` writes the spec nvidia-ctk would write for the H100 host to F. With the file
# SLOW present it behaves like a generate that takes long (a slow NVML on a busy host): it writes a first
# part of the spec, records its pid, then waits - the moment we interrupt.
case "$1 $2" in
  "--version ") echo "NVIDIA Container Toolkit CLI version 1.17.8"; exit 0 ;;
  "cdi list")
    names=$(cat "$CDI_DIR"/*.yaml 2>/dev/null | sed -n 's/^  name: "\{0,1\}\([^"]*\)"\{0,1\}$/nvidia.com\/gpu=\1/p')
    echo "Found $(echo "$names" | grep -c =) CDI devices"; [ -n "$names" ] && echo "$names"; exit 0 ;;
  "cdi generate") ;;
  *) exit 2 ;;
esac
for a in "$@"; do case "$a" in --output=*) out="${a#--output=}";; esac; done
if [ -f "$SLOW" ]; then
  head -c 200 "$FRESH" > "$out"
  echo $$ > "$STARTED"
  sleep 60
fi
cp "$FRESH" "$out"
'''


def _script(path: Path, body: str) -> Path:
    return executable(path, body)


def start_run(tmp_path: Path, lab: dict, *args: str, env: dict[str, str] | None = None,
              name: str = "r", module: str = "module0") -> tuple[subprocess.Popen, Path]:
    """Start ``pytest tests_env -m MODULE`` as an attendee would, in its own process group (a terminal's
    foreground job: Ctrl-C reaches this group, not the sessions its commands run in)."""
    lab_yaml = tmp_path / "lab.yaml"
    lab_yaml.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in lab.items()))
    out = tmp_path / f"{name}.json"
    out.unlink(missing_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests_env", "-m", module, "-p", "no:cacheprovider", "-p",
         "no:randomly", f"--lab-config={lab_yaml}", f"--results-json={out}", "-q", *args],
        cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True, preexec_fn=default_signals)  # noqa: PLW1509 - takes no lock
    return proc, out


def finish(proc: subprocess.Popen, out: Path, timeout: float = 120) -> tuple[int, dict, str]:
    text, _ = proc.communicate(timeout=timeout)
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"]} if out.exists() else {}
    return proc.returncode, recs, text


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before reaching the step:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run did not reach the step within {timeout:g}s")
        time.sleep(0.05)


def gone(pid: int, within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def end_session(pid: int) -> None:
    """Kill a command left behind by a run killed with SIGKILL, and its children (cmd.run gives each
    command its own session, so the command's pid is its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def interrupt(proc: subprocess.Popen, sig: signal.Signals) -> None:
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C: the terminal signals the foreground process group
    else:
        os.kill(proc.pid, sig)  # kill / kill -9: one process


# --- CDI spec generation (--fix-host) -------------------------------------------------------------------

@pytest.fixture
def cdi_lab(tmp_path):
    bindir = tmp_path / "bin"
    _script(bindir / "nvidia-smi", SMI)
    _script(bindir / "nvidia-ctk", CTK)
    fresh = materialize(SPEC, tmp_path)
    old = materialize(SPEC.replace("580.159.04", "570.86.15"), tmp_path)  # the user's spec, stale
    (tmp_path / "fresh.yaml").write_text(fresh)
    etc = tmp_path / "etc-cdi"
    etc.mkdir()
    (etc / "nvidia.yaml").write_text(old)
    lab = {"cdi_dirs": [str(etc)], "cdi_spec_path": str(etc / "nvidia.yaml"), "extra_bin_dirs": [],
           "command_timeout": 20}
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "FRESH": str(tmp_path / "fresh.yaml"),
           "SLOW": str(tmp_path / "slow"), "STARTED": str(tmp_path / "started"), "CDI_DIR": str(etc)}
    orphans: list[int] = []
    yield tmp_path, etc, lab, env, fresh, old, orphans
    for pid in orphans:  # kill -9 leaves the stand-in to finish on its own: end it (its own session) here
        end_session(pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_cdi_generate_interrupted_keeps_the_spec_and_the_next_run_repairs(cdi_lab, sig):
    tmp_path, etc, lab, env, fresh, old, orphans = cdi_lab
    (tmp_path / "slow").touch()
    proc, out = start_run(tmp_path, lab, "-k", "cdi", "--fix-host", env=env)
    wait_for(tmp_path / "started", proc)
    ctk_pid = int((tmp_path / "started").read_text())
    interrupt(proc, sig)
    rc, _, text = finish(proc, out, timeout=60)

    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
        orphans.append(ctk_pid)  # cannot be caught: the orphan only ever writes the temporary name
    else:
        assert rc == 2, text  # pytest's "interrupted"
        assert "KeyboardInterrupt" in text
        assert gone(ctk_pid), "the interrupted nvidia-ctk went on running after the run ended"
    # nothing lost, nothing half-written visible to CDI (the backup is made only once the new spec is whole)
    assert (etc / "nvidia.yaml").read_text() == old
    visible = cdi_probe.probe_cdi((str(etc),), None, 5)
    assert [f.path for f in visible.files] == [str(etc / "nvidia.yaml")]

    (tmp_path / "slow").unlink()
    rc, recs, text = finish(*start_run(tmp_path, lab, "-k", "cdi", "--fix-host", env=env))
    assert recs["cdi_spec_present"]["verdict"] == "pass", text
    assert "generated" in recs["cdi_spec_present"]["message"]
    assert recs["cdi_spec_not_stale"]["verdict"] == "pass", recs["cdi_spec_not_stale"]
    assert (etc / "nvidia.yaml").read_text() == fresh
    backups = sorted(etc.glob("nvidia.yaml.labcheck-*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == old

    if sig == signal.SIGINT:  # a third run has nothing to do
        rc, recs, text = finish(*start_run(tmp_path, lab, "-k", "cdi", "--fix-host", env=env))
        assert recs["cdi_spec_present"]["verdict"] == "pass" and "generated" not in recs["cdi_spec_present"]["message"]
        assert sorted(etc.glob("nvidia.yaml.labcheck-*.bak")) == backups
        assert (etc / "nvidia.yaml").read_text() == fresh


# --- the MPS daemon: a run killed with SIGKILL must not keep later runs from stopping it -----------------

def _slow_control() -> str:
    """FAKE_CONTROL (tests/test_mps_probe.py: stands for nvidia-cuda-mps-control), whose 2nd answered
    get_server_list is slow when $SLOW exists: the run is then past starting and registering the daemon."""
    hook = ('get_server_list) n=$(cat "$P/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$P/count"; '
            'if [ -f "$SLOW" ] && [ $n -eq 2 ]; then echo $$ > "$STARTED"; sleep 60; fi; ')
    assert "  get_server_list) " in FAKE_CONTROL
    return FAKE_CONTROL.replace("  get_server_list) ", "  " + hook, 1)


def test_mps_run_killed_after_starting_the_daemon_then_the_next_run_stops_it(tmp_path):
    bindir = tmp_path / "bin"
    control = _script(bindir / "nvidia-cuda-mps-control", _slow_control())
    _script(bindir / "nvidia-cuda-mps-server", "#!/bin/sh\nexit 0\n")
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    lab = {"mps_pipe_dir": str(pipe), "mps_log_dir": str(log), "extra_bin_dirs": [], "command_timeout": 20}
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "SLOW": str(tmp_path / "slow"), "STARTED": str(tmp_path / "started"),
           "CUDA_MPS_PIPE_DIRECTORY": str(pipe)}
    action = MpsDaemon(str(control), str(pipe), str(log))
    try:
        (tmp_path / "slow").touch()
        proc, out = start_run(tmp_path, lab, "-k", "mps_control_daemon_running", env=env)
        wait_for(tmp_path / "started", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        end_session(int((tmp_path / "started").read_text()))  # the orphaned slow query
        daemon = action.started_pid
        assert daemon and _alive(daemon)
        assert f":{proc.pid}" in " ".join(json.loads(action.state_file.read_text())["users"])  # never unregistered

        (tmp_path / "slow").unlink()
        rc, recs, text = finish(*start_run(tmp_path, lab, "-k", "mps_control_daemon_running", "--teardown",
                                           env=env, name="r2"))
        assert recs["mps_control_daemon_running"]["verdict"] == "pass", text
        assert gone(daemon), "the next run left running the daemon this suite started (a dead run still 'used' it)"
        assert not action.state_file.exists()
    finally:
        mps_probe.control_query(str(control), "quit", str(pipe), 5)
        action.state_file.unlink(missing_ok=True)
