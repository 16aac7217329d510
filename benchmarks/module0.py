#!/usr/bin/env python3
"""Speed and memory figures for module 0 (host checks), measured in one run on this machine.

    python3 benchmarks/module0.py [--repeat 3] [--json figures.json]

Prints, all measured here and now:
  * the raw probe commands module 0 needs (uname, docker version/info, nvidia-smi, kind, helm...),
    each timed on its own, and their sum: what a person typing them would wait for;
  * the wall time of ``pytest tests_env -m module0`` and its ratio to that sum (goal: <= 1.5x on a
    ready host), split into start-up (interpreter, pytest, plugins, collection) and the checks;
  * the start-up cost in detail, the price of the kubernetes client (which module 0 must never
    import: it is only for module 1) and whether the module 0 run imported it;
  * peak memory (max RSS) of the pytest process and of the run including the commands it spawned;
  * the goals of issue 13 side by side: module 0 wall (<= 1.0 s), the checks part against the longest
    chain of facts that wait for each other (<= 1.25x), with prefetch on and off (LABCHECK_PREFETCH=0);
  * with ``--standins 0.3``: module 0 with stand-in tools (tests/standins.py) that each take 0.3 s,
    against instant ones: how many delays the wall grows by, for how many tool calls.

Targets live here, not in timed tests (project rule): a benchmark reports, CI does not flake.
To check another command, add it to RAW_PROBES. The commands the run really spawned are recorded
(benchmarks/_bench_probe.py) and added to the raw list, so new checks are measured without edits.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.5
GOAL_WALL = 1.0  # seconds, module 0 on the GPU host (issue 13)
GOAL_CHAIN = 1.25  # checks part / longest chain of facts (issue 13)
TIMEOUT = 120.0  # per command; a hung probe shows as a timeout, never hangs the benchmark

# What a person would run by hand to check what module 0 checks (label, argv). A command whose
# program is missing here is listed as missing and left out of the sum. "cat FILE" stands for
# reading a file (the suite reads it in Python); left out when the file does not exist.
RAW_PROBES: list[tuple[str, list[str]]] = [
    ("kernel release", ["uname", "-r"]),
    ("distribution", ["cat", "/etc/os-release"]),
    ("docker engine version", ["docker", "version", "--format", "{{json .}}"]),
    ("docker runtimes, default runtime", ["docker", "info", "--format", "{{json .}}"]),
    ("docker daemon.json", ["cat", "/etc/docker/daemon.json"]),
    ("kind version", ["kind", "version"]),
    ("helm version", ["helm", "version", "--short"]),
    ("container toolkit version", ["nvidia-ctk", "--version"]),
    ("CDI devices", ["nvidia-ctk", "cdi", "list"]),
    ("CDI spec", ["cat", "/etc/cdi/nvidia.yaml"]),
    ("CDI spec (toolkit 1.18+)", ["cat", "/var/run/cdi/nvidia.yaml"]),
    ("GPUs", ["nvidia-smi", "-L"]),
    ("GPU model, driver, compute capability, compute mode",
     ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,compute_mode", "--format=csv,noheader"]),
    ("driver version file", ["cat", "/proc/driver/nvidia/version"]),
    ("MPS control daemon running", ["pgrep", "-x", "nvidia-cuda-mps-control"]),
    ("NVIDIA libraries", ["ldconfig", "-p"]),
]


# --- measuring -----------------------------------------------------------------------------------------

def measure(argv: list[str], *, env: dict | None = None, cwd: Path = ROOT,
            timeout: float = TIMEOUT) -> dict:
    """Run argv once: wall seconds, exit code, peak RSS (KiB) of it and its descendants, output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        began = time.monotonic()  # the clock the probe plugin uses inside the run (one per machine)
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - start
                ended = time.monotonic()
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = None
                wall, ended = timeout, time.monotonic()
                break
            time.sleep(0.002)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return {"wall": wall, "rc": proc.returncode, "maxrss_kb": usage.ru_maxrss, "output": text,
            "began": began, "ended": ended}


def best_of(n: int, argv: list[str], **kw) -> dict:
    runs = [measure(argv, **kw) for _ in range(n)]
    best = min(runs, key=lambda r: r["wall"])
    return {**best, "median": statistics.median(r["wall"] for r in runs), "runs": [r["wall"] for r in runs],
            "maxrss_kb": max(r["maxrss_kb"] for r in runs)}


