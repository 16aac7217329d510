"""READY covers every check the run selected: none may vanish from the summary (reports.plugin, reports.results).

Each test runs a throwaway lab (check files under tests_env/ of a pytester folder, the suite's plugins) in a real
pytest process and reads the three places a verdict is given: the terminal's last line, the results JSON and the
exit code. A check whose xdist worker died, a check the run never reached (Ctrl-C, kill, pytest.exit, -x), a
check file that did not import, a module left out by -k/--deselect, a run that called no check (--setup-only):
each must keep the run from READY, and say why.
"""

from __future__ import annotations

import json

import pytest

from labcheck.plugin import module_of_path
from reports import results
from reports.results import EXIT_NOT_READY, EXIT_NOT_VERIFIED

HEADER = "import os, signal, time\nimport pytest\nfrom labcheck.verdict import passed, failed\n"
# Three criteria of module 0; the middle one does what STOP says (env) before giving its verdict.
MODULE0 = HEADER + """pytestmark = pytest.mark.module0

def test_first(check):
    check(passed("first"))

def test_middle(check):
    how = os.environ.get("STOP", "")
    if how == "interrupt":
        raise KeyboardInterrupt  # Ctrl-C while this check runs
    if how == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)  # `kill` (labcheck.interrupt makes it a KeyboardInterrupt)
    if how == "exit0":
        pytest.exit("stopped by a plugin", returncode=0)
    if how == "crash":
        os.kill(os.getpid(), signal.SIGKILL)  # a segfault, the OOM killer
    if how == "kill-controller":  # `kill` of an xdist run (its controller); this worker is torn down meanwhile
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(10)
    if how == "fail":
        check(failed("middle broken", "fix middle"))
    check(passed("middle"))

def test_last(check):
    check(passed("last"))
"""
MODULE1 = HEADER + """pytestmark = pytest.mark.module1

def test_node(check):
    check(passed("node up"))
"""


