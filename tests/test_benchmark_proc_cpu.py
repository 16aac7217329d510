"""benchmarks/_proc_cpu.py (fleet.py --cpu-by-command): CPU read off /proc lands on the program that spent it.

Real processes: a shell that execs Python (as sshd's shell runs a host's Python) must not have the Python's CPU
filed under the shell.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks._proc_cpu import ProcCpu

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"


def test_cpu_of_a_program_a_shell_execs_is_filed_under_that_program():
    sampler = ProcCpu().start()
    subprocess.run(["sh", "-c", 'sleep 0.1; exec "$0" -c "$1"', sys.executable, BUSY], check=True, timeout=30)
    rows = sampler.stop()
    python = {label: cpu for label, (cpu, _) in rows.items() if label.startswith("python")}
    assert max(python.values(), default=0.0) >= 0.3, rows
    assert rows.get("sh", (0.0, 0))[0] < 0.1, rows
