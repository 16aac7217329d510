"""The report's HTML fragments and the secrets filter, without a browser (see test_report_browser.py)."""

from __future__ import annotations

import json

from reports import areas, fleet, html_parts

REC = {"host": "gpu-01", "module": "module0", "check": "docker_version", "verdict": "fail",
       "message": "found <script>alert(1)</script>", "remediation": "echo '<b>' && sudo apt-get install docker.io"}


RESULT_TD, DURATION_TD = '<td class="col-result">Failed</td>', '<td class="col-duration">3 ms</td>'


def test_cells_escape_what_probes_found():
    cells = "".join(html_parts.row_cells(REC, RESULT_TD, DURATION_TD, False))
    assert "<script>" not in cells and "&lt;script&gt;" in cells
    assert "&lt;b&gt;" in cells and 'class="col-remediation col-links"' in cells
    assert 'data-rank="0" class="verdict verdict-fail">FAIL<' in cells


def test_cells_of_a_report_without_a_record_stay_aligned():
    for host in (False, True):
        head = html_parts.header_cells("<th>Result</th>", "<th>Duration</th>", host)
        assert len(html_parts.row_cells({}, RESULT_TD, DURATION_TD, host)) == len(head)
        assert len(html_parts.row_cells(REC, RESULT_TD, DURATION_TD, host)) == len(head)
    assert 'data-column-type="host"' in "".join(html_parts.header_cells("", "", True))
    assert 'data-column-type="host"' not in "".join(html_parts.header_cells("", "", False))


def _rec(check, verdict, module="module0", host="h"):
    return {"host": host, "module": module, "check": check, "nodeid": f"tests_env/t.py::test_{check}",
            "verdict": verdict, "message": "m", "remediation": "fix" if verdict in ("fail", "warn") else ""}


def test_every_real_check_has_an_area_and_a_new_one_lands_in_other():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "tests_env"
    for module, path in (("module0", root / "test_module0.py"), ("module1", root / "test_module1.py")):
        names = [n.name[5:] for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
        assert names
        for name in names:
            assert areas.area_of({"module": module, "check": name}) is not areas.OTHER, (module, name)
    assert areas.area_of({"module": "module0", "check": "brand_new"}) is areas.OTHER
    assert areas.area_of({"module": "module1", "check": "host_connection"}).key == "host"
    assert areas.area_of({"module": "module1", "check": "cdi_spec_visible_in_node"}).key == "cluster"
    assert areas.area_of({"module": "module0", "check": "cdi_spec_valid"}).key == "toolkit"


def test_area_words_and_counts_in_fix_order():
    recs = [_rec("mps_pipe_directory", "pass"), _rec("docker_cli_present", "pass"),
            _rec("docker_engine_version", "fail"), _rec("gpu_compute_mode", "warn"), _rec("cdi_spec_valid", "skip"),
            _rec("linux_kernel_version", "pass"),
            _rec("kubernetes_node_ready", "pass", "module1"), _rec("zzz_new", "fail")]
    got = [(st.area.key, st.word, st.counts) for st in areas.area_statuses(recs)]
    zero = {"fail": 0, "warn": 0, "skip": 0, "pass": 0}
    assert got == [("host", "READY", {**zero, "pass": 1}), ("docker", "NOT READY", {**zero, "fail": 1, "pass": 1}),
                   ("gpu", "NOT VERIFIED", {**zero, "warn": 1}), ("toolkit", "NOT VERIFIED", {**zero, "skip": 1}),
                   ("mps", "READY", {**zero, "pass": 1}), ("dra", "READY", {**zero, "pass": 1}),
                   ("other", "NOT READY", {**zero, "fail": 1})]


def test_what_to_fix_follows_the_tiles_then_warnings_then_not_verified():
    recs = [_rec("mps_control_binary", "fail"), _rec("cdi_spec_valid", "skip"), _rec("gpu_compute_mode", "warn"),
            _rec("docker_engine_version", "fail")]
    html = "".join(html_parts.summary_blocks(recs))
    assert html.index("labcheck-tiles") < html.index("labcheck-attention")
    fix = html[html.index("labcheck-attention"):]
    order = [fix.index(f"&rsaquo; {s}") if "_" in s else fix.index(s) for s in (
        "docker_engine_version", "mps_control_binary", "Warnings", "gpu_compute_mode", "Not verified",
        "cdi_spec_valid")]
    assert order == sorted(order), order
    assert f'href="#{html_parts.row_anchor(recs[3])}"' in html  # each item links to its row


def test_filter_bar_counts_checks():
    outcomes = {k: {"label": k.title(), "value": v} for k, v in
                (("failed", 2), ("passed", 5), ("skipped", 1), ("xfailed", 0), ("rerun", 0), ("error", 0))}
    html_parts.check_outcomes(outcomes, warned=2)
    assert outcomes["passed"]["label"] == "passed or warned" and outcomes["failed"]["label"] == "failed"
    assert set(outcomes) == {"failed", "passed", "skipped", "xfailed", "rerun", "error"}  # its script needs each


def test_environment_in_tile_order_gpus_by_index():
    facts = {"GPU 10": "a", "Docker": "x", "GPU 2": "b", "Something new": "z", "GPUs": "g", "OS": "o"}
    assert list(html_parts.facts_in_order(facts)) == ["OS", "Docker", "GPUs", "GPU 2", "GPU 10", "Something new"]


def test_the_lab_config_and_its_settings_follow_the_probed_facts_together():
    facts = {"Lab config: min_docker": "25.0", "Something new": "z", "Docker": "x", "Lab config": "/lab/lab.yaml",
             "Lab config: cluster_name": "lab-a"}
    assert list(html_parts.facts_in_order(facts)) == ["Docker", "Lab config", "Lab config: min_docker",
                                                      "Lab config: cluster_name", "Something new"]


def test_fleet_hosts_link_to_their_own_sections_in_inventory_order():
    recs = [_rec("docker_engine_version", "fail", host="gpu-02"), _rec("docker_engine_version", "pass", host="gpu-01"),
            _rec("host_connection", "fail", host="gpu-03")]
    html = "".join(html_parts.summary_blocks(recs, fleet=["gpu-01", "gpu-02", "gpu-03"]))
    ids = [html.index(f'id="host-gpu-0{i}"') for i in (1, 2, 3)]
    assert ids == sorted(ids)
    assert html.count('class="labcheck-tiles"') == 3 and "labcheck-summary not-ready" in html
    doc = fleet.build(recs, [{"name": f"gpu-0{i}", "target": "t", "status": "ok"} for i in (1, 2, 3)])
    view = fleet.html(doc)
    assert view.count('href="#host-gpu-01"') == 2  # the hosts table and the matrix


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
    assert 'labcheck-summary ready">READY (module 0 only; module 1 not run): 1 checks<' in blocks
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
