"""Ownership of the Kind cluster across a failed create: the suite must not later claim (repair, delete) a
cluster that the user made after the suite's own create failed."""

from __future__ import annotations

from pathlib import Path

from labcheck.config import LabConfig
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
    assert out.remediation.startswith("kind create cluster --name labcheck-ownership-t")

    (tmp_path / "clusters.txt").write_text("labcheck-ownership-t\n")  # the user runs that command by hand
    assert not cluster.owned(cfg)
    assert cluster.plan(cfg, str(conf)).action != "repair"
    assert cluster.teardown(cfg).action == "kept"
    assert not any(line.startswith("delete") for line in (tmp_path / "calls.txt").read_text().splitlines())
