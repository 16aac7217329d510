"""Show what a long setup step is doing and for how long (cluster creation, image pulls).

Why: ``kind create cluster`` or pulling a node image takes minutes, and under pytest nothing the
step prints reaches the terminal (output is captured), so a silent run looks hung and gets killed.
``with step("creating cluster workshop-dra"):`` prints a start line, then, from a small daemon
thread, a ``still creating cluster workshop-dra ... 40s`` line every ``interval`` seconds while the
block runs, and an end line with the duration. Each finished step is kept (:func:`history`) so the
report can show where the setup time went.

Lines go to the process's real stderr by default. Under pytest, ``reports.plugin`` installs a
writer (:func:`set_writer`) that gets past pytest's output capture and, on a pytest-xdist worker,
still reaches the terminal of the run (see ``reports/progress_output.py``).

The ``with step(...)`` block gets a :class:`Step` whose :meth:`Step.note` says what the step is
doing right now (``s.note("waiting for the node to be Ready")``); the next "still" line shows it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

PREFIX = "[labcheck]"
DEFAULT_INTERVAL = 15.0
INTERVAL_ENV = "LABCHECK_PROGRESS_INTERVAL"

Writer = Callable[[str], None]

_lock = threading.Lock()
_writer: Writer | None = None
_history: list[StepRecord] = []


@dataclass(frozen=True)
class StepRecord:
    """One finished step: what it was, how long it took, and how it ended."""

    what: str
    seconds: float
    ok: bool
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def format_duration(seconds: float) -> str:
    """``4.2s`` under a minute, ``2m 05s`` above: what a person reads at a glance."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s"


def set_writer(writer: Writer | None) -> Writer | None:
    """Send progress lines to ``writer`` (None: the real stderr). Returns the previous writer."""
    global _writer
    with _lock:
        previous, _writer = _writer, writer
    return previous


def history() -> list[StepRecord]:
    """The steps finished in this process so far, oldest first."""
    with _lock:
        return list(_history)


def _stderr_writer(line: str) -> None:
    out = sys.__stderr__
    if out is not None:
        out.write(line + "\n")
        out.flush()


def emit(text: str) -> None:
    """Print one progress line. Never raises: showing progress must not break the step itself."""
    writer = _writer or _stderr_writer
    # A closed terminal or a broken pipe is not the step's failure.
    with contextlib.suppress(Exception):
        writer(f"{PREFIX} {text}")


def interval_from_env() -> float:
    """``$LABCHECK_PROGRESS_INTERVAL`` in seconds (unset or empty: the default). Raises ValueError, saying what
    was expected, for anything but a finite number > 0 (``nan``, ``inf``, ``-5``, ``soon``): the plugin turns
    it into a usage error at start."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{INTERVAL_ENV}={raw!r}: expected a finite number of seconds > 0, e.g. "
                         f"{INTERVAL_ENV}={DEFAULT_INTERVAL:g}; unset it for the default")
    return value


def _default_interval() -> float:
    try:
        return interval_from_env()
    except ValueError:  # refused at start by the plugin; a library caller gets the default
        return DEFAULT_INTERVAL


class Step:
    """A running step; ``note()`` says what it is doing now, ``elapsed`` how long it has run."""

    def __init__(self, what: str, interval: float) -> None:
        self.what = what
        self.interval = interval
        self.started = time.monotonic()
        self._doing = ""
        self._failure = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick, name=f"labcheck-progress: {what}", daemon=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, doing: str) -> None:
        """Say what the step is doing now (shown in the next "still" line)."""
        self._doing = doing

    def fail(self, reason: str) -> None:
        """Mark the step failed without raising: commands report failure as values (labcheck.cmd)."""
        self._failure = reason or "failed"

    def _describe(self) -> str:
        return f"{self.what} ({self._doing})" if self._doing else self.what

    def _tick(self) -> None:
        # Event.wait returns True as soon as the step ends, so the thread never outlives it by a tick.
        while not self._done.wait(self.interval):
            emit(f"still {self._describe()} ... {format_duration(self.elapsed)}")

    def _start(self) -> None:
        emit(f"{self.what} ...")
        self._thread.start()

    def _finish(self, error: BaseException | None) -> StepRecord:
        self._done.set()
        self._thread.join()
        seconds = self.elapsed
        if error is None and self._failure:
            record = StepRecord(self.what, round(seconds, 3), False, self._failure)
            emit(f"{self.what}: failed after {format_duration(seconds)} ({self._failure})")
        elif error is None:
            record = StepRecord(self.what, round(seconds, 3), True)
            emit(f"{self.what}: done in {format_duration(seconds)}")
        else:
            reason = f"{type(error).__name__}: {error}".strip().rstrip(":")
            record = StepRecord(self.what, round(seconds, 3), False, reason)
            verb = "failed" if isinstance(error, Exception) else "stopped"
            emit(f"{self.what}: {verb} after {format_duration(seconds)} ({reason})")
        with _lock:
            _history.append(record)
        return record


@contextmanager
def step(what: str, *, interval: float | None = None) -> Iterator[Step]:
    """Run the block as a named step: announce it, report every ``interval`` s, time it, record it.

    ``interval`` defaults to ``$LABCHECK_PROGRESS_INTERVAL`` or 15 s. Exceptions (and pytest's
    skip/fail outcomes) propagate unchanged; the step is recorded as failed with their reason.
    """
    current = Step(what, interval if interval and interval > 0 else _default_interval())
    current._start()
    try:
        yield current
    except BaseException as exc:
        current._finish(exc)
        raise
    current._finish(None)
