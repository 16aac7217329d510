"""``python -m labcheck.mps_idle PIPE_DIR``: exit 0 only when no MPS process of this host uses PIPE_DIR.

The guard of the stale-pipe fix (:func:`labcheck.verdicts.mps.stale_pipe_fix`): ``<this> && { rm the dead daemon's
entries && start a daemon; }``. It asks what the MPS probe asks (:func:`labcheck.probes.mps.host_mps_on`): a process
of a container (the kind node's daemon) or of another pipe folder is no reason to stop, while one this user cannot
tell about (another user's, whose environment is closed to it) is.

WHY "idle" exits 0, and everything else non-zero: the fix runs the removal only after a 0, so an interpreter that
cannot import this module, a failed ``ps`` or a bad argument (all non-zero) removes nothing. Each process in the
way is printed (pid, command line), with what to do.
"""

from __future__ import annotations

import sys

from labcheck import cmd, mps
from labcheck.probes import mps as probe

BUSY, UNUSABLE = 1, 2  # exit statuses: an MPS process uses the folder (or may); the question could not be asked


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith("/"):
        print("usage: python -m labcheck.mps_idle /ABSOLUTE/PIPE/DIR", file=sys.stderr)
        return UNUSABLE
    ps = cmd.run(probe.PS_ARGV)
    if not ps.ok:  # no list is not "no process"
        print(f"cannot list the processes: {ps.describe()}", file=sys.stderr)
        return UNUSABLE
    found = probe.host_mps_on(mps.parse_ps(ps.stdout), argv[0])
    for h in found:
        why = "" if h.pipe_dir is not None else "   (its environment is not readable: run this as root to tell)"
        print(f"{h.proc.pid} {h.proc.args}{why}")
    return BUSY if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
