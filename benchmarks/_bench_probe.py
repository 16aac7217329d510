"""pytest plugin loaded by benchmarks/module0.py (``-p _bench_probe``) inside the measured run.

Records, without changing what the run does: every command the suite spawned (argv), whether the
kubernetes client (and the docker SDK) got imported, the session's own duration and the pytest
process's peak memory. Written as JSON to ``$LABCHECK_BENCH_OUT`` when pytest ends.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

_spawned: list[list[str]] = []
_original_init = subprocess.Popen.__init__


def _recording_init(self, args, *a, **kw):
    _spawned.append([str(x) for x in args] if isinstance(args, (list, tuple)) else [str(args)])
    _original_init(self, args, *a, **kw)


subprocess.Popen.__init__ = _recording_init  # type: ignore[method-assign]
_times: dict[str, float] = {"imported": time.monotonic()}


def pytest_sessionstart(session) -> None:
    _times["sessionstart"] = time.monotonic()


def pytest_collection_finish(session) -> None:
    _times["collected"] = time.monotonic()


def pytest_sessionfinish(session) -> None:
    _times["sessionfinish"] = time.monotonic()


def pytest_unconfigure(config) -> None:
    out = os.environ.get("LABCHECK_BENCH_OUT")
    if not out:
        return
    doc = {
        "commands": _spawned,
        "kubernetes_imported": any(m == "kubernetes" or m.startswith("kubernetes.") for m in sys.modules),
        "docker_imported": "docker" in sys.modules,
        # the modules named in $LABCHECK_BENCH_WATCH (comma-separated): imported by the run or not
        "imported": {m: m in sys.modules for m in filter(None, os.environ.get("LABCHECK_BENCH_WATCH", "").split(","))},
        "modules_loaded": len(sys.modules),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "collect_s": _times.get("collected", 0) - _times.get("sessionstart", 0),
        "run_s": _times.get("sessionfinish", 0) - _times.get("collected", _times.get("sessionstart", 0)),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f)
