"""The suite's CUDA client for inside the Kind node: plain ctypes over ``libcuda.so.1``.

WHY: the MPS control daemon starts ``nvidia-cuda-mps-server`` only when the first CUDA client
connects, so "server running" can only be checked after a client ran. The client must run INSIDE
the node (same pipe directory, same /dev/shm, same PID namespace as the node's daemon), so it is
sent as a ``python3 -c`` program through ``docker exec``; it needs a python3 in the node (kindest/node
images have none: then the check says so precisely instead of guessing). It prints one
``cuCall rc`` line per driver call, the format of tests/data/h100-host/cuprobe-client.txt, which
``labcheck.mps``'s client parser reads: the script is labcheck/cuda_client.py, the host check's client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labcheck import cmd, mps

# The same client the host's MPS check runs (labcheck/cuda_client.py, stdlib only), sent as a
# ``python3 -c`` program because the node has no copy of this tree. ``--hold 0``: create the context,
# let MPS start its server, destroy it.
SCRIPT = (Path(__file__).resolve().parent.parent / "cuda_client.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ClientRun:
    result: cmd.CmdResult | None
    no_python: bool = False

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
            return "the CUDA client did not run"
        step = self.failed_step()
        return f"CUDA client in the node: {step}" if step else f"CUDA client in the node: {self.result.describe()}"


def run_in_node(container: str, env: Mapping[str, str], lib_dirs: Sequence[str] = (), *,
                timeout: float = 60.0, docker: str = "docker") -> ClientRun:
    """Create (and destroy) one CUDA context inside ``container`` with ``env`` (pipe dir, LD_LIBRARY_PATH)."""
    from labcheck.probes.node import exec_argv

    probe = cmd.run(exec_argv(container, ["python3", "-c", "print(1)"], env, docker=docker), timeout=timeout)
    if not probe.ok:
        if probe.rc in (126, 127) or "executable file not found" in probe.output or "not found" in probe.output:
            return ClientRun(probe, no_python=True)
        return ClientRun(probe)
    lib_args = [a for d in lib_dirs for a in ("--lib-dir", d)]
    argv = exec_argv(container, ["python3", "-I", "-c", SCRIPT, "--hold", "0", *lib_args], env, docker=docker)
    return ClientRun(cmd.run(argv, timeout=timeout))
