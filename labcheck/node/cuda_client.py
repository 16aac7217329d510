"""The suite's CUDA client for the Kind node's MPS daemon: plain ctypes over ``libcuda.so.1``.

WHY: the MPS control daemon starts ``nvidia-cuda-mps-server`` only when the first CUDA client
connects, so "server running" can only be checked after a client ran. The client must reach the
NODE's daemon: same pipe directory and same /dev/shm. Two ways, tried in this order:
1. in the node, as a ``python3 -c`` program through ``docker exec`` (node images that have python3);
2. from the host (real kindest/node images have glibc but NO python3): the same script run by this
   interpreter as a plain host process with CUDA_MPS_PIPE_DIRECTORY = the host side of the pipe
   directory the config mounts into the node (host /dev/shm is mounted into the node too): the
   cross-namespace way NVIDIA's DRA driver serves MPS clients of other pods. Needs the engine on this
   host (docker_host unset or a unix socket). Seen on the GPU host (tests/data/h200-module1/proof.log):
   the node's daemon started its server for this client and the client's context was served; the same
   client joined to the node's PID+IPC namespaces with nsenter (host mount namespace, so the host's /proc)
   failed cuInit 304, so that way is not used.
It prints one ``cuCall rc`` line per driver call, the format of tests/data/h100-host/cuprobe-client.txt,
which ``labcheck.mps``'s client parser reads: the script is labcheck/cuda_client.py, the host check's client.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from labcheck.probes import mps as mps_probe
from labcheck.probes.gpu import Gpu
from labcheck.probes.node import docker_run, elsewhere, engine_env, exec_argv

# The same client the host's MPS check runs (labcheck/cuda_client.py, stdlib only), sent as a
# ``python3 -c`` program because the node has no copy of this tree.
SCRIPT = mps_probe.CLIENT_SCRIPT.read_text(encoding="utf-8")
IN_NODE = "in the node"
FROM_HOST = "from the host through the shared pipe directory"


def node_python(container: str, env: Mapping[str, str], *, timeout: float = 60.0, docker: str = "docker",
                docker_host: str = "") -> tuple[bool, str]:
    """Can the node run python3 (to run the client in the node)? (True, ""); (False, "") when the node has none,
    like kindest/node; (False, why) when ``docker exec`` itself failed."""
    probe = docker_run(exec_argv(container, ["python3", "-c", "print(1)"], env, docker=docker), timeout=timeout,
                       docker_host=docker_host)
    if probe.ok:
        return True, ""
    if probe.rc in (126, 127) or "not found" in probe.output:  # "executable file not found in $PATH"
        return False, ""
    return False, f"CUDA client {IN_NODE}: {probe.describe()}"




def host_reach(pipe_dir_host: str, docker_host: str = "", timeout: float = 30.0) -> str:
    """Why a client started on this host cannot reach the node's daemon through the shared pipe directory, or "".
    ``timeout``: for resolving the engine's host name (labcheck.probes.node.elsewhere)."""
    if not pipe_dir_host:
        return ("the node has no python3, and the kind config mounts no host folder as the MPS pipe directory to "
                "reach its daemon from here")
    if elsewhere(docker_host, timeout):
        # docker_host itself is not shown: a URL may carry credentials
        return ("the node has no python3, and its Docker engine (docker_host in the lab config, or DOCKER_HOST) is "
                "not on this host, so the shared pipe directory is out of reach")
    return ""


@dataclass(frozen=True)
class NodeClients:
    """One client per host GPU against the node's daemon (``runs``), how they reached it, or why none ran."""

    runs: tuple[mps_probe.ClientRun, ...] = ()
    where: str = ""
    reason: str = ""


def run_per_gpu(container: str, env: Mapping[str, str], node_lib_dirs: Sequence[str], pipe_dir_host: str,
                host_lib_dirs: Sequence[str], gpus: Sequence[Gpu], ask, smi_path: str | None, *,
                timeout: float = 60.0, docker: str = "docker", docker_host: str = "",
                python: str = sys.executable) -> NodeClients:
    """A client per GPU (CUDA_VISIBLE_DEVICES=<UUID>, ``--device 0``), all at once, against the node's daemon: in
    the node when it has python3, else from the host through the shared pipe directory (see the module docstring);
    ``ask`` queries the node's daemon while they hold their contexts (labcheck.probes.mps.run_cuda_clients)."""
    has_python, why = node_python(container, env, timeout=timeout, docker=docker, docker_host=docker_host)
    if why:
        return NodeClients(reason=why)
    if has_python:
        lib_args = [a for d in node_lib_dirs for a in ("--lib-dir", d)]
        base = {**os.environ, **(engine_env(docker_host) or {})}
        # ``timeout -s KILL`` in the node: killing ``docker exec`` does not stop a client hung inside CUDA there
        limit = str(int(timeout * 2 + 30))
        specs = [mps_probe.ClientSpec(tuple(exec_argv(container, ["timeout", "-s", "KILL", limit, "python3", "-I", "-c",
                                                                  SCRIPT, "--hold", str(timeout), "--device", "0",
                                                                  *lib_args],
                                                      {**env, "CUDA_VISIBLE_DEVICES": g.uuid}, interactive=True,
                                                      docker=docker)), base, g) for g in gpus]
        return NodeClients(mps_probe.run_cuda_clients(env.get("CUDA_MPS_PIPE_DIRECTORY", ""), specs, ask, None,
                                                      timeout), IN_NODE)
    why = host_reach(pipe_dir_host, docker_host, timeout)
    if why:
        return NodeClients(reason=why)
    base = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    specs = mps_probe.client_specs(pipe_dir_host, gpus, timeout, host_lib_dirs, python, mps_probe.CLIENT_SCRIPT, base)
    return NodeClients(mps_probe.run_cuda_clients(pipe_dir_host, specs, ask, smi_path, timeout), FROM_HOST)
