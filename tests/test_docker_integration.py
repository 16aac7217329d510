"""The Docker probes, verdicts and runtime setup against REAL, private dockerd instances.

Three runtime cases, each on its own throw-away engine (tests/private_dockerd.py; the shared engine
is never touched): registered-and-usable (runtime ``nvidia`` = a wrapper that execs runc, standing in
for nvidia-container-runtime), registered-but-broken (path to a binary that does not exist) and absent.
Plus: --fix-host setup against a live engine, the engine stopping mid-run, and a hung engine socket.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labcheck.config import LabConfig
from labcheck.probes import docker as probe
from labcheck.verdicts import docker as v
from setup_actions import docker_runtime
from tests import needs, private_dockerd

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def dockerd(tmp_path):
    """Start private engines with a given daemon.json; all are stopped and deleted afterwards."""
    needs.skip_unless("private_dockerd")
    started: list[private_dockerd.PrivateDockerd] = []

    def start(daemon_json, **kw):
        try:
            d = private_dockerd.start(daemon_json, **kw)
        except RuntimeError as exc:
            pytest.skip(str(exc))
        started.append(d)
        return d

    yield start
    for d in started:
        d.cleanup()


@pytest.fixture
def wrapper(tmp_path) -> Path:
    return private_dockerd.runc_wrapper(tmp_path)


def cfg_for(d: private_dockerd.PrivateDockerd, **kw) -> LabConfig:
    return LabConfig(docker_host=d.host, docker_daemon_json=str(d.daemon_json), docker_pidfile=str(d.pidfile),
                     command_timeout=kw.pop("command_timeout", 20.0), **kw)


def owned_containers(engine: probe.EngineFacts) -> list:
    return engine.client.containers.list(all=True, filters={"label": probe.OWNED_LABEL})


def test_runtime_registered_and_usable(dockerd, wrapper):
    d = dockerd({"runtimes": {"nvidia": {"path": str(wrapper)}}})
    cfg = cfg_for(d)
    engine = probe.probe_engine(cfg)
    assert v.engine_reachable(engine).status == "pass"
    reg = v.runtime_registered(engine, probe.read_daemon_json(d.daemon_json))
    assert reg.status == "pass" and str(wrapper) in reg.message

    result = probe.probe_runtime(engine, cfg)
    assert result.error == "" and result.exit_code == 0 and result.output.complete
    assert "built from" in result.image_note  # a fresh engine: the probe image came from the host's busybox
    verdict = v.runtime_usable(engine, result, probe.host_gpu_count())
    if probe.host_gpu_count() == 0:
        assert verdict.status == "warn" and "no NVIDIA GPU" in verdict.message
    else:  # a runc wrapper injects no GPU: on a GPU host that must not pass
        assert verdict.status == "fail" and "gives them no GPU" in verdict.message
    assert owned_containers(engine) == []  # the probe container is always removed
    assert engine.client.images.get(cfg.probe_image).labels.get(probe.OWNED_LABEL) == "1"
    # the second probe reuses the image
    assert probe.probe_runtime(engine, cfg).image_note == f"image {cfg.probe_image} present locally"


def test_runtime_that_injects_a_gpu_passes_on_a_gpu_host(dockerd, tmp_path):
    """The probe sees device nodes a runtime injects through a real engine (fake nodes: see the double)."""
    d = dockerd({"runtimes": {"nvidia": {"path": str(private_dockerd.gpu_injecting_wrapper(tmp_path))}}})
    cfg = cfg_for(d)
    engine = probe.probe_engine(cfg)
    result = probe.probe_runtime(engine, cfg)
    assert result.error == "" and result.output.devices == ("/dev/nvidia0", "/dev/nvidiactl"), result
    verdict = v.runtime_usable(engine, result, host_gpus=1)
    assert verdict.status == "pass"
    assert verdict.message == "runtime 'nvidia' starts containers with the GPU: /dev/nvidia0, /dev/nvidiactl"
    # the same container on a host with no GPU is not called a pass
    assert v.runtime_usable(engine, result, host_gpus=0).status == "warn"


def test_runtime_registered_but_binary_missing(dockerd):
    if shutil.which("nvidia-container-runtime"):
        pytest.skip("nvidia-container-runtime is installed here: cannot stage a missing binary under that name")
    d = dockerd({"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}})
    cfg = cfg_for(d)
    engine = probe.probe_engine(cfg)
    assert v.runtime_registered(engine, probe.read_daemon_json(d.daemon_json)).status == "pass"
    result = probe.probe_runtime(engine, cfg)
    assert 'exec: "nvidia-container-runtime": executable file not found in $PATH' in result.error
    verdict = v.runtime_usable(engine, result, probe.host_gpu_count())
    assert verdict.status == "fail"
    assert "registered with path 'nvidia-container-runtime' but dockerd cannot execute it" in verdict.message
    assert verdict.remediation.startswith("sudo apt-get install -y nvidia-container-toolkit")
    assert owned_containers(engine) == []


def test_runtime_absent(dockerd):
    d = dockerd(None)
    cfg = cfg_for(d)
    engine = probe.probe_engine(cfg)
    verdict = v.runtime_registered(engine, probe.read_daemon_json(d.daemon_json))
    assert verdict.status == "fail" and "expected runtime 'nvidia' registered" in verdict.message
    assert verdict.remediation.startswith("sudo nvidia-ctk runtime configure --runtime=docker")
    result = probe.probe_runtime(engine, cfg)
    assert not result.attempted
    assert v.runtime_usable(engine, result, 1).status == "fail"


def test_fix_host_registers_runtime_in_live_engine_and_is_idempotent(dockerd, wrapper):
    original = {"log-level": "warn", "runtimes": {"other": {"path": "runc"}}}
    d = dockerd(original)
    cfg = cfg_for(d)
    before_text = d.daemon_json.read_text()
    engine = probe.probe_engine(cfg)
    plan = docker_runtime.plan(probe.read_daemon_json(d.daemon_json), engine.runtimes)
    assert plan.needs_write and not plan.nothing_to_do

    def loaded() -> bool:
        return "nvidia" in probe.probe_engine(cfg).runtimes

    out = docker_runtime.apply(plan, fix_host=True, pidfile=str(d.pidfile), timeout=20, nvidia_ctk="",
                               runtime_binary=str(wrapper), loaded=loaded, prefix=[])
    assert out.action == "changed", out
    assert "sent SIGHUP to dockerd" in out.message and "the engine now lists it" in out.message
    assert Path(out.backup).read_text() == before_text
    after = probe.read_daemon_json(d.daemon_json)
    assert after.data["log-level"] == "warn" and after.runtimes["other"] == {"path": "runc"}
    assert after.runtimes["nvidia"] == {"path": str(wrapper), "args": []}

    engine = probe.probe_engine(cfg)
    assert v.runtime_registered(engine, after).status == "pass"
    assert v.runtime_usable(engine, probe.probe_runtime(engine, cfg), 0).status == "warn"

    again = docker_runtime.plan(after, engine.runtimes)
    assert again.nothing_to_do and again.describe().startswith("nothing to do")
    second = docker_runtime.apply(again, fix_host=True, pidfile=str(d.pidfile), prefix=[])
    assert second.action == "nothing to do"
    assert len(list(d.root.glob("daemon.json.labcheck-*.bak"))) == 1


def test_engine_stopping_mid_run_gives_clear_verdicts(dockerd, wrapper):
    d = dockerd({"runtimes": {"nvidia": {"path": str(wrapper)}}})
    cfg = cfg_for(d, command_timeout=5.0)
    engine = probe.probe_engine(cfg)
    assert engine.reachable
    d.stop()
    result = probe.probe_runtime(engine, cfg)
    assert result.engine_lost
    verdict = v.runtime_usable(engine, result, 0)
    assert verdict.status == "fail" and "stopped answering while looking up the probe image" in verdict.message
    assert verdict.remediation.startswith("sudo systemctl start docker")
    again = probe.probe_engine(cfg)
    assert v.engine_reachable(again).status == "fail"
    assert v.engine_version(again, "24.0").status == "skip"


def test_hung_runtime_times_out_and_names_the_step(dockerd, tmp_path):
    """A runtime that never returns (e.g. nvidia-container-cli stuck on a wedged GPU) must not hang the run."""
    hang = tmp_path / "hung-runtime"
    hang.write_text("#!/bin/sh\nsleep 3\n")
    hang.chmod(0o755)
    d = dockerd({"runtimes": {"nvidia": {"path": str(hang)}}})
    cfg = cfg_for(d, command_timeout=1.0)
    engine = probe.probe_engine(cfg)
    probe.ensure_probe_image(engine.client, cfg_for(d))  # import the image without the 1s limit
    start = time.monotonic()
    result = probe.probe_runtime(engine, cfg)
    assert time.monotonic() - start < 15
    assert result.timed_out, result
    # the start is what blocks; a loaded machine may already be slow to create the container
    assert result.hung_step in ("starting the probe container with runtime 'nvidia'", "creating the probe container")
    verdict = v.runtime_usable(engine, result, 0)
    assert verdict.status == "fail"
    assert verdict.message.startswith(f"{result.hung_step} hung: no answer within 1s")
    if result.cleanup_error:
        assert f"docker rm -f {result.container}" in verdict.details


def run_module0_docker_checks(tmp_path, lab: dict, *args: str, path_dirs=()) -> tuple[int, dict, str]:
    """``pytest tests_env -m module0`` restricted to the Docker checks, in a subprocess; (rc, records, output)."""
    import json

    lab_yaml = tmp_path / "lab.yaml"
    lab_yaml.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in lab.items()))
    out = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PATH"] = os.pathsep.join([*map(str, path_dirs), env.get("PATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_env/test_module0.py", "-m", "module0", "-k", "docker or nvidia",
         "-p", "no:cacheprovider", f"--lab-config={lab_yaml}", f"--results-json={out}", "-q", *args],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"]} if out.exists() else {}
    return proc.returncode, recs, proc.stdout + proc.stderr


def test_one_run_with_fix_host_provisions_then_checks(dockerd, tmp_path):
    """The session fixture runs the setup before the checks read the engine; the second run finds it done."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    private_dockerd.runc_wrapper(bindir, "nvidia-container-runtime")  # stands in for the toolkit's runtime
    d = dockerd({"log-level": "info"}, path_dirs=(str(bindir),))
    lab = {"docker_host": d.host, "docker_daemon_json": str(d.daemon_json), "docker_pidfile": str(d.pidfile),
           "command_timeout": 20}

    rc, recs, out = run_module0_docker_checks(tmp_path, lab, "--fix-host", "--no-provision", path_dirs=[bindir])
    assert recs["nvidia_runtime_registered"]["verdict"] == "fail", out  # --no-provision: only checks
    # no systemd runs this dockerd: the fix reloads it by its pid (found through the lab config's docker_host)
    assert f" && kill -HUP {d.proc.pid}   # " in recs["nvidia_runtime_registered"]["remediation"], out

    rc, recs, out = run_module0_docker_checks(tmp_path, lab, "--fix-host", path_dirs=[bindir])
    assert rc == 1, out  # the engine (20.10 here) or the GPU-less usable probe still fail or warn; not an error
    reg = recs["nvidia_runtime_registered"]
    assert reg["verdict"] == "pass", out
    assert "--fix-host setup (changed): registered runtime 'nvidia'" in reg["details"]
    assert "sent SIGHUP to dockerd" in reg["details"] and "the engine now lists it" in reg["details"]
    assert recs["nvidia_runtime_usable"]["verdict"] == ("warn" if probe.host_gpu_count() == 0 else "fail")
    data = probe.read_daemon_json(d.daemon_json).data
    assert data == {"log-level": "info", "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}

    rc, recs, out = run_module0_docker_checks(tmp_path, lab, "--fix-host", path_dirs=[bindir])
    assert recs["nvidia_runtime_registered"]["verdict"] == "pass"
    assert recs["nvidia_runtime_registered"]["details"] == ""  # nothing to do the second time
    assert len(list(d.root.glob("daemon.json.labcheck-*.bak"))) == 1


# --- a hung engine and a malformed daemon.json, through a whole module-0 run ---------------------------

@pytest.fixture
def hung_socket():
    """A unix socket that accepts connections and never answers: what a wedged dockerd looks like."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="lchang-", dir="/tmp")) / "hang.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(16)
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield path
    srv.close()
    for c in held:
        c.close()
    shutil.rmtree(path.parent, ignore_errors=True)


def test_hung_engine_times_out_and_is_named(hung_socket):
    cfg = LabConfig(docker_host=f"unix://{hung_socket}", command_timeout=1.0)
    start = time.monotonic()
    engine = probe.probe_engine(cfg)
    assert time.monotonic() - start < 10
    verdict = v.engine_reachable(engine)
    assert verdict.status == "fail"
    assert f"Docker engine at unix://{hung_socket} accepted the connection but did not answer `ping` within 1s" \
        in verdict.message


@pytest.mark.needs("docker_cli")  # docker_cli_present must pass
def test_module0_docker_checks_survive_hung_engine_and_malformed_daemon_json(hung_socket, tmp_path):
    bad = tmp_path / "daemon.json"
    bad.write_text('{\n  "log-level": "warn"\n  "runtimes": {}\n}\n')
    lab = {"docker_host": f"unix://{hung_socket}", "docker_daemon_json": str(bad), "command_timeout": 1}
    start = time.monotonic()
    rc, recs, out = run_module0_docker_checks(tmp_path, lab)
    assert rc == 1, out
    assert time.monotonic() - start < 60
    assert recs["docker_engine_reachable"]["verdict"] == "fail"
    assert "did not answer `ping` within 1s (hung)" in recs["docker_engine_reachable"]["message"]
    assert recs["docker_daemon_json_valid"]["verdict"] == "fail"
    assert recs["docker_daemon_json_valid"]["message"].startswith(f"{bad}, line 3, column 3: not valid JSON")
    for name in ("docker_engine_version", "nvidia_runtime_registered", "nvidia_runtime_usable"):
        assert recs[name]["verdict"] == "skip"
        assert recs[name]["message"].startswith("Docker engine not reachable: ")
    assert recs["docker_cli_present"]["verdict"] == "pass"
