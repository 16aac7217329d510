"""Interrupted Docker steps (issue 4), against real private dockerd instances (tests/private_dockerd.py;
the shared engine is never touched): a real ``pytest tests_env`` run killed with SIGKILL in the middle,
then the next run, which must finish the job.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from labcheck.config import LabConfig
from labcheck.probes import docker as probe
from tests import private_dockerd
from tests.test_docker_integration import dockerd  # noqa: F401 - the private-engine fixture
from tests.test_hardening_interrupt import _script, end_session, finish, start_run, wait_for

pytestmark = pytest.mark.docker


def _lab(d: private_dockerd.PrivateDockerd) -> dict:
    return {"docker_host": d.host, "docker_daemon_json": str(d.daemon_json), "docker_pidfile": str(d.pidfile),
            "command_timeout": 20}


def _probe_containers(d: private_dockerd.PrivateDockerd) -> list:
    engine = probe.probe_engine(LabConfig(docker_host=d.host, command_timeout=10))
    return [c for c in engine.client.containers.list(all=True, filters={"label": probe.OWNED_LABEL})
            if c.name.startswith(probe.PROBE_PREFIX)]


def test_probe_container_of_a_killed_run_is_removed_by_the_next_run(dockerd, tmp_path):  # noqa: F811
    slow, started = tmp_path / "slow", tmp_path / "started"
    runtime = _script(tmp_path / "slow-runtime", f"""#!/bin/sh
# Stand-in for nvidia-container-runtime (a runc wrapper that prepares the GPU first): with {slow} present its
# preparation takes a few seconds, long enough to kill the run that started the container.
for a in "$@"; do
  if [ "$a" = create ] && [ -f '{slow}' ]; then echo $$ > '{started}'; sleep 4; fi
done
exec runc "$@"
""")
    d = dockerd({"runtimes": {"nvidia": {"path": str(runtime)}}})
    slow.touch()
    proc, out = start_run(tmp_path, _lab(d), "-k", "nvidia_runtime_usable")
    wait_for(started, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    (left,) = _probe_containers(d)  # the killed run could not remove its probe container
    assert left.labels[probe.OWNER_PID_LABEL] == str(proc.pid)
    slow.unlink()
    deadline = time.monotonic() + 20  # let the engine finish the start the dead run asked for
    while left.status not in ("exited", "created", "dead") and time.monotonic() < deadline:
        time.sleep(0.2)
        left.reload()

    rc, recs, text = finish(*start_run(tmp_path, _lab(d), "-k", "nvidia_runtime_usable", name="r2"))
    usable = recs["nvidia_runtime_usable"]
    if probe.host_gpu_count() == 0:  # the stand-in runs runc: no GPU inside, and none on this host
        assert usable["verdict"] == "warn" and "no NVIDIA GPU" in usable["message"], usable
    else:
        assert usable["verdict"] == "fail" and "gives them no GPU" in usable["message"], usable
    assert f"removed 1 probe container(s) left by an interrupted run: {left.name}" in usable["details"], usable
    assert _probe_containers(d) == []


def test_runtime_setup_killed_before_the_reload_is_finished_by_the_next_run(dockerd, tmp_path):  # noqa: F811
    """Killed after daemon.json was changed but before the engine was reloaded: the file has the runtime,
    the engine does not. The next --fix-host run must only reload; the third has nothing to do."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    private_dockerd.runc_wrapper(bindir, "nvidia-container-runtime")  # stands in for the toolkit's runtime
    slow, started = tmp_path / "slow", tmp_path / "started"
    _script(bindir / "nvidia-ctk", f"""#!{sys.executable}
# Stand-in for nvidia-ctk: `runtime configure --runtime=docker --config=F` merges the runtime into F as the
# real one does; with {slow} present it then lingers (a slow exit), the moment the run is killed.
import json, os, sys, time
if sys.argv[1:2] == ["--version"]:
    print("NVIDIA Container Toolkit CLI version 1.17.8"); sys.exit(0)
cfg = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")][0]
data = json.load(open(cfg)) if os.path.exists(cfg) else {{}}
data.setdefault("runtimes", {{}})["nvidia"] = {{"path": "nvidia-container-runtime", "args": []}}
json.dump(data, open(cfg, "w"), indent=4)
if os.path.exists({str(slow)!r}):
    open({str(started)!r}, "w").write(str(os.getpid()))
    time.sleep(60)
""")
    d = dockerd({"log-level": "info"}, path_dirs=(str(bindir),))
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    original = d.daemon_json.read_text()
    slow.touch()
    proc, out = start_run(tmp_path, _lab(d), "-k", "docker or nvidia", "--fix-host", env=env)
    wait_for(started, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    end_session(int(started.read_text()))  # kill -9 cannot reach the step's command: end it here
    slow.unlink()
    (backup,) = d.root.glob("daemon.json.labcheck-*.bak")
    assert backup.read_text() == original
    assert "nvidia" in json.loads(d.daemon_json.read_text())["runtimes"]
    engine = probe.probe_engine(LabConfig(docker_host=d.host, command_timeout=10))
    assert "nvidia" not in engine.runtimes  # half done: written, not loaded

    rc, recs, text = finish(*start_run(tmp_path, _lab(d), "-k", "docker or nvidia", "--fix-host", env=env,
                                       name="r2"))
    reg = recs["nvidia_runtime_registered"]
    assert reg["verdict"] == "pass", text
    assert "already had it" in reg["details"] and "the engine now lists it" in reg["details"], reg
    assert list(d.root.glob("daemon.json.labcheck-*.bak")) == [backup]  # no second write, no second backup

    rc, recs, text = finish(*start_run(tmp_path, _lab(d), "-k", "docker or nvidia", "--fix-host", env=env,
                                       name="r3"))
    assert recs["nvidia_runtime_registered"]["verdict"] == "pass" and recs["nvidia_runtime_registered"]["details"] \
        == ""
    assert json.loads(d.daemon_json.read_text()) == {"log-level": "info", "runtimes": {
        "nvidia": {"path": "nvidia-container-runtime", "args": []}}}
    assert Path(backup).read_text() == original
