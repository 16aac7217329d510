"""CDI in the node's containerd, on real node containers made by the kind double (tests/doubles/kind: its node's
``containerd config dump`` reflects the config's containerdConfigPatches, as kind's merge does; by default it stands
for containerd 1.7, where CDI is off unless a patch turns it on).

A node made from a config without the suite's patch has CDI off: the check fails with the rebuild fix, and the
cluster step no longer reuses such a node as matching: it repairs it when the suite made it, else leaves it alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labcheck import kindconfig, state
from labcheck.probes import node as nodeprobe
from labcheck.verdicts import node as v
from setup_actions import cluster as cluster_action
from setup_actions import kind_config as kind_config_action
from tests import m1_cluster as m1

pytestmark = [pytest.mark.docker, pytest.mark.needs("docker_engine")]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster_name(request, monkeypatch):
    monkeypatch.setenv("KIND_DOUBLE_LABEL", m1.LABEL)
    name = m1.unique("m1cdi")
    request.addfinalizer(lambda: m1.remove_cluster(name))
    return name


def generated(tmp_path: Path, name: str):
    cfg = m1.lab_config(tmp_path, name)
    kind_config_action.apply(cfg, kind_config_action.inspect(cfg))
    return cfg


def without_patch(tmp_path: Path, cfg, patches=None) -> str:
    """The generated config with its containerdConfigPatches dropped (or replaced by ``patches``)."""
    doc = yaml.safe_load(Path(cfg.kind_config_path).read_text())
    doc.pop("containerdConfigPatches")
    if patches is not None:
        doc["containerdConfigPatches"] = patches
    path = tmp_path / "unpatched.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_a_node_made_from_the_generated_config_has_cdi_on(tmp_path, cluster_name):
    cfg = generated(tmp_path, cluster_name)
    assert cluster_action.apply(cfg, cfg.kind_config_path).ok
    cri, res = nodeprobe.containerd_cdi(cfg.node_name, cfg.command_timeout)
    assert res.ok and cri.enabled is True and cri.version == 2, (res.describe(), cri)
    got = v.containerd_cdi(cri, res, cfg.node_name, cluster_name, cfg.kind_config_path, ours=True)
    assert got.status == "pass" and "containerd 1.x" in got.message, got


@pytest.mark.parametrize("ours", [True, False])
def test_a_node_made_without_the_patch_fails_and_is_repaired_only_when_the_suite_made_it(tmp_path, cluster_name,
                                                                                       ours):
    cfg = generated(tmp_path, cluster_name)
    made = m1.kind("create", "cluster", "--name", cluster_name, "--config", without_patch(tmp_path, cfg),
                   "--image", m1.IMAGE)
    assert made.returncode == 0, made.stderr
    old = nodeprobe.inspect(cfg.node_name)
    cri, res = nodeprobe.containerd_cdi(cfg.node_name, cfg.command_timeout)
    assert res.ok and cri.enabled is False, (res.describe(), cri)
    got = v.containerd_cdi(cri, res, cfg.node_name, cluster_name, cfg.kind_config_path, ours=ours)
    assert got.status == "fail" and "CDI is off" in got.message
    # the suite's own cluster is deleted and made again; someone else's is only looked at (the delete after '#')
    lead = f"kind delete cluster --name {cluster_name} && " if ours else \
        f"docker ps -a --filter label=io.x-k8s.kind.cluster={cluster_name}   # "
    assert got.remediation.startswith(lead), got.remediation
    assert (v.NOT_OURS in got.remediation) is not ours
    if ours:  # the ownership record an earlier run of the suite wrote for this node
        state.write(state.state_dir(cfg.state_dir), state.ClusterRecord(cluster_name, "created", old.id,
                                                                        cfg.kind_config_path, m1.IMAGE))
    p = cluster_action.plan(cfg, cfg.kind_config_path)
    assert p.action == ("repair" if ours else "blocked"), p
    assert p.mismatches == ("CDI is off in the node's containerd (enable_cdi = false in "
                            '[plugins."io.containerd.grpc.v1.cri"], containerd 1.x\'s config version 2), while the '
                            "config's containerdConfigPatches turn it on: the node was made without them",), p
    out = cluster_action.apply(cfg, cfg.kind_config_path)
    node = nodeprobe.inspect(cfg.node_name)
    if ours:
        assert out.ok and out.action == "repair" and node.id != old.id, out.message
        cri, res = nodeprobe.containerd_cdi(cfg.node_name, cfg.command_timeout)
        assert cri.enabled is True and cluster_action.plan(cfg, cfg.kind_config_path).action == "reuse"
    else:
        assert (out.ok, out.action) == (False, "blocked") and "CDI is off" in out.message
        assert node.id == old.id  # never deleted


def test_a_containerd_2_node_has_cdi_on_without_the_patch_unless_one_turns_it_off(tmp_path, cluster_name,
                                                                                 monkeypatch):
    monkeypatch.setenv("KIND_DOUBLE_CONTAINERD", "2")
    cfg = generated(tmp_path, cluster_name)
    assert m1.kind("create", "cluster", "--name", cluster_name, "--config", without_patch(tmp_path, cfg),
                   "--image", m1.IMAGE).returncode == 0
    cri, res = nodeprobe.containerd_cdi(cfg.node_name, cfg.command_timeout)
    assert cri.version == 3 and cri.enabled is True, cri
    assert v.containerd_cdi(cri, res, cfg.node_name, cluster_name, cfg.kind_config_path).status == "pass"
    m1.remove_cluster(cluster_name)
    off = without_patch(tmp_path, cfg, ['version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  enable_cdi = false\n'])
    assert m1.kind("create", "cluster", "--name", cluster_name, "--config", off, "--image", m1.IMAGE).returncode == 0
    cri, res = nodeprobe.containerd_cdi(cfg.node_name, cfg.command_timeout)
    got = v.containerd_cdi(cri, res, cfg.node_name, cluster_name, cfg.kind_config_path)
    assert got.status == "fail", got
    assert "[plugins.'io.containerd.cri.v1.runtime'], containerd 2.x's config version 3" in got.message


def test_the_product_checks_the_nodes_containerd_and_fails_a_node_made_without_the_patch(tmp_path, cluster_name):
    """The criterion in a real run: a pass on the node the suite creates; with --no-provision against a node made
    without the patch, a failure whose fix is the rebuild, and the kind config's own check names the patch."""
    cfg = generated(tmp_path, cluster_name)
    lab = m1.write_lab_yaml(tmp_path / "lab.yaml", cfg)

    def run(*extra: str) -> dict:
        out = tmp_path / "results.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "tests_env", "-m", "module1", "-p", "no:cacheprovider",
                               "-k", "containerd_cdi or cluster_provisioned or kind_config_valid",
                               f"--lab-config={lab}", f"--results-json={out}", *extra],
                              cwd=ROOT, env=m1.double_env(), capture_output=True, text=True, timeout=300)
        assert "Traceback" not in proc.stdout, proc.stdout[-3000:]
        return {r["check"]: r for r in json.loads(out.read_text())["records"]}

    recs = run()
    assert recs["cluster_provisioned"]["verdict"] == "pass", recs["cluster_provisioned"]
    assert recs["containerd_cdi_enabled_in_node"]["verdict"] == "pass", recs["containerd_cdi_enabled_in_node"]
    assert recs["containerd_cdi_enabled_in_node"]["criterion"] is True
    m1.remove_cluster(cluster_name)
    Path(cfg.kind_config_path).write_text(kindconfig.HEADER + Path(without_patch(tmp_path, cfg)).read_text())
    assert m1.kind("create", "cluster", "--name", cluster_name, "--config", cfg.kind_config_path,
                   "--image", m1.IMAGE).returncode == 0
    recs = run("--no-provision")
    cdi = recs["containerd_cdi_enabled_in_node"]
    assert cdi["verdict"] == "fail" and "CDI is off" in cdi["message"], cdi
    # made by hand (kind create above), so not the suite's: the fix looks at it and deletes nothing
    assert cdi["remediation"].startswith(f"docker ps -a --filter label=io.x-k8s.kind.cluster={cluster_name}   # "), cdi
    assert f"{cfg.kind_binary} delete cluster --name {cluster_name}" in cdi["remediation"].split("   # ", 1)[1], cdi
    assert "does not turn CDI on" in recs["kind_config_valid"]["details"], recs["kind_config_valid"]
