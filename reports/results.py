"""Turn pytest reports into check records, and records into a readiness summary.

Pure functions over report attributes that pytest-xdist serialises (nodeid, keywords, outcome,
longrepr, user_properties), so they work the same on the controller of a local or remote run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from labcheck.plugin import HOST_PROP, VERDICT_PROP

_MODULE = re.compile(r"^module\d+$")


def _prop(report, name: str):
    """The last value a test attached under ``name`` (a check may deliver only one verdict)."""
    found = None
    for key, value in getattr(report, "user_properties", ()):
        if key == name:
            found = value
    return found


def check_id(nodeid: str) -> str:
    name = nodeid.rsplit("::", 1)[-1]
    return name[5:] if name.startswith("test_") else name


def module_of(report) -> str | None:
    mods = sorted(k for k in getattr(report, "keywords", {}) if _MODULE.match(k))
    return mods[0] if mods else None


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


def record_from_report(report) -> dict | None:
    """One check record for the report that decides a check's verdict, else None.

    That is the call phase, or the setup phase when it skipped or errored (a prerequisite fixture
    skipped, or a setup step crashed). Teardown and passing setup reports carry no verdict.
    """
    module = module_of(report)
    if module is None:
        return None
    if report.when == "setup" and report.passed:
        return None
    if report.when == "teardown" and not report.failed:
        return None
    verdict = _prop(report, VERDICT_PROP) or {}
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
    }
    if report.skipped:
        record["verdict"] = "skip"
        record["message"] = record["message"] or _skip_reason(report)
    elif report.failed and record["verdict"] != "fail":
        # No verdict delivered: the check itself broke. Say so rather than hide it.
        phase = "check" if report.when == "call" else f"{report.when} step"
        record["verdict"] = "fail"
        record["message"] = f"{phase} raised an error: {_crash_message(report)}"
        record["remediation"] = record["remediation"] or "see the traceback in the report; rerun with -x -vv"
    elif record["verdict"] is None:
        record["verdict"] = "pass"
        record["message"] = record["message"] or "ok"
    return record


@dataclass(frozen=True)
class Summary:
    total: int
    failed: int
    warned: int
    skipped: int

    @property
    def ready(self) -> bool:
        return self.total > 0 and self.failed == 0

    @property
    def line(self) -> str:
        if self.total == 0:
            return "NOT READY: no check ran"
        if self.ready:
            extra = f" ({self.warned} warning{'s' * (self.warned != 1)})" if self.warned else ""
            extra += f" ({self.skipped} skipped)" if self.skipped else ""
            return f"READY: {self.total} checks{extra}"
        return f"NOT READY: {self.failed} of {self.total} checks failed"


def summarize(records: Iterable[dict]) -> Summary:
    recs = list(records)
    return Summary(
        total=len(recs),
        failed=sum(r["verdict"] == "fail" for r in recs),
        warned=sum(r["verdict"] == "warn" for r in recs),
        skipped=sum(r["verdict"] == "skip" for r in recs),
    )


def first_remediation(records: Iterable[dict]) -> str:
    for r in records:
        if r["verdict"] == "fail":
            return r["remediation"]
    return ""