def _lab(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    """A lab project: the suite's plugins, an ini (rootdir here, so tests_env/ is the lab's), the check files."""
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    (pytester.path / "tests_env").mkdir()
    for name, text in files.items():
        (pytester.path / "tests_env" / name).write_text(text)


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    """Run the lab in its own process; the result and the JSON's summary (with the records' verdicts)."""
    out = pytester.path / "r.json"
    out.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess("tests_env", f"--results-json={out}", *args, timeout=120)
    doc = json.loads(out.read_text())
    summary = doc["summary"]
    summary["verdicts"] = {r["check"]: r["verdict"] for r in doc["records"]}
    summary["why"] = {u["check"]: u["why"] for u in summary["unverified"]}
    return result, summary


def _last_line(result: pytest.RunResult) -> str:
    """The terminal's summary line: the one after the lab readiness section's listed checks."""
    section = result.stdout.str().split(" lab readiness ", 1)[1].splitlines()[1:]
    return next(line for line in section if line.startswith(("READY:", "READY (", "NOT READY:", "NOT VERIFIED:")))


def _agree(result: pytest.RunResult, summary: dict) -> None:
    assert _last_line(result) == summary["line"], result.stdout.str()


@pytest.mark.parametrize("name", ["test_module0.py", "test_checks.py"], ids=["module-file", "other-file"])
def test_a_check_whose_worker_died_fails_the_run(pytester, monkeypatch, name):
    """pytest-xdist's report of a dead worker's check has no keywords (no module): it must still fail the run.

    ``test_checks.py``: the module is not in the file name, so it comes from the workers' collection, which reaches
    the controller only at their end (the crash report is kept until then; -n 1: the dead worker's replacement
    runs the last check, so no worker has finished when the crash arrives). Without xdist such a crash ends the
    run itself: no summary is printed or written at all.
    """
    _lab(pytester, {name: MODULE0})
    monkeypatch.setenv("STOP", "crash")
    result, summary = _run(pytester, "-n", "1")
    assert result.ret == EXIT_NOT_READY, result.stdout.str()
    assert summary["state"] == results.NOT_READY and not summary["ready"], summary
    assert summary["verdicts"] == {"first": "pass", "middle": "fail", "last": "pass"}, summary
    result.stdout.fnmatch_lines(["FAIL module0::middle: check did not finish: worker 'gw*' crashed while running*",
                                 "     fix: cd * && * -m pytest */tests_env/test_*.py::test_middle -p no:xdist -vv   "
                                 "# alone, to see how its process died*"])
    _agree(result, summary)


def test_the_crash_fix_runs_the_check_without_xdist(pytester):
    """The fix of a dead worker's check reruns it with ``-p no:xdist``: the suite's plugins must load without
    pytest-xdist's hooks (pytest_testnodedown was required, so that command ended in an INTERNALERROR)."""
    _lab(pytester, {"test_module0.py": MODULE0})
    result, summary = _run(pytester, "-p", "no:xdist", "-vv")
    assert result.ret == 0 and summary["state"] == results.READY, result.stdout.str()


def test_checks_left_when_no_worker_is_left_are_not_run(pytester, monkeypatch):
    """A dead worker that is not replaced (--max-worker-restart 0) leaves the rest of its checks unreached."""
    _lab(pytester, {"test_module0.py": MODULE0})
    monkeypatch.setenv("STOP", "crash")
    result, summary = _run(pytester, "-n", "1", "--max-worker-restart", "0")
    assert result.ret != 0 and summary["state"] == results.NOT_READY, result.stdout.str()
    assert summary["verdicts"] == {"first": "pass", "middle": "fail"}, summary
    assert summary["why"] == {"last": "not run: the run stopped before this check gave a verdict "
                                      "(a worker process died)"}, summary
    _agree(result, summary)


STOPS = {  # how the run was stopped: (STOP, extra args, exit code, why the rest was not run)
    "ctrl-c": ("interrupt", (), 2, "interrupted (Ctrl-C)"),
    "kill": ("sigterm", (), 2, "interrupted: stopped by signal SIGTERM"),
    "pytest.exit(0)": ("exit0", (), EXIT_NOT_VERIFIED, "pytest.exit: stopped by a plugin"),
    "ctrl-c-xdist": ("interrupt", ("-n", "2"), 2, "interrupted: a worker received Ctrl-C"),
}


def test_kill_of_an_xdist_run_before_any_worker_reported_leaves_its_checks_not_run(pytester, monkeypatch):
    """No worker finished, so the controller knows the selected checks only by node id: a check of a file it has a
    record of (test_checks.py: no module in the name) is a lab check of that record's module."""
    _lab(pytester, {"test_checks.py": MODULE0})
    monkeypatch.setenv("STOP", "kill-controller")
    result, summary = _run(pytester, "-n", "1")
    assert result.ret == 2 and summary["state"] == results.NOT_VERIFIED, result.stdout.str()
    assert summary["verdicts"] == {"first": "pass"}, summary
    why = "not run: the run stopped before this check gave a verdict (interrupted: stopped by signal SIGTERM)"
    assert summary["why"] == {"middle": why, "last": why}, summary
    _agree(result, summary)


@pytest.mark.parametrize("how", list(STOPS))
def test_a_run_stopped_partway_is_never_ready(pytester, monkeypatch, how):
    """The checks the run never finished get "not run" records saying why; the summary is NOT VERIFIED, not READY.

    pytest's exit code stays where it says more (2: interrupted); a pytest.exit(returncode=0) no longer exits 0.
    """
    stop, args, code, why = STOPS[how]
    _lab(pytester, {"test_module0.py": MODULE0})
    monkeypatch.setenv("STOP", stop)
    result, summary = _run(pytester, *args)
    assert result.ret == code, result.stdout.str()
    assert summary["state"] == results.NOT_VERIFIED and not summary["ready"], summary
    not_run = {"middle"} | ({"last"} if not args else set())  # under xdist another worker runs `last`
    assert summary["why"] == {c: f"not run: the run stopped before this check gave a verdict ({why})"
                              for c in sorted(not_run)}, summary
    assert not set(summary["verdicts"]) & not_run and summary["modules"] == ["module0"], summary
    _agree(result, summary)
    assert "READY: " not in result.stdout.str().replace("NOT READY: ", ""), result.stdout.str()


def test_a_run_stopped_by_x_is_not_ready_and_lists_what_it_left(pytester, monkeypatch):
    _lab(pytester, {"test_module0.py": MODULE0})
    monkeypatch.setenv("STOP", "fail")
    result, summary = _run(pytester, "-x")
    assert result.ret == EXIT_NOT_READY and summary["state"] == results.NOT_READY, result.stdout.str()
    assert summary["why"] == {"last": "not run: the run stopped before this check gave a verdict "
                                      "(-x/--maxfail stopped the run: stopping after 1 failures)"}, summary
    _agree(result, summary)


def test_the_html_heading_says_what_the_terminal_and_the_json_say(pytester, monkeypatch):
    _lab(pytester, {"test_module0.py": MODULE0})
    html = pytester.path / "report.html"
    monkeypatch.setenv("STOP", "interrupt")
    result, summary = _run(pytester, f"--html={html}", "--self-contained-html")
    assert summary["state"] == results.NOT_VERIFIED
    text = html.read_text()
    assert f'labcheck-summary not-verified">{summary["line"]}<' in text, text[:3000]
    _agree(result, summary)


BROKEN = "import pytest\nimport no_such_module_for_labcheck\npytestmark = pytest.mark.module1\n"


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_check_file_that_does_not_import_fails_checks_collected(pytester, xdist):
    """--continue-on-collection-errors runs the other files' checks; the broken file's module fails, never READY."""
    _lab(pytester, {"test_module0.py": MODULE0, "test_module1.py": BROKEN})
    result, summary = _run(pytester, "--continue-on-collection-errors", *xdist)
    assert result.ret == EXIT_NOT_READY and summary["state"] == results.NOT_READY, result.stdout.str()
    assert summary["verdicts"] == {"first": "pass", "middle": "pass", "last": "pass", "checks_collected": "fail"}
    result.stdout.fnmatch_lines([
        "FAIL module1::checks_collected: tests_env/test_module1.py could not be collected: "
        "ModuleNotFoundError: No module named 'no_such_module_for_labcheck'",
        "     fix: cd * && * -m pytest */tests_env/test_module1.py --collect-only   # reproduces the collection error "
        "shown above"])
    _agree(result, summary)


def test_a_broken_file_not_named_after_its_module_is_filed_under_the_selected_one(pytester):
    """No module in its name and no marker read (it did not import): the module -m chose (as the fleet does)."""
    _lab(pytester, {"test_module0.py": MODULE0, "test_extra.py": BROKEN})
    result, summary = _run(pytester, "--continue-on-collection-errors", "-m", "module0")
    assert summary["state"] == results.NOT_READY and summary["verdicts"]["checks_collected"] == "fail", summary
    result.stdout.fnmatch_lines(["FAIL module0::checks_collected: tests_env/test_extra.py could not be collected*"])


@pytest.mark.parametrize("args", [("-k", "not node"), ("--deselect", "tests_env/test_module1.py::test_node"),
                                  ("-k", "not node", "-n", "2")], ids=["k", "deselect", "k-xdist"])
def test_a_module_dropped_by_k_or_deselect_is_not_verified(pytester, args):
    """-k and --deselect narrow a run; they do not decide which modules it makes a claim on (-m and paths do)."""
    _lab(pytester, {"test_module0.py": MODULE0, "test_module1.py": MODULE1})
    result, summary = _run(pytester, *args)
    assert result.ret == EXIT_NOT_VERIFIED and summary["state"] == results.NOT_VERIFIED, result.stdout.str()
    assert summary["why"] == {"node": "not run: deselected by -k/-m/node id"}, summary
    assert summary["modules"] == ["module0", "module1"]
    assert summary["line"] == "NOT VERIFIED: none of 3 checks of module0, module1 failed, but 1 criterion not verified"
    _agree(result, summary)


@pytest.mark.parametrize("args", [("-m", "module0"), ("tests_env/test_module0.py",)], ids=["m", "path"])
def test_a_module_left_out_by_m_or_by_its_path_makes_no_claim_and_ready_names_the_modules(pytester, args):
    _lab(pytester, {"test_module0.py": MODULE0, "test_module1.py": MODULE1})
    out = pytester.path / "r.json"
    result = pytester.runpytest_subprocess(*args, f"--results-json={out}", timeout=120)
    summary = json.loads(out.read_text())["summary"]
    assert result.ret == 0 and summary["state"] == results.READY, result.stdout.str()
    assert summary["modules"] == ["module0"] and summary["line"] == "READY (module 0 only; module 1 not run): 3 checks"
    _agree(result, summary)


@pytest.mark.parametrize("option", ["--setup-only", "--setup-plan"])
def test_a_run_that_calls_no_check_says_so_and_does_not_exit_0(pytester, option):
    _lab(pytester, {"test_module0.py": MODULE0})
    result, summary = _run(pytester, option)
    assert result.ret == EXIT_NOT_VERIFIED and summary["state"] == results.NOT_VERIFIED, result.stdout.str()
    word = "only shows the setup" if option == "--setup-plan" else "only sets up the fixtures"
    assert summary["line"] == f"NOT VERIFIED: no check ran: {option} {word}; no check was called", summary
    _agree(result, summary)


def test_collect_only_lists_the_checks_exits_as_pytest_does_and_never_says_ready(pytester):
    _lab(pytester, {"test_module0.py": MODULE0})
    result, summary = _run(pytester, "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["tests_env/test_module0.py::test_first", "tests_env/test_module0.py::test_last"])
    assert summary["state"] == results.NOT_VERIFIED and not summary["ready"]
    assert summary["line"] == "NOT VERIFIED: no check ran: --collect-only lists the checks and runs none"
    _agree(result, summary)


# --- the pure parts (reports.results) ----------------------------------------------------------------

def _passed(check: str) -> dict:
    return {"host": "h", "module": "module0", "check": check, "nodeid": f"tests_env/test_module0.py::test_{check}",
            "verdict": "pass", "message": "ok", "remediation": "", "criterion": True}


def test_a_check_never_reached_is_unverified_even_when_optional():
    """A deselected optional check makes no claim; one the run stopped before is no evidence either way."""
    gone = results.not_reached_record("h", "module0", "tests_env/test_module0.py::test_mode", "interrupted",
                                      optional="advisory")
    s = results.summarize([_passed("a"), gone])
    assert s.state == results.NOT_VERIFIED and s.unverified == (gone,) and s.total == 1
    assert results.exit_status(0, [_passed("a"), gone]) == EXIT_NOT_VERIFIED  # pytest.exit(returncode=0)
    assert results.exit_status(2, [_passed("a"), gone]) == 2  # interrupted stays interrupted


def test_the_module_of_a_check_file_name():
    assert module_of_path("tests_env/test_module1.py::test_node_ready") == "module1"
    assert module_of_path("test_module12.py") == "module12"
    assert module_of_path("tests/test_module0_run.py::test_x") is None  # the project's own tests
    assert module_of_path("tests_env/test_checks.py::test_x") is None


def test_a_test_under_tests_env_that_is_no_check_is_not_counted_as_one_not_run(pytester):
    """Under xdist the controller first knows the selection by node id; a worker's own list then says which are
    checks, so a plain test beside them (no moduleN marker) gets no "not run" record."""
    _lab(pytester, {"test_module0.py": MODULE0, "test_helper.py": "def test_helper():\n    pass\n"})
    result, summary = _run(pytester, "-n", "2")
    assert result.ret == 0 and summary["state"] == results.READY, result.stdout.str()
    assert summary["line"] == "READY (module 0 only; module 1 not run): 3 checks"
