"""Turn pytest reports into check records, and records into a readiness summary.

Pure functions over report attributes that pytest-xdist serialises (nodeid, keywords, outcome,
longrepr, user_properties), so they work the same on the controller of a local or remote run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from labcheck.inventory import COLLECT_CHECK
from labcheck.plugin import (
    HOST_PROP,
    MODULE_MARK,
    OPTIONAL_MARK,
    OPTIONAL_PROP,
    SUITE_ERROR,
    VERDICT_PROP,
    WORKSHOP_MODULES,
    is_phase_report,
    no_verdict_message,
)
from labcheck.plugin import check_name as check_id
from labcheck.rerun import DEFAULT as DEFAULT_RERUN
from labcheck.rerun import Rerun


def _prop(report, name: str):
    """The last value a test attached under ``name`` (a check may deliver only one verdict)."""
    found = None
    for key, value in getattr(report, "user_properties", ()):
        if key == name:
            found = value
    return found


def module_of(report) -> str | None:
    mods = sorted(k for k in getattr(report, "keywords", {}) if MODULE_MARK.match(k))
    return mods[0] if mods else None


def optional_reason(report) -> str | None:
    """Why the check is optional (``@pytest.mark.optional(reason=...)``), None for a criterion.

    WHY keywords and user_properties: they are what pytest-xdist (and the fleet runner over SSH) ship
    to the controller; the marker itself stays on the worker. The plugin copies the reason into a
    user property at setup; the keyword alone still marks a report that left setup early.
    """
    reason = _prop(report, OPTIONAL_PROP)
    if reason is not None:
        return str(reason)
    return "" if OPTIONAL_MARK in getattr(report, "keywords", {}) else None


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr or "")
    return reason.removeprefix("Skipped: ")


def _crash_message(report) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        return crash.message
    lines = (getattr(report, "longreprtext", "") or "").strip().splitlines()
    return lines[-1] if lines else "failed"


def record_from_report(report, module: str | None = None, rerun: Rerun = DEFAULT_RERUN) -> dict | None:
    """One check record for the report that decides a check's verdict, else None.

    That is the call phase, or the setup phase when it skipped or errored (a prerequisite fixture
    skipped, or a setup step crashed). Teardown and passing setup reports carry no verdict.
    ``module``: the check's module when the report does not say (pytest-xdist's report of a crashed
    worker has no keywords; reports.plugin knows the module from collection or the file name).
    """
    module = module_of(report) or module
    if module is None:
        return None
    if report.when == "setup" and report.passed:
        return None
    if report.when == "teardown" and not report.failed:
        return None
    verdict = _prop(report, VERDICT_PROP) or {}
    optional = optional_reason(report)
    record = {
        "host": _prop(report, HOST_PROP) or "",
        "module": module,
        "check": check_id(report.nodeid),
        "nodeid": report.nodeid,
        "verdict": verdict.get("status"),
        "message": verdict.get("message", ""),
        "remediation": verdict.get("remediation", ""),
        "details": verdict.get("details", ""),
        "duration": round(getattr(report, "duration", 0.0), 3),
        "criterion": optional is None,
        "optional_reason": optional or "",
    }
    if report.skipped:
        record["verdict"] = "skip"
        record["message"] = record["message"] or _skip_reason(report)
    elif report.failed and record["verdict"] != "fail":
        # No verdict delivered: the check itself broke. Say so rather than hide it.
        phase = "check" if report.when == "call" else f"{report.when} step"
        crash = _crash_message(report)
        record["verdict"] = "fail"
        if crash.startswith(SUITE_ERROR):  # no verdict, or a second one (labcheck.plugin)
            record["message"], record["remediation"] = crash, SUITE_BUG_FIX
        elif not is_phase_report(report):  # pytest-xdist's "???": the worker process died
            record["message"] = f"check did not finish: {crash}"
            record["remediation"] = (f"{rerun.again('', '-p', 'no:xdist', '-vv', paths=(report.nodeid,))}   "
                                     "# alone, to see how its process died (a crash, the OOM killer)")
        else:
            record["message"] = f"{phase} raised an error: {crash}"
            record["remediation"] = record["remediation"] or "see the traceback in the report; rerun with -x -vv"
    elif record["verdict"] is None:
        # Only a report that bypassed labcheck.plugin (which fails a check without a verdict) gets here.
        record["verdict"] = "fail"
        record["message"] = no_verdict_message(record["check"])
        record["remediation"] = SUITE_BUG_FIX
    return record


SUITE_BUG_FIX = "a bug in the suite, not in the lab: report it with this message (rerun with -x -vv for details)"

NOT_RUN = "not run"  # the verdict of a check collected but not run (never a pytest outcome)
DESELECTED = "deselected by -k/-m/node id"


def _bare_record(host: str, module: str, nodeid: str, verdict: str, message: str, remediation: str,
                 optional: str | None = None) -> dict:
    """A record of a check that no report of its own decided (left out, never reached, not collected)."""
    return {"host": host, "module": module, "check": check_id(nodeid), "nodeid": nodeid, "verdict": verdict,
            "message": message, "remediation": remediation, "details": "", "duration": 0.0,
            "criterion": optional is None, "optional_reason": optional or ""}


def not_run_record(host: str, module: str, nodeid: str, rerun: Rerun = DEFAULT_RERUN) -> dict:
    """The record of a criterion of a module the run checked, left out by the selection.

    WHY a record: READY means every documented criterion was checked; a run narrowed by ``-k``, ``-m`` or a
    node id checked only some of its module's criteria, so the rest stand in the summary as not verified.
    """
    fix = f"{rerun.again(module)}   # the whole module"
    return _bare_record(host, module, nodeid, NOT_RUN, DESELECTED, fix)


def not_reached_record(host: str, module: str, nodeid: str, why: str, optional: str | None = None,
                       rerun: Rerun = DEFAULT_RERUN) -> dict:
    """The record of a check the run selected and never finished: it stopped first (``why`` says how).

    ``stopped``: unlike a deselected optional check, an optional one the run never reached is unverified too,
    since a run that stopped early is no complete evidence (Summary never says READY over it).
    """
    rec = _bare_record(host, module, nodeid, NOT_RUN, why, f"{rerun.again(module)}   # run the checks to their end",
                       optional)
    return {**rec, "stopped": True}


def collect_error_record(host: str, module: str, path: str, why: str, rerun: Rerun = DEFAULT_RERUN) -> dict:
    """The failing ``checks_collected`` check of a check file that could not be collected (it did not import).

    WHY a failure: none of that file's checks ran, and pytest's --continue-on-collection-errors runs the others;
    the fleet files the same check under the host it happened on (labcheck.fleet_session).
    """
    return _bare_record(host, module, f"{path}::test_{COLLECT_CHECK}", "fail", f"{path} could not be collected: {why}",
                        f"{rerun.again('', '--collect-only', paths=(path,))}   # reproduces the collection error "
                        "shown above")


READY = "READY"
NOT_READY = "NOT READY"
NOT_VERIFIED = "NOT VERIFIED"


def coverage(modules: Iterable[str]) -> str:
    """What a READY covers when it is not the whole workshop: "module 0 only; module 1 not run" ("" when
    ``modules`` holds every workshop module, or none).

    WHY: ``pytest tests_env -m module0`` (or test_module0.py alone, or -k narrowing to one module) printed "READY:
    20 checks of module0", which reads as "the lab is ready" while module 1 was never run.
    """
    covered = sorted(set(modules), key=_module_number)
    missing = [m for m in WORKSHOP_MODULES if m not in covered]
    if not covered or not missing:
        return ""
    return f"{_module_words(covered)} only; {_module_words(missing)} not run"


def _module_number(module: str) -> tuple[int, str]:
    digits = module.removeprefix("module")
    return (int(digits), "") if digits.isascii() and digits.isdigit() else (1 << 30, module)


def _module_words(modules: list[str]) -> str:
    """module 0; modules 0 and 2; modules 0, 1 and 2 (the marker names without "module")."""
    names = [m.removeprefix("module") for m in modules]
    if len(names) == 1:
        return f"module {names[0]}"
    return f"modules {', '.join(names[:-1])} and {names[-1]}"


def unverified_reason(rec: dict) -> str:
    """Why a criterion's record is no proof: it skipped, only warned, or was not run (deselected, never reached)."""
    what = {"skip": "skipped", NOT_RUN: NOT_RUN}.get(rec["verdict"], "only warned")
    return f"{what}: {rec.get('message', '')}"


