"""The run's summary word and flag (reports.results.summarize), which the results JSON, the HTML report and the
terminal all show: READY needs at least one verified criterion and no failure; the flag and the line agree."""

from reports import results


def _rec(check: str, verdict: str) -> dict:
    return {"host": "h", "module": "module0", "check": check, "verdict": verdict, "message": f"{check} {verdict}",
            "remediation": "fix it" if verdict == "fail" else ""}


def test_no_check_ran_is_not_ready_in_the_line_nor_the_flag():
    s = results.summarize([])
    assert s.line == "NOT VERIFIED: no check ran" and s.state == results.NOT_VERIFIED
    assert s.ready is False  # the JSON's summary.ready and the HTML's state read this flag


def test_one_failure_makes_the_run_not_ready():
    s = results.summarize([_rec("a", "pass"), _rec("b", "fail"), _rec("c", "pass")])
    assert s.ready is False and s.line == "NOT READY: 1 of 3 checks failed"


def test_all_passed_is_ready():
    s = results.summarize([_rec("a", "pass"), _rec("b", "pass")])
    assert s.ready is True and s.line == "READY: 2 checks"