def _changes_host(argv) -> bool:
    """Setup commands the run spawned (start a daemon, write a spec): replaying them to time them would
    change the host and leave things behind (e.g. a second MPS daemon), so they are not replayed."""
    name = Path(argv[0]).name
    args = list(argv[1:])
    return (name == "nvidia-cuda-mps-control" and "-d" in args) or \
        (name == "nvidia-ctk" and args[:2] in (["cdi", "generate"], ["runtime", "configure"])) or \
        (name == "kind" and args[:1] in (["create"], ["delete"]))


def _available(argv: list[str]) -> str:
    """"" when argv can run here, else why not."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} not installed"
    if argv[0] == "cat" and not Path(argv[1]).exists():
        return f"{argv[1]} absent"
    return ""


def conftest_plugins() -> list[str]:
    """The plugin modules the root conftest loads (what every run imports)."""
    tree = ast.parse((ROOT / "conftest.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytest_plugins" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


IMPORTTIME = re.compile(r"^import time:\s+([0-9]+) \|\s+([0-9]+) \|(\s*)(\S+)")


def import_times(modules: list[str], env: dict) -> dict[str, float]:
    """Cumulative import seconds of each top-level module imported by ``import <modules>``."""
    code = "import " + ", ".join(modules) if modules else "pass"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    top: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = IMPORTTIME.match(line)
        if m and len(m.group(3)) == 1:  # depth 0: imported directly by the statement
            top[m.group(4)] = int(m.group(2)) / 1e6
    return top


# --- the report --------------------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def mib(kib: int) -> str:
    return f"{kib / 1024:7.1f} MiB"


def machine() -> dict:
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            text=True, timeout=30) if shutil.which("docker") else None
    gpu = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30) \
        if shutil.which("nvidia-smi") else None
    return {
        "host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
        "python": platform.python_version(),
        "docker_server": (docker.stdout.strip() or "not reachable") if docker else "no docker CLI",
        "gpus": (gpu.stdout.strip().splitlines() if gpu and gpu.returncode == 0 else []),
    }


def probed_run(argv: list[str], env: dict) -> dict:
    """One measured run with the probe plugin's record (spawned commands, imports, per-fact times)."""
    fd, probe_path = tempfile.mkstemp(prefix="labcheck-bench-", suffix=".json")
    os.close(fd)
    try:
        r = measure(argv, env={**env, "LABCHECK_BENCH_OUT": probe_path})
        r["probe"] = json.loads(Path(probe_path).read_text() or "{}")
    finally:
        os.unlink(probe_path)
    return r


def best_run(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["wall"])
    return {**best, "median": statistics.median(r["wall"] for r in runs)}


PHASES = (  # (label, from, to): marks recorded by the probe plugin, "began"/"ended" by measure()
    ("interpreter, import pytest and its entry-point plugins, options", "began", "imported"),
    ("conftest plugins imported, pytest_configure hooks", "imported", "sessionstart"),
    ("collection (test files imported, items selected)", "sessionstart", "collected"),
    ("the checks (first test's setup to session end)", "collected", "sessionfinish"),
    ("end of session: terminal summary, reports, the report plugins' work", "sessionfinish", "unconfigure"),
    ("pytest's cleanups (a garbage collection for unraisable exceptions), interpreter exit", "unconfigure",
     "ended"),
)


def phases(run: dict) -> dict[str, float]:
    """The wall time of one probed run cut at the probe's marks (one monotonic clock for both)."""
    marks = {**run.get("probe", {}).get("times", {}), "began": run["began"], "ended": run["ended"]}
    return {label: marks[b] - marks[a] for label, a, b in PHASES if a in marks and b in marks}


