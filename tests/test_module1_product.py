"""The module 1 checks as an attendee runs them, on inputs that must give clear failures, not crashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import m1_cluster as m1

ROOT = Path(__file__).resolve().parents[1]


def run_product(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    res_json = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests_env", "-m", "module1", "-p", "no:cacheprovider",
                           "--lab-config", str(tmp_path / "lab.yaml"), "--results-json", str(res_json), *extra],
                          cwd=ROOT, env=m1.double_env(), capture_output=True, text=True, timeout=300)
    data = json.loads(res_json.read_text())
    return proc, {r["nodeid"].split("::")[-1]: r for r in data["records"]}


def test_malformed_kind_config_fails_with_file_and_line_under_no_provision(tmp_path):
    libdir, bindir = m1.fake_driver(tmp_path)
    cfg = m1.lab_config(tmp_path, m1.unique(), extra_lib_dirs=(str(libdir),), extra_bin_dirs=(str(bindir),))
    Path(cfg.kind_config_path).parent.mkdir(parents=True)
    Path(cfg.kind_config_path).write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n"
                                          "- role: control-plane\n  extraMounts:\n  - hostPath /oops\n")
    m1.write_lab_yaml(tmp_path / "lab.yaml", cfg)
    proc, recs = run_product(tmp_path, "--no-provision")
    assert "Traceback" not in proc.stdout
    valid = recs["test_kind_config_valid"]
    assert valid["verdict"] == "fail" and f"{cfg.kind_config_path}:6" in valid["message"], valid
    assert valid["remediation"]
    prov = recs["test_cluster_provisioned"]
    assert prov["verdict"] == "fail" and "kind config unusable" in prov["message"]
    assert recs["test_node_container_running"]["verdict"] == "fail"
    assert recs["test_shm_size_in_node"]["verdict"] == "skip"  # no node to look into: says so
    gen = recs["test_kind_config_generated"]
    assert gen["verdict"] == "fail" and "--no-provision: not written" in gen["message"]
    assert "+  - hostPath: /dev/shm" in gen["details"]
    # --no-provision wrote nothing: the user's (broken) file is untouched
    assert "hostPath /oops" in Path(cfg.kind_config_path).read_text()


def test_missing_kind_binary_is_a_clear_failure(tmp_path):
    cfg = m1.lab_config(tmp_path, m1.unique(), kind_binary=str(tmp_path / "no-such-kind"))
    m1.write_lab_yaml(tmp_path / "lab.yaml", cfg)
    proc, recs = run_product(tmp_path)
    prov = recs["test_cluster_provisioned"]
    assert prov["verdict"] == "fail" and "not found" in prov["message"] and "install kind" in prov["remediation"]
    assert "Traceback" not in proc.stdout