@dataclass(frozen=True)
class Summary:
    """What a set of check records says about the lab (README: "What the summary words mean").

    READY: no check failed, every criterion among them passed, and at least one did.
    NOT READY: a check failed (optional ones too: a failure is a fault whatever its kind).
    NOT VERIFIED: nothing failed, but a criterion skipped, only warned or was not run (deselected, or the run
    stopped before it), or no criterion passed.
    ``total`` counts the checks that ran (a check not run is only among ``unverified``); ``modules``: those the
    records are about, i.e. the modules the run makes a claim on; ``none_ran``: why no check ran, if none did.
    ``line`` is for people: a READY over part of the workshop says which part before its colon (:func:`coverage`);
    what programs read (``state``, ``ready``, ``modules``, the counts) is in :meth:`as_dict`.
    """

    total: int
    failed: int
    warned: int
    skipped: int
    verified: int = 0  # criteria that passed
    unverified: tuple[dict, ...] = ()  # criteria that skipped, only warned or were not run; checks never reached
    modules: tuple[str, ...] = ()
    none_ran: str = ""

    @property
    def state(self) -> str:
        if self.failed:
            return NOT_READY
        if self.unverified or self.verified == 0:
            return NOT_VERIFIED
        return READY

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def line(self) -> str:
        if self.total == 0:
            why = self.none_ran or "; ".join(dict.fromkeys(r.get("message", "") for r in self.unverified))
            return f"{NOT_VERIFIED}: no check ran" + (f": {why}" if why else "")
        n_unv = len(self.unverified)
        unv = f"{n_unv} criteri{'a' if n_unv != 1 else 'on'} not verified"
        checks = f"{self.total} checks" + (f" of {', '.join(self.modules)}" if self.modules else "")
        if self.state == NOT_READY:
            return f"{NOT_READY}: {self.failed} of {self.total} checks failed" + (f"; {unv}" if n_unv else "")
        if self.state == NOT_VERIFIED:
            if not n_unv:
                return f"{NOT_VERIFIED}: none of {checks} failed, but no criterion was verified"
            return f"{NOT_VERIFIED}: none of {checks} failed, but {unv}"
        extra = f" ({self.warned} warning{'s' * (self.warned != 1)})" if self.warned else ""
        extra += f" ({self.skipped} skipped)" if self.skipped else ""
        scope = coverage(self.modules)
        if scope:  # said before the colon: a READY of part of the workshop must not read as the whole lab's
            return f"{READY} ({scope}): {self.total} checks{extra}"
        return f"{READY}: {checks}{extra}"

    def as_dict(self) -> dict:
        """The ``summary`` object of the JSON results."""
        return {
            "state": self.state, "line": self.line, "ready": self.ready, "total": self.total,
            "failed": self.failed, "warned": self.warned, "skipped": self.skipped, "verified": self.verified,
            "modules": list(self.modules),
            "unverified": [{"host": r.get("host", ""), "module": r["module"], "check": r["check"],
                            "verdict": r["verdict"], "why": unverified_reason(r)} for r in self.unverified],
        }


