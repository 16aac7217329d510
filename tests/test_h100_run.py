"""The module 0 results from the real H100 run (tests/data/h100-run/README.md): the proof, kept honest.

These read the --results-json files the suite wrote there; if a change to a check makes these
records impossible (renamed checks, a verdict that could no longer pass on a real GPU host), this
says so.
"""

import json

from tests.captures import DATA


def _records(name):
    doc = json.loads((DATA / "h100-run" / name).read_text())
    return doc, {r["check"]: r for r in doc["records"]}


def test_real_gpu_host_passes_driver_cc_and_mps():
    doc, recs = _records("module0.json")
    for name in ("nvidia_driver_version", "gpus_present", "gpu_compute_capability", "mps_control_binary",
                 "mps_control_daemon_running", "mps_pipe_directory", "mps_serves_a_cuda_client"):
        assert recs[name]["verdict"] == "pass", recs[name]
    assert "M+C" in recs["mps_serves_a_cuda_client"]["message"]
    env = next(iter(doc["environment"].values()))
    assert env["NVIDIA driver"] == "580.159.04" and env["GPUs"] == "NVIDIA H100 80GB HBM3 x1"


def test_missing_tools_failed_with_their_fix_there():
    _, recs = _records("module0.json")
    for name in ("kind_version", "helm_version", "nvidia_container_toolkit_version", "cdi_spec_present"):
        assert recs[name]["verdict"] == "fail" and recs[name]["remediation"], recs[name]


def test_no_provision_run_is_honest_about_mps():
    _, recs = _records("module0-noprovision.json")
    assert recs["mps_control_daemon_running"]["verdict"] == "warn"
    assert recs["mps_serves_a_cuda_client"]["verdict"] == "fail"
