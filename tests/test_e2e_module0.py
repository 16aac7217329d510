"""End to end: ``pytest tests_env -m module0 --results-json`` on THIS machine, asserting its real verdicts.

On the CI machine that is: Debian's docker.io engine (20.10, started by .ci/run), no NVIDIA runtime,
no GPU. The run must reach the engine, fail what is really missing with a remediation each, and exit 1
(tests failed), not 2/3/4 (interrupted, internal error, usage error).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck import versions
from labcheck.config import LabConfig
from labcheck.probes import docker as probe
from labcheck.remedy import this_host
from labcheck.verdicts import docker as docker_v

pytestmark = [pytest.mark.docker, pytest.mark.needs("docker_engine")]
REPO = Path(__file__).resolve().parent.parent
DOCKER_CHECKS = ("docker_cli_present", "docker_engine_reachable", "docker_engine_version",
                 "docker_daemon_json_valid", "nvidia_runtime_registered", "nvidia_runtime_usable")


@pytest.fixture(scope="module")
def engine() -> probe.EngineFacts:
    facts = probe.probe_engine(LabConfig(command_timeout=10))
    assert facts.reachable, f"tests/needs.py found an engine but the product's probe does not: {facts.error}"
    return facts


@pytest.fixture(scope="module")
def module0_run(engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "-p", "no:cacheprovider",
                           f"--results-json={out}"],
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=env, stdin=subprocess.DEVNULL)
    doc = json.loads(out.read_text()) if out.exists() else None
    return proc, doc


def test_run_exits_1_not_an_error(module0_run):
    proc, doc = module0_run
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    assert "NOT READY" in proc.stdout


def test_results_json_is_complete(module0_run):
    _, doc = module0_run
    assert doc is not None, "no results JSON written"
    recs = doc["records"]
    assert doc["summary"]["total"] == len(recs) and doc["summary"]["ready"] is False
    assert doc["summary"]["failed"] == sum(r["verdict"] == "fail" for r in recs) > 0
    for r in recs:
        assert r["module"] == "module0" and r["host"] and r["check"]
        assert r["verdict"] in ("pass", "fail", "warn", "skip")
    assert {r["check"] for r in recs} >= set(DOCKER_CHECKS)


def test_every_failure_has_a_remediation_and_no_check_crashed(module0_run):
    _, doc = module0_run
    for r in doc["records"]:
        assert "raised an error" not in r["message"], r
        if r["verdict"] == "fail":
            assert r["remediation"].strip(), r
        if r["verdict"] == "skip":
            assert r["message"].strip(), r


def records(doc) -> dict[str, dict]:
    return {r["check"]: r for r in doc["records"]}


def test_docker_checks_reach_the_engine(module0_run, engine):
    _, doc = module0_run
    recs = records(doc)
    assert recs["docker_cli_present"]["verdict"] == "pass"
    assert recs["docker_engine_reachable"]["verdict"] == "pass"
    assert engine.server_version in recs["docker_engine_reachable"]["message"]
    env = next(iter(doc["environment"].values()))
    assert env["Docker"] == engine.server_version


def test_docker_engine_version_verdict_is_the_real_one(module0_run, engine):
    _, doc = module0_run
    rec = records(doc)["docker_engine_version"]
    minimum = LabConfig().min_docker
    if versions.at_least(engine.server_version, minimum):
        assert rec["verdict"] == "pass"
    else:  # the CI machine: Debian's docker.io 20.10
        assert rec["verdict"] == "fail"
        assert f"Docker engine {engine.server_version} is older than the required {minimum}" in rec["message"]
        assert "https://get.docker.com" in rec["remediation"]


def test_nvidia_runtime_verdicts_match_the_engine(module0_run, engine):
    _, doc = module0_run
    recs = records(doc)
    if "nvidia" not in engine.runtimes:  # the CI machine's engine has no NVIDIA runtime
        assert recs["nvidia_runtime_registered"]["verdict"] == "fail"
        fix = recs["nvidia_runtime_registered"]["remediation"]
        sudo = "" if os.geteuid() == 0 else "sudo "
        if shutil.which("nvidia-ctk"):
            assert fix.startswith(f"{sudo}nvidia-ctk runtime configure --runtime=docker")
        else:  # no toolkit here: installing it comes first (labcheck.verdicts.docker.configure_runtime)
            assert fix.startswith("curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey")
            assert fix.index("install -y nvidia-container-toolkit") < fix.index("nvidia-ctk runtime configure")
        assert recs["nvidia_runtime_usable"]["verdict"] == "fail"
    else:
        assert recs["nvidia_runtime_registered"]["verdict"] == "pass"
        # what the run reported is what the verdict makes of this engine and host now
        direct = docker_v.runtime_usable(engine, probe.probe_runtime(engine, LabConfig(command_timeout=60)),
                                         probe.host_gpu_count())
        assert recs["nvidia_runtime_usable"]["verdict"] == direct.status, (recs["nvidia_runtime_usable"], direct)


def test_gpu_checks_fail_with_their_remediation_on_a_host_without_gpu(module0_run):
    """CI has no GPU and no driver: the host is not ready, and the report says so, check by check."""
    import shutil

    if shutil.which("nvidia-smi") or Path("/proc/driver/nvidia/version").exists():
        pytest.skip("this machine has an NVIDIA driver: the no-GPU verdicts do not apply")
    _, doc = module0_run
    recs = records(doc)
    driver = recs["nvidia_driver_version"]
    assert driver["verdict"] == "fail" and "expected an NVIDIA driver >= 535" in driver["message"]
    assert "nvidia-smi" in driver["remediation"]
    for dependent in ("gpus_present", "gpu_compute_capability", "mps_serves_a_cuda_client"):
        assert recs[dependent]["verdict"] == "skip", recs[dependent]
        assert recs[dependent]["message"], recs[dependent]
    assert recs["cdi_spec_present"]["verdict"] == "fail"
    sudo = "" if this_host().root else "sudo "  # no sudo in a fix shown to root
    assert recs["cdi_spec_present"]["remediation"] == f"{sudo}nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
    assert recs["mps_control_binary"]["verdict"] == "fail"
