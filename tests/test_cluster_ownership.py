"""Ownership of the Kind cluster across a failed create: the suite must not later claim (repair, delete) a
cluster that the user made after the suite's own create failed."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from labcheck import state
from labcheck.config import LabConfig
from labcheck.probes import node as nodeprobe
from labcheck.probes.docker import ensure_probe_image
from labcheck.probes.docker_client import connect
from setup_actions import cluster, kind_config
from tests import m1_cluster
from tests.standins import executable

# Stand-in for the kind CLI (none can be installed here): `create cluster` fails the way a real failed create
# does (exit 1; kind removes the nodes it made), `get clusters` lists the names in clusters.txt, and every
# call is logged so the test can prove no `delete` was ever sent.
FAKE_KIND = """#!/bin/sh
D=$(dirname "$0")
echo "$@" >> "$D/calls.txt"
case "$1 $2" in
  "get clusters") cat "$D/clusters.txt" 2>/dev/null ;;
  "create cluster") echo "ERROR: failed to create cluster: could not find a log line that matches" >&2; exit 1 ;;
esac
exit 0
"""
MINIMAL_CONFIG = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"


def test_failed_create_leaves_no_claim_on_a_cluster_the_user_makes_later(tmp_path: Path):
    kind = executable(tmp_path / "kind", FAKE_KIND)
    cfg = LabConfig(cluster_name="labcheck-ownership-t", state_dir=str(tmp_path / "state"), kind_binary=str(kind),
                    command_timeout=10, cluster_create_timeout=30)
    conf = tmp_path / "kind-config.yaml"
    conf.write_text(MINIMAL_CONFIG)

    out = cluster.apply(cfg, str(conf))
    assert not out.ok and "kind could not create the cluster" in out.message
    # the configured kind_binary (the kind that was run), not whatever "kind" is on PATH
    assert out.remediation.startswith(f"{shlex.quote(str(kind))} create cluster --name labcheck-ownership-t")

    (tmp_path / "clusters.txt").write_text("labcheck-ownership-t\n")  # the user runs that command by hand
    assert not cluster.owned(cfg)
    assert cluster.plan(cfg, str(conf)).action != "repair"
    assert cluster.teardown(cfg).action == "kept"
    assert not any(line.startswith("delete") for line in (tmp_path / "calls.txt").read_text().splitlines())


@pytest.mark.docker
@pytest.mark.needs("docker_engine")
def test_a_container_with_the_node_name_that_kind_does_not_know_is_left_alone(tmp_path: Path):
    """A real container named like the node, on the real engine, while kind (stand-in) lists no cluster: not a kind
    cluster, so it is neither reused as one nor repaired nor torn down."""
    name = m1_cluster.unique("labcheck-own")
    cfg = LabConfig(cluster_name=name, state_dir=str(tmp_path / "state"),
                    kind_binary=str(executable(tmp_path / "kind", FAKE_KIND)), command_timeout=20)
    conf = tmp_path / "kind-config.yaml"
    conf.write_text(MINIMAL_CONFIG)
    conn = connect(20)
    image, _, why = ensure_probe_image(conn.client, cfg)
    if not image:
        pytest.skip(f"no local image to start a container from: {why}")
    try:
        subprocess.run(["docker", "run", "-d", "--name", cfg.node_name, "--label", "labcheck.test=ownership",
                        "--network", "none", image, "/bin/busybox", "sleep", "300"],
                       check=True, capture_output=True, timeout=60)
        plan = cluster.plan(cfg, str(conf))
        assert plan.action == "blocked" and "kind lists no cluster" in plan.reason, plan
        assert cluster.apply(cfg, str(conf)).action == "blocked"
        assert cluster.teardown(cfg).action == "kept"
        calls = (tmp_path / "calls.txt").read_text().splitlines()
        assert not any(line.startswith(("delete", "create")) for line in calls), calls
    finally:
        subprocess.run(["docker", "rm", "-f", cfg.node_name], capture_output=True, timeout=60)


@pytest.fixture
def double_cluster(tmp_path: Path, request, monkeypatch):
    """A unique cluster made by the kind double on the real engine (tests/m1_cluster.py), removed afterwards."""
    name = m1_cluster.unique("m1own")
    request.addfinalizer(lambda: m1_cluster.remove_cluster(name))
    monkeypatch.setenv("KIND_DOUBLE_LABEL", m1_cluster.LABEL)
    return name


def _users_own_cluster(name: str, config: Path) -> str:
    """What a user does by hand: ``kind delete cluster`` then ``kind create cluster`` with their own config; the
    new node container's ID."""
    assert m1_cluster.kind("delete", "cluster", "--name", name).returncode == 0
    made = m1_cluster.kind("create", "cluster", "--name", name, "--config", str(config), "--image", m1_cluster.IMAGE)
    assert made.returncode == 0, made.stderr
    return nodeprobe.inspect(f"{name}-control-plane").id


