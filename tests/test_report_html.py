"""The report's HTML fragments and the secrets filter, without a browser (see test_report_browser.py)."""

from __future__ import annotations

import json

from reports import html_parts

REC = {"host": "gpu-01", "module": "module0", "check": "docker_version", "verdict": "fail",
       "message": "found <script>alert(1)</script>", "remediation": "echo '<b>' && sudo apt-get install docker.io"}


def test_cells_escape_what_probes_found():
    cells = "".join(html_parts.row_cells(REC))
    assert "<script>" not in cells and "&lt;script&gt;" in cells
    assert "&lt;b&gt;" in cells and 'class="col-remediation col-links"' in cells
    assert 'data-rank="0" class="verdict verdict-fail">FAIL<' in cells


def test_cells_of_a_report_without_a_record_stay_aligned():
    assert len(html_parts.row_cells({})) == len(html_parts.EXTRA_HEADER_CELLS)


def test_summary_names_hosts_only_when_there_are_several():
    other = {**REC, "host": "gpu-02", "verdict": "warn", "remediation": "nvidia-smi -c EXCLUSIVE_PROCESS"}
    one = "".join(html_parts.summary_blocks([REC]))
    two = "".join(html_parts.summary_blocks([REC, other]))
    assert "on gpu-01" not in one
    assert "on gpu-01" in two and "on gpu-02" in two
    assert two.index("What to fix") < two.index("Warnings")
    assert "<script>" not in two


def test_ready_summary_has_no_fix_section():
    ok = {**REC, "verdict": "pass", "message": "ok", "remediation": ""}
    blocks = "".join(html_parts.summary_blocks([ok]))
    assert 'labcheck-summary ready">READY: 1 checks<' in blocks
    assert '<span class="verdict verdict-fail zero">0 failed</span>' in blocks
    assert '<span class="verdict verdict-pass">1 passed</span>' in blocks
    assert "labcheck-attention" not in blocks


def test_setup_steps_block():
    steps = [{"host": "h", "worker": "", "what": "creating cluster workshop-dra", "seconds": 73.2, "ok": True,
              "error": ""},
             {"host": "h", "worker": "", "what": "pulling image", "seconds": 3.0, "ok": False,
              "error": "RuntimeError: no registry"}]
    blocks = "".join(html_parts.summary_blocks([REC], steps))
    assert "creating cluster workshop-dra</td><td>1m 13s" in blocks
    assert 'class="step-failed"' in blocks and "failed after 3.0s: RuntimeError: no registry" in blocks


CHECKS = '''
import pytest
from labcheck.plugin import record_env
from labcheck.verdict import passed
pytestmark = pytest.mark.module0

def test_facts(check, pytestconfig):
    record_env(pytestconfig, "GPU", "NVIDIA H100 80GB HBM3")
    record_env(pytestconfig, "kubeconfig", "/root/.kube/config")
    record_env(pytestconfig, "CA", "-----BEGIN CERTIFICATE-----\\nMIIDBTCCAe2gAwIBAgIIS3CR3T")
    check(passed("fine"))
'''


def test_no_secret_reaches_the_html_or_the_json(pytester, monkeypatch):
    monkeypatch.setenv("GIT_URL", "https://bot:ghp_S3CR3T@github.com/o/r.git")
    monkeypatch.setenv("GITLAB_USER_EMAIL", "alice@example.com")
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    pytester.makepyfile(test_checks=CHECKS)
    out = pytester.path / "r.json"
    report = pytester.path / "report.html"
    result = pytester.runpytest(f"--html={report}", "--self-contained-html", f"--results-json={out}",
                                "--metadata", "HF_TOKEN", "hf_S3CR3T", "-v")
    result.assert_outcomes(passed=1)
    text = report.read_text() + out.read_text() + result.stdout.str()
    for secret in ("ghp_S3CR3T", "alice@example.com", "hf_S3CR3T", "MIIDBTCC", "/root/.kube/config"):
        assert secret not in text
    assert "https://***@github.com/o/r.git" in text
    env = json.loads(out.read_text())["environment"]
    (facts,) = env.values()
    assert facts["GPU"] == "NVIDIA H100 80GB HBM3" and facts["kubeconfig"] == "[redacted]"
