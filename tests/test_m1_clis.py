"""Module 1's fixes talk to the engine and kind the probes used (labcheck.clis): with ``docker_host`` set
(rootless Docker) a pasted ``docker``/``kind`` without DOCKER_HOST acts on the default engine instead, and a
configured ``kind_binary`` must be the kind that is run. Pure: verdicts and command builders over facts."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess

import pytest

from labcheck.clis import Clis
from labcheck.cmd import CmdResult
from labcheck.config import LabConfig
from labcheck.kindconfig import NodePaths
from labcheck.probes.kube import ApiFacts
from labcheck.probes.node import NodeState
from labcheck.verdicts import node as v
from setup_actions import cluster, node_mps
from tests.module1_calls import verdict_calls_without

ROOTLESS = "unix:///run/user/1000/docker.sock"
CFG = LabConfig(docker_host=ROOTLESS, kind_binary="/opt/kind bin/kind", kind_config_path="/srv/lab/kc.yaml")
CLI = Clis.of(CFG)
NODE, CLUSTER = CFG.node_name, CFG.cluster_name
DOWN = CmdResult(("docker",), None, timed_out=True)


def _bare(fix: str) -> list[str]:
    """The docker/kind commands in ``fix`` that do not start with the configured prefix."""
    rest = fix.replace(CLI.docker, "").replace(CLI.kind, "")
    return re.findall(r"\b(?:docker|kind) \S+", rest)


def test_the_prefixes_carry_docker_host_and_the_configured_kind_quoted():
    assert CLI.docker == f"DOCKER_HOST={ROOTLESS} docker"
    assert CLI.kind == f"DOCKER_HOST={ROOTLESS} '/opt/kind bin/kind'"
    assert Clis.of(LabConfig()) == Clis()  # nothing configured: the plain commands
    secret = Clis.of(LabConfig(docker_host="tcp://admin:s3cret@10.0.0.5:2376"))
    assert "s3cret" not in secret.docker and "10.0.0.5:2376" in secret.docker


def test_every_module1_fix_names_the_configured_engine_and_kind():
    paths = NodePaths({"nvidia-cuda-mps-control": ["/usr/bin/nvidia-cuda-mps-control"]}, (), ("/usr/bin",), "")
    api_down = ApiFacts(server="https://127.0.0.1:6443", reachable=False, error="connection refused")
    fixes = {
        "recreate": v.recreate_cluster(CLUSTER, CFG.kind_config_path, cli=CLI),
        "rebuild": v.rebuild(CLUSTER, CFG.kind_config_path, cli=CLI),
        "inspect": v.node_running(NodeState(NODE, False, error="boom"), CLUSTER, CFG.kind_config_path,
                                  cli=CLI).remediation,
        "create": v.node_running(NodeState(NODE, False), CLUSTER, CFG.kind_config_path, cli=CLI).remediation,
        "start": v.node_running(NodeState(NODE, True), CLUSTER, CFG.kind_config_path, cli=CLI).remediation,
        "ps": v.mps_control([], DOWN, NODE, "x", cli=CLI).remediation,
        "shm": v.shm(None, 1, DOWN, NODE, cli=CLI).remediation,
        "smi": v.workshop_nvidia_smi(CmdResult(("docker",), 9, "boom"), NODE, CLUSTER, CFG.kind_config_path,
                                     cli=CLI).remediation,
        "api": v.k8s_node_ready(api_down, NODE, CLUSTER, cli=CLI).remediation,
        "server": v.mps_server([], [], "", NODE, "x", True, cli=CLI).remediation,
        "conflict": v.shared_pipe_conflict([4242], "/tmp/mps", NODE, cli=CLI).remediation,
        "node mps": node_mps.start_command(CFG, paths),
        "cluster create": cluster._create_cmd(CFG, CFG.kind_config_path),
    }
    for what, fix in fixes.items():
        assert ("docker" in fix or "kind" in fix), (what, fix)
        assert not _bare(fix), f"{what}: {fix!r} runs {_bare(fix)} without the configured DOCKER_HOST / kind"


def test_the_regenerate_fix_names_the_configured_kind_config():
    fix = v.node_file("libcuda.so.1", [], {}, CmdResult(("docker",), 0), NODE, CLUSTER, CFG.kind_config_path,
                      cli=CLI).remediation
    assert "/srv/lab/kc.yaml" in fix and "manifests/kind-config.yaml" not in fix


def test_module1_checks_pass_the_prefixes_to_every_verdict_that_takes_them():
    """tests_env/test_module1.py: a verdict called without ``cli=`` would fall back to the plain commands."""
    assert not verdict_calls_without(("cli",))


FAKE_KIND = """#!/bin/sh
# kind get kubeconfig --name NAME, for the one cluster this kind knows (like kind: an error for any other)
if [ "$1 $2 $3" = "get kubeconfig --name" ] && [ "$4" = "$LABCHECK_TEST_CLUSTER" ]; then
  cat "$LABCHECK_TEST_KUBECONFIG"
else
  echo "ERROR: could not locate any control plane nodes for cluster named '$4'" >&2; exit 1
fi
"""
KUBECONFIG_OF = """apiVersion: v1
kind: Config
clusters:
- cluster: {{server: "https://127.0.0.1:43210"}}
  name: {context}
contexts:
- context: {{cluster: {context}, user: {context}}}
  name: {context}
current-context: {context}
users:
- name: {context}
  user: {{token: vacuous-token-not-a-secret}}
"""


@pytest.mark.needs("kubectl")
def test_the_kubectl_fixes_work_when_the_users_kubeconfig_lacks_the_clusters_context(tmp_path):
    """kind writes the kind-<name> context only at `kind create`, into the kubeconfig of that moment; with another
    KUBECONFIG (or a kubeconfig cleaned since) `kubectl --context kind-<name>` fails. The fix hands kubectl what the
    configured kind prints, through a 0600 temporary file that is gone afterwards (`<(...)` would not do: client-go
    reads a kubeconfig twice, the second read of a pipe is empty, and kubectl falls back to localhost:8080)."""
    name = "lab 'one' $(x)"
    kind = tmp_path / "kind bin" / "kind"
    kind.parent.mkdir()
    kind.write_text(FAKE_KIND)
    kind.chmod(0o755)
    config = tmp_path / "kind.kubeconfig"
    config.write_text(KUBECONFIG_OF.format(context=json.dumps(f"kind-{name}")))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "users-own-kubeconfig"), "HOME": str(tmp_path),
           "TMPDIR": str(temp), "LABCHECK_TEST_CLUSTER": name, "LABCHECK_TEST_KUBECONFIG": str(config)}
    cli = Clis.of(LabConfig(cluster_name=name, kind_binary=str(kind)))

    def bash(fix: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", fix], env=env, capture_output=True, text=True, timeout=60)

    server = bash(cli.kubectl(name, "config view --minify -o 'jsonpath={.clusters[0].cluster.server}'"))
    assert server.returncode == 0 and server.stdout == "https://127.0.0.1:43210", server
    assert not list(temp.iterdir())  # the kubeconfig (the cluster's credentials) is removed
    other = bash(cli.kubectl("another", "config view --minify"))
    assert other.returncode != 0 and "could not locate any control plane" in other.stderr, other
    assert not list(temp.iterdir())  # also when kind fails
    old = bash(f"kubectl --context {shlex.quote('kind-' + name)} config view --minify")
    assert old.returncode != 0, old  # what the fixes said before: the context is not in the user's kubeconfig
