"""One CUDA client pinned to one GPU, run the product's way: labcheck.probes.mps.run_cuda_clients with a one-GPU
list, as the MPS check runs one client per GPU (CUDA_VISIBLE_DEVICES=<its UUID>, ``--device 0``).

WHY here and not in the product: only tests want "one client" (the probe, hardening and GPU-host tests); the
product has one way to run clients, and these tests go through it, so what they prove (timeouts, process-group
cleanup, the evidence asked for while a client holds its context) is proved of the code the check runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labcheck.probes import mps as probe
from labcheck.probes.gpu import Gpu, parse_query_csv
from tests.captures import first

# GPU 0 of the real H100 host (tests/data/h100-host): what a client is pinned to where there is no GPU.
H100_GPU = parse_query_csv(first("h100-host/nvidia-smi-query-csv-noheader.txt").output)[0][0]


def run_one(pipe_dir: str, control_path: str | None, smi_path: str | None, timeout: float, gpu: Gpu = H100_GPU,
            lib_dirs: Sequence[str] = (), script: Path = probe.CLIENT_SCRIPT) -> probe.ClientRun:
    """The ClientRun of one client pinned to ``gpu``, asked about through ``control_path`` on ``pipe_dir``."""
    specs = probe.client_specs(pipe_dir, [gpu], timeout, lib_dirs, script=script)
    (run,) = probe.run_cuda_clients(pipe_dir, specs, probe.control_asker(control_path, pipe_dir, timeout), smi_path,
                                    timeout)
    return run


# The kind node's MPS daemon, as a stand-in: run in a pid namespace of its own on the folder mounted from the host, it
# writes ITS pid (as its namespace numbers it) into the pid file and stays until a stand-in control client's "quit".
NODE_DAEMON = r"""#!/bin/sh
P="$CUDA_MPS_PIPE_DIRECTORY"
rm -f "$P/quit"
echo $$ > "$P/nvidia-cuda-mps-control.pid"
while [ ! -f "$P/quit" ]; do sleep 0.05; done
rm -f "$P/nvidia-cuda-mps-control.pid" "$P/quit"
"""
