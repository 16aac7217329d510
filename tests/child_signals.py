"""Children that tests signal start with default signal handling, whatever the suite inherited.

WHY: a suite started in the background (``nohup .ci/run &``, a CI runner) inherits SIGINT (and SIGQUIT)
ignored, and an ignored signal stays ignored across fork and exec; a Python child then never installs
its KeyboardInterrupt handler, so a test that sends Ctrl-C would wait for a child that cannot hear it.
Pass :func:`default_signals` as ``preexec_fn`` to every Popen whose child a test signals (safe with threads
around: it only makes signal system calls, it takes no lock and imports nothing).
"""

from __future__ import annotations

import contextlib
import signal

# The signals a test sends or a shell may have set to ignored; SIGKILL/SIGSTOP cannot be changed.
RESET = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGUSR1,
         signal.SIGUSR2)


def default_signals() -> None:
    """In the child, before exec: default dispositions and an empty signal mask."""
    for sig in RESET:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
