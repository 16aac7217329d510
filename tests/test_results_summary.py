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
    assert s.ready is True and s.line == "READY (module 0 only; module 1 not run): 2 checks"


def test_a_ready_line_says_what_it_covers_when_it_is_not_the_whole_workshop():
    """`pytest tests_env -m module0` printed "READY: 20 checks of module0", read as the whole lab; the line now
    says before its colon which module it covers and which was not run. The JSON fields stay as they were."""
    m0, m1 = _rec("a", "pass"), {**_rec("b", "pass"), "module": "module1"}
    s = results.summarize([m0, m1])
    assert s.line == "READY: 2 checks of module0, module1"  # the whole workshop: nothing to qualify
    s = results.summarize([m1, {**_rec("w", "warn"), "module": "module1", "criterion": False}])
    assert s.line == "READY (module 1 only; module 0 not run): 2 checks (1 warning)"
    doc = results.summarize([m0]).as_dict()
    assert {k: doc[k] for k in ("state", "ready", "modules", "total")} == {
        "state": "READY", "ready": True, "modules": ["module0"], "total": 1}
    assert doc["line"].startswith("READY (module 0 only; module 1 not run): ")
    assert results.coverage(["module0", "module1"]) == "" and results.coverage([]) == ""
    assert results.coverage(["module7"]) == "module 7 only; modules 0 and 1 not run"


def test_a_deselected_criterion_is_not_verified_and_not_counted_as_a_check():
    """A criterion left out by -k/-m/node id (reports.plugin) stands among the unverified, not in the counts."""
    left_out = results.not_run_record("h", "module0", "tests_env/test_module0.py::test_docker_cli_present")
    s = results.summarize([_rec("a", "pass"), left_out])
    assert s.state == results.NOT_VERIFIED and s.total == 1 and s.unverified == (left_out,)
    assert s.line == "NOT VERIFIED: none of 1 checks of module0 failed, but 1 criterion not verified"
    assert results.unverified_reason(left_out) == "not run: deselected by -k/-m/node id"
    assert results.exit_status(0, [_rec("a", "pass"), left_out]) == results.EXIT_NOT_VERIFIED
    assert results.summarize([_rec("a", "pass"), {**left_out, "criterion": False}]).ready  # optional: no claim


def test_the_dashboard_names_deselected_criteria_as_not_run():
    """The HTML tiles and the Not verified list say 'not run', not an empty count (reports.html_parts)."""
    from reports import html_parts

    left_out = results.not_run_record("h", "module0", "tests_env/test_module0.py::test_docker_cli_present")
    recs = [{**_rec("linux_kernel_version", "pass"), "nodeid": "tests_env/test_module0.py::test_linux_kernel_version"},
            left_out]
    assert "1 check: 1 not run<" in html_parts.tiles(recs), html_parts.tiles(recs)
    text = html_parts.attention(recs, False)
    assert 'class="verdict verdict-not-run">NOT RUN<' in text and "not run: deselected by -k/-m/node id" in text
