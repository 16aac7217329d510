"""The plugin end to end inside pytest (pytester): verdicts become outcomes, records and a summary."""

import json

import pytest

from reports.results import EXIT_NOT_READY, EXIT_NOT_VERIFIED

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
    result.assert_outcomes(passed=2, failed=3, skipped=2)
    assert result.ret == EXIT_NOT_READY
    result.stdout.fnmatch_lines(["*fix: sudo apt-get install docker-ce*",
                                 "NOT READY: 3 of 7 checks failed; 3 criteria not verified"])
    doc = json.loads(out.read_text())
    by_check = {r["check"]: r for r in doc["records"]}
    assert {c: r["verdict"] for c, r in by_check.items()} == {
        "good": "pass", "bad": "fail", "soso": "warn", "absent": "skip",
        "needs_gpu": "skip", "crashes": "fail", "not_a_check": "fail",
    }
    # A check that delivered no verdict is a suite error, named, and counted against READY.
    assert by_check["not_a_check"]["message"].startswith("suite error: check 'not_a_check' ended without")
    assert "bug in the suite" in by_check["not_a_check"]["remediation"]
    assert by_check["needs_gpu"]["message"] == "no GPU on this machine"
    assert by_check["bad"]["remediation"] == "sudo apt-get install docker-ce"
    assert "probe bug" in by_check["crashes"]["message"]
    assert all(r["host"] for r in doc["records"])
    assert doc["summary"]["ready"] is False and doc["summary"]["state"] == "NOT READY"
    assert {u["check"] for u in doc["summary"]["unverified"]} == {"soso", "absent", "needs_gpu"}


def test_same_records_under_xdist(pytester):
    out = pytester.path / "r.json"
    _run(pytester, "-n", "2", f"--results-json={out}")
    doc = json.loads(out.read_text())
    assert sorted(r["verdict"] for r in doc["records"]) == sorted(
        ["pass", "fail", "warn", "skip", "skip", "fail", "fail"])


def test_html_report_has_columns_and_summary(pytester):
    html = pytester.path / "report.html"
    _run(pytester, f"--html={html}", "--self-contained-html")
    text = html.read_text()
    assert "NOT READY: 3 of 7 checks failed; 3 criteria not verified" in text
    assert "<h3>Not verified</h3>" in text and "only warned: compute mode Default" in text
    for col in ("Area", "Check", "Verdict", "Remediation"):  # one verdict column, grouped by area (issue 15)
        assert f">{col}</th>" in text


def _run_checks(pytester, body: str, *args):
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    pytester.makepyfile(test_checks="import pytest\nfrom labcheck.verdict import passed, failed, warned, skipped\n"
                        "pytestmark = pytest.mark.module0\n" + body)
    out = pytester.path / "r.json"
    result = pytester.runpytest(f"--results-json={out}", *args)
    return result, json.loads(out.read_text()) if out.exists() else None


SECOND_VERDICT = """
def test_twice(check):
    check(warned("compute mode Default", "nvidia-smi -c 3"))
    check(passed("fine after all"))
"""


def test_second_verdict_is_refused(pytester):
    result, doc = _run_checks(pytester, SECOND_VERDICT)
    result.assert_outcomes(failed=1)
    (rec,) = doc["records"]
    assert rec["verdict"] == "fail"  # not the second verdict (pass), not the first (warn)
    assert "suite error: check 'twice' delivered a second verdict (pass: fine after all) after its first " \
           "(warn: compute mode Default)" in rec["message"]
    assert result.ret == EXIT_NOT_READY


ONLY_OPTIONAL = """
@pytest.mark.optional(reason="no lab config given")
def test_lab_config(check):
    check(skipped("no lab config"))
"""
ONLY_SKIPPED_CRITERIA = """
def test_mps_server(check):
    check(skipped("no MPS server in a kindest/node"))
""" + ONLY_OPTIONAL


