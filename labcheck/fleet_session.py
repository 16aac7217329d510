"""Run the suite on many hosts at once with pytest-xdist over SSH (execnet), one session per host.

This is pytest-xdist's own distributed session (:class:`xdist.dsession.DSession`) and execnet's SSH
gateways, with three fleet policies that xdist's defaults get wrong for a classroom of machines:

* A host that dies: xdist either restarts the worker (reconnecting to a dead machine, which stops
  the session with an error) or, with ``--max-worker-restart=0``, shuts every worker down, and
  workers that had not been given their tests yet never run them. Here the lost host is reported
  (``died``, ``timed out``, or ``worker failed`` when pytest could not start there) and every
  other host carries on.
* Scheduling: like ``--dist each`` (every host runs every selected check, session fixtures once per
  host) but each host starts as soon as its own collection is in, instead of waiting for all hosts.
* Per-host time limit: a timer kills the host's SSH connection when its run exceeds the inventory
  ``timeout``, counted from that host's own start (probe, shipping and start-up included); SSH
  keep-alives detect a silent network (see :data:`labcheck.inventory.KEEPALIVE`).
* Hosts start independently: each is probed, shipped and started in its own thread while the hosts
  already up run their checks, so a host that stalls after connecting (before its first check)
  delays no other host; its own timer cuts it.

Each host is probed first over plain ``ssh`` with a timeout (:mod:`labcheck.probes.fleet`); its
gateway then reuses that SSH connection (a control socket). The suite's code, and pytest itself as
pytest-xdist 3 would rsync it, is shipped as one archive to each host whose copy differs
(:mod:`labcheck.fleet_ship`). Each host needs only Python and the suite's third-party packages.

Reports from the hosts get their nodeid prefixed with the host name: the same check runs on every
host, and pytest-html and the terminal key results by nodeid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import execnet
import pytest
from xdist import dsession as _dsession
from xdist.dsession import DSession
from xdist.workermanage import NodeManager, WorkerController

from labcheck import cmd, fleet_ship
from labcheck.fleet_plugin import HOST_TIMING_KEYS, HOST_TIMINGS, for_host
from labcheck.inventory import COLLECT_CHECK, CONNECTION_CHECK, WORKER_PIDFILE, Host
from labcheck.plugin import HOST_PROP, VERDICT_PROP, module_of_path
from labcheck.probes import fleet as fleet_probe
from labcheck.verdict import failed

WorkerStatus = getattr(_dsession, "WorkerStatus", None)  # the collection status line (pytest-xdist >= 3.6)

DIED = "died"
WORKER_FAILED = "worker failed"
TIMED_OUT = "timed out"
STOPPED = "stopped"  # the run ended (Ctrl-C, a kill) while this host was still starting or running
PENDING = "pending"
CLOSE_WAIT = 20.0  # seconds the session's end waits for done hosts' connections to close (FleetSession._close_soon)
SHARED_EXIT_TIMEOUT = 10.0  # seconds for `ssh -O exit` to end a host's shared connection


@dataclass
class HostState:
    """What the fleet runner knows about one host's connection (not its checks)."""

    host: Host
    status: str = PENDING
    message: str = ""
    remediation: str = ""
    python_version: str = ""
    deadline_hit: bool = False
    # Seconds from this host's start to each step it reached (probed, connected, shipped, worker started,
    # collected, finished) and, as "start", from the session's start to the host's: where a slow host's
    # time went (benchmarks/fleet.py prints them across hosts).
    timings: dict[str, float] = field(default_factory=dict)
    _began: float = 0.0

    @property
    def name(self) -> str:
        return self.host.name

    def began(self, session_start: float) -> None:
        self._began = time.monotonic()
        self.timings["start"] = round(self._began - session_start, 3)

    def reached(self, step: str) -> None:
        if self._began and step not in self.timings:
            self.timings[step] = round(time.monotonic() - self._began, 3)

    def as_dict(self) -> dict:
        return {"name": self.name, "target": self.host.target, "status": self.status,
                "message": self.message, "remediation": self.remediation, "python": self.python_version,
                "timings": dict(self.timings)}


def connection_reports(state: HostState, module: str, rerun: str) -> list[pytest.TestReport]:
    """A failing ``host_connection`` check for a host that could not run (or stopped), as reports."""
    return host_failure_reports(state.name, module, CONNECTION_CHECK,
                                f"{state.name}: {state.status}: {state.message}", state.remediation or rerun)


