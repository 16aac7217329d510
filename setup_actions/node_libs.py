"""Setup action: make the node's dynamic loader find the mounted driver libraries (ldconfig in the node).

WHY: the config mounts each library at its host path. When that folder is not one the node's
loader searches (e.g. /usr/local/nvidia/lib64), ``docker exec NODE nvidia-smi`` as the workshop
runs it fails to load libnvidia-ml.so.1 even though the file is there. Later workshop versions run
ldconfig in the node; so do we: ``plan`` compares /etc/ld.so.conf.d/dra-labcheck-nvidia.conf in the
node with the folders the config mounts (no side effects), ``apply`` writes it and runs ldconfig.
A node without ldconfig (the test double's busybox node) is reported, and the suite's own node
commands carry LD_LIBRARY_PATH regardless.
"""

from __future__ import annotations

from labcheck.config import LabConfig
from labcheck.kindconfig import NodePaths
from labcheck.probes import node as nodeprobe
from setup_actions.outcome import Outcome

CONF = "/etc/ld.so.conf.d/dra-labcheck-nvidia.conf"
# Folders every glibc loader on x86_64/aarch64 Debian/Ubuntu/RHEL-family nodes searches without configuration.
LOADER_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
               "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu")
_WRITE = 'mkdir -p "$(dirname "$1")" && cat > "$1"'


def wanted(paths: NodePaths) -> str:
    dirs = [d for d in paths.lib_dirs if d.rstrip("/") not in LOADER_DIRS]
    return "".join(f"{d}\n" for d in dirs)


def plan(cfg: LabConfig, paths: NodePaths) -> Outcome:
    """What apply would do (action "none", "write" or "blocked"), touching nothing."""
    text = wanted(paths)
    if not text:
        return Outcome(True, "none", "the driver libraries are in folders the node's loader searches")
    has = nodeprobe.node_exec(cfg.node_name, ["sh", "-c", "command -v ldconfig || ls /sbin/ldconfig"],
                              timeout=cfg.command_timeout, docker_host=cfg.docker_host)
    if not has.ok:
        return Outcome(False, "blocked", f"the node has no ldconfig ({has.describe()}): only commands given "
                           f"LD_LIBRARY_PATH={':'.join(paths.lib_dirs)} find the driver libraries")
    cur = nodeprobe.read_file(cfg.node_name, CONF, cfg.command_timeout, docker_host=cfg.docker_host)
    if cur.ok and cur.stdout == text:
        return Outcome(True, "none", f"{CONF} in the node already lists {text.strip().replace(chr(10), ', ')}")
    return Outcome(True, "write", f"write {CONF} in the node ({text.strip().replace(chr(10), ', ')}) and run "
                       "ldconfig")


def apply(cfg: LabConfig, paths: NodePaths, *, provision: bool = True) -> Outcome:
    p = plan(cfg, paths)
    if p.action != "write" or not provision:
        return p if provision or p.action != "write" else Outcome(False, "write", p.message + " (--no-provision)")
    res = nodeprobe.node_exec(cfg.node_name, ["sh", "-c", _WRITE, "sh", CONF], input=wanted(paths),
                              timeout=cfg.command_timeout, docker_host=cfg.docker_host)
    if not res.ok:
        return Outcome(False, "write", f"cannot write {CONF} in the node: {res.describe()}")
    ld = nodeprobe.node_exec(cfg.node_name, ["ldconfig"], timeout=cfg.command_timeout, docker_host=cfg.docker_host)
    if not ld.ok:
        return Outcome(False, "write", f"ldconfig failed in the node: {ld.describe()}")
    return Outcome(True, "write", f"wrote {CONF} in the node and ran ldconfig", changed=True)
