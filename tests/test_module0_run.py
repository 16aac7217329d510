"""The module 0 checks of this area, run end to end by pytest on this machine (a subprocess).

Where no NVIDIA driver answers (CI, this dev box), the run must end in verdicts, not tracebacks:
the driver check fails with its fix, checks that need a GPU skip with the reason, missing tools fail
with their install command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labcheck import cmd

ROOT = Path(__file__).resolve().parent.parent
OURS = ("kind_version", "helm_version", "nvidia_container_toolkit_version", "nvidia_driver_version", "gpus_present",
        "gpu_compute_capability", "gpu_compute_mode", "cdi_spec_present", "cdi_spec_valid",
        "cdi_spec_lists_this_hosts_gpus", "cdi_spec_not_stale", "cdi_specs_do_not_conflict", "mps_control_binary",
        "mps_control_daemon_running", "mps_pipe_directory", "mps_serves_a_cuda_client")


def test_module0_without_gpu_gives_verdicts_not_tracebacks(pytester, tmp_path):
    if cmd.which("nvidia-smi", ("/usr/local/nvidia/bin",)):
        pytest.skip("a GPU host: tests/test_gpu_host.py and the device run cover it")
    out = tmp_path / "r.json"
    names = " or ".join(OURS)
    result = pytester.runpytest_subprocess(
        str(ROOT / "tests_env"), "-m", "module0", "-k", names, "--no-provision", f"--results-json={out}",
        f"--rootdir={ROOT}", "-p", "no:cacheprovider", "-p", "no:randomly")
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"]}
    assert set(OURS) <= set(recs), set(OURS) - set(recs)
    assert "raised an error" not in json.dumps(recs)
    assert recs["nvidia_driver_version"]["verdict"] == "fail" and recs["nvidia_driver_version"]["remediation"]
    for dependent in ("gpus_present", "gpu_compute_capability", "gpu_compute_mode", "mps_serves_a_cuda_client"):
        assert recs[dependent]["verdict"] == "skip" and recs[dependent]["message"], dependent
    for r in recs.values():
        if r["verdict"] == "fail":
            assert r["remediation"], r
    if not cmd.which("kind"):
        assert "kind.sigs.k8s.io/dl" in recs["kind_version"]["remediation"]
    assert result.ret == 1 and os.path.exists(out)


def test_hung_mps_control_gives_verdicts_naming_it(pytester, tmp_path, monkeypatch):
    """Test doubles on PATH: nvidia-smi printing the H100 capture (so the host looks like it has a GPU) and an
    nvidia-cuda-mps-control that never answers (a client blocked on a dead daemon's pipe)."""
    from tests.captures import first

    bindir = tmp_path / "bin"
    bindir.mkdir()
    csv = first("h100-host/nvidia-smi-query-csv-noheader.txt").output
    (bindir / "nvidia-smi").write_text(f'#!/bin/sh\ncat <<"E"\n{csv}\nE\n')
    (bindir / "nvidia-cuda-mps-control").write_text("#!/bin/sh\nsleep 120\n")
    (bindir / "nvidia-cuda-mps-server").write_text("#!/bin/sh\nexit 0\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"command_timeout: 1\nmps_pipe_dir: {tmp_path / 'pipe'}\nmps_log_dir: {tmp_path / 'log'}\n"
                   "extra_bin_dirs: []\n")
    out = tmp_path / "r.json"
    pytester.runpytest_subprocess(
        str(ROOT / "tests_env"), "-m", "module0", "-k", "mps or gpus_present", f"--lab-config={lab}",
        f"--results-json={out}", f"--rootdir={ROOT}", "-p", "no:cacheprovider", "-p", "no:randomly")
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"]}
    assert recs["gpus_present"]["verdict"] == "pass"
    daemon = recs["mps_control_daemon_running"]
    assert daemon["verdict"] == "fail" and "hung: no answer within 1s" in daemon["message"]
    assert "starting it failed" in daemon["message"] or "nvidia-cuda-mps-control" in daemon["message"]
    functional = recs["mps_serves_a_cuda_client"]
    assert functional["verdict"] == "fail" and "hung" in functional["message"]
    assert "nvidia-cuda-mps-control" in functional["message"]
