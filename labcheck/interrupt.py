"""Make ``kill`` (SIGTERM) stop a run the way Ctrl-C does.

WHY: Python dies on SIGTERM without running anything, so a run killed in the middle of a setup step
would skip the cleanup that Ctrl-C gets (pytest tears the session fixtures down and
:func:`labcheck.cmd.run` stops the command it was waiting for, which runs in its own session and
would otherwise go on changing the host). Turning SIGTERM into KeyboardInterrupt gives both signals
one path. SIGKILL cannot be caught: the setup actions are written so that the next run repairs what
such a run left (atomic renames, backups, state files checked against live processes).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_previous: object = None


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def install() -> bool:
    """Route SIGTERM to KeyboardInterrupt, unless someone else already handles it. True if installed."""
    global _previous
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGTERM)
    if current not in (signal.SIG_DFL, None):
        return False
    _previous = current
    signal.signal(signal.SIGTERM, _terminate)
    return True


def uninstall() -> None:
    global _previous
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is _terminate:
        signal.signal(signal.SIGTERM, _previous if _previous is not None else signal.SIG_DFL)
    _previous = None