def breakdown(probe: dict) -> None:
    """Where the checks part goes, against the facts: before the first fact, the facts, after the last one.

    Times are from the probe plugin inside the run (monotonic clock): each test's own setup / call /
    teardown, pytest's work around them, and every spawned command with the thread that ran it.
    """
    t, facts, tests = probe.get("times", {}), probe.get("facts", {}), probe.get("tests", [])
    if not facts or "collected" not in t or "sessionfinish" not in t:
        return
    t0 = t["collected"]
    first = min(f["start"] for f in facts.values())
    last = max(f["end"] for f in facts.values())
    print("\nwhere the checks part goes (concurrent run, ms from the end of collection):")
    print(f"  {ms(first - t0)}   before the first fact started (session fixtures, the first test's setup)")
    print(f"  {ms(last - first)}   first fact start -> last fact end")
    print(f"  {ms(t['sessionfinish'] - last)}   after the last fact ended, to the session's end")
    if tests:
        own = sum(x["setup"] + x["call"] + x["teardown"] for x in tests)
        around = sum((x["end"] or x["start"]) - x["start"] for x in tests) - own
        print(f"  {ms(around)}   pytest's work around the {len(tests)} tests (reports, hooks), summed")
        lastt = tests[-1]
        print(f"  {ms(lastt['teardown'])}   the last test's teardown (session fixtures: MPS daemon stop, ...)")
        after = [x for x in tests if (x["end"] or 0) > last]
        print(f"  {len(after)} tests ended after the last fact; the last three: " + ", ".join(
            f"{x['nodeid'].rsplit('::', 1)[-1]} {ms((x['end'] or 0) - max(x['start'], last)).strip()}"
            for x in after[-3:]))
    for name, f in sorted(facts.items(), key=lambda kv: kv[1]["start"]):
        print(f"  fact {name:<24} {(f['start'] - t0) * 1000:7.0f} -> {(f['end'] - t0) * 1000:7.0f}  "
              f"own {f['own_s'] * 1000:5.0f}")
    for row in sorted(probe.get("timeline", []), key=lambda r: r["start"]):
        end = f"{(row['end'] - t0) * 1000:7.0f}" if row.get("end") else "      ?"
        print(f"  cmd  {(row['start'] - t0) * 1000:7.0f} -> {end}  [{row['thread'].replace('labcheck-fact: ', '')}]"
              f" {' '.join(row['argv'])[:70]}")


