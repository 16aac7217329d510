"""Ownership of the Kind cluster across a failed create: the suite must not later claim (repair, delete) a
cluster that the user made after the suite's own create failed."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from labcheck.config import LabConfig
from labcheck.probes.docker_client import connect
from setup_actions import cluster
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
    import subprocess

    from labcheck.probes.docker import ensure_probe_image
    from tests import m1_cluster

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
