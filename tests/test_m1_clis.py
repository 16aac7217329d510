"""Module 1's fixes talk to the engine and kind the probes used (labcheck.clis): with ``docker_host`` set
(rootless Docker) a pasted ``docker``/``kind`` without DOCKER_HOST acts on the default engine instead, and a
configured ``kind_binary`` must be the kind that is run. Pure: verdicts and command builders over facts."""

from __future__ import annotations

import re

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
