"""Module 1 setup verdicts (labcheck.verdicts.kindconfig), the inotify probe on real files, the compute-capability
advisory, and how a running node made with the old layout is told apart from the config (cluster mismatches)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck import kindconfig as kc
from labcheck.config import LabConfig
from labcheck.probes import sysctl
from labcheck.probes.gpu import Gpu, GpuFacts, NvmlFacts, SmiQuery
from labcheck.probes.node import NodeState
from labcheck.remedy import Shell
from labcheck.verdicts import gpu as gpu_v
from labcheck.verdicts import kindconfig as kv
from setup_actions import cluster as cluster_action
from setup_actions import kind_config as kind_config_action
from setup_actions.outcome import Outcome
from tests import m1_cluster as m1
from tests.captures import DATA

WATCHES, INSTANCES = "fs.inotify.max_user_watches", "fs.inotify.max_user_instances"


def proc_sys(tmp_path, watches: str, instances: str) -> str:
    d = tmp_path / "sys/fs/inotify"
    d.mkdir(parents=True)
    (d / "max_user_watches").write_text(watches)
    (d / "max_user_instances").write_text(instances)
    return str(tmp_path / "sys")


def test_inotify_defaults_fail_with_sudo_sysctl_and_a_persisting_file(tmp_path):
    values, errors = sysctl.read_all(kv.INOTIFY_MINIMUMS, proc_sys(tmp_path, "8192\n", "128\n"))
    assert values == {WATCHES: 8192, INSTANCES: 128} and errors == {}
    v = kv.inotify_limits(values, errors, Shell(root=False))
    assert v.status == "fail" and "max_user_watches = 8192" in v.message
    assert v.remediation.startswith(f"sudo sysctl -w {WATCHES}=524288 {INSTANCES}=512 && printf ")
    assert "| sudo tee /etc/sysctl.d/99-kind-inotify.conf" in v.remediation
    root = kv.inotify_limits(values, errors, Shell(root=True))
    assert "sudo" not in root.remediation and root.remediation.startswith("sysctl -w ")


def test_inotify_only_the_low_setting_is_in_the_fix(tmp_path):
    values, errors = sysctl.read_all(kv.INOTIFY_MINIMUMS, proc_sys(tmp_path, "1048576", "128"))
    v = kv.inotify_limits(values, errors, Shell(root=True))
    assert v.status == "fail" and WATCHES not in v.remediation.split("#")[0].split("&&")[0]
    assert f"{INSTANCES}=512" in v.remediation


def test_inotify_enough_passes_and_garbage_or_missing_fails_with_reason(tmp_path):
    values, errors = sysctl.read_all(kv.INOTIFY_MINIMUMS, proc_sys(tmp_path, "524288", "512"))
    assert kv.inotify_limits(values, errors).status == "pass"
    values, errors = sysctl.read_all(kv.INOTIFY_MINIMUMS, proc_sys(tmp_path / "g", "\x00\xff lots", "512"))
    v = kv.inotify_limits(values, errors)
    assert v.status == "fail" and "not an integer" in v.message
    values, errors = sysctl.read_all(kv.INOTIFY_MINIMUMS, str(tmp_path / "absent"))
    assert kv.inotify_limits(values, errors).status == "fail"


def test_inotify_read_from_this_hosts_proc_sys():
    values, errors = sysctl.read_all(kv.INOTIFY_MINIMUMS)
    assert errors == {} and all(isinstance(n, int) for n in values.values())


@pytest.mark.parametrize(("image", "status"), [
    ("kindest/node:v1.34.0", "warn"),
    ("kindest/node:v1.34.0@sha256:" + "a" * 64, "warn"),
    ("kindest/node:v1.33.4", "warn"),
    ("kindest/node:v1.34.2", "pass"),
    ("kindest/node:v1.35.0@sha256:" + "b" * 64, "pass"),
    ("kindest/node@sha256:" + "c" * 64, "skip"),
])
def test_node_image_below_kubernetes_1_34_2_warns(image, status):
    v = kv.image_kubernetes_for_dra(image)
    assert v.status == status
    if status == "warn":
        assert "1.34.2" in v.message and "kindest/node:v1.34.2" in v.remediation


def test_default_node_image_stays_the_seeds_v1_34_0_and_only_warns():
    image = LabConfig().node_image
    assert image.startswith("kindest/node:v1.34.0@sha256:")
    assert kv.image_pinned(image).status == "pass" and kv.image_kubernetes_for_dra(image).status == "warn"


def _facts(*caps: tuple[int, int] | None) -> GpuFacts:
    gpus = tuple(Gpu(i, f"GPU-{i}", name, cc, "Default") for i, (name, cc) in
                 enumerate(("Tesla P100" if cc and cc < (7, 0) else "H100", cc) for cc in caps))
    return GpuFacts(SmiQuery("nvidia-smi", None, gpus, "580.159.04"), NvmlFacts())


def test_compute_capability_below_7_warns_6_0_stays_the_failure_line():
    pascal = _facts((6, 0))
    assert gpu_v.compute_capability(pascal, "6.0").status == "pass"  # the seed's line
    v = gpu_v.compute_capability_for_mps_limits(pascal)
    assert v.status == "warn" and "Tesla P100 has 6.0" in v.message and "Volta" in v.remediation
    mixed = gpu_v.compute_capability_for_mps_limits(_facts((6, 1), (9, 0)))
    assert mixed.status == "warn" and mixed.remediation.startswith("export CUDA_VISIBLE_DEVICES=1")
    assert gpu_v.compute_capability_for_mps_limits(_facts((9, 0))).status == "pass"
    assert gpu_v.compute_capability_for_mps_limits(_facts(None)).status == "skip"


def test_config_generated_verdicts():
    error = kind_config_action.cannot("m/k.yaml", "cannot write m/k.yaml: Permission denied")
    v = kv.config_generated(error, [], False, "m/k.yaml")
    assert v.status == "fail" and v.message == error.message and v.remediation.startswith("ls -ld ")
    w = Outcome(True, "none", "m/k.yaml unchanged")
    v = kv.config_generated(w, ["libcuda.so.1 not found"], False, "m/k.yaml")
    assert v.status == "fail" and "libcuda.so.1 not found" in v.message
    assert kv.config_generated(w, [], False, "m/k.yaml").message == "m/k.yaml unchanged"
    v = kv.config_generated(Outcome(True, "create", "m/k.yaml would be created"), [], True, "m/k.yaml")
    assert v.status == "fail" and "--no-provision" in v.message


def test_host_paths_of_an_unusable_config_is_a_skip_not_a_pass():
    parsed = kc.parse("nodes: 5\n", "k.yaml")
    assert kv.host_paths_exist(parsed).status == "skip"


def test_cluster_provisioned_fails_with_the_outcomes_fix():
    v = kv.cluster_provisioned(False, "kind could not create", "kind create cluster --name 'x y'")
    assert v.status == "fail" and v.remediation == "kind create cluster --name 'x y'"
    assert kv.cluster_provisioned(True, "reused", "").status == "pass"


# --- a running node made with the old layout does not match the new config ----------------------------------

NEW = kc.load(DATA / "kindconfig/gpu-host-uniform.yaml")
OLD = kc.load(DATA / "h100-docker/kind-config.gpu-host.yaml")


def node_from(parsed: kc.ParsedConfig, extra: tuple = ()) -> NodeState:
    """The node container `kind create` made from ``parsed`` (as docker inspect reports it)."""
    mounts = tuple((m.host_path, m.container_path, not m.read_only) for m in parsed.mounts) + extra
    return NodeState("workshop-dra-control-plane", True, True, "running", "id", parsed.image, mounts=mounts)


def test_node_made_from_the_config_matches_it():
    assert cluster_action.mismatches(node_from(NEW), NEW) == []


def test_node_made_with_the_old_layout_does_not_match_the_new_config():
    diff = cluster_action.mismatches(node_from(OLD), NEW)
    assert "mount /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 missing" in diff
    assert any("/usr/local/nvidia/lib64/libcuda.so.1 is not in the config (node made with the old layout" in d
               for d in diff)


def test_node_with_the_hosts_var_run_cdi_does_not_match():
    diff = cluster_action.mismatches(node_from(NEW, (("/var/run/cdi", "/var/run/cdi", False),)), NEW)
    assert diff == ["the host's /var/run/cdi is mounted at /var/run/cdi: the node's /var/run/cdi must be its own"]
    diff = cluster_action.mismatches(node_from(NEW, (("/run/cdi", "/host-cdi", True),)), NEW)
    assert diff == ["the host's /run/cdi is mounted at /host-cdi: the node's /var/run/cdi must be its own"]


def test_node_path_fed_from_another_host_file_does_not_match():
    node = node_from(NEW)
    swapped = tuple(("/opt/other/libcuda.so.1", d, rw) if d.endswith("/libcuda.so.1") else (s, d, rw)
                    for s, d, rw in node.mounts)
    diff = cluster_action.mismatches(NodeState(node.name, True, True, "running", "id", node.image, mounts=swapped),
                                     NEW)
    assert diff == ["mount /usr/lib/x86_64-linux-gnu/libcuda.so.1 comes from /opt/other/libcuda.so.1 instead of "
                    "/usr/local/nvidia/lib64/libcuda.so.1"]


# --- as an attendee runs it: a user file at kind_config_path is never replaced silently ----------------------

def test_user_kind_config_replaced_is_said_in_the_terminal_and_the_report(tmp_path):
    """Only the config step runs (-k): no cluster is made, so this needs no Docker engine."""
    libdir, bindir = m1.fake_driver(tmp_path)
    cfg = m1.lab_config(tmp_path, m1.unique(), extra_lib_dirs=(str(libdir),), extra_bin_dirs=(str(bindir),))
    mine = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane  # my own\n"
    Path(cfg.kind_config_path).parent.mkdir(parents=True)
    Path(cfg.kind_config_path).write_text(mine)
    lab = m1.write_lab_yaml(tmp_path / "lab.yaml", cfg)
    res_json = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests_env", "-m", "module1", "-k", "kind_config_generated",
                           "-p", "no:cacheprovider", "--lab-config", str(lab), "--results-json", str(res_json)],
                          cwd=Path(__file__).resolve().parents[1], env=m1.double_env(), capture_output=True, text=True,
                          timeout=300)
    rec = next(r for r in json.loads(res_json.read_text())["records"] if "kind_config_generated" in r["nodeid"])
    backups = list(Path(cfg.kind_config_path).parent.glob("kind-config.yaml.labcheck-*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == mine
    assert rec["verdict"] == "warn" and "not written by this suite" in rec["message"]
    assert str(backups[0]) in rec["message"]
    terminal = proc.stdout + proc.stderr
    assert f"was not written by this suite: replaced by the generated kind config; your file is kept as " \
           f"{backups[0]}" in terminal
