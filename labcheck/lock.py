"""The one inter-process file lock of the suite: setup steps that pytest-xdist workers (or two runs) could do at
once take it, so one does the step and the others wait and find it done.

``held(directory, name, timeout)`` creates the folder, takes ``directory/name`` and turns a timeout or an
unusable folder into one :class:`LockProblem` whose text names the lock, how long it waited and who holds it
(each holder leaves its pid next to the lock). filelock is imported lazily, inside :func:`held`: module 0's
start-up must not pay for it (tests/test_startup.py), only a run that sets something up does.
"""

from __future__ import annotations

import contextlib
import os
import socket
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


@contextlib.contextmanager
def held(directory: str | os.PathLike, name: str, timeout: float) -> Iterator[Path]:
    """Hold the lock ``directory/name`` for the with-block (waiting at most ``timeout`` seconds).

    Raises LockProblem (before the block runs) when another process holds it longer, or when the folder
    cannot be made or used; exceptions of the block itself pass through unchanged.
    """
    # lazy: module 0's start-up must not import filelock (tests/test_startup.py); only setup steps lock
    from filelock import FileLock, Timeout

    folder = Path(directory)
    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        lock.acquire(timeout=timeout)
    except Timeout:
        who = holder(path)
        raise LockProblem(f"another labcheck run ({who or 'holder unknown'}) held the lock {path} for over "
                          f"{timeout:g}s", path, timed_out=True) from None
    except OSError as exc:
        raise LockProblem(f"cannot use the state folder {folder} for the lock {name}: {exc.strerror or exc}",
                          path, timed_out=False) from None
    try:
        with contextlib.suppress(OSError):  # only for the message above: a lock without it still locks
            _holder_file(path).write_text(f"pid {os.getpid()} on {socket.gethostname()}\n")
        yield path
    finally:
        lock.release()
