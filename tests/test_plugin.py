"""The plugin end to end inside pytest (pytester): verdicts become outcomes, records and a summary."""

import json

CHECKS = '''
import pytest
from labcheck.verdict import passed, failed, warned, skipped
pytestmark = pytest.mark.module0

def test_good(check):
    check(passed("fine"))

def test_bad(check):
    check(failed("docker too old", "sudo apt-get install docker-ce"))

def test_soso(check):
    check(warned("compute mode Default", "nvidia-smi -c EXCLUSIVE_PROCESS"))

def test_absent(check):
    check(skipped("Docker engine not reachable"))

@pytest.fixture
def broken_prereq():
    pytest.skip("no GPU on this machine")

def test_needs_gpu(check, broken_prereq):
    check(passed("never"))

def test_crashes(check):
    raise RuntimeError("probe bug")

def test_not_a_check():
    pass
'''


def _run(pytester, *args):
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    pytester.makepyfile(test_checks=CHECKS)
    return pytester.runpytest(*args)


def test_verdicts_become_outcomes_and_records(pytester):
    out = pytester.path / "r.json"
    result = _run(pytester, f"--results-json={out}")
    result.assert_outcomes(passed=3, failed=2, skipped=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*fix: sudo apt-get install docker-ce*", "*NOT READY: 2 of 7 checks failed*"])
    doc = json.loads(out.read_text())
    by_check = {r["check"]: r for r in doc["records"]}
    assert {c: r["verdict"] for c, r in by_check.items()} == {
        "good": "pass", "bad": "fail", "soso": "warn", "absent": "skip",
        "needs_gpu": "skip", "crashes": "fail", "not_a_check": "pass",
    }
    assert by_check["needs_gpu"]["message"] == "no GPU on this machine"
    assert by_check["bad"]["remediation"] == "sudo apt-get install docker-ce"
    assert "probe bug" in by_check["crashes"]["message"]
    assert all(r["host"] for r in doc["records"])
    assert doc["summary"]["ready"] is False


def test_same_records_under_xdist(pytester):
    out = pytester.path / "r.json"
    _run(pytester, "-n", "2", f"--results-json={out}")
    doc = json.loads(out.read_text())
    assert sorted(r["verdict"] for r in doc["records"]) == sorted(
        ["pass", "fail", "warn", "skip", "skip", "fail", "pass"])


def test_html_report_has_columns_and_summary(pytester):
    html = pytester.path / "report.html"
    _run(pytester, f"--html={html}", "--self-contained-html")
    text = html.read_text()
    assert "NOT READY: 2 of 7 checks failed" in text
    for col in ("Module", "Check", "Verdict", "Remediation"):
        assert f">{col}</th>" in text
