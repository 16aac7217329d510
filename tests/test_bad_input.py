"""Issue 11 (bad input, round 2) on real files and real pytest processes: outputs that are not regular files,
inputs that are FIFOs, devices, binary or alias bombs, fields of the wrong type, lab config values out of range,
secrets and control characters in messages, CDI as the spec defines it, tool output, usage errors.

The table of cases is docs/hardening.md. Each pytest run here is a child process with a timeout, so a case that
regresses into a hang (a FIFO) fails instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECKS = '''
import os, sys
import pytest
from labcheck.verdict import passed, failed
pytestmark = pytest.mark.module0

def test_good(check):
    check(passed("fine"))

def test_bad(check):
    check(failed("docker too old", "sudo apt-get install docker-ce"))

def test_swap_the_results_path(check):
    # stands for the output path changing under a running suite (another process, a user's mistake)
    path = os.environ.get("SWAP_RESULTS")
    if path:
        os.mkdir(path)
    check(passed("swapped"))
'''


def _run(pytester, *args):
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    pytester.makepyfile(test_checks=CHECKS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=60)


def _tmp_left(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if "tmp" in n]


# --- 1. outputs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--results-json", "--html"])
@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling symlink", "symlink to /dev/null"])
def test_an_output_that_is_not_a_regular_file_is_a_usage_error_and_is_left_alone(pytester, tmp_path, option, kind):
    out = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "folder":
        out.mkdir()
    elif kind == "dangling symlink":
        out.symlink_to(tmp_path / "nowhere")
    else:
        out.symlink_to("/dev/null")
    before = os.lstat(out)
    result = _run(pytester, f"{option}={out}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"{option}={out}" in err and "not a regular file" in err or "does not exist" in err, err
    after = os.lstat(out)
    assert (before.st_ino, stat.S_IFMT(before.st_mode)) == (after.st_ino, stat.S_IFMT(after.st_mode))
    assert _tmp_left(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, /dev/null could be replaced: the case only exists as root")
@pytest.mark.parametrize("option", ["--results-json", "--html"])
def test_dev_null_as_root_is_refused_and_stays_a_device(pytester, option):
    ino = os.stat("/dev/null").st_ino
    result = _run(pytester, f"{option}=/dev/null")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "a character device, not a regular file" in result.stderr.str()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_ino == ino


@pytest.mark.parametrize("option", ["--results-json", "--html"])
def test_an_empty_output_name_is_a_usage_error(pytester, option):
    result = _run(pytester, f"{option}=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"{option}= needs a file name" in result.stderr.str()


def test_results_json_through_a_symlink_writes_its_target_and_keeps_the_link_and_mode(pytester, tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    os.chmod(real, 0o640)
    link = tmp_path / "results.json"
    link.symlink_to(real)
    _run(pytester, f"--results-json={link}")
    assert link.is_symlink() and json.loads(real.read_text())["summary"]["total"] == 3
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert _tmp_left(tmp_path) == []


def test_a_failing_results_write_keeps_the_html_report_the_summary_and_the_exit_code(pytester, tmp_path,
                                                                                    monkeypatch):
    out = tmp_path / "results.json"
    html = tmp_path / "report.html"
    monkeypatch.setenv("SWAP_RESULTS", str(out))
    result = _run(pytester, f"--results-json={out}", f"--html={html}", "--self-contained-html")
    assert result.ret == 1  # the failing check, as without the write error
    text = result.stdout.str()
    assert f"results JSON NOT written: {out}" in text and "is a folder" in text
    assert "NOT READY: 1 of 3 checks failed" in text
    assert html.is_file() and "docker too old" in html.read_text()
    assert out.is_dir() and os.listdir(out) == [] and _tmp_left(tmp_path) == []