def test_only_skipped_criteria_is_not_ready(pytester):
    result, doc = _run_checks(pytester, ONLY_SKIPPED_CRITERIA)
    result.assert_outcomes(skipped=2)
    assert result.ret == EXIT_NOT_VERIFIED
    assert doc["summary"]["state"] == "NOT VERIFIED" and doc["summary"]["ready"] is False
    assert doc["summary"]["unverified"] == [{"host": doc["records"][0]["host"], "module": "module0",
                                             "check": "mps_server", "verdict": "skip",
                                             "why": "skipped: no MPS server in a kindest/node"}]
    result.stdout.fnmatch_lines(["NOT VERIFIED module0::mps_server: skipped: no MPS server in a kindest/node",
                                 "NOT VERIFIED: none of 2 checks of module0 failed, but 1 criterion not verified"])
    assert "READY: 2 checks" not in result.stdout.str()


def test_only_optional_skips_is_not_ready(pytester):
    """Every check skipped, none of them a criterion: nothing was shown, so not READY either."""
    result, doc = _run_checks(pytester, ONLY_OPTIONAL)
    assert result.ret == EXIT_NOT_VERIFIED and doc["summary"]["state"] == "NOT VERIFIED"
    assert doc["summary"]["line"] == "NOT VERIFIED: none of 1 checks of module0 failed, but no criterion was verified"


MIXED_READY = """
def test_driver(check):
    check(passed("driver 580"))

@pytest.mark.optional(reason="advisory: EXCLUSIVE_PROCESS is recommended, not required")
def test_compute_mode(check):
    check(warned("compute mode Default", "nvidia-smi -c 3"))

@pytest.mark.optional(reason="daemon.json is not required")
def test_daemon_json(check):
    check(skipped("no daemon.json"))
"""
MIXED = MIXED_READY + """
def test_runtime(check):
    check(warned("runtime starts containers, but no GPU here", "run on the GPU host"))
"""


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_optional_checks_do_not_block_ready(pytester, args):
    """The optional marker reaches the records (also from xdist workers); a warned criterion does block."""
    result, doc = _run_checks(pytester, MIXED_READY, *args)
    assert result.ret == 0, result.stdout.str()
    assert doc["summary"]["state"] == "READY"
    by_check = {r["check"]: r for r in doc["records"]}
    assert by_check["driver"]["criterion"] is True and by_check["driver"]["optional_reason"] == ""
    assert by_check["daemon_json"]["criterion"] is False
    assert by_check["compute_mode"]["optional_reason"] == "advisory: EXCLUSIVE_PROCESS is recommended, not required"
    result.stdout.fnmatch_lines(["READY (module 0 only; module 1 not run): 3 checks (1 warning) (1 skipped)"])

    result, doc = _run_checks(pytester, MIXED, *args)
    assert result.ret == EXIT_NOT_VERIFIED
    assert [u["check"] for u in doc["summary"]["unverified"]] == ["runtime"]


PARTIAL = """
def test_kernel(check):
    check(passed("kernel 6.8"))

def test_docker(check):
    check(passed("docker 27"))

@pytest.mark.optional(reason="advisory only")
def test_compute_mode(check):
    check(passed("EXCLUSIVE_PROCESS"))
"""
MODULE1 = """
import pytest
from labcheck.verdict import passed
pytestmark = pytest.mark.module1

def test_node(check):
    check(passed("node up"))
"""


@pytest.mark.parametrize("args", [("-k", "kernel"), ("-m", "module0", "-k", "not docker and not compute"),
                                  ("test_checks.py::test_kernel",), ("-k", "kernel", "-n", "2")],
                         ids=["k", "m-and-k", "node-id", "xdist"])
