"""Setup action: the MPS control daemon inside the node (``docker exec NODE nvidia-cuda-mps-control -d``).

``plan`` looks (no side effects): already running (matched on the full command line, since comm is
truncated to "nvidia-cuda-mps"), or to start, or blocked: the node is not running, the binary is not
mounted, or a HOST daemon already owns the pipe directory the node shares with the host (the two
would fight over one control pipe). ``apply`` starts it with the pipe and log directories and the
library folders in its environment (the server it spawns inherits them), then checks that it runs.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

from labcheck import mps
from labcheck.clis import Clis
from labcheck.config import LabConfig
from labcheck.kindconfig import NodePaths
from labcheck.probes import node as nodeprobe
from setup_actions.node_libs import LOADER_DIRS
from setup_actions.outcome import Outcome

STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def node_env(cfg: LabConfig, paths: NodePaths) -> dict[str, str]:
    return {
        "CUDA_MPS_PIPE_DIRECTORY": cfg.mps_pipe_dir,
        "CUDA_MPS_LOG_DIRECTORY": cfg.mps_log_dir,
        "LD_LIBRARY_PATH": ":".join(paths.lib_dirs),
        "PATH": ":".join([*paths.bin_dirs, STD_PATH]),
    }


def start_command(cfg: LabConfig, paths: NodePaths) -> str:
    """The command that starts the node's daemon in this situation: the seed's literal
    ``docker exec NODE nvidia-cuda-mps-control -d`` when the config follows the uniform layout and the default
    pipe and log folders, with only the ``-e`` settings this config needs (a pipe or log folder other than the
    default, library folders the node's loader does not search, a binary off the default PATH)."""
    defaults = LabConfig()
    env = node_env(cfg, paths)
    need = {}
    if cfg.mps_pipe_dir != defaults.mps_pipe_dir:
        need["CUDA_MPS_PIPE_DIRECTORY"] = env["CUDA_MPS_PIPE_DIRECTORY"]
    if cfg.mps_log_dir != defaults.mps_log_dir:
        need["CUDA_MPS_LOG_DIRECTORY"] = env["CUDA_MPS_LOG_DIRECTORY"]
    if any(d.rstrip("/") not in LOADER_DIRS for d in paths.lib_dirs):
        need["LD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"]
    control = paths.first("nvidia-cuda-mps-control")
    on_path = not control or os.path.dirname(control) in STD_PATH.split(":")
    envs = "".join(f" -e {shlex.quote(k + '=' + v)}" for k, v in need.items())
    binary = "nvidia-cuda-mps-control" if on_path else control
    return f"{Clis.of(cfg).docker} exec{envs} {shlex.quote(cfg.node_name)} {shlex.quote(binary)} -d"


@dataclass(frozen=True)
class MpsPlan:
    action: str  # "none" | "start" | "blocked"
    reason: str
    host_daemons: tuple[int, ...] = field(default=())
    node_daemons: tuple[int, ...] = field(default=())


def plan(cfg: LabConfig, paths: NodePaths) -> MpsPlan:
    node = nodeprobe.inspect(cfg.node_name, cfg.command_timeout, docker_host=cfg.docker_host)
    if not node.exists or not node.running:
        return MpsPlan("blocked", f"node container {cfg.node_name} is {node.status or 'missing'}"
                       + (f" ({node.error})" if node.error else ""))
    if not paths.first("nvidia-cuda-mps-control"):
        return MpsPlan("blocked", "the kind config mounts no nvidia-cuda-mps-control into the node")
    procs, res = nodeprobe.processes(cfg.node_name, cfg.command_timeout, docker_host=cfg.docker_host)
    if not res.ok:
        return MpsPlan("blocked", f"cannot list processes in the node: {res.describe()}")
    mine = tuple(p.pid for p in mps.control_daemons(procs))
    host = tuple(d.pid for d in nodeprobe.host_daemons_on(paths.pipe_dir_host, node.id, cfg.command_timeout)) \
        if paths.pipe_dir_host else ()
    if mine:
        reason = f"nvidia-cuda-mps-control -d already runs in the node (PID {', '.join(map(str, mine))})"
        return MpsPlan("none", reason, host, mine)
    if host:
        return MpsPlan("blocked", f"a host MPS daemon (PID {', '.join(map(str, host))}) owns the pipe directory "
                       f"{paths.pipe_dir_host} shared with the node", host)
    return MpsPlan("start", "no MPS control daemon in the node")


def apply(cfg: LabConfig, paths: NodePaths, *, provision: bool = True) -> Outcome:
    p = plan(cfg, paths)
    cmd_text = start_command(cfg, paths)
    if p.action == "none":
        return Outcome(True, "none", p.reason)
    if p.action == "blocked":
        return Outcome(False, "blocked", p.reason, cmd_text)
    if not provision:
        return Outcome(False, "start", f"{p.reason}; --no-provision: not started", cmd_text)
    env = node_env(cfg, paths)
    mk = nodeprobe.node_exec(cfg.node_name, ["mkdir", "-p", cfg.mps_pipe_dir, cfg.mps_log_dir],
                             timeout=cfg.command_timeout, docker_host=cfg.docker_host)
    if not mk.ok:
        return Outcome(False, "start", f"cannot create the MPS folders in the node: {mk.describe()}", cmd_text)
    res = nodeprobe.node_exec(cfg.node_name, [paths.first("nvidia-cuda-mps-control"), "-d"], env,
                              timeout=cfg.command_timeout, docker_host=cfg.docker_host)
    if not res.ok:
        if mps.ALREADY_RUNNING in res.output:
            return Outcome(False, "start", f"the node's daemon did not start: {mps.ALREADY_RUNNING} (another "
                              f"daemon, on the host or in the node, owns {cfg.mps_pipe_dir})", cmd_text)
        return Outcome(False, "start", f"the MPS daemon did not start in the node: {res.describe()}", cmd_text)
    procs, _ = nodeprobe.processes(cfg.node_name, cfg.command_timeout, docker_host=cfg.docker_host)
    daemons = mps.control_daemons(procs)
    if not daemons:
        return Outcome(False, "start", "nvidia-cuda-mps-control -d exited 0 but no daemon runs in the node "
                          f"(see {cfg.mps_log_dir}/control.log in the node)", cmd_text)
    return Outcome(True, "start", f"started nvidia-cuda-mps-control -d in the node (PID {daemons[0].pid})",
                   changed=True)
