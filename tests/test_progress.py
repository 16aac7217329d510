"""labcheck.progress with real threads and real slow steps, alone and inside real pytest runs."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from labcheck import cmd, progress

ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture
def lines():
    """Progress lines written during the test (a real writer, called from the ticker thread too)."""
    got: list[str] = []
    previous = progress.set_writer(got.append)
    yield got
    progress.set_writer(previous)


def _ticker_threads(what: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"labcheck-progress: {what}"]


def test_slow_step_shows_start_still_lines_and_duration(lines):
    before = len(progress.history())
    with progress.step("creating cluster test-a", interval=0.1):
        result = cmd.run(["sleep", "0.55"], timeout=10)  # a real slow command
    assert result.ok
    assert lines[0] == "[labcheck] creating cluster test-a ..."
    still = [line for line in lines if line.startswith("[labcheck] still creating cluster test-a ... ")]
    assert len(still) >= 3, lines
    assert re.match(r"\[labcheck\] creating cluster test-a: done in \d+\.\ds$", lines[-1]), lines
    rec = progress.history()[before]
    assert rec.what == "creating cluster test-a" and rec.ok and rec.error == ""
    assert 0.5 <= rec.seconds < 5


def test_still_lines_count_up(lines):
    with progress.step("pulling image test-b", interval=0.1):
        time.sleep(0.45)
    elapsed = [float(line.rsplit(" ", 1)[1].rstrip("s")) for line in lines if " still " in line]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 0.3


def test_ticker_thread_ends_with_the_step(lines):
    with progress.step("test-c", interval=0.05):
        assert len(_ticker_threads("test-c")) == 1
        time.sleep(0.12)
    assert _ticker_threads("test-c") == []
    count = len(lines)
    time.sleep(0.2)
    assert len(lines) == count, "a line was printed after the step ended"


def test_a_fast_step_prints_no_still_line_and_does_not_wait_an_interval(lines):
    start = time.monotonic()
    with progress.step("test-d", interval=30):
        pass
    assert time.monotonic() - start < 10, "ending the step waited for the ticker's 30 s interval"
    assert len(lines) == 2 and lines[0] == "[labcheck] test-d ..."
    assert re.fullmatch(r"\[labcheck\] test-d: done in \d+\.\ds", lines[1]), lines


def test_note_says_what_the_step_is_doing(lines):
    with progress.step("creating cluster test-e", interval=0.05) as s:
        s.note("waiting for node Ready")
        time.sleep(0.15)
    assert any("still creating cluster test-e (waiting for node Ready) ... " in line for line in lines), lines


def test_failing_step_is_recorded_and_the_error_propagates(lines):
    before = len(progress.history())
    with pytest.raises(RuntimeError, match="kind exited 1"), progress.step("creating cluster test-f", interval=5):
        raise RuntimeError("kind exited 1")
    rec = progress.history()[before]
    assert (rec.ok, rec.error) == (False, "RuntimeError: kind exited 1")
    assert re.fullmatch(r"\[labcheck\] creating cluster test-f: failed after 0\.\ds \(RuntimeError: kind exited 1\)",
                        lines[-1]), lines


def test_a_skip_inside_a_step_is_recorded_as_stopped(lines):
    with pytest.raises(pytest.skip.Exception), progress.step("test-g", interval=5):
        pytest.skip("no GPU")
    assert "stopped after" in lines[-1] and "no GPU" in lines[-1]


def test_a_broken_writer_does_not_break_the_step():
    def broken(line: str) -> None:
        raise BrokenPipeError("terminal gone")

    previous = progress.set_writer(broken)
    try:
        with progress.step("test-h", interval=0.02):
            time.sleep(0.06)
    finally:
        progress.set_writer(previous)
    assert progress.history()[-1].what == "test-h" and progress.history()[-1].ok


def test_steps_in_parallel_threads_each_get_their_record(lines):
    def work(i: int) -> None:
        with progress.step(f"parallel-{i}", interval=0.05):
            time.sleep(0.1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = {r.what for r in progress.history()}
    assert {f"parallel-{i}" for i in range(4)} <= done
    assert sum(line.endswith(" ...") and "still" not in line for line in lines) == 4


def test_interval_from_environment(lines, monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.05")
    with progress.step("test-i"):
        time.sleep(0.2)
    assert any(" still test-i" in line for line in lines)
    monkeypatch.setenv(progress.INTERVAL_ENV, "not-a-number")
    assert progress._default_interval() == progress.DEFAULT_INTERVAL


@pytest.mark.parametrize(("seconds", "text"), [(0.04, "0.0s"), (4.25, "4.2s"), (59.9, "59.9s"), (60, "1m 00s"),
                                               (125.4, "2m 05s"), (3725, "62m 05s")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


# --- inside real pytest runs: the lines get past output capture ---------------------------------------

SLOW_SETUP = '''
import time
import pytest
from labcheck.progress import step
from labcheck.verdict import passed
pytestmark = pytest.mark.module1

@pytest.fixture(scope="session")
def cluster():
    with step("creating cluster workshop-dra", interval=0.1) as s:
        s.note("kind create cluster")
        time.sleep(0.5)
    return "workshop-dra"

def test_node_ready(check, cluster):
    check(passed("node Ready"))

def test_mps_daemon(check, cluster):
    check(passed("MPS control daemon running"))
'''


@pytest.fixture
def subprocess_pytester(pytester, monkeypatch):
    """pytester whose subprocess runs import this checkout (CI installs it; a bare checkout does not)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    return pytester