def test_a_run_narrowed_inside_a_module_is_not_ready(pytester, args):
    """READY means every criterion was checked: deselecting one of a checked module's criteria leaves it unverified.

    The deselected optional check makes no claim; module 1 makes one unless -m or the node id leaves it out
    (-k does not decide which modules a run is about), so its criterion is then not run too.
    """
    pytester.makepyfile(test_m1=MODULE1)
    result, doc = _run_checks(pytester, PARTIAL, *args)
    assert result.ret == EXIT_NOT_VERIFIED, result.stdout.str()
    assert doc["summary"]["state"] == "NOT VERIFIED" and doc["summary"]["total"] == 1
    module1_claimed = "-m" not in args and "::" not in args[0]
    left_out = [("module0", "docker")] + [("module1", "node")] * module1_claimed
    assert [(u["module"], u["check"], u["verdict"], u["why"]) for u in doc["summary"]["unverified"]] == [
        (module, check, "not run", "not run: deselected by -k/-m/node id") for module, check in left_out]
    modules = "module0, module1" if module1_claimed else "module0"
    assert doc["summary"]["modules"] == modules.split(", ")
    result.stdout.fnmatch_lines(["NOT VERIFIED module0::docker: not run: deselected by -k/-m/node id",
                                 f"NOT VERIFIED: none of 1 checks of {modules} failed, but {len(left_out)} "
                                 f"criteri{'a' if len(left_out) > 1 else 'on'} not verified"])
    assert "READY: 1 checks" not in result.stdout.str()
    # The whole module selected: READY (module 1 left out entirely makes no claim).
    result, doc = _run_checks(pytester, PARTIAL, "-m", "module0", *args[-2:] if "-n" in args else ())
    assert result.ret == 0 and doc["summary"]["state"] == "READY", result.stdout.str()


def test_optional_needs_a_reason(pytester):
    result, _ = _run_checks(pytester, "@pytest.mark.optional\ndef test_x(check):\n    check(passed('x'))\n")
    assert result.ret == 4  # pytest's usage error
    result.stderr.fnmatch_lines(["*optional needs reason=*test_x*"])
    pytester.path.joinpath("lab.yaml").write_text("min_docker: '25.0'\n")  # a criterion here: still refused
    result, _ = _run_checks(pytester, "@pytest.mark.optional_without_lab_config\ndef test_x(check):\n"
                                      "    check(passed('x'))\n")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*optional_without_lab_config needs reason=*test_x*"])


LAB_CONFIG_CHECK = """
def test_kernel(check):
    check(passed("kernel 6.8"))

@pytest.mark.optional_without_lab_config(reason="no lab config was read")
def test_lab_config(check, pytestconfig):
    from labcheck.plugin import config_path
    check(skipped("nothing to validate") if config_path(pytestconfig) is None else failed("lowered", "fix it"))
"""


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_the_lab_config_check_is_a_criterion_only_when_a_lab_config_was_read(pytester, args):
    """Without a lab config it skips as an optional check (READY); with ./lab.yaml, or --lab-config, it is a
    criterion: failing, and deselected (-k), it stops READY."""
    result, doc = _run_checks(pytester, LAB_CONFIG_CHECK, *args)
    assert doc["summary"]["state"] == "READY" and result.ret == 0, result.stdout.str()
    rec = {r["check"]: r for r in doc["records"]}["lab_config"]
    assert rec["criterion"] is False and rec["optional_reason"] == "no lab config was read"
    result, doc = _run_checks(pytester, LAB_CONFIG_CHECK, "-k", "kernel", *args)
    assert doc["summary"]["state"] == "READY", result.stdout.str()  # an optional check left out makes no claim
    for given in ((), ("--lab-config=other.yaml",)):
        (pytester.path / ("other.yaml" if given else "lab.yaml")).write_text("min_docker: '25.0'\n")
        result, doc = _run_checks(pytester, LAB_CONFIG_CHECK, *given, *args)
        rec = {r["check"]: r for r in doc["records"]}["lab_config"]
        assert rec["criterion"] is True and rec["optional_reason"] == "" and rec["verdict"] == "fail", rec
        assert doc["summary"]["state"] == "NOT READY" and result.ret == EXIT_NOT_READY
        result, doc = _run_checks(pytester, LAB_CONFIG_CHECK, "-k", "kernel", *given, *args)
        assert [(u["check"], u["verdict"]) for u in doc["summary"]["unverified"]] == [("lab_config", "not run")]
        assert doc["summary"]["state"] == "NOT VERIFIED", result.stdout.str()
        (pytester.path / ("other.yaml" if given else "lab.yaml")).unlink()


