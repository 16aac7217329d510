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
import threading
import time

import pytest

_spawned: list[list[str]] = []
# every spawned command with its thread and times (monotonic): where the checks part goes
_timeline: list[dict] = []
_original_init = subprocess.Popen.__init__
_original_exit = getattr(subprocess.Popen, "_handle_exitstatus", None)


def _recording_init(self, args, *a, **kw):
    argv = [str(x) for x in args] if isinstance(args, (list, tuple)) else [str(args)]
    _spawned.append(argv)
    self._bench_row = {"argv": argv, "thread": threading.current_thread().name, "start": time.monotonic(),
                       "end": None}
    _timeline.append(self._bench_row)
    _original_init(self, args, *a, **kw)


def _recording_exit(self, *a, **kw):  # CPython's POSIX Popen calls it once, when it reaps the child
    row = getattr(self, "_bench_row", None)
    if row is not None and row["end"] is None:
        row["end"] = time.monotonic()
    return _original_exit(self, *a, **kw)


subprocess.Popen.__init__ = _recording_init  # type: ignore[method-assign]
if _original_exit is not None:
    subprocess.Popen._handle_exitstatus = _recording_exit  # type: ignore[attr-defined]
_times: dict[str, float] = {"imported": time.monotonic()}


def pytest_sessionstart(session) -> None:
    _times["sessionstart"] = time.monotonic()


def pytest_collection_finish(session) -> None:
    _times["collected"] = time.monotonic()


def pytest_sessionfinish(session) -> None:
    _times["sessionfinish"] = time.monotonic()


_tests: list[dict] = []


def pytest_runtest_logstart(nodeid, location) -> None:
    _tests.append({"nodeid": nodeid, "start": time.monotonic(), "end": None, "setup": 0.0, "call": 0.0,
                   "teardown": 0.0})


def pytest_runtest_logreport(report) -> None:
    if _tests and _tests[-1]["nodeid"] == report.nodeid:
        _tests[-1][report.when] = report.duration


def pytest_runtest_logfinish(nodeid, location) -> None:
    if _tests and _tests[-1]["nodeid"] == nodeid:
        _tests[-1]["end"] = time.monotonic()


@pytest.hookimpl(trylast=True)  # after every other plugin's pytest_unconfigure (the reports)
def pytest_unconfigure(config) -> None:
    _times["unconfigure"] = time.monotonic()
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
        "facts": _facts,
        "longest_chain": longest_chain(_facts),
        "times": _times,
        "tests": _tests,
        "timeline": _timeline,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f)


# --- per-fact timing (labcheck.prefetch): each fact's own time, without the time it waited for others ---

_facts: dict[str, dict] = {}
_local = threading.local()


def _instrument() -> None:
    try:
        from labcheck import prefetch
    except ImportError:  # pragma: no cover - not this project
        return
    run, get = prefetch.Facts._run, prefetch.Facts.get

    def timed_run(self, name, fut):
        stack = _local.__dict__.setdefault("waits", [])
        stack.append(0.0)
        start = time.monotonic()
        try:
            run(self, name, fut)
        finally:
            end = time.monotonic()
            waited = stack.pop()
            if stack:
                stack[-1] += end - start  # an inline gather inside another one: the outer one waited for it
            _facts[name] = {"start": start, "end": end, "own_s": end - start - waited,
                            "needs": list(self.registry[name].needs)}

    def timed_get(self, name):
        stack = _local.__dict__.setdefault("waits", [])
        if not stack or name not in self._futures:  # a fixture's get, or an inline gather (counted above)
            return get(self, name)
        start = time.monotonic()
        try:
            return get(self, name)
        finally:
            stack[-1] += time.monotonic() - start

    prefetch.Facts._run, prefetch.Facts.get = timed_run, timed_get


_instrument()


def longest_chain(facts: dict[str, dict]) -> tuple[float, list[str]]:
    """The slowest path through the facts' needs: the least a run that gathers them all can take."""
    memo: dict[str, tuple[float, list[str]]] = {}

    def chain(name: str) -> tuple[float, list[str]]:
        if name not in memo:
            deps = [chain(d) for d in facts[name]["needs"] if d in facts]
            secs, path = max(deps, default=(0.0, []))
            memo[name] = (secs + facts[name]["own_s"], [*path, name])
        return memo[name]

    return max((chain(n) for n in facts), default=(0.0, []))
