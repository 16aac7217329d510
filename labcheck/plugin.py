"""The pytest plugin: options, markers, the ``check`` fixture and environment facts.

A check test asks probes (through session fixtures) for facts, hands them to a pure verdict
function and passes the :class:`~labcheck.verdict.Verdict` to ``check``. ``check`` turns it into a
pytest outcome and attaches it to the test report as a user property, which survives pytest-xdist
(also across SSH), so the controller can build the HTML, JSON and fleet views from reports alone.
A check delivers exactly one verdict: none, or a second one, fails it as a suite error. A check is a
criterion of READY unless marked ``@pytest.mark.optional(reason=...)`` (see reports.results.Summary).
"""

from __future__ import annotations

import os
import re
import socket

import pytest

from labcheck import config as labconfig
from labcheck import interrupt, shutdown
from labcheck.redact import scrub
from labcheck.verdict import Verdict

VERDICT_PROP = "labcheck_verdict"
HOST_PROP = "labcheck_host"
OPTIONAL_PROP = "labcheck_optional"  # the reason a check is optional (absent: a criterion)
OPTIONAL_MARK = "optional"
# The lab config check: a criterion when a lab config was read, optional (for its reason) when none was.
IF_NO_LAB_CONFIG_MARK = "optional_without_lab_config"
SUITE_ERROR = "suite error:"  # how a fault of the suite itself (not of the lab) starts its message
DELIVERED_KEY = pytest.StashKey[object]()  # the verdict a check delivered (on its item)
ENV_KEY = pytest.StashKey[dict]()
SIGTERM_KEY = pytest.StashKey[bool]()
HOST_ENV = "LABCHECK_HOST_NAME"
LAB_CONFIG_ENV = "Lab config"  # the environment fact naming the lab config read ("Lab config: <key>": its settings)
MARKERS = {
    "module0": "module 0: host prerequisites",
    "module1": "module 1: Kind cluster with in-cluster MPS",
    "gpu": "needs an NVIDIA GPU on this machine; skips cleanly elsewhere",
    "docker": "needs a reachable Docker engine; skips cleanly elsewhere",
    OPTIONAL_MARK: "optional(reason): not a documented success criterion; READY does not wait for it to pass "
                   "(a failure still counts). Checks without it are criteria.",
    IF_NO_LAB_CONFIG_MARK: "optional_without_lab_config(reason): optional, for reason, only when no lab config "
                           "was read (--lab-config, ./lab.yaml); a criterion when one was",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labcheck", "DRA workshop lab checks")
    group.addoption("--results-json", metavar="PATH", default=None,
                    help="write one JSON record per check (module, check, verdict, message, remediation, host)")
    group.addoption("--lab-config", metavar="PATH", default=None,
                    help="YAML file overriding thresholds and paths (default: lab.yaml in the current folder, if any)")
    group.addoption("--fix-host", action="store_true", default=False,
                    help="allow setup steps that change the host (Docker runtime config, CDI spec); needs root")
    group.addoption("--no-provision", action="store_true", default=False,
                    help="only check: run no setup action (no daemon start, no cluster creation)")
    group.addoption("--teardown", action="store_true", default=False,
                    help="after the run, delete the Kind cluster if (and only if) this suite created it")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[ENV_KEY] = {}
    # `kill` stops a run like Ctrl-C (see labcheck.interrupt); xdist workers are stopped by their controller
    config.stash[SIGTERM_KEY] = getattr(config, "workerinput", None) is None and interrupt.install()
    shutdown.skip_final_collection()  # the exit's full garbage collection costs more than any check


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(SIGTERM_KEY, False):
        interrupt.uninstall()


def host_name() -> str:
    """The name results are filed under: ``LABCHECK_HOST_NAME`` (set by the fleet runner) or the hostname."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


MODULE_MARK = re.compile(r"^module[0-9]+$")
# The workshop's modules this suite checks (a marker each): what a run that covers only some of them leaves out.
WORKSHOP_MODULES = tuple(name for name in MARKERS if MODULE_MARK.match(name))
MODULE_FILE = re.compile(r"(?:^|/)test_(module[0-9]+)\.py$")  # the check file of a workshop module


def module_of_path(nodeid: str) -> str | None:
    """``module1`` for ``tests_env/test_module1.py[::test_x]``: a check whose report lost its keywords.

    WHY: pytest-xdist's report of a check whose worker died carries no keywords (no marker, so no module), and
    a check file that does not collect has no items to carry one.
    """
    found = MODULE_FILE.search(nodeid.split("::", 1)[0])
    return found.group(1) if found else None


def is_phase_report(report: pytest.TestReport) -> bool:
    """A report of one of pytest's phases (pytest-xdist's of a dead worker's check says ``when="???"``)."""
    return report.when in ("setup", "call", "teardown")


def is_check(item: pytest.Item) -> bool:
    """A lab check: a test under a ``moduleN`` marker (the project's own tests have none)."""
    return any(MODULE_MARK.match(m.name) for m in item.iter_markers())


def optional_reason(item: pytest.Item) -> str | None:
    """Why the check is not a criterion of READY (its ``optional`` marker's reason), None for a criterion.

    ``optional_without_lab_config``: the lab config check. WHY not always optional: the lab config sets the
    thresholds every other check judges by, so a file that was read and is wrong (a lowered minimum, a bad value)
    must stop READY like any criterion; with no file there is nothing to validate and the defaults apply.
    """
    mark = item.get_closest_marker(OPTIONAL_MARK)
    if mark is not None:
        return _reason(mark)
    mark = item.get_closest_marker(IF_NO_LAB_CONFIG_MARK)
    if mark is not None and config_path(item.config) is None:
        return _reason(mark)
    return None


def _reason(mark: pytest.Mark) -> str:
    return str(mark.kwargs.get("reason") or (mark.args[0] if mark.args else ""))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse an ``optional`` marker without a reason: the report must say why READY does not wait for it."""
    for name in (OPTIONAL_MARK, IF_NO_LAB_CONFIG_MARK):
        bare = [i.nodeid for i in items if (mark := i.get_closest_marker(name)) is not None and _reason(mark) == ""]
        if bare:
            raise pytest.UsageError(f"@pytest.mark.{name} needs reason=... (why the check is not a criterion); "
                                    f"missing on: {', '.join(bare)}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.user_properties.append((HOST_PROP, host_name()))
    reason = optional_reason(item)
    if reason is not None:
        item.user_properties.append((OPTIONAL_PROP, reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A check whose body ended without delivering a verdict fails as a suite error.

    WHY: a check that says nothing is no evidence, and READY must rest on evidence only.
    """
    report = yield
    if (report.when == "call" and report.passed and is_check(item)
            and item.stash.get(DELIVERED_KEY, None) is None):
        report.outcome = "failed"
        report.longrepr = no_verdict_message(check_name(item.nodeid))
    return report


def check_name(nodeid: str) -> str:
    name = nodeid.rsplit("::", 1)[-1]
    return name[5:] if name.startswith("test_") else name


def no_verdict_message(check: str) -> str:
    return (f"{SUITE_ERROR} check {check!r} ended without delivering a verdict (it never called check(...)), "
            "so nothing about the lab was shown")


def config_path(config: pytest.Config) -> str | None:
    path = config.getoption("--lab-config")
    if path is None and os.path.lexists("lab.yaml"):  # a dangling ./lab.yaml link is named, not skipped
        path = "lab.yaml"
    return path


@pytest.fixture(scope="session")
def lab_config_loaded(pytestconfig: pytest.Config) -> tuple[labconfig.LabConfig, list[labconfig.ConfigProblem]]:
    """The lab config and the problems found reading it (defaults are used where it is bad). The report's
    environment names the file read and every setting that differs from the documented defaults, so a reader
    sees what the checks were judged against."""
    path = config_path(pytestconfig)
    loaded = labconfig.load(path)
    if path is not None:
        record_env(pytestconfig, LAB_CONFIG_ENV, os.path.abspath(path))
        for name, value in labconfig.changed_settings(loaded[0]).items():
            record_env(pytestconfig, f"{LAB_CONFIG_ENV}: {name}", value)
    return loaded


@pytest.fixture(scope="session")
def lab_config(lab_config_loaded) -> labconfig.LabConfig:
    return lab_config_loaded[0]


@pytest.fixture
def check(request: pytest.FixtureRequest):
    """Deliver a verdict: pass returns, warn passes with a note, skip skips, fail fails with its fix."""

    def deliver(verdict: Verdict) -> Verdict:
        verdict = _without_secrets(verdict)
        first = request.node.stash.get(DELIVERED_KEY, None)
        if first is not None:  # refused: the first verdict stands, and the check fails as a suite error
            pytest.fail(f"{SUITE_ERROR} check {check_name(request.node.nodeid)!r} delivered a second verdict "
                        f"({verdict.status}: {verdict.message}) after its first ({first.status}: {first.message}); "
                        "a check delivers exactly one", pytrace=False)
        request.node.stash[DELIVERED_KEY] = verdict
        request.node.user_properties.append((VERDICT_PROP, verdict.as_dict()))
        if verdict.status == "skip":
            pytest.skip(verdict.message)
        if verdict.status == "fail":
            text = verdict.message + f"\nRemediation: {verdict.remediation}"
            if verdict.details:
                text += f"\n{verdict.details}"
            pytest.fail(text, pytrace=False)
        return verdict

    return deliver


def _without_secrets(verdict: Verdict) -> Verdict:
    """The verdict with key material and URL credentials removed (labcheck.redact) before anything records it.

    WHY here: message and details quote what probes found (command output, engine errors, kubectl
    answers), and everything a check delivers ends up in the JSON, the HTML and the terminal.
    """
    clean = [scrub(x) for x in (verdict.message, verdict.remediation, verdict.details)]
    if clean == [verdict.message, verdict.remediation, verdict.details]:
        return verdict
    return Verdict(verdict.status, *clean)


def record_env(config: pytest.Config, key: str, value: object) -> None:
    """Note an environment fact (GPU model, driver, Docker version...) for the report's header."""
    if value in (None, ""):
        return
    config.stash[ENV_KEY][key] = str(value)


def env_facts(config: pytest.Config) -> dict[str, str]:
    return config.stash[ENV_KEY]


def pytest_sessionfinish(session: pytest.Session) -> None:
    # On an xdist worker, ship the facts to the controller (see reports.plugin.pytest_testnodedown).
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["labcheck_env"] = dict(env_facts(session.config))
        workeroutput["labcheck_host"] = host_name()
