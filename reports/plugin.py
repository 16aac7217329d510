"""Controller-side reporting: collect check records, print READY / NOT READY, write JSON and HTML.

Runs wherever the reports arrive: in a plain run that is this process, under pytest-xdist it is
the controller, which only sees serialised reports (hence records, not live objects).

Also wires two things a person running the suite sees: progress lines of long setup steps
(labcheck.progress, shown on the terminal past output capture) and the secrets filter on the
Environment section (labcheck.redact).
"""

from __future__ import annotations

import functools
import os
import shlex
import tempfile
import traceback
from pathlib import Path

import pytest

# WHY private: pytest has no public way to ask whether -m matches an item that -k or --deselect left out
from _pytest.mark.expression import Expression

from labcheck import fsio, progress, redact, rerun
from labcheck.fleet_plugin import fleet_states, run_module
from labcheck.plugin import env_facts, host_name, is_check, is_phase_report, module_of_path, optional_reason
from reports import fleet, html_parts, results
from reports.progress_output import TerminalProgress

RECORDS_KEY = pytest.StashKey[list]()
HOST_ENV_KEY = pytest.StashKey[dict]()
STEPS_KEY = pytest.StashKey[list]()
PROGRESS_KEY = pytest.StashKey[TerminalProgress]()
STEP_MARK_KEY = pytest.StashKey[int]()
WRITE_ERRORS_KEY = pytest.StashKey[list]()
HTML_VIEW_KEY = pytest.StashKey["_HtmlView"]()
# nodeid -> {"module", "optional" (its reason, None for a criterion), "claimed" (matches -m)} of every lab check
# collected in this process
CATALOG_KEY = pytest.StashKey[dict]()
# nodeid -> the catalog entry of every check the run selected (None: not known yet, or not a lab check); on an
# xdist controller, from the workers (their ids at collection, their entries when they finish)
SELECTED_KEY = pytest.StashKey[dict]()
NOT_RUN_KEY = pytest.StashKey[list]()  # records of criteria left out by the selection (this process, workers)
STOP_KEY = pytest.StashKey[str]()  # why the run stopped early (Ctrl-C, kill, pytest.exit, -x); "" if it did not
ORPHANS_KEY = pytest.StashKey[list]()  # failed reports that name no module and whose check is not known yet
SHIPPED_KEY = pytest.StashKey[bool]()  # xdist controller: a worker sent its selection (so None entries are no checks)
INTERRUPTED = "interrupted"
WORKER_INTERRUPTED = f"{INTERRUPTED}: a worker received Ctrl-C"
CSS_PATH = Path(__file__).with_name("labcheck.css")


class _Collector:
    """Keeps the check records of one run (the hooks get no config, so they live on an object)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records = config.stash[RECORDS_KEY]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rec = results.record_from_report(report, rerun=rerun.of(self.config))
        if rec is None and report.failed:
            # A failure whose report names no module (pytest-xdist's of a worker that died): still a lab check's
            # failure if collection or its file name says so; else decided at the session's end (_add_orphans).
            if not is_phase_report(report):
                if self.config.stash[STOP_KEY].startswith(INTERRUPTED):
                    return  # the worker was stopped (Ctrl-C), not broken: its check was not run (_add_not_reached)
                self.config.stash[STOP_KEY] = self.config.stash[STOP_KEY] or "a worker process died"
            module = lab_module(self.config, report.nodeid)
            if module is None:
                self.config.stash[ORPHANS_KEY].append(report)
                return
            rec = results.record_from_report(report, module, rerun.of(self.config))
        if rec is not None:
            self.records.append(rec)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        """Why the run stopped: Ctrl-C, ``kill`` (labcheck.interrupt), pytest.exit, xdist's -x or a worker's Ctrl-C."""
        self.config.stash[STOP_KEY] = _stop_words(excinfo)

    def pytest_internalerror(self, excrepr, excinfo) -> None:
        self.config.stash[STOP_KEY] = self.config.stash[STOP_KEY] or "an internal error of pytest or a plugin"

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A check file under tests_env/ that could not be collected is its module's failing ``checks_collected``.

        WHY: with --continue-on-collection-errors the other files' checks run and could say READY, though none of
        this file's did. Here: where the reports arrive (this process, or an xdist controller, which gets each
        distinct error once). Not in a fleet run: labcheck.fleet_session files it under the host it happened on.
        """
        config = self.config
        if not report.failed or _is_worker(config) or fleet_states(config) is not None:
            return
        path = report.nodeid.split("::", 1)[0]
        if not _is_lab_path(config, path) or any(r["nodeid"].startswith(f"{path}::") and r["check"] ==
                                                  results.COLLECT_CHECK for r in self.records):
            return
        module = lab_module(config, path)  # a file under tests_env/ always has one
        self.records.append(results.collect_error_record(host_name(), str(module), path, _error_line(report),
                                                         rerun.of(config)))


