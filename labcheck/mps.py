"""Parse what MPS tools print: ``ps`` listings and ``nvidia-cuda-mps-control`` answers.

Pure functions shared by the host MPS checks (module 0) and the in-node checks (module 1).
The kernel truncates comm to 15 characters ("nvidia-cuda-mps"), so the control daemon and the
server can only be told apart by their full command line; zombies ("<defunct>") are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labcheck import versions

NO_DAEMON = "Cannot find MPS control daemon process"
# The daemon is there but did not take this control client's command: seen on the H200 (driver 580) when ten
# control clients asked one daemon at the same moment (tests/data/h200-speed/busy-daemon.txt). Transient.
BUSY = "Cannot send command to MPS control daemon process"
ALREADY_RUNNING = "An instance of this daemon is already running"
# What ``nvidia-cuda-mps-control -d`` creates in its pipe folder (real-captures/h100-host/mps-pipe-dir.txt, driver
# 580): the control sockets, their lock, the log FIFO and the pid file. A dead daemon leaves them behind; these
# names, and nothing else in the folder, are what a stale-pipe fix may remove (the folder may hold anything else).
PIPE_ENTRIES = ("control", "control_lock", "control_privileged", "log", "nvidia-cuda-mps-control.pid")
# The kernel's comm of the control daemon, its server and a control client alike (15 characters, truncated): what
# ``pgrep -x`` matches, never a shell whose command line merely names the daemon.
COMM = "nvidia-cuda-mps"
_PS_LINE = re.compile(r"^\s*([0-9]+)\s+([0-9]+)\s+(\S+)\s+(\S+)\s+(.*)$")
# nvidia-smi's process table (tests/data/h100-host/mps-ps-with-client.txt):
#   |    0   N/A  N/A             447    M+C   python3                                 516MiB |
# GI and CI are N/A or numbers (MIG) and absent on drivers before MIG (|    0      1234      C   python ... |).
_SMI_PROCESS_ROW = re.compile(
    r"^\|\s*(?P<gpu>[0-9]+)\s+(?:(?:N/A|[0-9]+)\s+(?:N/A|[0-9]+)\s+)?(?P<pid>[0-9]+)\s+(?P<type>\S+)\s.*\|\s*$")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    stat: str
    comm: str
    args: str

    @property
    def zombie(self) -> bool:
        return self.stat.startswith("Z") or self.args.endswith("<defunct>")


def parse_ps(text: str) -> list[Proc]:
    """Parse ``ps -eo pid,ppid,stat,comm,args`` output (header and junk lines are skipped).

    PID and PPID are ASCII numbers (:func:`labcheck.versions.ascii_int`): a line whose pid is "١٢" (Arabic-Indic digits,
    which ``int`` reads as 12) or 5000 digits (``int`` raises) is no process line, as the header is."""
    procs = []
    for line in text.splitlines():
        m = _PS_LINE.match(line)
        pid, ppid = (versions.ascii_int(m[1]), versions.ascii_int(m[2])) if m else (None, None)
        if m and pid is not None and ppid is not None:
            procs.append(Proc(pid, ppid, m[3], m[4], m[5].strip()))
    return procs


def _exe(args: str) -> str:
    first = args.split(None, 1)[0] if args.strip() else ""
    return first.rsplit("/", 1)[-1]


def _args_after(p: Proc, name: str) -> list[str] | None:
    """The arguments after the program when ``p`` runs the binary ``name``, else None.

    The program path may hold spaces (a driver unpacked under "/opt/nvidia drv/"): then the first
    word of the command line is not the program, and the kernel's comm (the file name cut to 15
    characters) confirms that the process is that binary before the command line is read past them.
    """
    if _exe(p.args) == name:
        return p.args.split()[1:]
    if p.comm != name[:15]:
        return None
    m = re.match(rf"^(?:.*/)?{re.escape(name)}(?=\s|$)", p.args)
    return p.args[m.end():].split() if m else None


def mps_processes(procs: list[Proc]) -> list[Proc]:
    """Live processes whose comm is :data:`COMM` (control daemon, server, a control client), as ``pgrep -x`` matched."""
    return [p for p in procs if not p.zombie and p.comm == COMM]


def control_daemons(procs: list[Proc]) -> list[Proc]:
    """Live ``nvidia-cuda-mps-control -d`` processes (a client invocation without -d is not a daemon)."""
    return [p for p in procs if not p.zombie and "-d" in (_args_after(p, "nvidia-cuda-mps-control") or [])]


def servers(procs: list[Proc]) -> list[Proc]:
    return [p for p in procs if not p.zombie and _args_after(p, "nvidia-cuda-mps-server") is not None]


def parse_server_list(stdout: str) -> list[int]:
    """PIDs printed by ``echo get_server_list | nvidia-cuda-mps-control`` (empty before any client), or by
    ``get_client_list PID``: one per line (tests/data/h100-host, h100-run).

    A pid is a line of ASCII digits only (:func:`labcheck.versions.ascii_int`: "²", "١٢", 5000 digits are none),
    as nvidia-smi's GPU and PID columns are read: any other line ("12 34", a message) is no pid, never an error."""
    return [pid for pid in (versions.ascii_int(raw.strip()) for raw in stdout.splitlines()) if pid is not None]


