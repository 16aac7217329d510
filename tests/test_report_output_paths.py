"""Report outputs (--html, --results-json) in a place that cannot be written (audit-m1 item 6), on real folders and
real pytest processes: refused at start-up with a usage error and an example path when it is known then; when it
turns unwritable during the run, the readiness summary and the exit status survive the failed write.

``chattr +i`` (root, on a file system with attributes) makes a folder refuse every write even to root, as a
read-only mount does; every test that sets it takes it off again in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_bad_input import _run, plant


@contextlib.contextmanager
def immutable(path: Path):
    """``chattr +i path`` for the block, always undone; skips where the attribute cannot be set."""
    if os.geteuid() != 0:
        pytest.skip("chattr +i needs root")
    try:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no chattr on this host")
    if done.returncode != 0:
        pytest.skip(f"chattr +i refused here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, timeout=30)


@pytest.mark.parametrize("option, name", [("--html", "r.html"), ("--results-json", "r.json"),
                                          ("--html", "new/sub/r.html"), ("--results-json", "new/r.json")])
@pytest.mark.parametrize("html_mode", [[], ["--self-contained-html"]], ids=["assets", "self-contained"])
def test_an_output_in_a_folder_that_refuses_writes_is_a_usage_error(pytester, tmp_path, option, name, html_mode):
    folder = tmp_path / "locked"
    folder.mkdir()
    with immutable(folder):
        result = _run(pytester, f"{option}={folder / name}", *html_mode)
        assert os.listdir(folder) == []
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    err = result.stderr.str()
    assert f"cannot create a file in {folder}: Operation not permitted" in err, err
    assert f"e.g. {option}={os.path.expanduser('~')}" in err and "INTERNALERROR" not in err + result.stdout.str()


def test_an_existing_report_file_that_refuses_writes_is_a_usage_error(pytester, tmp_path):
    report = tmp_path / "r.html"
    report.write_text("the last run's report")
    with immutable(report):
        result = _run(pytester, f"--html={report}", "--self-contained-html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"cannot write {report}: Operation not permitted" in result.stderr.str()
    assert report.read_text() == "the last run's report"


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_assets_that_pytest_html_cannot_write_are_a_usage_error(pytester, tmp_path, kind):
    """Without --self-contained-html pytest-html writes assets/style.css next to the report at start-up: an
    ``assets`` file (mkdir fails) or a FIFO at assets/style.css (open("w") blocks forever) is refused first."""
    if kind == "file":
        (tmp_path / "assets").write_text("mine")
    else:
        (tmp_path / "assets").mkdir()
        plant(tmp_path / "assets" / "style.css", "fifo")
    result = _run(pytester, f"--html={tmp_path / 'r.html'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"pytest-html writes {tmp_path / 'assets' / 'style.css'} beside the report" in err, err
    assert ("Not a directory" if kind == "file" else "not a regular file") in err and "--self-contained-html" in err


def test_a_report_that_cannot_be_written_at_the_end_keeps_the_summary_and_the_exit_code(pytester, tmp_path,
                                                                                       monkeypatch):
    """The report path turns into a folder during the run (tests.test_bad_input's SWAP_RESULTS check does that),
    so pytest-html's open("w") fails at the end: reported like a failed --results-json, NOT READY and exit 1 kept."""
    html = tmp_path / "report.html"
    monkeypatch.setenv("SWAP_RESULTS", str(html))
    result = _run(pytester, f"--html={html}", "--self-contained-html")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, text  # the failing check, as without the write error
    assert f"HTML report NOT written: {html}" in text and "INTERNALERROR" not in text
    assert "NOT READY: 1 of 3 checks failed" in text
    assert "Generated html report" not in text  # pytest-html's own line would say it was


def test_a_writable_report_folder_still_gets_its_report_and_no_probe_file(pytester, tmp_path):
    html = tmp_path / "out" / "report.html"
    result = _run(pytester, f"--html={html}")
    assert result.ret == 1 and html.is_file() and (tmp_path / "out" / "assets" / "style.css").is_file()
    assert not [n for n in os.listdir(tmp_path / "out") if "probe" in n]
