"""A minimal CUDA driver-API client: proves that a CUDA context can be created, and holds it.

Run as a script by the MPS functional check (``python3 cuda_client.py --hold 20``): plain ctypes
over ``libcuda.so.1``, so no CUDA toolkit is needed. It prints one ``call rc`` line per driver call,
then ``HOLDING <pid>`` while it keeps the context, until a line arrives on stdin or the hold time
ends. While it holds the context, the check asks MPS whether this client is being served.
It also prints the UUID of the device it opened (``cuDeviceGetUuid 0 GPU-...``): started with
CUDA_VISIBLE_DEVICES=<a GPU's UUID>, that line proves the client really ran on that GPU.
Exit status: 0 all calls succeeded, 2 libcuda could not be loaded, 3 a driver call failed.
This file imports nothing from labcheck, so it can run from any copy of the tree.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import select
import sys


def _load(lib_dirs: list[str]):
    errors = []
    for cand in ["libcuda.so.1", *(os.path.join(d, "libcuda.so.1") for d in lib_dirs)]:
        try:
            return ctypes.CDLL(cand)
        except OSError as exc:
            errors.append(f"{cand}: {exc}")
    print("dlopen libcuda.so.1 failed: " + "; ".join(errors), flush=True)
    sys.exit(2)


def uuid_text(raw: bytes) -> str:
    """The 16 bytes of a CUuuid the way nvidia-smi prints a GPU's UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."""
    h = raw.hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hold", type=float, default=5.0, help="seconds to keep the context at most")
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--lib-dir", action="append", default=[])
    args = ap.parse_args(argv)
    cuda = _load(args.lib_dir)

    def call(name: str, *cargs, extra: str = "") -> int:
        rc = int(getattr(cuda, name)(*cargs))
        print(f"{name} {rc}{(' ' + extra) if extra and rc == 0 else ''}", flush=True)
        return rc

    if call("cuInit", 0):
        return 3
    count = ctypes.c_int(0)
    rc = int(cuda.cuDeviceGetCount(ctypes.byref(count)))
    print(f"cuDeviceGetCount {rc} {count.value}", flush=True)
    if rc:
        return 3
    dev = ctypes.c_int(0)
    if call("cuDeviceGet", ctypes.byref(dev), args.device):
        return 3
    raw = (ctypes.c_ubyte * 16)()
    rc = int(cuda.cuDeviceGetUuid(raw, dev))
    print(f"cuDeviceGetUuid {rc}" + (f" {uuid_text(bytes(raw))}" if rc == 0 else ""), flush=True)
    if rc:
        return 3
    ctx = ctypes.c_void_p()
    if call("cuCtxCreate_v2", ctypes.byref(ctx), 0, dev):
        return 3
    print(f"HOLDING {os.getpid()}", flush=True)
    select.select([sys.stdin], [], [], args.hold)
    return 3 if call("cuCtxDestroy_v2", ctx) else 0


if __name__ == "__main__":
    sys.exit(main())