def smi_mps_clients(nvidia_smi_text: str) -> list[tuple[int, int]]:
    """(GPU index, PID) of each process ``nvidia-smi`` lists with type ``M+C`` (a CUDA client served through MPS).

    A process table row is read by its columns: GPU, GI and CI (``N/A`` outside MIG; absent before MIG-era
    drivers), PID, Type, then the process name and its memory. Only the Type column may say ``M+C``: the name
    is whatever the process calls itself, so a local user's ``python3 650 M+C`` is no evidence for pid 650.
    GPU and PID are ASCII numbers (:func:`labcheck.versions.ascii_int`: "²", "١٢" or 5000 digits are none); any
    other row is no process row and is ignored, never an error."""
    found = []
    for line in nvidia_smi_text.splitlines():
        m = _SMI_PROCESS_ROW.match(line)
        gpu, pid = (versions.ascii_int(m["gpu"]), versions.ascii_int(m["pid"])) if m else (None, None)
        if m and m["type"] == "M+C" and gpu is not None and pid is not None:
            found.append((gpu, pid))
    return found


def smi_mps_client_pids(nvidia_smi_text: str) -> list[int]:
    """PIDs that ``nvidia-smi`` lists with process type ``M+C``."""
    return [pid for _gpu, pid in smi_mps_clients(nvidia_smi_text)]


# --- the CUDA client used by the functional check (labcheck/cuda_client.py) -------------------------

# CUresult codes a client meets when MPS or the driver is not right (cuda.h).
CUDA_ERRORS = {
    0: "CUDA_SUCCESS", 1: "CUDA_ERROR_INVALID_VALUE", 2: "CUDA_ERROR_OUT_OF_MEMORY",
    3: "CUDA_ERROR_NOT_INITIALIZED", 34: "CUDA_ERROR_STUB_LIBRARY", 35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
    46: "CUDA_ERROR_DEVICES_UNAVAILABLE", 100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE",
    304: "CUDA_ERROR_OPERATING_SYSTEM", 805: "CUDA_ERROR_MPS_CONNECTION_FAILED", 806: "CUDA_ERROR_MPS_RPC_FAILURE",
    807: "CUDA_ERROR_MPS_SERVER_NOT_READY", 808: "CUDA_ERROR_MPS_MAX_CLIENTS_REACHED",
    809: "CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED", 810: "CUDA_ERROR_MPS_CLIENT_TERMINATED",
    999: "CUDA_ERROR_UNKNOWN",
}
CLIENT_STEPS = ("cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetUuid", "cuCtxCreate_v2",
                "cuCtxDestroy_v2")
_STEP_LINE = re.compile(r"^(cu\w+)\s+(-?[0-9]+)(?:\s+(.*))?$")


@dataclass(frozen=True)
class ClientStep:
    call: str
    rc: int
    extra: str = ""

    @property
    def error_name(self) -> str:
        return CUDA_ERRORS.get(self.rc, "unknown CUresult")


def parse_client_steps(stdout: str) -> list[ClientStep]:
    """The ``cuCall rc [extra]`` lines a driver-API client prints (see cuprobe-client.txt).

    The rc is an ASCII number (:func:`labcheck.versions.ascii_int`), as the client prints it: a line whose rc is
    "١٢" (``int`` reads 12: a CUresult the call never returned) or 5000 digits is no step line."""
    steps = []
    for line in stdout.splitlines():
        m = _STEP_LINE.match(line.strip())
        rc = versions.ascii_int(m[2], signed=True) if m else None
        if m and rc is not None:
            steps.append(ClientStep(m[1], rc, (m[3] or "").strip()))
    return steps


def first_failed_step(steps: list[ClientStep]) -> ClientStep | None:
    return next((s for s in steps if s.rc != 0), None)


def pipe_dir_from_environ(environ: bytes, default: str = "/tmp/nvidia-mps") -> str:
    """The pipe directory a process uses, from its /proc/PID/environ (NUL-separated)."""
    for item in environ.split(b"\0"):
        if item.startswith(b"CUDA_MPS_PIPE_DIRECTORY="):
            value = item.split(b"=", 1)[1].decode(errors="replace")
            return value or default
    return default
