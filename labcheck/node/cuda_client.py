"""The suite's CUDA client for inside the Kind node: plain ctypes over ``libcuda.so.1``.

WHY: the MPS control daemon starts ``nvidia-cuda-mps-server`` only when the first CUDA client
connects, so "server running" can only be checked after a client ran. The client must run INSIDE
the node (same pipe directory, same /dev/shm, same PID namespace as the node's daemon), so it is
sent as a ``python3 -c`` program through ``docker exec``; it needs a python3 in the node (kindest/node
images have none: then the check says so precisely instead of guessing). It prints one
``cuCall rc`` line per driver call, the format of tests/data/h100-host/cuprobe-client.txt, which
``labcheck.mps``'s client parser (module 0 helper) reads as well. Duplicates the host-side client in
labcheck/cuda_client.py on purpose until the two are merged: that one runs as a file on the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from labcheck import cmd

SCRIPT = r"""
import ctypes, os, sys
errs = []
for cand in ["libcuda.so.1"] + [os.path.join(d, "libcuda.so.1") for d in sys.argv[1:]]:
    try:
        cuda = ctypes.CDLL(cand)
        break
    except OSError as exc:
        errs.append("%s: %s" % (cand, exc))
else:
    print("dlopen libcuda.so.1 failed: " + "; ".join(errs), flush=True)
    sys.exit(2)
rc = cuda.cuInit(0); print("cuInit %d" % rc, flush=True)
if rc: sys.exit(3)
n = ctypes.c_int(0); rc = cuda.cuDeviceGetCount(ctypes.byref(n)); print("cuDeviceGetCount %d %d" % (rc, n.value))
if rc: sys.exit(3)
dev = ctypes.c_int(0); rc = cuda.cuDeviceGet(ctypes.byref(dev), 0); print("cuDeviceGet %d" % rc)
if rc: sys.exit(3)
ctx = ctypes.c_void_p(); rc = cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev); print("cuCtxCreate_v2 %d" % rc)
if rc: sys.exit(3)
rc = cuda.cuCtxDestroy_v2(ctx); print("cuCtxDestroy_v2 %d" % rc, flush=True)
sys.exit(3 if rc else 0)
"""

CUDA_ERRORS = {3: "CUDA_ERROR_NOT_INITIALIZED", 34: "CUDA_ERROR_STUB_LIBRARY", 35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
               100: "CUDA_ERROR_NO_DEVICE", 304: "CUDA_ERROR_OPERATING_SYSTEM",
               805: "CUDA_ERROR_MPS_CONNECTION_FAILED", 999: "CUDA_ERROR_UNKNOWN"}
_STEP = re.compile(r"^(cu\w+)\s+(-?\d+)")


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
        for line in self.result.stdout.splitlines():
            m = _STEP.match(line.strip())
            if m and int(m[2]) != 0:
                rc = int(m[2])
                return f"{m[1]} {rc} ({CUDA_ERRORS.get(rc, 'see cuda.h')})"
        return ""

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
    argv = exec_argv(container, ["python3", "-I", "-c", SCRIPT, *lib_dirs], env, docker=docker)
    return ClientRun(cmd.run(argv, timeout=timeout))