def host_failure_reports(host: str, module: str, check: str, message: str, fix: str,
                         where: str = "fleet") -> list[pytest.TestReport]:
    """A failing check ``check`` of ``host`` that the fleet runner found (not a check the host ran), as reports.

    Real pytest reports (call + teardown, as pytest-html renders a test at its teardown), so the
    host shows up in the terminal, the HTML table, the JSON records and the exit status.
    """
    verdict = failed(message, fix)
    nodeid = f"{host}::{where}::test_{check}"
    props = [(HOST_PROP, host), (VERDICT_PROP, verdict.as_dict())]
    common = dict(nodeid=nodeid, location=(where, None, f"test_{check}"),
                  keywords={module: 1, f"test_{check}": 1}, user_properties=props, duration=0.0)
    call = pytest.TestReport(outcome="failed", when="call", sections=[],
                             longrepr=f"{verdict.message}\nRemediation: {fix}", **common)
    teardown = pytest.TestReport(outcome="passed", when="teardown", sections=[], longrepr=None, **common)
    return [call, teardown]


@contextmanager
def invocation_args(config: pytest.Config, args: Sequence[str]):
    """Let xdist send ``args`` to the worker instead of the controller's own command line.

    xdist gives remote workers the controller's invocation args, after requiring every argument
    that names a local path to lie inside a folder it rsyncs. The controller's args (--hosts FILE,
    --html FILE, local test paths) mean nothing on the host; :func:`labcheck.fleet_plugin.worker_args`
    builds the ones that do.
    """
    saved = config.invocation_params
    config.invocation_params = dataclasses.replace(saved, args=tuple(args))
    try:
        yield
    finally:
        config.invocation_params = saved


class FleetScheduling:
    """``--dist each`` for a fleet: every host runs all its collected items, starting as soon as
    its own collection arrives; a host that goes away is forgotten, not waited for."""

    def __init__(self, expected: int, gone_at_start=lambda: 0) -> None:
        self.expected = expected
        self.gone_at_start = gone_at_start  # hosts that never came up (still starting ones are awaited)
        self.node2collection: dict = {}
        self.node2pending: dict = {}
        self.started: set = set()
        self.gone = 0  # hosts removed before they were given their tests
        self.collection_is_completed = False

    @property
    def nodes(self) -> list:
        return list(self.node2pending)

    @property
    def tests_finished(self) -> bool:
        # Every host got "run all, then shut down" or is gone: nothing left to hand out.
        return len(self.started) + self.gone + self.gone_at_start() >= self.expected

    @property
    def has_pending(self) -> bool:
        return any(self.node2pending.values())

    def add_node(self, node) -> None:
        self.node2pending[node] = []

    def add_node_collection(self, node, collection: Sequence[str]) -> None:
        self.node2collection[node] = list(collection)
        self.collection_is_completed = True  # lets DSession call schedule() for this host now

    def mark_test_complete(self, node, item_index: int, duration: float = 0) -> None:
        # A host collects and runs on its own (told "run all" at its start): once the session is stopping
        # (-x, --maxfail, a host's Ctrl-C) its collection is no longer taken, but its checks still report.
        pending = self.node2pending.get(node)
        if pending and item_index in pending:
            pending.remove(item_index)

    def mark_test_pending(self, item: str) -> None:
        raise NotImplementedError

    def remove_pending_tests_from_node(self, node, indices: Sequence[int]) -> None:
        raise NotImplementedError

    def remove_node(self, node) -> str | None:
        """Forget ``node``; return the item it was running, if any."""
        pending = self.node2pending.pop(node, None)
        if node not in self.started:
            self.gone += 1
        if not pending:
            return None
        return self.node2collection[node][pending[0]]

    def schedule(self) -> None:
        # The host was told "run all, then shut down" as soon as its worker started (FleetSession._start_host):
        # here its collection only tells which items it runs.
        for node, pending in self.node2pending.items():
            if node in self.started or node not in self.node2collection:
                continue
            pending[:] = range(len(self.node2collection[node]))
            self.started.add(node)