def _error_line(report: pytest.CollectReport) -> str:
    """The line that says what went wrong (pytest's ``E   ModuleNotFoundError: ...``), else the report's last."""
    lines = [ln.strip() for ln in (getattr(report, "longreprtext", "") or str(report.longrepr)).splitlines()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    rest = [ln for ln in lines if ln]
    return errors[-1] if errors else (rest[-1] if rest else "collection failed")


def _is_worker(config: pytest.Config) -> bool:
    return getattr(config, "workerinput", None) is not None


def _is_lab_path(config: pytest.Config, path: str) -> bool:
    """``path`` (relative to the rootdir, as in a node id) lies in the project's tests_env/."""
    lab = (Path(str(config.rootpath)) / "tests_env").resolve()
    p = (Path(str(config.rootpath)) / path).resolve()
    return p == lab or lab in p.parents


def lab_module(config: pytest.Config, nodeid: str) -> str | None:
    """The module of lab check ``nodeid``; None if nothing says it is one (e.g. the project's own tests).

    From collection (here, or a worker's once it finished), else the file name (test_module1.py), else a record
    of the same file, else (a file under tests_env/) the module -m chose, as for a file that did not import.
    WHY so many: an xdist controller collects nothing itself, and a stopped run's workers may never report.
    """
    entry = config.stash[SELECTED_KEY].get(nodeid) or config.stash[CATALOG_KEY].get(nodeid)
    if entry:
        return entry["module"]
    path = nodeid.split("::", 1)[0]
    found = module_of_path(path) or next(
        (r["module"] for r in records(config) if r["nodeid"].split("::", 1)[0] == path), None)
    if found is None and _is_lab_path(config, path):
        found = run_module(config.getoption("markexpr", ""))
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[RECORDS_KEY] = []
    config.stash[HOST_ENV_KEY] = {}
    config.stash[STEPS_KEY] = []
    config.stash[STEP_MARK_KEY] = len(progress.history())
    config.stash[WRITE_ERRORS_KEY] = []
    config.stash[CATALOG_KEY] = {}
    config.stash[SELECTED_KEY] = {}
    config.stash[NOT_RUN_KEY] = []
    config.stash[STOP_KEY] = ""
    config.stash[ORPHANS_KEY] = []
    config.stash[SHIPPED_KEY] = False
    if not _is_worker(config):
        check_output_paths(config)
        try:
            progress.interval_from_env()
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(_Collector(config), "labcheck-collector")
    if config.pluginmanager.hasplugin("html"):
        config.stash[HTML_VIEW_KEY] = view = _HtmlView(config)
        config.pluginmanager.register(view, "labcheck-html")
    # tryfirst: pytest-html reads --css in its own pytest_configure, after this one.
    # (An install without the .css file gets pytest-html's plain look rather than a crash.)
    css = getattr(config.option, "css", None)
    if isinstance(css, list) and CSS_PATH.is_file() and str(CSS_PATH) not in css:
        config.option.css = [*css, str(CSS_PATH)]
    # Capture is suspended during pytest_configure: the moment to grab the real terminal.
    terminal = TerminalProgress(config)
    terminal.install()
    config.stash[PROGRESS_KEY] = terminal


def pytest_unconfigure(config: pytest.Config) -> None:
    terminal = config.stash.get(PROGRESS_KEY, None)
    if terminal is not None:
        terminal.uninstall()


def records(config: pytest.Config) -> list[dict]:
    return config.stash[RECORDS_KEY]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Note every lab check a test file (or class) holds, selected or not, and whether -m matches it.

    WHY here: a node id (``test_module0.py::test_x``) narrows a module without any pytest_deselected call;
    the file's collect report still lists all its checks, so both ways of narrowing are seen alike.
    """
    report = yield
    if report.passed:
        config = collector.config
        catalog = config.stash[CATALOG_KEY]
        markexpr = config.getoption("markexpr", "") or ""
        for node in report.result:
            if isinstance(node, pytest.Item) and is_check(node):
                catalog[node.nodeid] = {"module": results.module_of(node), "optional": optional_reason(node),
                                        "claimed": matches_markexpr(node, markexpr)}
    return report


_ABSENT = object()  # a marker keyword argument the mark does not have


@functools.lru_cache(maxsize=8)
def _compiled(markexpr: str) -> Expression | None:
    try:
        return Expression.compile(markexpr)
    except SyntaxError:
        return None  # pytest refuses it with a usage error of its own, after collection


def matches_markexpr(item: pytest.Item, markexpr: str) -> bool:
    """Whether ``-m markexpr`` selects ``item`` (as pytest's own -m does: marker names and their keyword args)."""
    expr = _compiled(markexpr) if markexpr.strip() else None
    if expr is None:
        return True
    marks = list(item.iter_markers())

    def matcher(name: str, /, **kwargs) -> bool:
        return any(m.name == name and all(m.kwargs.get(k, _ABSENT) == v for k, v in kwargs.items()) for m in marks)

    return expr.evaluate(matcher)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The checks selected, and the criteria left out of each module the run makes a claim on.

    Which modules: those with a check collected (explicit paths, node ids) that -m matches, whatever -k or
    --deselect then left out: ``pytest tests_env -k "not module1"`` leaves module 1's criteria not run (NOT
    VERIFIED), while module 1 under ``-m module0`` makes no claim. Runs where collection happens: this process,
    or each xdist worker (shipped in pytest_sessionfinish).
    """
    config = session.config
    catalog = config.stash[CATALOG_KEY]
    chosen = {item.nodeid for item in session.items}
    claimed = {entry["module"] for entry in catalog.values() if entry["claimed"]}
    config.stash[SELECTED_KEY].update({nodeid: entry for nodeid, entry in catalog.items() if nodeid in chosen})
    config.stash[NOT_RUN_KEY] = [
        results.not_run_record(host_name(), entry["module"], nodeid, rerun.of(config))
        for nodeid, entry in catalog.items()
        if entry["module"] in claimed and entry["optional"] is None and nodeid not in chosen]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    """xdist controller: the checks a worker selected (which ones are lab checks: its entries, at its end)."""
    selected = node.config.stash[SELECTED_KEY]
    for nodeid in ids:
        selected.setdefault(nodeid, None)


def _stop_words(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value).strip()
    if excinfo.errisinstance(pytest.exit.Exception):
        return f"pytest.exit: {getattr(excinfo.value, 'msg', text)}"
    if text.endswith("received keyboard-interrupt"):  # xdist's, after a worker's KeyboardInterrupt
        return WORKER_INTERRUPTED
    if text.startswith("stopping after"):  # xdist's -x/--maxfail
        return f"-x/--maxfail stopped the run: {text}"
    return INTERRUPTED + (f": {text}" if text else " (Ctrl-C)")


def _add_not_run(config: pytest.Config) -> None:
    """Append the deselected criteria to the records, once per host and node id (xdist workers repeat them)."""
    recs = records(config)
    seen = {(r.get("host", ""), r["nodeid"]) for r in recs}
    for rec in config.stash[NOT_RUN_KEY]:
        key = (rec["host"], rec["nodeid"])
        if key not in seen:
            seen.add(key)
            recs.append(rec)


def _add_orphans(config: pytest.Config) -> None:
    """The failures that named no module when they arrived: a lab check's, if the workers' entries now say so."""
    for report in config.stash[ORPHANS_KEY]:
        module = lab_module(config, report.nodeid)
        if module is not None:
            records(config).append(results.record_from_report(report, module, rerun.of(config)))


def _add_not_reached(session: pytest.Session) -> None:
    """Every selected lab check with no record gets a "not run" one saying why: the run stopped before it.

    WHY: the summary is built from the records that arrived; a check never reached (Ctrl-C, kill, pytest.exit,
    -x, a dead worker, --setup-only) would otherwise simply be absent and the rest could say READY. Not in a
    fleet run (reports.fleet marks each host's absent checks) nor under --collect-only (a listing, no run).
    """
    config = session.config
    if fleet_states(config) is not None or config.getoption("collectonly"):
        return
    recs = records(config)
    have = {r["nodeid"] for r in recs}
    why = ""
    shipped = config.stash[SHIPPED_KEY]
    for nodeid, entry in config.stash[SELECTED_KEY].items():
        if nodeid in have or (entry is None and shipped):  # a worker's selection says it is no lab check
            continue
        module = lab_module(config, nodeid)
        if module is None:
            continue
        why = why or _not_reached_reason(session)
        recs.append(results.not_reached_record(host_name(), module, nodeid, why, entry and entry["optional"],
                                               rerun.of(config)))


def _not_reached_reason(session: pytest.Session) -> str:
    config = session.config
    if config.getoption("setupplan"):
        return "--setup-plan only shows the setup; no check was called"
    if config.getoption("setuponly"):
        return "--setup-only only sets up the fixtures; no check was called"
    stop = config.stash[STOP_KEY]
    if not stop and session.shouldfail:
        stop = f"-x/--maxfail stopped the run: {session.shouldfail}"
    return f"the run stopped before this check gave a verdict ({stop or session.shouldstop or 'it ended early'})"


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: `pytest -p no:xdist` must still run (a crash's fix)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: keep each worker's environment facts and setup steps, filed under its host.

    A worker that stopped on Ctrl-C (xdist: ``error="keyboard-interrupt"``) stops the run; xdist then reports
    the check it was running as crashed, which _Collector files as not run, not as a failure of the lab.
    """
    if error == "keyboard-interrupt":
        node.config.stash[STOP_KEY] = WORKER_INTERRUPTED
    out = getattr(node, "workeroutput", None) or {}
    host = out.get("labcheck_host") or "unknown"
    env = out.get("labcheck_env")
    if env:
        node.config.stash[HOST_ENV_KEY].setdefault(host, {}).update(env)
    node.config.stash[STEPS_KEY].extend(out.get("labcheck_steps") or [])
    node.config.stash[NOT_RUN_KEY].extend(out.get("labcheck_not_run") or [])
    if "labcheck_selected" in out:
        node.config.stash[SELECTED_KEY].update(out["labcheck_selected"])
        node.config.stash[SHIPPED_KEY] = True


def host_environments(config: pytest.Config) -> dict[str, dict[str, str]]:
    """Environment facts per host, from this process and from any xdist workers (secrets removed)."""
    envs = {h: dict(e) for h, e in config.stash[HOST_ENV_KEY].items()}
    local = env_facts(config)
    if local:
        envs.setdefault(host_name(), {}).update(local)
    return {h: {k: (redact.REDACTED if redact.is_secret_key(k) else redact.scrub(v)) for k, v in e.items()}
            for h, e in envs.items()}


def _local_steps(config: pytest.Config) -> list[dict]:
    """The setup steps this process finished during this run."""
    mark = config.stash.get(STEP_MARK_KEY, 0)
    worker = (getattr(config, "workerinput", None) or {}).get("workerid", "")
    # scrubbed: a step's error quotes a command's output (URL credentials, ANSI escapes)
    return [redact.scrub({"host": host_name(), "worker": worker, **s.as_dict()}) for s in progress.history()[mark:]]


def setup_steps(config: pytest.Config) -> list[dict]:
    """Every long setup step of the run (this process and xdist workers).

    Each: host, worker (xdist worker id, "" in a plain run), what, seconds, ok, error.
    """
    return [*config.stash[STEPS_KEY], *_local_steps(config)]


def run_summary(config: pytest.Config) -> results.Summary:
    """The run's summary, as the terminal line, the JSON and the exit code give it."""
    recs = records(config)
    return results.summarize(recs, none_ran="" if recs else _no_record_cause(config))


def _no_record_cause(config: pytest.Config) -> str:
    """Why a lab run has no record at all: a listing (--collect-only), or a selection of no lab check."""
    if not is_lab_run(config):
        return ""
    if config.getoption("collectonly"):
        return "--collect-only lists the checks and runs none"
    chosen = " ".join(f"{o} {v!r}" for o, v in (("-m", config.getoption("markexpr", "")),
                                                ("-k", config.getoption("keyword", ""))) if v)
    return f"{chosen or 'the selection'} selected no lab check (markers: module0, module1)"


def results_document(config: pytest.Config) -> dict:
    recs = records(config)
    return {
        "summary": run_summary(config).as_dict(),
        "environment": host_environments(config),
        "setup_steps": setup_steps(config),
        "records": [r for r in recs if r["verdict"] != results.NOT_RUN],  # checks that ran; the rest: unverified
        **_fleet_section(config, recs),
    }


def _fleet_section(config: pytest.Config, recs: list[dict]) -> dict:
    """``fleet``: hosts x checks with READY per host, only in a ``--hosts`` run (labcheck.fleet_plugin)."""
    doc = fleet.document(config, recs)
    return {} if doc is None else {"fleet": doc}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        # An xdist worker: ship the steps and what it selected; the controller writes the outputs.
        workeroutput["labcheck_steps"] = _local_steps(config)
        workeroutput["labcheck_not_run"] = config.stash[NOT_RUN_KEY]
        workeroutput["labcheck_selected"] = config.stash[SELECTED_KEY]
        return
    _add_orphans(config)
    _add_not_run(config)
    _add_not_reached(session)
    _fill_html_environment(config)
    view = config.stash.get(HTML_VIEW_KEY, None)
    if view is not None:
        view.shape_report_data()
    path = config.getoption("--results-json")
    if path:
        try:
            fsio.write_json(Path(path), results_document(config), indent=2)
        except (fsio.FileProblem, OSError) as exc:
            # The HTML report (written after this hook), the summary line and the exit code must survive.
            config.stash[WRITE_ERRORS_KEY].append(f"results JSON NOT written: {_why(exc, path)}")
    session.exitstatus = results.exit_status(session.exitstatus, records(config))


def _why(exc: BaseException, path: str) -> str:
    if isinstance(exc, fsio.FileProblem):
        return str(exc)
    return f"{path}: {getattr(exc, 'strerror', None) or exc}"


def is_lab_run(config: pytest.Config) -> bool:
    """A run of the lab checks: its paths (or the default testpaths) lie in the project's tests_env/."""
    return any(_is_lab_path(config, str(Path(config.invocation_params.dir, str(arg).split("::", 1)[0])))
               for arg in config.args or [])


def check_output_paths(config: pytest.Config) -> None:
    """Refuse, before any check runs, an output path that is not a regular file (or a new name), or that cannot be
    written: its folder (made if missing, as pytest-html does) takes no new file, the file itself refuses writes
    (chattr +i), and for an --html report without --self-contained-html the same of its assets/ folder and
    assets/style.css, which pytest-html writes at start-up.

    WHY at start: pytest-html opens ``--html`` with ``open("w")``, which blocks forever on a FIFO and crashes
    at the end of the run on a folder; it makes the folder and assets/ at configure time, where a failure is an
    INTERNALERROR before any check; ``--results-json`` replaced a symlink or /dev/null (as root) by a
    regular file. A symlink to a regular file is written through (labcheck.fsio.write_target).
    """
    html_assets = not config.getoption("self_contained_html", False)
    for option, value, example in (("--results-json", config.getoption("--results-json", None), "results.json"),
                                   ("--html", config.getoption("htmlpath", None), "report.html")):
        if value is None:
            continue
        path = os.path.expandvars(os.path.expanduser(value)) if option == "--html" else value
        if not path.strip():
            raise pytest.UsageError(f"{option}= needs a file name, e.g. {option}={example}")
        try:
            target = fsio.write_target(path)
        except fsio.FileProblem as exc:
            hint = os.path.join(value, example) if os.path.isdir(path) else example
            raise pytest.UsageError(f"{option}={value}: {exc.message}; give the path of a new or regular file, "
                                    f"e.g. {option}={hint}") from None
        assets = Path(os.path.abspath(path)).parent / "assets"
        if option == "--html" and html_assets:
            try:
                fsio.write_target(assets / "style.css")
            except fsio.FileProblem as exc:
                raise pytest.UsageError(f"{option}={value}: pytest-html writes {assets / 'style.css'} beside the "
                                        f"report, and {exc}; move that away, or add --self-contained-html") from None
        folders = [target.parent] + ([assets] if option == "--html" and html_assets else [])
        why = next((w for w in map(_cannot_create_in, folders) if w), "") or _cannot_open(target)
        if why:
            hint = shlex.quote(os.path.join(os.path.expanduser("~"), example))
            raise pytest.UsageError(f"{option}={value}: {why}; give a path in a folder you can write, "
                                    f"e.g. {option}={hint}")


def _cannot_create_in(folder: Path) -> str:
    """'' when a new file can be made in ``folder`` (or, if it is missing, in the nearest folder above it, where it
    would be made), else why not. Tried with a real file, removed at once: root passes os.access() checks even for
    a folder that refuses every write (chattr +i, a read-only mount)."""
    folder = Path(os.path.abspath(folder))
    while not os.path.lexists(folder) and folder.parent != folder:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder, so no file can be made in it"
    try:
        fd, probe = tempfile.mkstemp(prefix=".labcheck-write-probe-", dir=folder)
    except OSError as exc:
        return f"cannot create a file in {folder}: {exc.strerror or exc}"
    os.close(fd)
    os.unlink(probe)
    return ""


def _cannot_open(target: Path) -> str:
    """'' when the existing regular file ``target`` may be opened for writing (or does not exist), else why not.
    Opened for append and closed: its content stays as it was."""
    if not target.is_file():
        return ""
    try:
        with open(target, "ab"):
            return ""
    except OSError as exc:
        return f"cannot write {target}: {exc.strerror or exc}"


@pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_html_write_guard(session: pytest.Session):
    """pytest-html writes its report in its own pytest_sessionfinish: an OSError there (the folder turned read-only
    or the file into a folder during the run, a full disk) is reported like a failed --results-json write, and the
    readiness lines and exit status that follow survive. Before, it was a bare traceback, no summary, exit 1.

    trylast: the innermost wrapper, so the terminal reporter's (which prints the summary) sees no exception.
    (Named pytest_*: pytest reads hooks only from such names; specname says which hook it is.)
    """
    try:
        return (yield)
    except OSError as exc:
        if not any(frame.f_globals.get("__name__", "").startswith("pytest_html")
                   for frame, _line in traceback.walk_tb(exc.__traceback__)):
            raise
        config = session.config
        path = os.path.expandvars(os.path.expanduser(str(config.getoption("htmlpath", ""))))
        config.stash[WRITE_ERRORS_KEY].append(f"HTML report NOT written: {_why(exc, path)}")
        from pytest_html.basereport import BaseReport  # lazy: pytest-html is optional, and raised this

        for plugin in config.pluginmanager.get_plugins():  # its "Generated html report" line would be false
            if isinstance(plugin, BaseReport):
                config.pluginmanager.unregister(plugin)
        return None


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    for err in config.stash.get(WRITE_ERRORS_KEY, []):
        terminalreporter.write_line(err, red=True, bold=True)
    recs = records(config)
    if not recs:
        if is_lab_run(config):  # e.g. `pytest tests_env -m modul0`: selecting nothing is not silence
            terminalreporter.write_sep("=", "lab readiness", bold=True)
            terminalreporter.write_line(run_summary(config).line, red=True, bold=True)
        return  # otherwise not a lab run (e.g. the project's own tests): nothing to say
    steps = setup_steps(config)
    terminalreporter.write_sep("=", "lab readiness", bold=True)
    for st in steps:
        outcome = "" if st["ok"] else f"  FAILED: {st['error']}"
        where = f" [{st['worker']}]" if st.get("worker") else ""
        terminalreporter.write_line(
            f"setup{where}: {st['what']}: {progress.format_duration(st['seconds'])}{outcome}", red=not st["ok"])
    hosts = _fleet_hosts(config)
    summary = run_summary(config)
    for rec in _by_host([r for r in recs if r["verdict"] == "fail"], hosts):
        terminalreporter.write_line(f"FAIL {_check_name(rec, hosts)}: {rec['message']}", red=True)
        terminalreporter.write_line(f"     fix: {rec['remediation']}")
    for rec in _by_host(summary.unverified, hosts):
        terminalreporter.write_line(f"NOT VERIFIED {_check_name(rec, hosts)}: {results.unverified_reason(rec)}",
                                    yellow=True)
    terminalreporter.write_line(summary.line, green=summary.ready, red=not summary.ready, bold=True)


def _fleet_hosts(config: pytest.Config) -> list[str] | None:
    """The inventory's host names, in its order, in a ``--hosts`` run; None in a plain run."""
    states = fleet_states(config)
    return None if states is None else [st.name for st in states]


def _check_name(rec: dict, hosts: list[str] | None) -> str:
    """``module0::docker_engine_version``; in a fleet run ``host3 module0::docker_engine_version``.

    WHY the host: a fleet run lists the same check once per host it failed on, and its fix is run there.
    """
    check = fleet.check_key(rec)
    return check if hosts is None else f"{rec.get('host') or 'unknown'} {check}"


def _by_host(recs: list[dict], hosts: list[str] | None) -> list[dict]:
    """In a fleet run, each host's records together in inventory order (the hosts' reports arrive interleaved)."""
    if hosts is None:
        return recs
    order = {name: i for i, name in enumerate(hosts)}
    return sorted(recs, key=lambda r: order.get(r.get("host"), len(order)))


# --- pytest-html / pytest-metadata -------------------------------------------------------------------

@pytest.hookimpl(optionalhook=True)
def pytest_metadata(metadata: dict, config: pytest.Config) -> None:
    """Redact as soon as pytest-metadata has filled its dict (CI variables, --metadata), before `-v` prints it."""
    redact.redact_in_place(metadata)


def _fill_html_environment(config: pytest.Config) -> None:
    """Put the probed facts first in pytest-html's Environment table (it renders the metadata dict).

    The dict is the one pytest-html already holds, so it is edited in place: facts first (what a
    person looks for), then setup step durations, then pytest-metadata's Python/Platform/Plugins.
    Redacted again at the end: workers' metadata and facts arrived after session start.
    """
    try:
        from pytest_metadata.plugin import metadata_key  # lazy: pytest-metadata is optional (pytest-html brings it)
    except ImportError:
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is None:
        return
    lab: dict[str, object] = {}
    envs = {host: html_parts.facts_in_order(facts) for host, facts in host_environments(config).items()}
    if len(envs) == 1:
        lab.update(next(iter(envs.values())))
    else:
        lab.update(envs)
    steps = setup_steps(config)
    if steps:
        multi = len(envs) > 1
        lab["Setup steps"] = {html_parts.step_label(st, multi): html_parts.step_outcome(st) for st in steps}
    rest = {k: v for k, v in metadata.items() if k not in lab}
    metadata.clear()
    metadata.update(lab)
    metadata.update(rest)
    redact.redact_in_place(metadata)
    if config.getoption("htmlpath", None):
        html_parts.escape_environment(metadata)


class _HtmlView:
    """pytest-html hooks that need this run's config (its hooks get none): the table shape, the dashboard.

    pytest-html's own parts that speak of pytest tests, not checks, are reshaped here: the Result,
    Test and Links columns go (one verdict column; the node id is the check's tooltip), the filter bar
    keeps only outcomes that occurred, named as checks, and every row starts collapsed.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report_data = None  # pytest-html's ReportData, handed to pytest_html_report_title

    def show_host(self) -> bool:
        return bool(self.config.getoption("--hosts", None))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        report.title = "DRA workshop lab readiness"
        self.report_data = report

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        prefix.extend(html_parts.summary_blocks(records(self.config), setup_steps(self.config),
                                                fleet=_fleet_hosts(self.config)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list) -> None:
        cells[:] = html_parts.header_cells(_cell(cells, "result", "th"), _cell(cells, "duration", "th"),
                                           self.show_host())

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report, cells: list) -> None:
        module = lab_module(self.config, report.nodeid) if report.failed else None  # as _Collector files it
        rec = results.record_from_report(report, module, rerun.of(self.config)) or {}
        cells[:] = html_parts.row_cells(rec, _cell(cells, "result", "td"), _cell(cells, "duration", "td"),
                                        self.show_host())

    def shape_report_data(self) -> None:
        """Before pytest-html renders (its sessionfinish runs last): filter bar, collapsed rows, sort."""
        data = self.report_data
        if data is None:
            return
        html_parts.check_outcomes(data.outcomes, run_summary(self.config).warned)
        data.set_data("renderCollapsed", ["all"])
        if not self.config.getini("initial_sort") or self.config.getini("initial_sort") == "result":
            data.set_data("initialSort", html_parts.AREA_SORT)


def _cell(cells: list, column: str, tag: str) -> str:
    """pytest-html's own cell of ``column`` (result: read by its script; duration: which check was slow)."""
    return next((c for c in cells if f"col-{column}" in c or f'data-column-type="{column}"' in c), f"<{tag}></{tag}>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_html(report, data: list) -> None:
    """A skipped check's details: its reason, not pytest's ``(file, line, 'Skipped: ...')`` tuple."""
    html_parts.readable_skip_log(report, data)
