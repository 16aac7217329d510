"""Wall time of a fleet run over real SSH for 1, 10 and 30 hosts (goal: 30 hosts within 1.5x of 1).

Starts one real sshd server per host on loopback ports (needs root and openssh-server, like the tests), then
runs ``pytest --hosts=INVENTORY -m module0`` from the repository (the real module 0 checks, shipped to
each "host") and prints the median wall time of a few runs per fleet size. All hosts share this
machine's CPUs, so the figure is an upper bound for a fleet of real machines.

    python3 benchmarks/fleet.py [--runs 3] [--marker module0] [--sizes 1,10,30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._proc_cpu import ProcCpu  # noqa: E402
from benchmarks.module0 import IMPORTTIME  # noqa: E402
from labcheck.fleet_plugin import HOST_TIMING_KEYS  # noqa: E402
from tests.needs import missing  # noqa: E402
from tests.sshd import ClientKey, Sshd  # noqa: E402


def inventory(folder: Path, key: ClientKey, servers: list[Sshd], ssh_options: list[str] = ()) -> Path:
    doc = {"defaults": {"python": sys.executable, "connect_timeout": 10, "workdir": str(folder / "remote"),
                        "ssh_options": [*key.ssh_options(), *ssh_options]},
           "hosts": [{"name": f"host{i}", "ssh": "root@127.0.0.1", "port": s.port} for i, s in enumerate(servers)]}
    path = folder / f"hosts-{len(servers)}.yaml"
    path.write_text(json.dumps(doc, indent=1))
    return path


def _reaped_cpu(pid: int) -> float:
    """CPU seconds of the finished children of ``pid`` (an sshd listener: its sessions, the workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


SERVERS: list[Sshd] = []


def tally(out: str) -> str:
    """pytest's last line ("7 failed, 13 passed, ... in 2.2s"): N hosts should tally N times one local run."""
    return next((ln.strip("= ") for ln in reversed(out.splitlines()) if " in " in ln and "passed" in ln), "no tally")


def timed(argv: list[str]) -> tuple[float, int, str, float, float, float, dict[str, float]]:
    """Wall time, exit status, output, CPU seconds of the run's own processes (pytest, ssh clients;
    not the shared-connection masters, which ssh detaches) and of the hosts' sshd sessions, the controller's own
    CPU and hook marks (when it is CONTROLLER: see controller_cpu, controller_marks)."""
    before = os.times()
    hosts_before = sum(_reaped_cpu(s.proc.pid) for s in SERVERS)
    start = time.perf_counter()
    res = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    time.sleep(0.5)  # let the sshd listeners reap their finished sessions
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    hosts = sum(_reaped_cpu(s.proc.pid) for s in SERVERS) - hosts_before
    return wall, res.returncode, res.stdout, cpu, hosts, controller_cpu(res.stderr), controller_marks(res.stderr)


# The controller: pytest itself, run so that it reports its own CPU time at exit (its threads share one
# interpreter, so this is the part of a fleet run that cannot spread over the CPUs); otherwise `-m pytest`.
# It also prints when (s from its start) the session started, the run loop ended (every host done), the session
# finish hooks ended (results written, connections closed) and the process was about to exit: the controller's
# own tail after the last host, which no host's timings show.
CONTROLLER = """\
import atexit, os, sys, time, pytest
T0 = time.monotonic()
marks = {}
class Marks:
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self): marks["session start"] = time.monotonic() - T0
    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self):
        try: return (yield)
        finally: marks["run loop ended"] = time.monotonic() - T0
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self): marks["session finish ended"] = time.monotonic() - T0
def bye():
    marks["exit"] = time.monotonic() - T0
    print('LABCHECK-BENCH-CPU %.3f' % sum(os.times()[:2]), file=sys.stderr)
    print('LABCHECK-BENCH-MARKS ' + ' '.join('%s=%.3f' % (k.replace(' ', '_'), v) for k, v in marks.items()),
          file=sys.stderr)
atexit.register(bye)
sys.exit(pytest.main(sys.argv[1:], plugins=[Marks()]))
"""
STEPS = ("start", "probed", "connected", "shipped", "worker started", "collected", "finished")
# With them, each host's own clock (HOST_TIMING_KEYS: labcheck.fleet_plugin.host_timings).


def controller_cpu(stderr: str) -> float:
    return next((float(ln.split()[1]) for ln in stderr.splitlines() if ln.startswith("LABCHECK-BENCH-CPU ")), 0.0)


def controller_marks(stderr: str) -> dict[str, float]:
    line = next((ln for ln in stderr.splitlines() if ln.startswith("LABCHECK-BENCH-MARKS ")), "")
    pairs = (p.split("=", 1) for p in line.split()[1:])
    return {k.replace("_", " "): float(v) for k, v in pairs}


def host_timings(results_json: Path) -> list[dict[str, float]]:
    """Each host's timings (labcheck.fleet_session.HostState.timings) from a run's results JSON; [] when unreadable."""
    try:
        return [h.get("timings", {}) for h in json.loads(results_json.read_text())["fleet"]["hosts"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def host_steps(timings: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per step of a host's run, its times across the hosts that reached it."""
    return {step: [t[step] for t in timings if step in t] for step in STEPS + HOST_TIMING_KEYS}


def tail(marks: dict[str, float], timings: list[dict[str, float]]) -> str:
    """The controller's time line: start-up, when the last host finished, and what came after it."""
    start = marks.get("session start")
    ends = [t["start"] + t["finished"] for t in timings if "start" in t and "finished" in t]  # lost hosts: none
    if start is None or not ends or "exit" not in marks:
        return ""
    last = start + max(ends)
    parts = [f"session start {start:.2f}", f"last host finished {last:.2f}"]
    parts += [f"{k} +{v - last:.2f}" for k, v in marks.items() if k not in ("session start",)]
    return "controller, s from its start: " + ", ".join(parts)


def warnings_of(out: str, limit: int = 12) -> list[str]:
    """The lines of pytest's "warnings summary" section in a run's output (a warning on the controller, e.g. an
    exception in one of its threads, must not hide behind a tally's "1 warning")."""
    lines = out.splitlines()
    start = next((i for i, ln in enumerate(lines) if "warnings summary" in ln), None)
    if start is None:
        return []
    section = []
    for ln in lines[start + 1:]:
        if ln.startswith("-- Docs:") or ln.startswith("==="):
            break
        if ln.strip():
            section.append(ln.rstrip()[:200])
    return section[:limit]


def ssh_login_cost(key: ClientKey, server: Sshd, extra: list[str], reps: int = 5) -> str:
    """One ssh login (``ssh HOST true``, a new connection each time): CPU of the client and the server, wall; medians.

    WHY: each host costs one login (its later sessions share that connection); the client's part is spent on the
    controller for every host, the server's on each host.
    """
    argv = ["ssh", *key.ssh_options(), *extra, "-p", str(server.port), "root@127.0.0.1", "true"]
    rows = [(r[3], r[4], r[0]) for r in (timed(argv) for _ in range(reps))]  # client CPU, server CPU, wall
    client, host, wall = (statistics.median(col) * 1000 for col in zip(*rows, strict=True))
    return f"client CPU {client:.0f} ms, server CPU {host:.0f} ms, wall {wall:.0f} ms"


def imports_by_package(select: list[str]) -> list[tuple[str, float]]:
    """Seconds of import (``-X importtime`` self times) per top-level package in one host-like pytest run here:
    plugin autoload off and ``-pxdist.plugin``, as labcheck.inventory.Host.xspec starts a host's worker; the second
    of two runs, with bytecode kept in a private cache (a host keeps its own: labcheck.fleet_ship.PYCACHE)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir(), "labcheck-bench-pyc")))
    argv = [sys.executable, "-X", "importtime", "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "-pxdist.plugin",
            *select]
    for _ in range(2):
        res = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    totals: dict[str, float] = {}
    for line in res.stderr.splitlines():
        if m := IMPORTTIME.match(line):  # self time (us), cumulative, indent, module
            name = m[4].split(".")[0]
            totals[name] = totals.get(name, 0.0) + int(m[1]) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--marker", default="module0")
    ap.add_argument("--sizes", default="1,10,30", help="fleet sizes, comma-separated (the first is the baseline)")
    ap.add_argument("-k", dest="keyword", default=None,
                    help="also pass -k EXPR (e.g. 'not cuda_client': on one machine every simulated host's CUDA "
                         "client shares the one GPU and MPS server, which separate machines would not)")
    ap.add_argument("--ssh-option", dest="ssh_options", action="append", default=[], metavar="OPT",
                    help="add OPT to the inventory's ssh_options, as an instructor would (repeatable; e.g. "
                         "--ssh-option=-o --ssh-option=KexAlgorithms=curve25519-sha256)")
    ap.add_argument("--cpu-by-command", action="store_true",
                    help="after the timed runs, one more run per size with /proc sampled: CPU per kind of process")
    opts = ap.parse_args()
    select = ["-m", opts.marker, *(["-k", opts.keyword] if opts.keyword else [])]
    sizes = [int(x) for x in opts.sizes.split(",")]
    cpus = len(os.sched_getaffinity(0))  # the CPUs this run may use (a container's, not the machine's)
    reason = missing("sshd")
    if reason:
        print(f"cannot benchmark: {reason}")
        return 2
    with tempfile.TemporaryDirectory(prefix="labcheck-fleet-bench-") as tmp:
        folder = Path(tmp)
        key = ClientKey.generate(folder)
        servers = [Sshd(folder / f"sshd{i}", key).start() for i in range(max(sizes))]
        SERVERS.extend(servers)
        try:
            print(f"{cpus} CPUs, load average {os.getloadavg()[0]:.1f} (hosts share this machine's CPUs); "
                  f"python {sys.executable}, also every host's (the inventory names it)"
                  + (f"; inventory ssh_options add {' '.join(opts.ssh_options)}" if opts.ssh_options else ""))
            print(f"{'one ssh login':<17} : {ssh_login_cost(key, servers[0], [])} (medians of 5; this machine's "
                  f"ssh defaults); with KexAlgorithms=curve25519-sha256: "
                  f"{ssh_login_cost(key, servers[0], ['-o', 'KexAlgorithms=curve25519-sha256'])}")
            local = [timed([sys.executable, "-m", "pytest", "-q", *select]) for _ in range(opts.runs)]
            print(f"{'local, no SSH':<17} : {statistics.median(r[0] for r in local):6.2f} s wall, "
                  f"CPU {statistics.median(r[3] for r in local):4.2f} s (median of {opts.runs}; "
                  f"exit {local[-1][1]}; {tally(local[-1][2])})")
            argvs = {}
            for n in sizes:
                inv = inventory(folder, key, servers[:n], opts.ssh_options)
                argvs[n] = [sys.executable, "-c", CONTROLLER, "-q", *select, f"--hosts={inv}",
                            f"--results-json={folder / f'results-{n}.json'}"]
                timed(argvs[n])  # warm-up: first shipment of the suite and pytest to each host's folder
            runs: dict[int, list] = {n: [] for n in sizes}
            for _ in range(opts.runs):  # interleaved, so that other load on the machine hits all sizes alike
                for n in sizes:
                    runs[n].append(timed(argvs[n]))
            med, per_host = {}, {}
            for n in sizes:
                walls = [r[0] for r in runs[n]]
                med[n] = statistics.median(walls)
                line = next((ln for ln in runs[n][-1][2].splitlines() if ln.startswith("FLEET ")), "no fleet line")
                label = f"fleet of {n} host{'s' * (n > 1)}"
                print(f"{label:<17} : {med[n]:6.2f} s wall (min {min(walls):.2f}), CPU "
                      f"{statistics.median(r[3] for r in runs[n]):4.2f} s controller + "
                      f"{statistics.median(r[4] for r in runs[n]):4.2f} s hosts (medians of {opts.runs}; "
                      f"exit {runs[n][-1][1]}; {line}; {tally(runs[n][-1][2])})")
                print(f"{'':<17}   {statistics.median(r[5] for r in runs[n]):6.2f} s of that controller CPU is "
                      "the pytest process itself (one interpreter: its threads take turns)")
                for ln in warnings_of(runs[n][-1][2]):
                    print(f"{'':<17}     warning: {ln}")
                timings = host_timings(folder / f"results-{n}.json")  # the last run's
                steps = host_steps(timings)
                if steps.get("start"):
                    print(f"{'':<17}     steps of a host's run, s from its own start (\"start\": from the session's), "
                          "median / max over the hosts: " + ", ".join(
                              f"{k} {statistics.median(v):.2f}/{max(v):.2f}" for k, v in steps.items()
                              if v and k in STEPS))
                    print(f"{'':<17}     on the host's own clock, median / max: " + ", ".join(
                        f"{k[6:]} {statistics.median(v):.2f}/{max(v):.2f}" for k, v in steps.items()
                        if v and k in HOST_TIMING_KEYS))
                    line = tail(runs[n][-1][6], timings)
                    if line:
                        print(f"{'':<17}     {line}")
                cpu = statistics.median(r[3] + r[4] for r in runs[n])
                per_host[n] = cpu / n
                print(f"{'':<17}   {cpu / cpus:6.2f} s = CPU / {cpus} CPUs: the least this machine can take for "
                      f"{n} host{'s' * (n > 1)}, however well they overlap; {per_host[n]:.2f} CPU s per host")
            if opts.cpu_by_command:
                found = imports_by_package(select)
                print(f"imports of one host-like pytest here, {sum(s for _, s in found):.3f} s in all (self times by "
                      "package): " + ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in found[:18]))
                for n in sizes:
                    sampler = ProcCpu().start()
                    wall = timed(argvs[n])[0]
                    rows = sampler.stop()
                    print(f"CPU by command, {n} host{'s' * (n > 1)} (one more run, {wall:.2f} s wall, /proc sampled "
                          "every 5 ms: lower bounds), CPU s in all / per host, processes:")
                    for label, (cpu, count) in list(rows.items())[:14]:
                        print(f"{'':<17}   {cpu:6.2f} / {cpu / n:5.3f}  x{count:<4} {label}")
            base, top = sizes[0], sizes[-1]
            print(f"{f'{top} hosts / {base} host':<17} : {med[top] / med[base]:6.2f}x wall, medians (goal <= 1.5x); "
                  f"{min(r[0] for r in runs[top]) / min(r[0] for r in runs[base]):.2f}x, minima; "
                  f"load average now {os.getloadavg()[0]:.1f}")
            goal = 1.5 * med[base]
            print(f"{'CPU bound':<17} : at {per_host[top]:.2f} CPU s per host (as among {top}), {cpus} CPUs fit "
                  f"at most {goal * cpus / per_host[top]:.0f} hosts in 1.5x one host's wall ({goal:.2f} s), "
                  f"however well they overlap")
        finally:
            for s in servers:
                s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
