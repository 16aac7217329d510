"""Gather a session's facts concurrently: every fact the selected checks need starts at once, each
check waits only for the facts it uses.

WHY: module 0's facts come from independent processes and sockets (nvidia-smi, the Docker engine,
kind, helm, nvidia-ctk, ps, a CUDA client...). Asked one after another, as pytest sets fixtures up,
the checks took 5.8x the raw commands on the GPU host. Each fact is a plain function registered here
with :func:`fact`, naming the facts it needs; a fact's function asks for those with :meth:`Facts.get`,
which waits for them (or computes them in place when they were not started). The same functions run
serially when prefetch is off (``LABCHECK_PREFETCH=0``), which is how a test proves both ways give
the same verdicts.

Threads, not a pool: one daemon thread per started fact (module 0 has about twenty). A fact waiting
for another fact holds its thread; with a bounded pool that could deadlock, and a blocked thread
costs nothing. Daemon threads never keep an interrupted run alive, and :meth:`Facts.close` kills the
commands they still run and any they would start next (``labcheck.cmd.stop_threads``), so no probe outlives the run.

Safe under pytest-xdist: each worker has its own session and its own :class:`Facts`. A worker does
not know which checks it will be given, so it prefetches only facts that merely read; facts that act
(start a daemon, configure a runtime, start a probe container), and facts that need them, are
gathered when a check asks, exactly as without prefetch. Setup steps keep their file locks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from labcheck import cmd

ENV = "LABCHECK_PREFETCH"  # "0": gather each fact when a check first asks for it, one after another
CLOSE_WAIT = 5.0  # seconds close() waits for a fact that acts, so that it can be undone


@dataclass(frozen=True)
class Fact:
    name: str
    gather: Callable[[Facts], Any]
    needs: tuple[str, ...] = ()
    # Changes the host or starts something (setup step, probe container): see the module docstring.
    acts: Callable[[Any], bool] | bool = False
    # Undoes what ``gather`` did when the run ends before the fixture that owns the fact took it.
    release: Callable[[Facts, Any], None] | None = None


REGISTRY: dict[str, Fact] = {}


class Future:
    """A fact's value or exception, once gathered: a few lines instead of importing concurrent.futures
    (start-up time) for what is used here."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set_result(self, value: Any) -> None:
        self._value = value
        self._done.set()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def result(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError(f"not gathered within {timeout}s")
        if self._error is not None:
            raise self._error
        return self._value


def fact(name: str, *, needs: Iterable[str] = (), acts: Callable[[Any], bool] | bool = False,
         release: Callable[[Facts, Any], None] | None = None):
    """Register the decorated ``gather(facts)`` as the fact ``name`` (the name of its session fixture).

    ``acts`` is a bool or a predicate over the pytest config (e.g. "only with --fix-host").
    """

    def register(gather: Callable[[Facts], Any]) -> Callable[[Facts], Any]:
        REGISTRY[name] = Fact(name, gather, tuple(needs), acts, release)
        return gather

    return register


def enabled(env: dict | None = None) -> bool:
    """Prefetch is on unless ``LABCHECK_PREFETCH`` is 0 / no / off / false."""
    value = (os.environ if env is None else env).get(ENV, "1").strip().lower()
    return value not in ("0", "no", "off", "false")


class Facts:
    """The session's facts: started together by :meth:`start`, read with :meth:`get`."""

    def __init__(self, config: Any, lab_config: Any, registry: dict[str, Fact] | None = None) -> None:
        self.config = config
        self.lab_config = lab_config
        self.registry = REGISTRY if registry is None else registry
        self._futures: dict[str, Future] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._claimed: set[str] = set()
        self._lock = threading.Lock()

    # --- which facts ------------------------------------------------------------------------------

    def closure(self, names: Iterable[str]) -> list[str]:
        """``names`` and every fact they need, needed facts first."""
        out: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in self.registry:
                return
            seen.add(name)
            for dep in self.registry[name].needs:
                visit(dep)
            out.append(name)

        for n in sorted(names):
            visit(n)
        return out

    def acts(self, name: str) -> bool:
        """``name`` or a fact it needs changes something (so an xdist worker must not start it unasked)."""
        for n in self.closure([name]):
            flag = self.registry[n].acts
            if flag(self.config) if callable(flag) else flag:
                return True
        return False

    # --- gathering --------------------------------------------------------------------------------

    def start(self, names: Iterable[str], *, only_reads: bool = False) -> list[str]:
        """Start ``names`` and what they need, each in its own daemon thread; returns what was started."""
        started = []
        for name in self.closure(names):
            if only_reads and self.acts(name):
                continue
            with self._lock:
                if name in self._futures:
                    continue
                fut = self._futures[name] = Future()
            thread = threading.Thread(target=self._thread, args=(name, fut), name=f"labcheck-fact: {name}",
                                      daemon=True)
            self._threads[name] = thread
            thread.start()
            started.append(name)
        return started

    def get(self, name: str) -> Any:
        """The fact's value: waits when it was started, else gathers it here and now (once)."""
        with self._lock:
            fut = self._futures.get(name)
            inline = fut is None
            if inline:
                fut = self._futures[name] = Future()
        if inline:
            self._run(name, fut)
        return fut.result()

    def take(self, name: str) -> Any:
        """:meth:`get` for the fixture that owns the fact: undoing it at the end is now its job."""
        with self._lock:
            self._claimed.add(name)
        return self.get(name)

    def _thread(self, name: str, fut: Future) -> None:
        try:
            self._run(name, fut)
        finally:
            cmd.forget_thread(threading.get_ident())

    def _run(self, name: str, fut: Future) -> None:
        try:
            value = self.registry[name].gather(self)
        except BaseException as exc:  # pytest.skip and friends too: the fixture re-raises it as in a serial run
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    # --- the end ----------------------------------------------------------------------------------

    def close(self) -> None:
        """End of the session (or an interrupted one): stop what is still gathering, undo unowned setup.

        A fact nobody asked for (``-x`` stopped the run, Ctrl-C) may still be running a command: it is
        killed with its process group. A fact that acted but whose fixture never took it is released
        (e.g. the MPS daemon this run started is stopped), as its fixture's teardown would have.
        """
        running = {t.ident for t in self._threads.values() if t.is_alive() and t.ident is not None}
        if running:
            cmd.stop_threads(running)  # what they run now, and what they would start next
            # a thread between starting a child and tracking it must get there before the interpreter exits
            deadline = time.monotonic() + CLOSE_WAIT
            for thread in self._threads.values():
                thread.join(max(0.0, deadline - time.monotonic()))
        for name, fut in list(self._futures.items()):
            spec = self.registry.get(name)
            if spec is None or spec.release is None or name in self._claimed:
                continue
            try:
                value = fut.result(timeout=CLOSE_WAIT)
            except BaseException:  # noqa: BLE001 - it never produced anything to undo
                continue
            spec.release(self, value)
