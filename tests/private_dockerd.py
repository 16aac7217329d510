"""Start a private, throw-away Docker engine for integration tests (real dockerd, not a double).

WHY private: the shared engine on a CI/dev machine must not be reconfigured or restarted by a test.
Each instance has its own daemon.json (--config-file), data root, exec root, unix socket and pidfile,
no bridge and no iptables, so it touches nothing of the shared engine. Needs root and ``dockerd``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from labcheck import cmd
from tests.child_signals import default_signals


@dataclass
class PrivateDockerd:
    root: Path
    proc: subprocess.Popen

    @property
    def socket(self) -> Path:
        return self.root / "d.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def daemon_json(self) -> Path:
        return self.root / "daemon.json"

    @property
    def pidfile(self) -> Path:
        return self.root / "d.pid"

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join((self.root / "dockerd.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        """Stop dockerd, then anything still tied to this instance's private root (containerd shims
        outlive dockerd by design, e.g. after a hung runtime), unmount what they left, delete the root."""
        self.stop()
        root = str(self.root)
        for pid in _pids_mentioning(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mnt in sorted(_mounts_under(root), key=len, reverse=True):
            cmd.run(["umount", "-l", mnt], timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (a unique temp path: only ours can match)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


def _mounts_under(root: str) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    return [p[1] for p in (line.split() for line in lines) if len(p) > 1 and (p[1] + "/").startswith(root + "/")]


def start(daemon_json: dict | str | None, wait: float = 30.0, path_dirs: tuple[str, ...] = ()) -> PrivateDockerd:
    """Start dockerd with ``daemon_json`` (dict, raw text, or None for no file); raise RuntimeError if it
    does not answer within ``wait`` seconds. ``path_dirs`` go first on its PATH (where dockerd looks up
    runtimes registered by bare name)."""
    # short path: containerd's socket lives under the exec root and unix socket paths max out at 108 bytes
    root = Path(tempfile.mkdtemp(prefix="lcdk-", dir="/tmp"))
    cfg = root / "daemon.json"
    if isinstance(daemon_json, dict):
        cfg.write_text(json.dumps(daemon_json, indent=2))
    elif isinstance(daemon_json, str):
        cfg.write_text(daemon_json)
    argv = ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "x"),
            "-H", f"unix://{root / 'd.sock'}", "--pidfile", str(root / "d.pid"),
            "--bridge=none", "--iptables=false", "--ip-masq=false"]
    if daemon_json is not None:
        argv += ["--config-file", str(cfg)]
    log = open(root / "dockerd.log", "w")  # noqa: SIM115 - handed to the child, closed below
    env = {**os.environ, "PATH": os.pathsep.join([*path_dirs, os.environ.get("PATH", "")])}
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env, preexec_fn=default_signals)  # noqa: PLW1509
    log.close()
    d = PrivateDockerd(root, proc)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        res = cmd.run(["docker", "-H", d.host, "version", "--format", "{{.Server.Version}}"], timeout=5)
        if res.ok:
            return d
        time.sleep(0.2)
    tail = d.log_tail()
    d.cleanup()
    raise RuntimeError(f"private dockerd did not come up within {wait:g}s:\n{tail}")


def runc_wrapper(directory: Path, name: str = "fake-nvidia-runtime") -> Path:
    """A runtime binary that behaves like a working OCI runtime: it execs runc (a stand-in for
    nvidia-container-runtime, which is itself a runc wrapper that first injects the GPU)."""
    path = directory / name
    path.write_text(f"#!/bin/sh\nexec {shutil.which('runc') or 'runc'} \"$@\"\n")
    path.chmod(0o755)
    return path


_INJECTOR = '''#!{python}
"""Test double for nvidia-container-runtime: edit the OCI spec, then exec runc.

The real runtime injects the GPU device nodes (/dev/nvidiaN, /dev/nvidiactl) into the container's
spec before handing over to runc. This one injects /dev/nvidia0 and /dev/nvidiactl as character
devices with /dev/null's numbers (1:3, allowed by Docker's default device rules), so a probe can see
"a GPU" arrive through a real engine on a machine that has none.
"""
import json, os, sys

args = sys.argv[1:]
if "create" in args:
    bundle = "."
    for i, a in enumerate(args):
        if a == "--bundle" and i + 1 < len(args):
            bundle = args[i + 1]
        elif a.startswith("--bundle="):
            bundle = a.split("=", 1)[1]
    cfg = os.path.join(bundle, "config.json")
    with open(cfg) as f:
        spec = json.load(f)
    devices = spec.setdefault("linux", {{}}).setdefault("devices", [])
    for path in ("/dev/nvidia0", "/dev/nvidiactl"):
        devices.append({{"path": path, "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}})
    with open(cfg, "w") as f:
        json.dump(spec, f)
os.execv({runc!r}, [{runc!r}, *args])
'''


def gpu_injecting_wrapper(directory: Path) -> Path:
    """A runtime that injects fake GPU device nodes, then execs runc (see the script's docstring)."""
    path = directory / "gpu-injecting-runtime"
    path.write_text(_INJECTOR.format(python=sys.executable, runc=shutil.which("runc") or "/usr/sbin/runc"))
    path.chmod(0o755)
    return path
