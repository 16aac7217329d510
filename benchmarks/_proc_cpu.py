"""CPU seconds per kind of process while a fleet run is going on, read off /proc (benchmarks/fleet.py --cpu-by-command).

WHY: the fleet benchmark's totals (controller, hosts) do not say which processes spend a 30-host run's CPU: the
hosts' pytest, their sshd sessions, the probes they start (nvidia-smi, docker), the controller's ssh clients, the
shared Docker engine. A sampler that reads every process's utime + stime every few milliseconds does, for processes
that live longer than a sample (a shorter one is missed, and the last sample of each process may be up to one
interval late: the figures are lower bounds).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _label(pid: str, comm: str) -> str:
    """What kind of process: its command name; for Python, which one of the fleet's Pythons it is."""
    if not comm.startswith("python"):
        return comm
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return comm
    text = b" ".join(args[1:]).decode(errors="replace")
    if "exec(eval(sys.stdin.readline()))" in text:
        return "python (a host's pytest: execnet gateway)"
    if "LABCHECK-PROBE" in text:
        return "python (the fleet probe on a host)"
    if "LABCHECK-BENCH-CPU" in text:
        return "python (the controller's pytest)"
    return f"python ({' '.join(text.split())[:40]})"


class ProcCpu:
    """Poll /proc every ``interval`` seconds from a thread; :meth:`stop` returns CPU seconds and counts per label."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        # (pid, start time) -> [comm, label, cpu when this program began (exec) or sampling began, cpu last seen]
        self._seen: dict[tuple[str, str], list] = {}
        self._done: list[tuple[str, float]] = []  # (label, cpu) of a program a process ran before it exec'd another
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._first = True

    def start(self) -> ProcCpu:
        self._sample()
        self._first = False
        self._thread.start()
        return self

    def _sample(self) -> None:
        me = str(os.getpid())
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                raw = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            comm = raw[raw.find("(") + 1:raw.rfind(")")]
            fields = raw[raw.rfind(")") + 2:].split()
            cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
            key = (pid, fields[19])  # start time: a reused pid is another process
            entry = self._seen.get(key)
            if entry is None:
                # A process already running when sampling began counts from then; a new one from its start.
                self._seen[key] = [comm, _label(pid, comm), cpu if self._first else 0.0, cpu]
            elif entry[0] != comm:  # it exec'd another program (a shell running python): a new label from here
                self._done.append((entry[1], entry[3] - entry[2]))
                self._seen[key] = [comm, _label(pid, comm), entry[3], cpu]
            else:
                entry[3] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> dict[str, tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        self._sample()
        out: dict[str, list] = defaultdict(lambda: [0.0, 0])
        for label, cpu in [*self._done, *((e[1], e[3] - e[2]) for e in self._seen.values())]:
            if cpu > 0:
                out[label][0] += cpu
                out[label][1] += 1
        return {k: (round(v[0], 3), v[1]) for k, v in sorted(out.items(), key=lambda kv: -kv[1][0])}
