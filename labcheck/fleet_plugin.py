"""``--hosts INVENTORY``: check and provision every machine of the inventory in one run.

On the instructor's machine (the controller) this plugin probes the hosts, then registers
:class:`labcheck.fleet_session.FleetSession` (pytest-xdist over SSH, one worker per host) and adds
the fleet view: a hosts x checks matrix with READY / NOT READY per host, in the terminal, at the top
of the HTML report and under ``fleet`` in the JSON results (drawn by reports.fleet_plugin and
reports.fleet: labcheck never imports reports). On a host (a worker) it only leaves its process id
for a stop on timeout and keeps pytest-metadata's controller side fed.

pytest-xdist is imported only when ``--hosts`` is given (start-up cost of plain runs).
"""

from __future__ import annotations

import os
import re
import shlex
import time
from pathlib import Path

import pytest

from labcheck import config as labconfig
from labcheck import fsio, inventory, rerun
from labcheck.inventory import FLEET_ENV, WORKER_PIDFILE
from labcheck.plugin import config_path

STATES_KEY = pytest.StashKey[list]()  # list[HostState], in inventory order, on the controller only
HOST_TIMINGS = "labcheck_host_timings"  # workeroutput key: a host's own clock (see host_timings)
HOST_CPU_AT_START, HOST_COLLECTED, HOST_FINISHED, HOST_CPU = HOST_TIMING_KEYS = (
    "host: CPU at start-up", "host: collected", "host: finished", "host: CPU")
_LOADED = (time.monotonic(), sum(os.times()[:2]))  # when this plugin was imported: pytest is up, no check yet
_COLLECTED: list[float] = []
_MODULE = re.compile(r"\bmodule[0-9]+\b")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labcheck")
    group.addoption("--hosts", metavar="INVENTORY", default=None,
                    help="run on every host of INVENTORY over SSH (YAML inventory or one user@host per line); "
                         "see docs/instructors.md")
    group.addoption("--fleet-host", metavar="NAME", action="append", default=[],
                    help="with --hosts: only this inventory host (repeatable)")


def _is_worker(config: pytest.Config) -> bool:
    return getattr(config, "workerinput", None) is not None


def fleet_states(config: pytest.Config) -> list | None:
    return config.stash.get(STATES_KEY, None)


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists (as xdist's own session does)
def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        if os.environ.get(FLEET_ENV) == "1":  # a fleet host: say which process to stop on a timeout
            try:  # the fleet's own folder; a link or FIFO planted there is refused, never written through
                fsio.write_atomic(WORKER_PIDFILE, f"{os.getpid()}\n", follow_symlinks=False)
            except (fsio.FileProblem, OSError) as exc:  # no pid file: a timeout then cuts only the connection
                config.issue_config_time_warning(pytest.PytestWarning(f"fleet worker pid file not written: {exc}"), 2)
        return
    path = config.getoption("--hosts")
    if path is not None and not path.strip():
        raise pytest.UsageError("--hosts= needs an inventory file, e.g. --hosts=inventory.yaml")
    if not path or config.getoption("collectonly"):
        return
    if not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError("--hosts needs pytest-xdist (pip install pytest-xdist); it is disabled or missing")
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "tx", None):
        raise pytest.UsageError("--hosts runs one worker per inventory host; drop -n/--tx")
    try:
        hosts = inventory.select(inventory.load(path), config.getoption("--fleet-host"))
    except inventory.InventoryError as exc:
        raise pytest.UsageError(str(exc)) from exc
    lab = lab_config_bytes(config_path(config))

    # lazy: fleet_session imports pytest-xdist and execnet, which only a --hosts run needs (start-up)
    from labcheck.fleet_session import FleetSession, HostState
    from labcheck.fleet_ship import SHIPPED  # lazy: fleet_ship imports execnet, as above

    root = Path(config.rootpath)
    missing = [name for name in SHIPPED if not (root / name).exists()]
    if "conftest.py" in missing or "labcheck" in missing:
        raise pytest.UsageError(f"--hosts ships the suite from the project folder, but {root} lacks "
                                f"{', '.join(missing)}; run pytest from the dra-labcheck checkout")

    states = [HostState(h) for h in hosts]
    config.stash[STATES_KEY] = states
    session = FleetSession(
        config, states, worker_args(config), root, lab,
        module=run_module(config.option.markexpr), rerun=rerun_command(config, path),
    )
    config.pluginmanager.register(session, "dsession")
    tr = config.pluginmanager.getplugin("terminalreporter")
    if tr:
        tr.showfspath = False
    if config.option.tbstyle == "auto":
        # pytest's FAILURES section would repeat every failed check of every host in full (and its
        # teardown lookup per failure scans all reports: quadratic in hosts); the lab readiness list
        # gives each one's host, message and fix. Only here: the hosts' runs keep their tracebacks.
        config.option.tbstyle = "no"


