"""Print how long the Docker checks' probes take on this machine (figures, not a pass/fail test).

Run from the repository root: ``python3 benchmarks/docker_checks.py``. The engine probes use the
engine DOCKER_HOST points at (or the default socket); the runtime probe runs on a private dockerd
(root only) so it never touches the shared engine.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labcheck.config import LabConfig  # noqa: E402
from labcheck.probes import docker as probe  # noqa: E402


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label:<55} {1000 * (time.perf_counter() - start):8.1f} ms")
    return result


def main() -> int:
    cfg = LabConfig()
    timed("docker --version (CLI probe)", lambda: probe.probe_cli(cfg))
    engine = timed("engine ping + version + info (shared engine)", lambda: probe.probe_engine(cfg))
    if not engine.reachable:
        print(f"shared engine not reachable: {engine.error}")
    timed("daemon.json read + parse", lambda: probe.read_daemon_json(cfg.docker_daemon_json))
    timed("host GPU count", probe.host_gpu_count)

    from tests import private_dockerd
    from tests.needs import missing

    reason = missing("private_dockerd")
    if reason:
        print(f"runtime probe skipped: {reason}")
        return 0
    wrapper = private_dockerd.runc_wrapper(Path(tempfile.mkdtemp(prefix="lcbench-")))
    d = timed("private dockerd start (until it answers)",
              lambda: private_dockerd.start({"runtimes": {"nvidia": {"path": str(wrapper)}}}))
    try:
        pcfg = LabConfig(docker_host=d.host)
        pengine = probe.probe_engine(pcfg)
        first = timed("runtime probe, first (imports the busybox image)", lambda: probe.probe_runtime(pengine, pcfg))
        timed("runtime probe, image cached", lambda: probe.probe_runtime(pengine, pcfg))
        print(f"probe image: {first.image_note}; exit {first.exit_code}")
    finally:
        timed("private dockerd stop + cleanup", d.cleanup)
        shutil.rmtree(wrapper.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
