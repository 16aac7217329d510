"""Module 0 run a second time: the kind node's MPS daemon, which module 1 of the first run started on the pipe
folder the node shares with the host, answers there. On the real Docker engine, with node containers made by the
kind double (tests/doubles/kind): the double's node has no real MPS, so a stand-in daemon runs in it (a script the
kernel names nvidia-cuda-mps, with CUDA_MPS_PIPE_DIRECTORY in its environment, writing its pid file in the shared
folder), and a stand-in control client on the host answers through the folder while that pid file is there.

It is the lab's own node's daemon (``docker top NODE`` lists its host pid): module 0's daemon check passes saying
so, the setup step starts and stops nothing, the CUDA client check runs its clients through it, and the stale-pipe
guard still refuses (the folder is in use). The same daemon seen from a lab whose node is another container, or
where the node cannot be asked, keeps failing as a container's.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import fixtures.mps
from labcheck import cmd, mps, mps_idle
from labcheck.probes import mps as probe
from labcheck.probes import node as nodeprobe
from labcheck.remedy import Shell
from labcheck.verdicts import mps as v
from setup_actions.mps_daemon import MpsDaemon
from tests import m1_cluster as m1
from tests.mps_client import H100_GPU, NODE_DAEMON
from tests.standins import executable

# The host's control client: a daemon answers on the folder while its pid file is there.
HOST_CONTROL = r"""#!/bin/sh
P="${CUDA_MPS_PIPE_DIRECTORY:-/tmp/nvidia-mps}"
[ "$1" = "-d" ] && { echo "the test's host control client starts no daemon" >&2; exit 3; }
read cmd
[ -f "$P/nvidia-cuda-mps-control.pid" ] || { echo "Cannot find MPS control daemon process"; exit 1; }
[ "$cmd" = quit ] && touch "$P/quit"
exit 0
"""

INSTALL = 'cat > /usr/local/bin/nvidia-cuda-mps-control && chmod +x /usr/local/bin/nvidia-cuda-mps-control'


class _OneGpu:
    gpus = (H100_GPU,)

    @staticmethod
    def list_problems() -> list[str]:
        return []


def _node(tmp_path: Path, pipe: Path, request) -> str:
    """A node container of a cluster of its own (removed at the end), with ``pipe`` mounted at the same path."""
    name = m1.unique()
    request.addfinalizer(lambda: m1.remove_cluster(name))
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [
        {"role": "control-plane", "extraMounts": [{"hostPath": str(pipe), "containerPath": str(pipe)}]}]}))
    made = m1.kind("create", "cluster", "--name", name, "--config", str(config), "--image", m1.IMAGE)
    assert made.returncode == 0, made.stderr
    return f"{name}-control-plane"


def _start_node_daemon(node: str, pipe: Path) -> mps.Proc:
    """The stand-in daemon in ``node``, on ``pipe``; the host's ps line of it."""
    subprocess.run(["docker", "exec", "-i", node, "sh", "-c", INSTALL], input=NODE_DAEMON, text=True, check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["docker", "exec", "-d", "-e", f"CUDA_MPS_PIPE_DIRECTORY={pipe}", node,
                    "/usr/local/bin/nvidia-cuda-mps-control", "-d"], check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        procs = mps.parse_ps(cmd.run(list(probe.PS_ARGV), timeout=10).stdout)
        found = [p for p in mps.control_daemons(procs) if p.args.startswith("/bin/sh /usr/local/bin/nvidia-cuda-mps")
                 or "/usr/local/bin/nvidia-cuda-mps-control" in p.args]
        ours = [p for p in found if cmd.in_own_pid_namespace(p.pid) is False]
        if ours and (pipe / "nvidia-cuda-mps-control.pid").exists():
            return ours[0]
        time.sleep(0.1)
    raise AssertionError("the stand-in daemon did not start in the node")


def _lab(pipe: Path, node: str, bin_dir: str):
    return type("Lab", (), {"mps_pipe_dir": str(pipe), "extra_bin_dirs": (bin_dir,), "extra_lib_dirs": (),
                            "command_timeout": 10, "node_name": node, "docker_host": ""})


@pytest.mark.docker
@pytest.mark.needs("docker_engine", "root")  # root: reads the daemon's /proc (its environment, its root)
def test_the_lab_nodes_daemon_on_the_shared_folder_passes_module0_and_is_left_alone(tmp_path, request, monkeypatch):
    pipe, log = tmp_path / "mps", tmp_path / "log"
    pipe.mkdir()
    control = str(executable(tmp_path / "bin" / "nvidia-cuda-mps-control", HOST_CONTROL))
    lab_node, other_node = _node(tmp_path, pipe, request), _node(tmp_path, pipe, request)
    daemon = _start_node_daemon(lab_node, pipe)
    try:
        facts = probe.probe_mps(str(pipe), (str(Path(control).parent),), 10)
        assert facts.answers and facts.daemons == [] and [p.pid for p in facts.containers_on_pipe] == [daemon.pid]

        theirs = nodeprobe.with_lab_node(facts, lab_node, 30)
        assert theirs.node_pids is not None and daemon.pid in theirs.node_pids
        verdict = v.daemon(theirs, str(pipe), str(log), True, shell=Shell(root=True))
        assert verdict.status == "pass", verdict
        assert verdict.message.startswith(f"MPS control daemon on {pipe} is the kind node {lab_node}'s (pid "
                                          f"{daemon.pid}, started by module 1): it serves this host's CUDA clients "
                                          "through the shared pipe folder"), verdict.message

        # the CUDA client check runs its clients through the node's daemon, asked through the folder
        ran = []
        monkeypatch.setattr(fixtures.mps, "run_cuda_clients", lambda *a, **k: ran.append(a) or ())
        assert fixtures.mps._client_runs(_lab(pipe, lab_node, str(Path(control).parent)), _OneGpu, theirs) == ()
        assert [a[0] for a in ran] == [str(pipe)]

        # another lab, whose node is the OTHER container: the same daemon is a container's, not its node's
        other = nodeprobe.with_lab_node(facts, other_node, 30)
        assert other.node_pids is not None and daemon.pid not in other.node_pids
        verdict = v.daemon(other, str(pipe), str(log), True, shell=Shell(root=True))
        assert verdict.status == "fail" and f"is a container's, not this host's: pid {daemon.pid}" in verdict.message
        assert isinstance(fixtures.mps._client_runs(_lab(pipe, other_node, ""), _OneGpu, other), str)
        # a node that cannot be found: cannot be told, the same failure
        gone = nodeprobe.with_lab_node(facts, m1.unique() + "-control-plane", 30)
        assert gone.node_pids is None
        assert v.daemon(gone, str(pipe), str(log), True, shell=Shell(root=True)).status == "fail"

        # the setup step starts no host daemon beside it, and its end of run stops nothing
        action = MpsDaemon(control, str(pipe), str(log), 5, state_root=tmp_path / "s", shell=Shell(root=True))
        assert action.apply().action == "none" and not log.exists()
        action.stop()
        assert probe.control_query(control, "get_server_list", str(pipe), 5).ok
        # the destructive guard still refuses: the folder is in use
        guard = subprocess.run(["bash", "-c", mps_idle.guard_command(str(pipe), sys.executable)],
                               capture_output=True, text=True, timeout=60)
        assert guard.returncode == 1 and str(daemon.pid) in guard.stdout, guard
        assert sorted(p.name for p in pipe.iterdir()) == ["nvidia-cuda-mps-control.pid"]
    finally:
        probe.control_query(control, "quit", str(pipe), 5)


# --- docker top, read (no engine needed) ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "pids"), [
    ("PID                 COMMAND\n4100                /sbin/init\n4242                /bin/sh x -d\n",
     frozenset({4100, 4242})),
    ("PID   COMMAND\n", frozenset()),
    ("", None),  # nothing printed
    ("UID  PID  COMMAND\nroot 4242 x\n", None),  # another table: its first column is no pid
    ("PID COMMAND\n４２ x\n", None),  # not ASCII digits
    ("PID COMMAND\n4242\nbogus x\n", None),
])
def test_docker_tops_pid_column_is_read_or_not_told(text, pids):
    assert nodeprobe.parse_top_pids(text) == pids