def lab_config_bytes(path: str | None) -> bytes | None:
    """The lab config every host gets, read once before any host starts (None: no lab config, defaults apply).

    A file that cannot be read as a regular one (absent, a FIFO that would block every host's start forever, a
    folder, too big) is a usage error: the run would check 30 hosts against the wrong settings. Its bytes are
    shipped as they are: text that is not valid (not UTF-8, bad YAML, wrong values) fails each host's
    ``lab_config_valid`` check, as in a run on one machine.
    """
    if not path:
        return None
    try:
        return fsio.read_bytes(path, labconfig.MAX_BYTES)
    except FileNotFoundError:
        raise pytest.UsageError(f"--lab-config={path}: no such file; give the lab config to ship to every host, "
                                f"e.g. --lab-config=lab.yaml (lab.example.yaml shows the keys)") from None
    except fsio.FileProblem as exc:
        raise pytest.UsageError(f"--lab-config: {exc}; give a regular lab config file, e.g. --lab-config=lab.yaml"
                                ) from None


def run_module(markexpr: str | None) -> str:
    """The module a fleet-level record is filed under: the first one selected with -m, else module0."""
    found = _MODULE.search(markexpr or "")
    return found.group(0) if found else "module0"


def rerun_command(config: pytest.Config, inventory_path: str) -> str:
    """The command that runs this fleet again: this run's suite (labcheck.rerun: interpreter, folder, lab config,
    switches) with ``-m`` as given and ``--hosts=<the inventory, absolute>``, never ``--hosts PATH``: pytest takes
    a separate value for a test path, and then knows no --hosts (README, Options)."""
    inventory_abs = os.path.join(config.invocation_params.dir, inventory_path)
    return rerun.of(config).again(config.option.markexpr or "", "--hosts=" + shlex.quote(inventory_abs))


def for_host(rerun_fleet: str, name: str) -> str:
    """``rerun_fleet`` (:func:`rerun_command`) for one inventory host: ``--fleet-host=NAME``, with ``=`` as above."""
    return f"{rerun_fleet} --fleet-host={shlex.quote(name)}"


def worker_args(config: pytest.Config) -> list[str]:
    """The command line each host's pytest gets: the selection and the provisioning switches.

    Reports, inventories and other controller paths stay here. Test paths given on the command
    line are sent relative to the project root (the host's working folder) through
    ``--override-ini=testpaths=...`` (no argument may name a local path: see
    :func:`labcheck.fleet_session.invocation_args`); node ids are refused (use ``-k``).
    """
    args: list[str] = ["-pxdist.plugin"]  # plugin autoload is off on the hosts (Host.xspec)
    opt = config.option
    if opt.markexpr:
        args.append(f"-m{opt.markexpr}")
    if opt.keyword:
        args.append(f"-k{opt.keyword}")
    for flag, name in (("--fix-host", "fix_host"), ("--no-provision", "no_provision"), ("--teardown", "teardown")):
        if getattr(opt, name, False):
            args.append(flag)
    paths = _relative_test_paths(config)
    if paths:
        args.append(f"--override-ini=testpaths={shlex.join(paths)}")
    return args


def _relative_test_paths(config: pytest.Config) -> list[str]:
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    root = Path(config.rootpath).resolve()
    out = []
    for arg in config.args:
        if "::" in arg:
            raise pytest.UsageError(f"--hosts: {arg!r} is a node id; select checks with -k or -m, or give files")
        path = Path(config.invocation_params.dir, arg).resolve()
        try:
            out.append(path.relative_to(root).as_posix() or ".")
        except ValueError:
            raise pytest.UsageError(f"--hosts: test path {arg} is outside the project ({root}); "
                                    f"only the project's checks are shipped to the hosts") from None
    return out


def pytest_unconfigure(config: pytest.Config) -> None:
    if _is_worker(config) and os.environ.get(FLEET_ENV) == "1":
        Path(WORKER_PIDFILE).unlink(missing_ok=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    _COLLECTED.append(time.monotonic())


def host_timings() -> dict[str, float]:
    """A host's own clock, for the controller's HostState.timings: CPU seconds its Python had spent when pytest
    was up, seconds from then to its collection and to its end, and its CPU seconds in all.

    WHY: the controller's step times include its own delays (one interpreter reading every host's events);
    these say whether a slow host was slow itself (e.g. CPUs shared with other hosts) or waited for the controller.
    """
    loaded, cpu_loaded = _LOADED
    now = time.monotonic()
    out = {HOST_CPU_AT_START: cpu_loaded, HOST_CPU: sum(os.times()[:2]), HOST_FINISHED: now - loaded}
    if _COLLECTED:
        out[HOST_COLLECTED] = _COLLECTED[0] - loaded
    return {k: round(v, 3) for k, v in out.items()}


def pytest_sessionfinish(session: pytest.Session) -> None:
    # On a host: pytest-metadata's controller side reads workeroutput["metadata"] from every worker,
    # but hosts run without plugin autoload (see labcheck.inventory.Host.xspec) or may lack it.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.setdefault("metadata", {})
        if os.environ.get(FLEET_ENV) == "1":
            workeroutput[HOST_TIMINGS] = host_timings()