class FleetSession(DSession):
    """xdist's distributed session with the fleet policies described in the module docstring."""

    def __init__(self, config: pytest.Config, states: list[HostState], worker_args: list[str],
                 rootdir: Path, lab_config: bytes | None, module: str, rerun: str) -> None:
        super().__init__(config)
        self.states = {s.name: s for s in states}
        self.worker_args = worker_args
        self.rootdir = rootdir
        self.lab_config = lab_config
        self.module = module
        self.rerun = rerun
        self._expected = 0
        self._synthetic = 0
        self._control_dir = ""
        self._queued_reports: list[pytest.TestReport] = []
        self._timers: dict[str, threading.Timer] = {}
        self._closers: list[threading.Thread] = []
        self._closing: set[str] = set()
        self._gateways: dict[str, execnet.Gateway] = {}
        self._starting = 0
        self._gone_at_start = 0
        self._args = None
        self._done: set[str] = set()
        self._lock = threading.Lock()
        self._session_start = time.monotonic()
        self._bundle_lock = threading.Lock()
        self._shipped: fleet_ship.Bundle | None = None

    # --- start ------------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start every host, each in its own thread; the run loop takes each host as it comes up."""
        self._session = session
        self._session_start = time.monotonic()
        states = list(self.states.values())
        self._control_dir = tempfile.mkdtemp(prefix="labcheck-ssh-", dir="/tmp" if os.path.isdir("/tmp") else None)
        for i, state in enumerate(states):  # socket paths must stay short (about 100 bytes): numbers, not names
            state.host = dataclasses.replace(state.host, control_path=os.path.join(self._control_dir, str(i)))
        self.nodemanager = NodeManager(self.config, specs=[s.host.xspec() for s in states])
        self.config.hook.pytest_xdist_setupnodes(config=self.config, specs=self.nodemanager.specs)
        self._expected = len(states)
        self._starting = len(states)
        # xdist sends the invocation args when a worker starts: the hosts' args until the last host started
        self._args = invocation_args(self.config, self.worker_args)
        self._args.__enter__()
        if not states:
            self._started_all()
        for state, spec in zip(states, self.nodemanager.specs, strict=True):
            threading.Thread(target=self._start, args=(state, spec), name=f"labcheck-fleet-start: {state.name}",
                             daemon=True).start()

    def _started_all(self) -> None:
        args, self._args = self._args, None
        if args is not None:
            args.__exit__(None, None, None)

    def _start(self, state: HostState, spec: execnet.XSpec) -> None:
        """Thread: probe the host (bounded), open its execnet gateway over ssh, ship, start the worker.

        The same steps as xdist's NodeManager.setup_node, for one host, reporting instead of raising.
        The host's timer starts now: a host that stalls here is cut when its own time is up.
        """
        state.began(self._session_start)
        self._arm_timer(state)
        try:
            node = self._start_host(state, spec)
        except Exception as exc:  # a bug here must cost one host, not the fleet
            self._lost(state, fleet_probe.UNREACHABLE, f"the fleet runner failed on this host: {exc!r}")
            node = None
        with self._lock:
            self._starting -= 1
            if self._starting == 0:
                self._started_all()
            if node is None:
                self._gone_at_start += 1
                self._done.add(state.name)
        if node is None:
            self._timers[state.name].cancel()
        self.queue.put(("fleethoststarted", {"name": state.name}))  # wakes the run loop

    def worker_fleethoststarted(self, name: str) -> None:
        """Main thread: a host finished starting (or failed to): show what is queued for it."""
        self._flush_reports()

    def _flush_reports(self) -> None:
        with self._lock:
            reports, self._queued_reports = self._queued_reports, []
        for rep in reports:
            self.config.hook.pytest_runtest_logreport(report=rep)

    def _start_host(self, state: HostState, spec: execnet.XSpec) -> WorkerController | None:
        res = fleet_probe.probe(state.host)
        state.reached("probed")
        state.python_version = res.python_version
        if not res.ok:
            self._lost(state, res.status, res.message, res.remediation)
            return None
        try:
            gateway = self.nodemanager.group.makegateway(spec)
        except Exception as exc:  # ssh or the bootstrap failed after a good probe
            self._lost_at_start(state, f"could not open the SSH gateway: {_one_line(exc)}")
            return None
        self._gateways[state.name] = gateway
        state.reached("connected")
        try:
            with self._lock:  # hooks write to the terminal
                self.config.hook.pytest_xdist_newgateway(gateway=gateway)
            fleet_ship.ship(gateway, self._bundle(), self.lab_config, WORKER_PIDFILE)
            state.reached("shipped")
            with self._lock:  # registers a plugin and calls hooks: one host at a time
                node = WorkerController(self.nodemanager, gateway, self.config, self.queue.put)
                gateway.node = node  # keeps the node alive, as xdist does
                # Active (and ok) before its first event can reach the run loop: an early errordown must find
                # it there, not have it added (and its status reset) after.
                state.status, state.message = fleet_probe.OK, f"Python {state.python_version}"
                self._active_nodes.add(node)
                try:
                    node.setup()
                except BaseException:
                    self._active_nodes.discard(node)
                    raise
                # "Run all, then shut down", sent now: the worker keeps commands until its collection is done
                # and starts its checks at once, instead of waiting for the controller to read its collection
                # and answer (one round trip per host, behind every other host's events on a busy controller).
                with contextlib.suppress(OSError, ValueError):  # a channel closed already: its errordown says why
                    node.send_runtest_all()
                    node.shutdown()
            state.reached("worker started")
        except Exception as exc:  # the suite could not be shipped or the worker not started
            self._lost_at_start(state, f"could not start the remote worker: {_one_line(exc)}")
            return None
        return node

    def _bundle(self) -> fleet_ship.Bundle:
        """The suite and, as pytest-xdist 3 would rsync them, its roots (pytest itself): built once per run."""
        with self._bundle_lock:
            if self._shipped is None:
                # xdist 3 rsyncs these to every non-local host (xdist 4 ships none): shipped with the suite instead
                roots = getattr(self.nodemanager, "roots", None) if hasattr(self.nodemanager, "rsync_roots") else None
                sources = [(name, self.rootdir / name) for name in fleet_ship.SHIPPED
                           if os.path.lexists(self.rootdir / name)]
                sources += [(Path(r).name, Path(r)) for r in roots or ()]
                self._shipped = fleet_ship.bundle(sources)
            return self._shipped

    def _lost_at_start(self, state: HostState, message: str) -> None:
        if state.deadline_hit:
            self._lost(state, TIMED_OUT, f"not started within its {state.host.timeout:g}s time limit "
                       f"(connected, then stalled before its first check); connection closed")
        else:
            self._lost(state, fleet_probe.UNREACHABLE, message)

    def _arm_timer(self, state: HostState) -> None:
        timer = threading.Timer(state.host.timeout, self._expire, args=(state,))
        timer.daemon = True
        self._timers[state.name] = timer
        timer.start()

    def _expire(self, state: HostState) -> None:
        """Timer thread: the host ran past its time limit; cut its connection (xdist sees it go down)."""
        with self._lock:
            if state.name in self._done:
                return
            state.deadline_hit = True
        # A worker stuck in a check would not notice a closed connection: stop it on the host first.
        cmd.run(state.host.stop_worker_command(), timeout=state.host.connect_timeout + 10)
        gateway = self._gateways.get(state.name)
        if gateway is None:  # still opening the gateway: end the shared ssh connection it runs over
            _exit_shared_connection(state.host)
        with contextlib.suppress(Exception):  # already gone is fine
            gateway._io.kill()  # the local ssh process; execnet then reports the channel closed

    # --- scheduling -------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log) -> FleetScheduling:
        return FleetScheduling(self._expected, lambda: self._gone_at_start)

    @pytest.hookimpl
    def pytest_runtestloop(self) -> bool:
        self._flush_reports()
        if not self._expected:
            return True
        try:
            return super().pytest_runtestloop()
        finally:
            self._stopped_hosts()

    def _stopped_hosts(self) -> None:
        """Main thread, the run loop ended: a host not done yet was cut short (Ctrl-C or SIGTERM end the loop while
        hosts still run; -x and --maxfail let every host finish), so its remaining checks have no record; it is
        reported, never left READY.

        WHY: a host's READY is built from the records that came back; with none for the checks it had not
        reached, and no other host to compare with, a host stopped halfway read READY."""
        with self._lock:
            stopped = [s for s in self.states.values() if s.name not in self._done]
            self._done.update(s.name for s in stopped)
        for state in stopped:
            timer = self._timers.pop(state.name, None)
            if timer is not None:
                timer.cancel()
            where = "still starting" if state.status == PENDING else "still running its checks"
            self._lost(state, STOPPED, f"the run was stopped (Ctrl-C or a kill) while this host was {where}: "
                       f"the checks it had not finished did not run",
                       for_host(self.rerun, state.name), emit=True)

    def loop_once(self) -> None:
        """DSession's loop step, except that no host being up is fine while others are still starting."""
        while True:
            with self._lock:
                idle = not self._active_nodes and not self._starting
            if idle and self.queue.empty():
                self.triggershutdown()  # every host finished or never came up
                return
            try:
                callname, kwargs = self.queue.get(timeout=2.0)
                break
            except Empty:
                continue
        getattr(self, "worker_" + callname)(**kwargs)
        if self.sched.tests_finished:
            self.triggershutdown()

    # --- events from hosts --------------------------------------------------------------------------

    def worker_logstart(self, node, nodeid: str, location) -> None:
        super().worker_logstart(node, f"{node.gateway.id}::{nodeid}", location)

    def worker_logfinish(self, node, nodeid: str, location) -> None:
        super().worker_logfinish(node, f"{node.gateway.id}::{nodeid}", location)

    def worker_testreport(self, node, rep: pytest.TestReport) -> None:
        rep.nodeid = f"{node.gateway.id}::{rep.nodeid}"
        super().worker_testreport(node, rep)

    def worker_collectreport(self, node, rep) -> None:
        """A host could not collect a check file (or skipped one): named by its host, and a failure is that
        host's failing ``checks_collected`` check, since the file's checks never ran there (the host must not
        be READY; pytest-xdist alone shows one such error per distinct text, without the host)."""
        name = node.gateway.id
        path = rep.nodeid
        rep.nodeid = f"{name}::{path}"
        super().worker_collectreport(node, rep)
        state = self.states.get(name)
        if rep.failed and state is not None:
            why = _PYTEST_ERROR_MARK.sub("", _one_line(getattr(rep, "longreprtext", "") or rep.longrepr))
            module = module_of_path(path) or self.module  # tests_env/test_module1.py: module1's failure
            with self._lock:
                self._synthetic += 1  # progress counts it
            for report in host_failure_reports(name, module, COLLECT_CHECK,
                                               f"{name}: {path or 'the checks'} could not be collected: {why}",
                                               self._reproduce(state), where=path or "fleet"):
                self.config.hook.pytest_runtest_logreport(report=report)

    def worker_workerfinished(self, node) -> None:
        state = self._finish(node)
        if state is not None:
            state.timings.update(host_clock(getattr(node, "workeroutput", None)))
        super().worker_workerfinished(node)
        self._close_soon(node)

    def worker_errordown(self, node, error: object | None) -> None:
        """A host went away: report it and let the others finish (no restart, no global shutdown)."""
        state = self._finish(node)
        self.config.hook.pytest_testnodedown(node=node, error=error)
        crashitem = self.sched.remove_node(node) if self.sched is not None else None
        where = f" while running {crashitem}" if crashitem else ""
        if state is not None:
            if state.deadline_hit:
                self._lost(state, TIMED_OUT, f"still running after its {state.host.timeout:g}s time limit"
                           f"{where}; connection closed", emit=True)
            elif not hasattr(node, "workerinfo") and not _connection_lost(error):
                self._lost(state, WORKER_FAILED, f"pytest could not start on the host: {_one_line(error)}",
                           self._reproduce(state), emit=True)
            else:
                self._lost(state, DIED, f"connection lost{where}: {_one_line(error)}", emit=True)
        self._active_nodes.discard(node)
        self._close_soon(node)

    def _reproduce(self, state: HostState) -> str:
        """The command that shows the host's start-up error in full, run where the suite was shipped."""
        h = state.host
        return h.manual_ssh(f"cd {shlex.quote(h.remote_dir)} && LABCHECK_HOST_NAME={shlex.quote(h.name)} "
                            f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 "
                            f"{shlex.quote(h.python)} -m pytest {shlex.join(self.worker_args)}")

    def worker_collectionfinish(self, node, ids: Sequence[str]) -> None:
        """A host collected its checks: it starts right away (DSession's version, less its
        "all workers collected" messages, which a fleet would print once per host)."""
        if self.shuttingdown or self.sched is None:
            return
        if (state := self.states.get(node.gateway.id)) is not None:
            state.reached("collected")
        self.config.hook.pytest_xdist_node_collection_finished(node=node, ids=ids)
        self.sched.add_node_collection(node, ids)
        if self._session is not None:  # progress counts every host's checks
            self._session.testscollected = self._synthetic + sum(map(len, self.sched.node2collection.values()))
        if self.terminal and WorkerStatus is not None:
            self.trdist.setstatus(node.gateway.spec, WorkerStatus.CollectionDone, tests_collected=len(ids))
        self.sched.schedule()

    def _finish(self, node) -> HostState | None:
        name = node.gateway.id
        with self._lock:
            self._done.add(name)
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        state = self.states.get(name)
        if state is not None:
            state.reached("finished")
        return state

    def _lost(self, state: HostState, status: str, message: str, remediation: str = "", emit: bool = False) -> None:
        state.status, state.message = status, message
        state.remediation = remediation or (
            f"{state.host.manual_ssh('true')} && {for_host(self.rerun, state.name)}")
        reports = connection_reports(state, self.module, self.rerun)
        with self._lock:  # hosts are started from threads
            self._synthetic += 1
            if not emit:
                self._queued_reports.extend(reports)  # shown by the main thread (worker_fleethoststarted)
        if emit:
            for rep in reports:
                self.config.hook.pytest_runtest_logreport(report=rep)

    def _close_soon(self, node) -> None:
        """Close a host that is done (finished or lost) now, in its own thread, instead of at the session's end.

        WHY: the remote Python only exits when told to (execnet), and its shared ssh connection only on
        ``ssh -O exit``; closing every host at the end made the last host wait for 30 exits and 30 ssh
        commands (0.7 s of a 30-host run on the 2-CPU build VM). Bounded: the session's end waits for these
        threads at most :data:`CLOSE_WAIT` seconds, then xdist's teardown kills whatever is left.
        """
        name = node.gateway.id
        if name in self._closing:  # a host's Ctrl-C: xdist's workerfinished calls errordown first
            return
        self._closing.add(name)
        state = self.states.get(name)
        thread = threading.Thread(target=_close_host, args=(node.gateway, state.host if state else None),
                                  name=f"labcheck-fleet-close: {node.gateway.id}", daemon=True)
        self._closers.append(thread)
        thread.start()

    @pytest.hookimpl
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._started_all()
        try:
            if exitstatus != pytest.ExitCode.INTERRUPTED:  # after Ctrl-C, no wait on a silent host's close
                deadline = time.monotonic() + CLOSE_WAIT
                for thread in self._closers:
                    thread.join(max(0.0, deadline - time.monotonic()))
            super().pytest_sessionfinish()  # xdist's teardown: bounded, kills what did not exit
        finally:  # even after a second Ctrl-C: no shared ssh connection left for a minute
            self._close_shared_connections()

    def _close_shared_connections(self) -> None:
        """Stop each host's shared ssh connection (bounded); they would otherwise idle out later."""
        if not self._control_dir:
            return
        hosts = [s.host for s in self.states.values() if os.path.exists(s.host.control_path)]
        if hosts:
            with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
                list(pool.map(_exit_shared_connection, hosts))
        shutil.rmtree(self._control_dir, ignore_errors=True)


