"""``python -m labcheck.mps_idle PIPE_DIR``: exit 0 only when no MPS process uses PIPE_DIR, of this host or of a
container.

The guard of the stale-pipe fix (:func:`labcheck.verdicts.mps.stale_pipe_fix`): ``<this> && { rm the dead daemon's
entries && start a daemon; }``. It asks :func:`labcheck.probes.mps.mps_users`: a process of another pipe folder is no
reason to stop; one of a container whose pipe folder is this one (the kind node's daemon: the node mounts the host's
folder at the same path) is, and so is one this user cannot tell about (another user's, or root's in a container,
whose environment and root are closed to it).

WHY "idle" exits 0, and everything else non-zero: the fix runs the removal only after a 0, so an interpreter that
cannot import this module, a failed ``ps`` or a bad argument (all non-zero) removes nothing. Each process in the
way is printed (pid, command line, what is known of it), with what to do.
"""

from __future__ import annotations

import sys
from pathlib import Path
from shlex import quote as sh

from labcheck import cmd, mps
from labcheck.probes import mps as probe
from labcheck.remedy import Shell

BUSY, UNUSABLE = 1, 2  # exit statuses: an MPS process uses the folder (or may); the question could not be asked
# The folder this package is imported from (the project's, or site-packages): the guard runs from there.
IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)


def guard_command(pipe_dir: str, python: str = sys.executable, as_root: Shell | None = None) -> str:
    """The shell command that runs this guard on ``pipe_dir`` with ``python`` (``as_root``: whoever pastes it, to
    run it as root, who can read every process's environment and folder).

    WHY ``cd`` into :data:`IMPORT_ROOT`, in a subshell: a fix is pasted in any folder, where ``python -m
    labcheck.mps_idle`` found no labcheck (a safe failure, but one that never let the fix work), or another checkout's;
    ``-m`` looks in the current folder first. The subshell leaves the user's shell where it was."""
    run = f"{sh(python)} -m labcheck.mps_idle {sh(pipe_dir)}"
    return f"(cd {sh(IMPORT_ROOT)} && {as_root.sudo(run) if as_root is not None else run})"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith("/"):
        print("usage: python -m labcheck.mps_idle /ABSOLUTE/PIPE/DIR", file=sys.stderr)
        return UNUSABLE
    ps = cmd.run(probe.PS_ARGV)
    if not ps.ok:  # no list is not "no process"
        print(f"cannot list the processes: {ps.describe()}", file=sys.stderr)
        return UNUSABLE
    found = probe.mps_users(mps.parse_ps(ps.stdout), argv[0])
    for u in found:
        print(f"{u.proc.pid} {u.proc.args}" + (f"   ({u.why})" if u.why else ""))
    return BUSY if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