def summarize(records: Iterable[dict], none_ran: str = "") -> Summary:
    """The summary of ``records``; ``none_ran``: why no check ran, for a run with no record at all."""
    everything = list(records)
    recs = [r for r in everything if r["verdict"] != NOT_RUN]
    criteria = [r for r in everything if r.get("criterion", True)]
    return Summary(
        total=len(recs),
        failed=sum(r["verdict"] == "fail" for r in recs),
        warned=sum(r["verdict"] == "warn" for r in recs),
        skipped=sum(r["verdict"] == "skip" for r in recs),
        verified=sum(r["verdict"] == "pass" for r in criteria),
        unverified=tuple(r for r in everything if r.get("stopped") or (
            r.get("criterion", True) and r["verdict"] in ("skip", "warn", NOT_RUN))),
        modules=tuple(sorted({r["module"] for r in everything if r.get("module")})),
        none_ran=none_ran,
    )


def first_remediation(records: Iterable[dict]) -> str:
    for r in records:
        if r["verdict"] == "fail":
            return r["remediation"]
    return ""


# Exit codes of a lab run (README: "What the summary words mean"). pytest's own codes stay for what is
# not about the lab: 2 interrupted, 3 internal error, 4 usage error, 5 no test collected.
EXIT_READY = 0
EXIT_NOT_READY = 1  # pytest's "tests failed": a check failed
EXIT_NOT_VERIFIED = 6  # the first code pytest does not use


def exit_status(pytest_status: int, records: list[dict]) -> int:
    """The run's exit code: pytest's, unless it says the run went well (0, 1) over lab check records.

    Then READY decides, so a lab run exits 0 only when READY: a run that stopped early (pytest.exit(returncode=0))
    or ran no check (--setup-only) has records of checks not run. WHY pytest's stays without records: the
    project's own tests load these plugins too; and its 2 (interrupted), 3, 4, 5 say more than the records.
    """
    if not records or pytest_status not in (0, 1):
        return pytest_status
    state = summarize(records).state
    if state == READY:
        return pytest_status  # 1 when a non-check test failed: never hide a failure
    return EXIT_NOT_READY if state == NOT_READY else EXIT_NOT_VERIFIED