def test_the_node_is_not_asked_without_a_container_daemon_answering_nor_on_another_machine(monkeypatch):
    """No docker call on a host whose folder no container's daemon answers on (module 0 stays docker-free there);
    an engine on another machine is not asked (its pids are another host's): it cannot be told."""
    calls = []
    monkeypatch.setattr(nodeprobe.cmd, "run", lambda argv, **k: calls.append(argv) or cmd.CmdResult(tuple(argv), 0))
    ps = ("    PID    PPID STAT COMMAND         COMMAND\n"
          "   4242       1 Ssl  nvidia-cuda-mps nvidia-cuda-mps-control -d\n")
    pipe = probe.PipeDir("/tmp/nvidia-mps", True, True, True, False, True, 77)
    answers = cmd.CmdResult(("nvidia-cuda-mps-control",), 0, "")
    facts = probe.MpsFacts("ctl", "srv", cmd.CmdResult(("ps",), 0, ps), tuple(mps.parse_ps(ps)), pipe, None, {},
                           answers, {4242: False}, {4242: False})
    assert nodeprobe.with_lab_node(facts, "workshop-dra-control-plane") is facts and calls == []
    on = dataclasses.replace(facts, container_on_pipe={4242: True})
    remote = nodeprobe.with_lab_node(on, "workshop-dra-control-plane", docker_host="tcp://gpu-box.invalid:2375")
    assert remote.node_pids is None and "another machine" in remote.node_top.describe() and calls == []
    assert "cannot be told" in v.daemon(remote, pipe.path, "/var/log/nvidia-mps", True).message