def standin_figures(pytest_argv: list[str], env: dict, delay: float, n: int) -> dict:
    """Module 0 with stand-in tools taking ``delay`` s each, against instant ones (tests/standins.py)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.standins import overlap, slow_tools

    out: dict = {}
    print("\nstand-in tools (nvidia-smi, nvidia-ctk, kind, helm, nvidia-cuda-mps-control), --no-provision:")
    with tempfile.TemporaryDirectory(prefix="labcheck-bench-standins-") as tmp:
        folder = Path(tmp)
        lab = folder / "lab.yaml"
        lab.write_text(f"extra_bin_dirs: []\nmps_pipe_dir: {folder / 'pipe'}\nmps_log_dir: {folder / 'mpslog'}\n")
        argv = [*pytest_argv, f"--lab-config={lab}", "--no-provision"]
        for mode, flag in (("concurrent", "1"), ("serial", "0")):
            parts: dict[float, float] = {}  # the checks part: start-up noise of a shared machine left out
            for d in (0.0, delay):
                log = folder / f"calls-{mode}-{d}.log"
                bindir = slow_tools(folder / f"bin-{mode}-{d}", d, log)
                runs = []
                for _ in range(n):
                    log.unlink(missing_ok=True)
                    runs.append(probed_run(argv, {**env, "LABCHECK_PREFETCH": flag,
                                                  "PATH": f"{bindir}:{env.get('PATH', '')}"}))
                parts[d] = min(r["probe"].get("run_s", 0.0) for r in runs)
                calls, most, span = overlap(log)
            grew = (parts[delay] - parts[0.0]) / delay if delay else 0.0
            out[mode] = {"checks_instant_s": parts[0.0], "checks_slow_s": parts[delay], "calls": calls,
                         "most_at_once": most, "grew_by_delays": grew}
            print(f"  {mode:<10}: checks part {ms(parts[0.0])} with instant tools, {ms(parts[delay])} with "
                  f"{delay:g} s tools: grew by {grew:.1f} delays for {calls} tool calls (at most {most} at once)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is reported")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--standins", type=float, metavar="SECONDS", default=None,
                    help="also run module 0 with stand-in tools that each take SECONDS (no real GPU tools needed)")
    args = ap.parse_args(argv)
    n = max(1, args.repeat)

    # Bytecode as on every run after a user's first: compiled once, then read from a cache. The cache is a
    # private folder (PYTHONPYCACHEPREFIX), so nothing is written into the tree; the first run, which
    # compiles everything, is timed on its own below ("first run").
    pycache = tempfile.mkdtemp(prefix="labcheck-bench-pycache-")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), str(ROOT),
                                                                     os.environ.get("PYTHONPATH")])),
           "PYTHONPYCACHEPREFIX": pycache}
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_AUTO_NUM_WORKERS", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    try:
        return _main(args, n, env)
    finally:
        shutil.rmtree(pycache, ignore_errors=True)


def _main(args: argparse.Namespace, n: int, env: dict) -> int:
    figures: dict = {"machine": machine(), "repeat": n}
    m = figures["machine"]
    print("dra-labcheck benchmark: module 0 (host checks)")
    print(f"machine: {m['host']}, {m['cpus']} CPUs, Linux {m['kernel']}, Python {m['python']}, "
          f"Docker server {m['docker_server']}, GPUs: {len(m['gpus']) or 'none'}")
    print(f"each figure: best of {n} runs (median in brackets)\n")

    # 1. module 0 itself, with the probe plugin recording what it spawned and imported.
    pytest_argv = [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "-q", "-p", "no:cacheprovider",
                   "-p", "no:benchmark", "-p", "_bench_probe"]
    first = probed_run(pytest_argv, env)  # compiles the bytecode into the empty cache
    modes: dict[str, list[dict]] = {"concurrent": [], "serial": []}
    for _ in range(n):  # interleaved, so that other load on the machine hits both alike
        for mode, flag in (("concurrent", "1"), ("serial", "0")):
            modes[mode].append(probed_run(pytest_argv, {**env, "LABCHECK_PREFETCH": flag}))
    serial = best_run(modes["serial"])
    run = best_run(modes["concurrent"])
    probe = run["probe"]
    tail = run["output"].strip().splitlines()[-1:] or ["(no output)"]
    collect = best_of(n, [*pytest_argv[:-2], "--collect-only"], env=env)

    # 2. the raw commands: the listed ones, plus any other command the run spawned.
    probes = [(label, cmd) for label, cmd in RAW_PROBES]
    listed = {tuple(cmd) for _, cmd in probes}
    spawned = {tuple(c) for c in probe.get("commands", [])}
    probes += [("spawned by the run, not listed", list(c)) for c in sorted(spawned - listed)
               if c and c[0] != sys.executable and not _changes_host(c)]
    raw_rows, raw_sum, missing = [], 0.0, []
    for label, cmd in probes:
        why = _available(cmd)
        if why:
            missing.append(f"{label} ({why})")
            continue
        r = best_of(n, cmd, env=env)
        raw_rows.append({"label": label, "argv": cmd, "wall": r["wall"], "median": r["median"], "rc": r["rc"],
                         "spawned_by_module0": tuple(cmd) in spawned})
        raw_sum += r["wall"]

    print("raw probe commands, each on its own (* = module 0 spawned it itself):")
    for row in raw_rows:
        star = "*" if row["spawned_by_module0"] else " "
        rc = "" if row["rc"] == 0 else f"  [exit {row['rc']}]"
        print(f"  {ms(row['wall'])} {star} {' '.join(row['argv'])[:80]}{rc}")
    print(f"  {ms(raw_sum)}   sum of {len(raw_rows)} commands")
    if missing:
        print("  not on this machine: " + ", ".join(missing))

    # The probe times the session from inside: what is left of the wall time is start-up.
    checks = probe.get("run_s", 0.0)
    startup = run["wall"] - checks
    ratio = run["wall"] / raw_sum if raw_sum else float("inf")
    print("\nmodule 0: " + " ".join(["pytest", *pytest_argv[3:9]]))
    print(f"  {ms(run['wall'])}   wall  [{run['median'] * 1000:.1f} ms]   -> {tail[0]}")
    print(f"  {ms(first['wall'])}   the first run, which compiled the bytecode (not in the best/median)")
    print(f"  {ms(startup)}   of which start-up: interpreter, pytest, plugins, collection, exit")
    print(f"  {ms(checks)}   of which the checks (timed inside pytest, collection done to session end)")
    print(f"  {ms(collect['wall'])}   pytest --collect-only, same arguments (start-up alone)")
    cut = phases(run)
    for label, secs in cut.items():
        print(f"  {ms(secs)}     {label}")
    print(f"  {ratio:8.2f} x    wall / raw sum       (goal <= {GOAL_RATIO}x on a ready host)")
    print(f"  {checks / raw_sum if raw_sum else float('inf'):8.2f} x    checks / raw sum")

    chain_s, chain = probe.get("longest_chain") or (0.0, [])
    print("\ngoals (issue 13), concurrent (prefetch on) | serial (LABCHECK_PREFETCH=0):")
    print(f"  {ms(run['wall'])} | {ms(serial['wall'])}   module 0 wall (goal <= {GOAL_WALL:g} s on the GPU host)"
          f"  {'met' if run['wall'] <= GOAL_WALL else 'NOT met'}")
    print(f"  {ms(checks)} | {ms(serial['probe'].get('run_s', 0.0))}   the checks part")
    print(f"  {ms(chain_s)}              longest chain of facts: {' -> '.join(chain) or 'none'}")
    ratio_chain = checks / chain_s if chain_s else float("inf")
    print(f"  {ratio_chain:8.2f} x               checks part / longest chain (goal <= {GOAL_CHAIN}x)  "
          f"{'met' if ratio_chain <= GOAL_CHAIN else 'NOT met'}")
    print(f"  {mib(probe.get('maxrss_kb', 0))} | {mib(serial['probe'].get('maxrss_kb', 0))}   peak memory, "
          "pytest process")
    slowest = sorted(probe.get("facts", {}).items(), key=lambda kv: -kv[1]["own_s"])[:5]
    print("  slowest facts (own time): " + ", ".join(f"{k} {v['own_s'] * 1000:.0f} ms" for k, v in slowest))

    breakdown(probe)

    # 3. start-up in detail.
    bare = best_of(n, [sys.executable, "-c", "pass"], env=env)
    just_pytest = best_of(n, [sys.executable, "-c", "import pytest"], env=env)
    plugins = conftest_plugins()
    with_plugins = best_of(n, [sys.executable, "-c", "import pytest, " + ", ".join(plugins)], env=env)
    k8s = import_times(["kubernetes"], env).get("kubernetes", 0.0)
    docker_sdk = import_times(["docker"], env).get("docker", 0.0)
    # After pytest, so each plugin's figure is what it adds (they all import pytest first).
    plugin_imports = {mod: secs for mod, secs in import_times(["pytest", *plugins], env).items()
                      if mod in {"pytest", *plugins}}
    # The same collection with only the plugins this project uses: the rest is what other pytest
    # plugins installed in the environment cost every run (a clean venv has none of them).
    own_plugins = ["xdist.plugin", "xdist.looponfail", "pytest_metadata.plugin", "pytest_html.plugin"]
    lean = best_of(n, [*pytest_argv[:-2], "--collect-only", *[a for p in own_plugins for a in ("-p", p)]],
                   env={**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    print("\nstart-up:")
    print(f"  {ms(bare['wall'])}   python3 -c pass")
    print(f"  {ms(just_pytest['wall'])}   import pytest")
    print(f"  {ms(with_plugins['wall'])}   import pytest + the {len(plugins)} conftest plugins")
    for mod, secs in sorted(plugin_imports.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {ms(secs)}     python -X importtime: {mod}")
    others = collect["wall"] - lean["wall"]
    print(f"  {ms(lean['wall'])}   collection with only xdist, html, metadata plugins (autoload off)"
          f"{'' if lean['rc'] in (0, 5) else ' [exit ' + str(lean['rc']) + ']'}")
    print(f"  {ms(others)}   = cost of the other pytest plugins installed in this environment")
    print(f"  {ms(k8s)}   import kubernetes (the client; module 1 only)")
    print(f"  {ms(docker_sdk)}   import docker (the SDK)")
    k8s_loaded = probe.get("kubernetes_imported")
    verdict = "no (good)" if k8s_loaded is False else "YES: import it inside the module 1 fixture that needs it"
    print(f"  kubernetes imported by the module 0 run: {verdict}")
    print(f"  docker SDK imported by the module 0 run: {'yes' if probe.get('docker_imported') else 'no'}")

    # 4. memory.
    print("\npeak memory (max RSS):")
    print(f"  {mib(probe.get('maxrss_kb', 0))}   pytest process, module 0 run")
    print(f"  {mib(run['maxrss_kb'])}   largest process of the run, spawned commands included")
    print(f"  {mib(with_plugins['maxrss_kb'])}   python + pytest + plugins imported, nothing run")

    if args.standins is not None:
        figures["standins"] = standin_figures(pytest_argv, env, args.standins, n)

    figures.update({
        "goals": {"wall_s": run["wall"], "serial_wall_s": serial["wall"], "checks_s": checks,
                  "serial_checks_s": serial["probe"].get("run_s"), "longest_chain_s": chain_s,
                  "longest_chain": chain, "checks_over_chain": ratio_chain},
        "raw": raw_rows, "raw_sum_s": raw_sum, "missing": missing,
        "module0": {"argv": pytest_argv, "wall_s": run["wall"], "median_s": run["median"], "result": tail[0],
                    "startup_s": startup, "checks_s": checks, "collect_only_s": collect["wall"], "ratio": ratio,
                    "first_run_s": first["wall"], "phases_s": cut},
        "startup": {"lean_collect_s": lean["wall"], "other_plugins_s": others,
                    "python_s": bare["wall"], "pytest_s": just_pytest["wall"], "plugins_s": with_plugins["wall"],
                    "plugin_imports_s": plugin_imports, "kubernetes_import_s": k8s, "docker_import_s": docker_sdk},
        "probe": probe,
        "memory": {"pytest_kib": probe.get("maxrss_kb"), "run_incl_children_kib": run["maxrss_kb"],
                   "imports_only_kib": with_plugins["maxrss_kb"]},
    })
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
