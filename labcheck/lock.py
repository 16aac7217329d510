"""The one inter-process file lock of the suite: setup steps that pytest-xdist workers (or two runs) could do at
once take it, so one does the step and the others wait and find it done.

``held(directory, name, timeout)`` creates the folder, takes ``directory/name`` and turns a timeout or an
unusable folder into one :class:`LockProblem` whose text names the lock, how long it waited and who holds it
(each holder leaves its pid next to the lock).

WHY flock and not the filelock package (used before): importing filelock took 22 ms after pytest and
55-75 ms alone on the build VM, and it was the first thing the MPS daemon's start did, on the longest
chain of module 0's facts, competing with the docker SDK's import for the interpreter (benchmarks/module0.py
showed 50-140 ms between that fact's start and its first command; 6-40 ms without the import). This
suite runs on Linux only, where ``fcntl.flock`` on a regular file is the whole of what it needed, and
fleet hosts need one package fewer. The lock is the open file description's: it is released when the
descriptor is closed, also when the process dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from labcheck import fsio


class LockProblem(Exception):
    """The lock could not be taken; ``str(exc)`` says why. ``timed_out``: another process held it too long."""

    def __init__(self, text: str, path: Path, *, timed_out: bool) -> None:
        super().__init__(text)
        self.path = path
        self.timed_out = timed_out


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def holder(path: Path) -> str:
    """Who last took the lock at ``path`` ("pid N on HOST"), or "" when unknown (also when something other than
    a regular file is in the holder's place: a FIFO there hung every run that timed out waiting for the lock)."""
    with contextlib.suppress(OSError, fsio.FileProblem):
        return fsio.read_text(_holder_file(path), 512, follow_symlinks=False).strip()
    return ""


def _write_holder(path: Path) -> None:
    """Leave this process's name next to the lock, for the message of a run that waits too long for it."""
    fd = _open_regular(_holder_file(path), os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")


def _open_regular(path: Path, flags: int) -> int:
    """A descriptor of the regular file ``path``, created (0644) if absent, opened with ``flags``.

    WHY so careful: lock files live in shared folders (the Docker lock and its holder in /tmp/dra-labcheck-UID,
    where any user may create a name first). A symlink there is never followed (root would write through it), a FIFO
    never blocks the open (it hung the run), a device is never opened: OSError(EINVAL) naming what is there.
    """
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{path} is {fsio.kind_of(mode)}, not a regular file (remove it; the suite "
                                        "makes a new one)")
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the lstat
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


def _acquire(fd: int, timeout: float) -> bool:
    """Take the exclusive lock on ``fd`` within ``timeout`` seconds: False if another process held it longer.

    Polls a non-blocking flock, first every millisecond, then up to every 50 ms: a lock that is free is
    taken at once, a held one is retried soon after it is released, without a thread parked in a
    blocking call that a timeout could not end.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


@contextlib.contextmanager
def held(directory: str | os.PathLike, name: str, timeout: float) -> Iterator[Path]:
    """Hold the lock ``directory/name`` for the with-block (waiting at most ``timeout`` seconds).

    Raises LockProblem (before the block runs) when another process holds it longer, or when the folder
    cannot be made or used; exceptions of the block itself pass through unchanged.
    """
    folder = Path(directory)
    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _open_regular(path, os.O_RDWR)
    except OSError as exc:
        raise LockProblem(f"cannot use the state folder {folder} for the lock {name}: {exc.strerror or exc}",
                          path, timed_out=False) from None
    try:
        try:
            got = _acquire(fd, timeout)
        except OSError as exc:  # ENOLCK and the like (a file system without flock): not a held lock
            raise LockProblem(f"cannot lock {path}: {exc.strerror or exc} (the state folder {folder} must be on a "
                              "local file system; set state_dir in the lab config)", path, timed_out=False) from None
        if not got:
            who = holder(path)
            raise LockProblem(f"another labcheck run ({who or 'holder unknown'}) held the lock {path} for over "
                              f"{timeout:g}s", path, timed_out=True)
        with contextlib.suppress(OSError):  # only for the message above: a lock without it still locks
            _write_holder(path)
        yield path
    finally:
        os.close(fd)  # closing the only descriptor of this open file releases its flock
