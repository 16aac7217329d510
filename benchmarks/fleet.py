"""Wall time of a fleet run over real SSH for 1, 3 and 6 hosts (goal: 6 hosts within 1.5x of 1).

Starts 6 real sshd servers on loopback ports (needs root and openssh-server, like the tests), then
runs ``pytest --hosts=INVENTORY -m module0`` from the repository (the real module 0 checks, shipped to
each "host") and prints the median wall time of a few runs per fleet size. All hosts share this
machine's CPUs, so the figure is an upper bound for a fleet of real machines.

    python3 benchmarks/fleet.py [--runs 3] [--marker module0]
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

from tests.sshd import ClientKey, Sshd, unavailable_reason  # noqa: E402


def inventory(folder: Path, key: ClientKey, servers: list[Sshd]) -> Path:
    doc = {"defaults": {"python": sys.executable, "connect_timeout": 10, "workdir": str(folder / "remote"),
                        "ssh_options": key.ssh_options()},
           "hosts": [{"name": f"host{i}", "ssh": "root@127.0.0.1", "port": s.port} for i, s in enumerate(servers)]}
    path = folder / f"hosts-{len(servers)}.yaml"
    path.write_text(json.dumps(doc, indent=1))
    return path


def _reaped_cpu(pid: int) -> float:
    """CPU seconds of the finished children of ``pid`` (an sshd listener: its sessions, the workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


SERVERS: list[Sshd] = []


def timed(argv: list[str]) -> tuple[float, int, str, float]:
    """Wall time, exit status, output, and CPU seconds (the run's own processes + the hosts' sessions)."""
    before = os.times()
    hosts_before = sum(_reaped_cpu(s.proc.pid) for s in SERVERS)
    start = time.perf_counter()
    res = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    time.sleep(0.5)  # let the sshd listeners reap their finished sessions
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    cpu += sum(_reaped_cpu(s.proc.pid) for s in SERVERS) - hosts_before
    return wall, res.returncode, res.stdout, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--marker", default="module0")
    opts = ap.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"cannot benchmark: {reason}")
        return 2
    with tempfile.TemporaryDirectory(prefix="labcheck-fleet-bench-") as tmp:
        folder = Path(tmp)
        key = ClientKey.generate(folder)
        servers = [Sshd(folder / f"sshd{i}", key).start() for i in range(6)]
        SERVERS.extend(servers)
        try:
            print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (hosts share this machine's CPUs)")
            local = [timed([sys.executable, "-m", "pytest", "-q", "-m", opts.marker]) for _ in range(opts.runs)]
            print(f"local run, no SSH : {statistics.median(r[0] for r in local):6.2f} s wall, "
                  f"{statistics.median(r[3] for r in local):5.2f} s CPU (median of {opts.runs})")
            results = {}
            for n in (1, 3, 6):
                inv = inventory(folder, key, servers[:n])
                argv = [sys.executable, "-m", "pytest", "-q", "-m", opts.marker, f"--hosts={inv}"]
                timed(argv)  # warm-up: first shipment of the suite and pytest to each host's folder
                runs = [timed(argv) for _ in range(opts.runs)]
                line = next((ln for ln in runs[-1][2].splitlines() if ln.startswith("FLEET ")), "no fleet line")
                results[n] = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[3] for r in runs)
                print(f"fleet of {n} host{'s' * (n > 1)}{' ' * (n == 1)} : {results[n]:6.2f} s wall, {cpu:5.2f} s CPU "
                      f"(median of {opts.runs}; walls {', '.join(f'{r[0]:.2f}' for r in runs)}; "
                      f"exit {runs[-1][1]}; {line})")
            print(f"6 hosts / 1 host  : {results[6] / results[1]:6.2f}x wall (goal <= 1.5x); "
                  f"load average now {os.getloadavg()[0]:.1f}")
        finally:
            for s in servers:
                s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