def host_clock(workeroutput: object) -> dict[str, float]:
    """The timings a host sent about itself (labcheck.fleet_plugin.host_timings), as far as they can be believed:
    only its own keys, only finite non-negative numbers (a host's words must not crash the controller, e.g.
    float(10**400), put NaN in the JSON results, or overwrite the controller's own steps)."""
    sent = workeroutput.get(HOST_TIMINGS) if isinstance(workeroutput, dict) else None
    if not isinstance(sent, dict):
        return {}
    out = {}
    for key in HOST_TIMING_KEYS:
        value = sent.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):
                if math.isfinite(seconds := float(value)) and seconds >= 0:
                    out[key] = round(seconds, 3)
    return out


def _close_host(gateway: execnet.Gateway, host: Host | None) -> None:
    """Thread: end a done host's remote Python, then its shared ssh connection (see FleetSession._close_soon)."""
    with contextlib.suppress(Exception):  # a gateway already gone is fine; xdist's teardown has the last word
        gateway.exit()
        gateway.join(timeout=CLOSE_WAIT - SHARED_EXIT_TIMEOUT)
    if host is not None:
        _exit_shared_connection(host)


def _exit_shared_connection(host: Host) -> None:
    """``ssh -O exit``: the host's shared connection's master ends (bounded; no socket, nothing to end)."""
    if host.control_path and os.path.exists(host.control_path):
        cmd.run(host.control_command("exit"), timeout=SHARED_EXIT_TIMEOUT)


_PYTEST_ERROR_MARK = re.compile(r"^E\s+")  # how pytest marks the error line of a report ("E   ImportError: ...")


def _connection_lost(error: object) -> bool:
    """xdist's words for a channel that closed without the worker saying why."""
    return error is None or isinstance(error, EOFError) or str(error) == "Not properly terminated"


def _one_line(error: object) -> str:
    text = str(error or "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no reason given"
