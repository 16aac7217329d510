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
from pathlib import Path

from labcheck import cmd, mps
from labcheck.probes import mps as mps_probe
from labcheck.probes.gpu import Gpu
from labcheck.probes.node import engine_env, exec_argv

# The same client the host's MPS check runs (labcheck/cuda_client.py, stdlib only), sent as a
# ``python3 -c`` program because the node has no copy of this tree. ``--hold 0``: create the context,
# let MPS start its server, destroy it.
CLIENT_PATH = Path(__file__).resolve().parent.parent / "cuda_client.py"
SCRIPT = CLIENT_PATH.read_text(encoding="utf-8")


@dataclass(frozen=True)
class ClientRun:
    result: cmd.CmdResult | None
    no_python: bool = False
    where: str = "in the node"  # how the client reached the node's daemon (named in the verdict)
    earlier: tuple[str, ...] = ()  # why the ways tried before this one did not work

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    def failed_step(self) -> str:
        """'cuInit 304 (CUDA_ERROR_OPERATING_SYSTEM)' for the first failing call, '' when none failed."""
        if self.result is None:
            return ""
        bad = mps.first_failed_step(mps.parse_client_steps(self.result.stdout))
        return f"{bad.call} {bad.rc} ({bad.error_name})" if bad else ""

    def describe(self) -> str:
        if self.no_python:
            return "the node has no python3 to run the suite's ctypes CUDA client"
        if self.result is None:
            return "; ".join(self.earlier) or "the CUDA client did not run"
        step = self.failed_step()
        before = f" (before: {'; '.join(self.earlier)})" if self.earlier else ""
        return f"CUDA client {self.where}: {step or self.result.describe()}{before}"


def run_in_node(container: str, env: Mapping[str, str], lib_dirs: Sequence[str] = (), *,
                timeout: float = 60.0, docker: str = "docker", docker_host: str = "",
                probe_only: bool = False) -> ClientRun:
    """Create (and destroy) one CUDA context inside ``container`` with ``env`` (pipe dir, LD_LIBRARY_PATH);
    ``probe_only``: only find out whether the node can run python3 (the probe's result)."""
    extra = engine_env(docker_host)
    probe = cmd.run(exec_argv(container, ["python3", "-c", "print(1)"], env, docker=docker), timeout=timeout,
                    extra_env=extra)
    if not probe.ok:
        if probe.rc in (126, 127) or "executable file not found" in probe.output or "not found" in probe.output:
            return ClientRun(probe, no_python=True)
        return ClientRun(probe)
    if probe_only:
        return ClientRun(probe)
    lib_args = [a for d in lib_dirs for a in ("--lib-dir", d)]
    argv = exec_argv(container, ["python3", "-I", "-c", SCRIPT, "--hold", "0", *lib_args], env, docker=docker)
    return ClientRun(cmd.run(argv, timeout=timeout, extra_env=extra))


def _local_engine(docker_host: str) -> bool:
    """The engine (so the node and its mounts) is on this host: no DOCKER_HOST, or a unix socket."""
    host = docker_host or os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith("unix://")


def run_from_host(pipe_dir_host: str, host_lib_dirs: Sequence[str] = (), *, timeout: float = 60.0,
                  docker_host: str = "", python: str = sys.executable, probe_only: bool = False) -> ClientRun:
    """The suite's client started on the host against the node's daemon, through the shared pipe directory;
    ``probe_only``: only find out whether the node's daemon is within reach (``earlier`` says why not)."""
    where = "from the host through the shared pipe directory"
    if not pipe_dir_host:
        return ClientRun(None, where=where, earlier=("the node has no python3, and the kind config mounts no host "
                                                     "folder as the MPS pipe directory to reach its daemon from here",))
    if not _local_engine(docker_host):
        # docker_host itself is not shown: a URL may carry credentials
        return ClientRun(None, where=where, earlier=("the node has no python3, and its Docker engine (docker_host in "
                                                     "the lab config) is not on this host, so the shared pipe "
                                                     "directory is out of reach",))
    if probe_only:
        return ClientRun(None, where=where)
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": pipe_dir_host}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    client = [python, "-I", str(CLIENT_PATH), "--hold", "0", *[a for d in host_lib_dirs for a in ("--lib-dir", d)]]
    return ClientRun(cmd.run(client, timeout=timeout, env=env), where=where)


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
    first = run_in_node(container, env, timeout=timeout, docker=docker, docker_host=docker_host, probe_only=True)
    if first.result is not None and not first.no_python and not first.ok:
        return NodeClients(reason=first.describe())
    if not first.no_python:
        lib_args = [a for d in node_lib_dirs for a in ("--lib-dir", d)]
        base = {**os.environ, **(engine_env(docker_host) or {})}
        specs = [mps_probe.ClientSpec(tuple(exec_argv(container, ["python3", "-I", "-c", SCRIPT, "--hold", str(timeout),
                                                                  "--device", "0", *lib_args],
                                                      {**env, "CUDA_VISIBLE_DEVICES": g.uuid}, interactive=True,
                                                      docker=docker)), base, g) for g in gpus]
        return NodeClients(mps_probe.run_cuda_clients(env.get("CUDA_MPS_PIPE_DIRECTORY", ""), specs, ask, None,
                                                      timeout), "in the node")
    reach = run_from_host(pipe_dir_host, timeout=timeout, docker_host=docker_host, python=python, probe_only=True)
    if reach.earlier:
        return NodeClients(reason=reach.describe())
    base = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    specs = mps_probe.client_specs(pipe_dir_host, gpus, timeout, host_lib_dirs, python, CLIENT_PATH, base)
    return NodeClients(mps_probe.run_cuda_clients(pipe_dir_host, specs, ask, smi_path, timeout), reach.where)
