"""Module 1's node checks against real node containers (the kind double on the real Docker engine):
the double's default node is like kindest/node (glibc, no python3), kind's node labels, and module 1
honouring the lab config's docker_host (issue 11 item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.probes import node as nodeprobe
from setup_actions import cluster as cluster_action
from setup_actions import kind_config as kind_config_action
from tests import m1_cluster as m1

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster_name(request):
    m1.docker_or_skip()
    name = m1.unique()
    request.addfinalizer(lambda: m1.remove_cluster(name))
    return name


def test_default_double_node_has_glibc_and_no_python3_and_records_kinds_labels(tmp_path, cluster_name, monkeypatch):
    """kindest/node has glibc but no python3: so must the double's default node (issue 9 item 7)."""
    monkeypatch.setenv("KIND_DOUBLE_LABEL", m1.LABEL)
    monkeypatch.delenv("KIND_DOUBLE_USERLAND", raising=False)
    libdir, bindir = m1.fake_driver(tmp_path)
    cfg = m1.lab_config(tmp_path, cluster_name, extra_lib_dirs=(str(libdir),), extra_bin_dirs=(str(bindir),))
    kind_config_action.apply(cfg, kind_config_action.inspect(cfg))
    assert cluster_action.apply(cfg, cfg.kind_config_path).ok
    py = nodeprobe.node_exec(cfg.node_name, ["python3", "-c", "1"])
    assert py.rc in (126, 127) and "python3" in py.output
    env = nodeprobe.loader_resolve(cfg.node_name, "libc.so.6", ["/usr/bin/env"])  # the node's own ld.so answers
    assert env.ok and nodeprobe.parse_loader_list(env.stdout, "libc.so.6").endswith("/libc.so.6"), env.describe()
    # kind gives nodes[].labels to the kubelet; the double, which has none, records them for tests to see
    labels = json.loads(nodeprobe.inspect(cfg.node_name).labels["labcheck.kind-double.node-labels"])
    import yaml

    doc = yaml.safe_load(Path(cfg.kind_config_path).read_text())
    assert labels == (doc["nodes"][0].get("labels") or {})


def _product(tmp_path: Path, lab: Path, env: dict, *extra: str) -> dict:
    res_json = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests_env", "-m", "module1", "-p", "no:cacheprovider",
                           "--lab-config", str(lab), "--results-json", str(res_json), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stdout, proc.stdout[-3000:]
    return {r["nodeid"].split("::")[-1]: r for r in json.loads(res_json.read_text())["records"]}


def test_module1_uses_the_configured_docker_host(tmp_path, cluster_name):
    """docker_host in lab.yaml points at the engine through another unix socket path; the environment's
    DOCKER_HOST points nowhere. Every docker and kind call of module 1 must use the configured one."""
    engine = Path("/var/run/docker.sock")
    if not engine.is_socket():
        pytest.skip("the engine is not at /var/run/docker.sock: cannot make a second path to it")
    alias = tmp_path / "engine.sock"
    alias.symlink_to(engine)
    libdir, bindir = m1.fake_driver(tmp_path)
    cfg = m1.lab_config(tmp_path, cluster_name, extra_lib_dirs=(str(libdir),), extra_bin_dirs=(str(bindir),),
                        docker_host=f"unix://{alias}")
    lab = m1.write_lab_yaml(tmp_path / "lab.yaml", cfg)
    env = {**m1.double_env(), "DOCKER_HOST": f"unix://{tmp_path}/nothing-listens-here.sock"}
    recs = _product(tmp_path, lab, env)
    assert recs["test_cluster_provisioned"]["verdict"] == "pass", recs["test_cluster_provisioned"]
    assert recs["test_node_container_running"]["verdict"] == "pass", recs["test_node_container_running"]
    assert recs["test_cdi_dir_writable_in_node"]["verdict"] == "pass", recs["test_cdi_dir_writable_in_node"]
    assert recs["test_shm_size_in_node"]["verdict"] == "pass"
    # and the environment's engine really is unusable here: without docker_host the same run cannot see the node
    os.unlink(alias)
    recs = _product(tmp_path, lab, env, "--no-provision")
    assert recs["test_node_container_running"]["verdict"] == "fail"
    assert "engine.sock" in recs["test_node_container_running"]["message"] or \
        "Cannot connect" in recs["test_node_container_running"]["message"]
