"""Get progress lines (labcheck.progress) onto the terminal of a pytest run, past output capture.

Why not the terminal reporter or ``sys.stderr``: while a fixture runs, pytest's default fd capture
points file descriptors 1 and 2 at temporary files, so anything written through them (including
``sys.__stderr__``) only shows up after the step, in the report of a failure. During
``pytest_configure`` capture is suspended, so a duplicate of fd 2 taken then still points at the
real terminal (or log file) for the whole run. On a pytest-xdist worker fd 2 is inherited from the
controller, so the same trick puts the worker's lines on the controller's terminal; they are
prefixed with the worker id.

A line is written whole with one ``os.write`` (safe from the ticker thread), after flushing the
terminal reporter so it lands after pytest's own output, on a fresh line.
"""

from __future__ import annotations

import os

import pytest

from labcheck import progress


class TerminalProgress:
    """A progress writer bound to one pytest run (install with :meth:`install`)."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._fd: int | None = None
        self._previous: progress.Writer | None = None
        worker = getattr(config, "workerinput", None)
        self._prefix = f"[{worker['workerid']}] " if worker else ""
        self._width_after_last_line: int | None = None

    def install(self) -> None:
        try:
            self._fd = os.dup(2)
        except OSError:  # no stderr at all (a daemon): keep the default writer
            return
        self._previous = progress.set_writer(self)

    def uninstall(self) -> None:
        if self._fd is None:
            return
        progress.set_writer(self._previous)
        fd, self._fd = self._fd, None
        os.close(fd)

    def _terminal_writer(self):
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        return getattr(reporter, "_tw", None)

    def __call__(self, line: str) -> None:
        fd = self._fd
        if fd is None:
            return
        text = self._prefix + line + "\n"
        # A worker's terminal reporter writes nowhere a person sees: only the controller's is consulted.
        tw = None if self._prefix else self._terminal_writer()
        if tw is not None:
            tw.flush()
            width = tw.width_of_current_line
            # pytest is mid-line ("test_module1.py .."): start a new line, unless that line is the one
            # our previous line already ended (pytest does not know we wrote; its width is unchanged).
            if width and width != self._width_after_last_line:
                text = "\n" + text
            self._width_after_last_line = width
        os.write(fd, text.encode("utf-8", "replace"))
