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


class LockProblem(Exception):
    """The lock could not be taken; ``str(exc)`` says why. ``timed_out``: another process held it too long."""

    def __init__(self, text: str, path: Path, *, timed_out: bool) -> None:
        super().__init__(text)
        self.path = path
        self.timed_out = timed_out


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def holder(path: Path) -> str:
    """Who last took the lock at ``path`` ("pid N on HOST"), or "" when unknown."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return _holder_file(path).read_text().strip()
    return ""


def _open_lock_file(path: Path) -> int:
    """The lock file's descriptor: a regular file, created if absent; never follows a link at ``path``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
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
        fd = _open_lock_file(path)
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
            _holder_file(path).write_text(f"pid {os.getpid()} on {socket.gethostname()}\n")
        yield path
    finally:
        os.close(fd)  # closing the only descriptor of this open file releases its flock