@pytest.mark.docker
@pytest.mark.needs("docker_engine")
def test_a_cluster_the_user_made_after_a_timed_out_create_is_neither_repaired_nor_torn_down(
        tmp_path: Path, double_cluster: str, monkeypatch):
    """audit-m1 item 1: the suite's create times out (the node is half-made), the user deletes it and makes their
    own cluster of the same name. The suite's record names the half-made node's ID, so the user's node (another
    ID) is never deleted: not by the next run's repair, not by --teardown."""
    cfg = m1_cluster.lab_config(tmp_path, double_cluster, cluster_create_timeout=8.0)
    kind_config.apply(cfg, kind_config.inspect(cfg))
    monkeypatch.setenv("KIND_DOUBLE_HANG_AFTER_CREATE", "1")
    out = cluster.apply(cfg, cfg.kind_config_path)
    assert not out.ok and "hung" in out.message, out.message
    half = nodeprobe.inspect(cfg.node_name)
    rec = state.read(state.state_dir(cfg.state_dir), double_cluster)
    assert half.exists and rec is not None and rec.phase == "creating"
    assert rec.node_id == half.id  # what the timed-out create made is recorded: the next run may repair THAT
    monkeypatch.delenv("KIND_DOUBLE_HANG_AFTER_CREATE")

    own = tmp_path / "my-own.yaml"
    own.write_text(MINIMAL_CONFIG)  # no driver mounts: does not match the suite's config
    users = _users_own_cluster(double_cluster, own)
    plan = cluster.plan(cfg, cfg.kind_config_path)
    assert (plan.action, plan.owned) == ("blocked", False), plan
    assert f"this suite's record names container {half.id[:12]}" in plan.reason
    again = cluster.apply(cfg, cfg.kind_config_path)
    assert (again.ok, again.action) == (False, "blocked") and "left alone" in again.message, again.message
    assert not cluster.owned(cfg) and cluster.teardown(cfg).action == "kept"
    assert nodeprobe.inspect(cfg.node_name).id == users


@pytest.mark.docker
@pytest.mark.needs("docker_engine")
def test_a_record_without_a_node_id_claims_no_cluster(tmp_path: Path, double_cluster: str):
    """A run killed before kind made any node leaves a 'creating' record with no container ID. A cluster of that
    name found later may be anyone's: reused when it matches the config, else left alone; never torn down."""
    cfg = m1_cluster.lab_config(tmp_path, double_cluster)
    kind_config.apply(cfg, kind_config.inspect(cfg))
    directory = state.state_dir(cfg.state_dir)
    state.write(directory, state.ClusterRecord(double_cluster, "creating", config=cfg.kind_config_path,
                                               image=cfg.node_image))
    users = _users_own_cluster(double_cluster, Path(cfg.kind_config_path))  # made with the suite's own config
    out = cluster.apply(cfg, cfg.kind_config_path)
    assert (out.ok, out.action, out.changed) == (True, "reuse", False), out.message
    assert cluster.teardown(cfg).action == "kept"
    assert nodeprobe.inspect(cfg.node_name).id == users
