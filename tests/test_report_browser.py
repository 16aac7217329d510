"""The HTML report as a person sees it: rendered by a real headless Chromium, screenshot taken.

pytest-html draws the results and Environment tables with JavaScript, so the assertions run on the
page after its scripts ran (tests/browser.py drives Chromium over the DevTools protocol): the
READY / NOT READY line, the verdict colours as computed by the browser, the remediation commands,
the Environment section (with secrets redacted), and a ``--self-contained-html`` report that loads
nothing from the network and renders with the network cut off.

Set LABCHECK_ARTIFACTS=DIR to keep the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium not installed (.ci/run installs Debian's chromium package)")
ROOT = Path(__file__).resolve().parents[1]

LAB_CHECKS = '''
import time
import pytest
from labcheck.plugin import record_env
from labcheck.progress import step
from labcheck.verdict import failed, passed, skipped, warned
pytestmark = pytest.mark.module0

@pytest.fixture(scope="session")
def facts(pytestconfig):
    record_env(pytestconfig, "GPU", "NVIDIA H100 80GB HBM3")
    record_env(pytestconfig, "NVIDIA driver", "580.159.04")
    record_env(pytestconfig, "Docker", "20.10.24")
    record_env(pytestconfig, "Default runtime", "<none> & <img src=x onerror=document.title='pwned'>")
    # A fixture that records what it must not: the report has to drop it.
    record_env(pytestconfig, "kind cluster access", "apiVersion: v1\\nkind: Config\\nusers:\\n- user:\\n"
               "    client-key-data: S3CR3T-KEY-DATA\\n")
    with step("pulling image kindest/node:v1.31.0", interval=0.05):
        time.sleep(0.12)
    return True

def test_docker_version(check, facts):
    check(passed("Docker 20.10.24 >= 20.10"))

def test_nvidia_runtime_default(check, facts):
    check(failed("default runtime is runc, expected nvidia",
                 "sudo nvidia-ctk runtime configure --runtime=docker --set-as-default"
                 " && sudo systemctl restart docker"))

def test_compute_mode(check, facts):
    check(warned("compute mode is Default, expected Exclusive_Process", "sudo nvidia-smi -c EXCLUSIVE_PROCESS"))

def test_cdi_spec(check, facts):
    check(skipped("nvidia-ctk not installed: cannot read the CDI spec"))

def test_kind_version(check, facts):
    check(passed("kind v0.24.0 >= v0.22.0"))
'''
FIX_RUNTIME = "sudo nvidia-ctk runtime configure --runtime=docker --set-as-default && sudo systemctl restart docker"
FIX_COMPUTE = "sudo nvidia-smi -c EXCLUSIVE_PROCESS"
SECRETS = ("S3CR3T-KEY-DATA", "ghp_S3CR3T", "alice@example.com", "sk-S3CR3T")
RED, GREEN, AMBER, GREY = "rgb(176, 0, 32)", "rgb(27, 122, 27)", "rgb(154, 91, 0)", "rgb(102, 102, 102)"


def _make_report(folder: Path, *extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conftest.py").write_text('pytest_plugins = ["labcheck.plugin", "reports.plugin"]\n')
    (folder / "test_lab.py").write_text(LAB_CHECKS)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           # CI variables pytest-metadata copies into the Environment table:
           "GIT_URL": "https://ci-bot:ghp_S3CR3T@github.com/lab/dra-labcheck.git",
           "GITLAB_USER_EMAIL": "alice@example.com"}
    report = folder / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", f"--html={report}",
         "--metadata", "OPENAI_API_KEY", "sk-S3CR3T", *extra, "test_lab.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one check fails
    return report


def _keep(path: Path) -> None:
    keep = os.environ.get("LABCHECK_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return _make_report(tmp_path_factory.mktemp("report"), "--self-contained-html")


@pytest.fixture(scope="module")
def browser():
    with Browser(CHROMIUM) as b:
        yield b


@pytest.fixture
def page(browser, report):
    browser.open(report)
    return browser


def test_screenshot_of_the_rendered_report(page, tmp_path):
    shot = page.screenshot(tmp_path / "labcheck-report.png")
    _keep(shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1400 and height > 900, (width, height)  # the whole page, not a blank viewport


def test_summary_line_and_colour(page):
    got = page.evaluate("""(() => { const h = document.querySelector('h2.labcheck-summary');
        return {text: h.innerText, colour: getComputedStyle(h).color, cls: h.className}; })()""")
    assert got == {"text": "NOT READY: 1 of 5 checks failed; 2 criteria not verified", "colour": RED,
                   "cls": "labcheck-summary not-ready"}
    counts = page.evaluate("[...document.querySelectorAll('.labcheck-counts .verdict')]"
                           ".map(e => [e.innerText, getComputedStyle(e).color])")
    assert counts == [["1 failed", RED], ["1 warning", AMBER], ["1 skipped", GREY], ["2 passed", GREEN]]


def test_what_to_fix_lists_failures_then_warnings_with_their_commands(page):
    items = page.evaluate("""[...document.querySelectorAll('.labcheck-attention ol > li')].map(li => ({
        text: li.innerText, fix: li.querySelector('pre.labcheck-fix')?.innerText ?? '',
        visible: li.checkVisibility()}))""")
    shown = [i for i in items if i["visible"]]
    assert [i["text"].split()[0] for i in shown] == ["FAIL", "WARN"]  # the skip sits in a closed <details>
    assert shown[0]["fix"] == FIX_RUNTIME and "nvidia_runtime_default" in shown[0]["text"]
    assert shown[1]["fix"] == FIX_COMPUTE
    assert "default runtime is runc, expected nvidia" in shown[0]["text"]


def _rows(page) -> dict[str, dict]:
    rows = page.evaluate("""[...document.querySelectorAll('#results-table tbody.results-table-row')].map(tb => {
        const cell = (c) => tb.querySelector('tr.collapsible > td.col-' + c);
        const badge = cell('verdict').querySelector('.verdict');
        const fix = cell('remediation').querySelector('.labcheck-fix');
        return {check: cell('check').innerText, verdict: badge.innerText, colour: getComputedStyle(badge).color,
                weight: getComputedStyle(badge).fontWeight,
                background: getComputedStyle(tb.querySelector('tr.collapsible')).backgroundColor,
                message: cell('message').innerText, remediation: cell('remediation').innerText,
                select: fix ? getComputedStyle(fix).userSelect : null,
                font: fix ? getComputedStyle(fix).fontFamily : null}; })""")
    return {r["check"]: r for r in rows}


def test_verdict_colours_computed_by_the_browser(page):
    rows = _rows(page)
    got = {c: (r["verdict"], r["colour"]) for c, r in rows.items()}
    assert got == {"nvidia_runtime_default": ("FAIL", RED), "compute_mode": ("WARN", AMBER),
                   "cdi_spec": ("SKIP", GREY), "docker_version": ("PASS", GREEN), "kind_version": ("PASS", GREEN)}
    assert all(int(r["weight"]) >= 600 for r in rows.values())
    assert rows["nvidia_runtime_default"]["background"] == "rgb(253, 236, 238)"  # failing row tinted
    assert rows["compute_mode"]["background"] == "rgb(255, 245, 224)"
    assert rows["docker_version"]["background"] == "rgba(0, 0, 0, 0)"


def test_remediation_text_is_whole_monospace_and_selectable_in_one_click(page):
    rows = _rows(page)
    fail = rows["nvidia_runtime_default"]
    assert fail["remediation"] == FIX_RUNTIME
    assert fail["message"] == "default runtime is runc, expected nvidia"
    assert fail["select"] == "all" and "monospace" in fail["font"]
    assert rows["compute_mode"]["remediation"] == FIX_COMPUTE
    assert rows["cdi_spec"]["message"] == "nvidia-ctk not installed: cannot read the CDI spec"
    assert rows["docker_version"]["remediation"] == ""


def test_failing_checks_first_and_verdict_column_sorts_by_severity(page):
    verdicts = "[...document.querySelectorAll('#results-table .col-verdict .verdict')].map(e => e.innerText)"
    assert page.evaluate(verdicts)[0] == "FAIL"
    page.evaluate("document.querySelector('th[data-column-type=verdict]').click()")
    order = page.evaluate(verdicts)
    assert order == ["FAIL", "WARN", "SKIP", "PASS", "PASS"]


def test_environment_section_shows_lab_facts_first_and_no_secrets(page):
    env = page.evaluate("[...document.querySelectorAll('#environment tr')].map(tr => "
                        "[...tr.querySelectorAll('td')].map(td => td.innerText))")
    keys = [row[0] for row in env]
    assert keys[:3] == ["GPU", "NVIDIA driver", "Docker"]
    facts = dict((row[0], row[1]) for row in env)
    assert facts["GPU"] == "NVIDIA H100 80GB HBM3" and facts["NVIDIA driver"] == "580.159.04"
    # Shown as text, not run as HTML:
    assert facts["Default runtime"] == "<none> & <img src=x onerror=document.title='pwned'>"
    assert page.evaluate("document.title") == "DRA workshop lab readiness"
    # the step sleeps ~0.1 s; on a loaded machine it takes longer: assert the shape, not the exact time
    assert re.search(r"pulling image kindest/node:v1\.31\.0: \d+\.\ds", facts["Setup steps"]), facts["Setup steps"]
    assert facts["GIT_URL"] == "https://***@github.com/lab/dra-labcheck.git"
    assert facts["kind cluster access"].startswith("[redacted]")
    assert "Python" in facts and "Plugins" in facts
    rendered = page.evaluate("document.documentElement.outerHTML")
    for secret in SECRETS:
        assert secret not in rendered
    for secret in SECRETS:
        assert secret not in Path(page.evaluate("location.pathname")).read_text()


def test_page_order_verdict_then_checks_then_environment(page):
    tops = page.evaluate("""['h2.labcheck-summary', '.labcheck-attention', '#results-table', '#environment']
        .map(s => document.querySelector(s).getBoundingClientRect().top)""")
    assert tops == sorted(tops), tops


def test_clicking_a_command_selects_it_without_folding_the_row(page):
    got = page.evaluate("""(() => {
        document.getElementById('results-table').dataset.mark = 'before';
        document.querySelector('tbody.failed .col-remediation .labcheck-fix').click();
        const kept = document.getElementById('results-table').dataset.mark === 'before';
        document.querySelector('tbody.failed .col-check').click();   // any other cell folds the row
        const folded = document.querySelector('tbody.failed .extras-row').classList.contains('hidden');
        return {kept, folded}; })()""")
    assert got == {"kept": True, "folded": True}


def test_skip_details_show_the_reason_not_a_tuple(page):
    log = page.evaluate("document.querySelector('tbody.skipped .log').innerText")
    assert log.startswith("Skipped: nvidia-ctk not installed: cannot read the CDI spec"), log


# --- self-contained and offline ----------------------------------------------------------------------------

_LOADS_FROM_NETWORK = re.compile(
    r"<(?!a[\s>])[a-z]+\b[^>]*\b(?:src|href|srcset|poster|data)\s*=\s*[\"']?\s*(?:https?:)?//"
    r"|url\(\s*[\"']?\s*(?:https?:)?//|@import",
    re.IGNORECASE)


def test_self_contained_report_loads_nothing_from_the_network(report):
    text = report.read_text()
    assert not _LOADS_FROM_NETWORK.findall(text)
    assert '<link href="assets' not in text and "<style" in text and ".verdict-fail" in text
    assert not (report.parent / "assets").exists()


def test_self_contained_report_renders_with_the_network_off(report, tmp_path):
    with Browser(CHROMIUM, offline=True) as b:
        b.open(report)
        got = b.evaluate("""({rows: document.querySelectorAll('#results-table tbody.results-table-row').length,
            summary: getComputedStyle(document.querySelector('h2.labcheck-summary')).color,
            env: document.querySelectorAll('#environment tr').length})""")
        urls = b.requested_urls()
        _keep(b.screenshot(tmp_path / "labcheck-report-offline.png"))
    assert got["rows"] == 5 and got["summary"] == RED and got["env"] >= 5, (got, b.offline_by)
    assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls


def test_report_with_assets_folder_gets_the_same_styles(tmp_path, browser):
    report = _make_report(tmp_path / "assets-report")
    css = (report.parent / "assets" / "style.css").read_text()
    assert ".verdict-fail" in css and ".labcheck-fix" in css
    browser.open(report)
    assert browser.evaluate("getComputedStyle(document.querySelector('h2.labcheck-summary')).color") == RED