def test_usage_error_keeps_pytests_code(pytester):
    result, _ = _run_checks(pytester, MIXED, "--no-such-option")
    assert result.ret == 4


def test_exit_codes_from_the_command_line(pytester):
    """The codes a script sees (README: "What the summary words mean"), from a real pytest process."""
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    pytester.makepyfile(test_checks="import pytest\nfrom labcheck.verdict import passed, failed, skipped\n"
                        "pytestmark = pytest.mark.module0\n"
                        "def test_ok(check):\n    check(passed('ok'))\n"
                        "def test_skip(check):\n    check(skipped('cannot tell here'))\n"
                        "def test_bad(check):\n    check(failed('broken', 'fix it'))\n")
    pytester.makepyfile(test_m1="import pytest\nfrom labcheck.verdict import passed\n"
                        "pytestmark = pytest.mark.module1\ndef test_fine(check):\n    check(passed('ok'))\n")
    assert pytester.runpytest_subprocess("-m", "module1").ret == 0  # module 0 not selected at all: no claim on it
    assert pytester.runpytest_subprocess("-k", "ok").ret == EXIT_NOT_VERIFIED  # module 0's other criteria left out
    assert pytester.runpytest_subprocess("-k", "ok or skip").ret == EXIT_NOT_VERIFIED == 6
    assert pytester.runpytest_subprocess().ret == EXIT_NOT_READY == 1
    assert pytester.runpytest_subprocess("-k", "nothing_matches").ret == 5  # pytest's: no check selected


def test_readme_documents_the_words_and_exit_codes():
    """README's table must say what the code does: each word with its exit code."""
    from pathlib import Path

    from reports import results

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("## What the summary words mean", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" *"): line.split("|")[-2].strip() for line in section.splitlines()
            if line.startswith("| **")}
    assert rows == {results.READY: str(results.EXIT_READY), results.NOT_READY: str(results.EXIT_NOT_READY),
                    results.NOT_VERIFIED: str(results.EXIT_NOT_VERIFIED)}


def test_a_local_run_names_checks_without_a_host_and_keeps_pytests_failures(pytester):
    """The fleet's changes to the terminal (host names, no FAILURES section) leave a plain run as it was."""
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "labcheck.fleet_plugin", "reports.plugin", '
                          '"reports.fleet_plugin"]')
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest()
    out = result.stdout.str()
    section = out.split(" lab readiness ", 1)[1].split("NOT READY: ", 1)[0].splitlines()[1:]
    assert section == [
        "FAIL module0::bad: docker too old",
        "     fix: sudo apt-get install docker-ce",
        "FAIL module0::crashes: check raised an error: RuntimeError: probe bug",
        "     fix: see the traceback in the report; rerun with -x -vv",
        "FAIL module0::not_a_check: suite error: check 'not_a_check' ended without delivering a verdict "
        "(it never called check(...)), so nothing about the lab was shown",
        "     fix: a bug in the suite, not in the lab: report it with this message (rerun with -x -vv for details)",
        "NOT VERIFIED module0::soso: only warned: compute mode Default",
        "NOT VERIFIED module0::absent: skipped: Docker engine not reachable",
        "NOT VERIFIED module0::needs_gpu: skipped: no GPU on this machine"], section
    assert "= FAILURES =" in out and "RuntimeError: probe bug" in out.split("= FAILURES =", 1)[1]