def _slow_run(pytester, *args):
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    pytester.makepyfile(test_cluster=SLOW_SETUP)
    out = pytester.path / "r.json"
    result = pytester.runpytest_subprocess(f"--results-json={out}", *args)
    return result, json.loads(out.read_text())


def test_progress_reaches_the_terminal_through_fd_capture(subprocess_pytester):
    """Default fd capture swallows sys.stderr while a fixture runs; the lines must still show, live."""
    result, doc = _slow_run(subprocess_pytester, "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stderr.fnmatch_lines([
        "[[]labcheck] creating cluster workshop-dra ...",
        "[[]labcheck] still creating cluster workshop-dra (kind create cluster) ... *s",
        "[[]labcheck] creating cluster workshop-dra: done in *s",
    ])
    assert "Captured stderr" not in result.stdout.str()
    result.stdout.fnmatch_lines(["setup: creating cluster workshop-dra: 0.*s",
                                 "READY (module 1 only; module 0 not run): 2 checks"])
    (st,) = doc["setup_steps"]
    assert st["what"] == "creating cluster workshop-dra" and st["ok"] and st["seconds"] >= 0.5
    assert st["worker"] == "" and st["host"]


def test_progress_from_xdist_workers_reaches_the_controller_terminal(subprocess_pytester):
    result, doc = _slow_run(subprocess_pytester, "-p", "no:benchmark", "-n", "2")
    result.assert_outcomes(passed=2)
    result.stderr.fnmatch_lines(["[[]gw?] [[]labcheck] still creating cluster workshop-dra (kind create cluster) ..*"])
    assert {st["worker"] for st in doc["setup_steps"]} <= {"gw0", "gw1"}
    assert all(st["what"] == "creating cluster workshop-dra" and st["ok"] for st in doc["setup_steps"])
    result.stdout.fnmatch_lines(["setup [[]gw?]: creating cluster workshop-dra: 0.*s"])


def test_a_step_marked_failed_without_an_exception_is_reported_and_recorded_as_failed(lines):
    """Commands report failure as values (labcheck.cmd), so a step can fail without raising."""
    before = len(progress.history())
    with progress.step("creating cluster test-f", interval=30) as s:
        s.fail("`kind create cluster` exited 1: boom")
    assert re.match(r"\[labcheck\] creating cluster test-f: failed after \d+\.\ds \(`kind create cluster` exited 1: "
                    r"boom\)$", lines[-1]), lines
    rec = progress.history()[before]
    assert not rec.ok and rec.error == "`kind create cluster` exited 1: boom"
