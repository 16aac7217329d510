"""A node made with the old layout (driver files at their host paths) on the real Docker engine, by the kind double:
the new config does not match it; the suite repairs it only when its ownership record says it created it."""

from __future__ import annotations

import pytest
import yaml

from labcheck import kindconfig, state
from labcheck.probes import node as nodeprobe
from setup_actions import cluster as cluster_action
from setup_actions import kind_config as kind_config_action
from tests import m1_cluster as m1

pytestmark = [pytest.mark.docker, pytest.mark.needs("docker_engine")]


@pytest.fixture
def cluster_name(request):
    name = m1.unique()
    request.addfinalizer(lambda: m1.remove_cluster(name))
    return name


def old_layout_config(tmp_path, cfg) -> str:
    """What the generator wrote before the uniform layout: every mount at its host path."""
    parsed = kindconfig.load(cfg.kind_config_path)
    mounts = [{"hostPath": m.host_path, "containerPath": m.host_path} for m in parsed.mounts]
    path = tmp_path / "old-layout.yaml"
    path.write_text(yaml.safe_dump({"kind": "Cluster", "apiVersion": kindconfig.API_VERSION,
                                    "nodes": [{"role": "control-plane", "extraMounts": mounts}]}))
    return str(path)


@pytest.mark.parametrize("ours", [True, False])
def test_old_layout_node_is_repaired_only_when_the_suite_made_it(tmp_path, cluster_name, monkeypatch, ours):
    monkeypatch.setenv("KIND_DOUBLE_LABEL", m1.LABEL)
    libdir, bindir = m1.fake_driver(tmp_path)
    cfg = m1.lab_config(tmp_path, cluster_name, extra_lib_dirs=(str(libdir),), extra_bin_dirs=(str(bindir),))
    kind_config_action.apply(cfg, kind_config_action.inspect(cfg))
    made = m1.kind("create", "cluster", "--name", cluster_name, "--config", old_layout_config(tmp_path, cfg),
                   "--image", m1.IMAGE)
    assert made.returncode == 0, made.stderr
    old = nodeprobe.inspect(cfg.node_name)
    assert f"{libdir}/libcuda.so.1" in {dst for _, dst, _ in old.mounts}
    if ours:  # the ownership record an earlier run of the suite wrote for this node
        state.write(state.state_dir(cfg.state_dir), state.ClusterRecord(cluster_name, "created", old.id,
                                                                        cfg.kind_config_path, m1.IMAGE))
    p = cluster_action.plan(cfg, cfg.kind_config_path)
    assert p.action == ("repair" if ours else "blocked"), p
    assert any("old layout" in d for d in p.mismatches) and any("/usr/lib/" in d for d in p.mismatches)
    out = cluster_action.apply(cfg, cfg.kind_config_path)
    node = nodeprobe.inspect(cfg.node_name)
    if ours:
        assert out.ok and out.action == "repair", out.message
        assert node.id != old.id and cluster_action.mismatches(node, kindconfig.load(cfg.kind_config_path)) == []
    else:
        assert (out.ok, out.action) == (False, "blocked") and "left alone" in out.message
        assert node.id == old.id  # never deleted
