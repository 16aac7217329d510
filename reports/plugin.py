"""Controller-side reporting: collect check records, print READY / NOT READY, write JSON and HTML.

Runs wherever the reports arrive: in a plain run that is this process, under pytest-xdist it is
the controller, which only sees serialised reports (hence records, not live objects).
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

import pytest

from labcheck.plugin import env_facts, host_name
from reports import results

RECORDS_KEY = pytest.StashKey[list]()
HOST_ENV_KEY = pytest.StashKey[dict]()


class _Collector:
    """Keeps the check records of one run (the hook gets no config, so it lives on an object)."""

    def __init__(self, config: pytest.Config) -> None:
        self.records = config.stash[RECORDS_KEY]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rec = results.record_from_report(report)
        if rec is not None:
            self.records.append(rec)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RECORDS_KEY] = []
    config.stash[HOST_ENV_KEY] = {}
    config.pluginmanager.register(_Collector(config), "labcheck-collector")


def records(config: pytest.Config) -> list[dict]:
    return config.stash[RECORDS_KEY]


def pytest_testnodedown(node, error) -> None:
    """xdist controller: keep each worker's environment facts, filed under its host."""
    out = getattr(node, "workeroutput", None) or {}
    env = out.get("labcheck_env")
    if env:
        host = out.get("labcheck_host") or "unknown"
        node.config.stash[HOST_ENV_KEY].setdefault(host, {}).update(env)


def host_environments(config: pytest.Config) -> dict[str, dict[str, str]]:
    """Environment facts per host, from this process and from any xdist workers."""
    envs = {h: dict(e) for h, e in config.stash[HOST_ENV_KEY].items()}
    local = env_facts(config)
    if local:
        envs.setdefault(host_name(), {}).update(local)
    return envs


def results_document(config: pytest.Config) -> dict:
    recs = records(config)
    summary = results.summarize(recs)
    return {
        "summary": {"line": summary.line, "ready": summary.ready, "total": summary.total,
                    "failed": summary.failed, "warned": summary.warned, "skipped": summary.skipped},
        "environment": host_environments(config),
        "records": recs,
        **_fleet_section(config, recs),
    }


def _fleet_section(config: pytest.Config, recs: list[dict]) -> dict:
    """``fleet``: hosts x checks with READY per host, only in a ``--hosts`` run (labcheck.fleet_plugin)."""
    from labcheck.fleet_plugin import fleet_document

    fleet = fleet_document(config, recs)
    return {} if fleet is None else {"fleet": fleet}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if getattr(config, "workerinput", None) is not None:
        return  # an xdist worker: the controller writes the outputs
    _fill_html_environment(config)
    path = config.getoption("--results-json")
    if path:
        _write_json_atomic(Path(path), results_document(config))


def _write_json_atomic(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if getattr(config, "workerinput", None) is not None:
        return
    recs = records(config)
    if not recs:
        return
    summary = results.summarize(recs)
    terminalreporter.write_sep("=", "lab readiness", bold=True)
    for rec in recs:
        if rec["verdict"] == "fail":
            terminalreporter.write_line(f"FAIL {rec['module']}::{rec['check']}: {rec['message']}", red=True)
            terminalreporter.write_line(f"     fix: {rec['remediation']}")
    terminalreporter.write_line(summary.line, green=summary.ready, red=not summary.ready, bold=True)


# --- pytest-html -----------------------------------------------------------------------------------

def _fill_html_environment(config: pytest.Config) -> None:
    """Put the probed facts in pytest-html's Environment table (it renders the metadata dict)."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is None:
        return
    envs = host_environments(config)
    if len(envs) == 1:
        metadata.update(next(iter(envs.values())))
    else:
        for host, env in envs.items():
            metadata[host] = env


@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report) -> None:
    report.title = "DRA workshop lab readiness"


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix, summary, postfix, session) -> None:
    s = results.summarize(records(session.config))
    css = "ready" if s.ready else "not-ready"
    colour = "#1b7a1b" if s.ready else "#b00020"
    prefix.append(f'<h2 class="labcheck-summary {css}" style="color:{colour}">{escape(s.line)}</h2>')


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list) -> None:
    cells.insert(1, '<th class="sortable" data-column-type="host">Host</th>')
    cells.insert(2, '<th class="sortable" data-column-type="module">Module</th>')
    cells.insert(3, '<th class="sortable" data-column-type="check">Check</th>')
    cells.insert(4, '<th class="sortable" data-column-type="verdict">Verdict</th>')
    cells.insert(5, '<th data-column-type="remediation">Remediation</th>')


_VERDICT_COLOUR = {"pass": "#1b7a1b", "fail": "#b00020", "warn": "#b26a00", "skip": "#666666"}


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report, cells: list) -> None:
    rec = results.record_from_report(report) or {}
    verdict = rec.get("verdict", "")
    colour = _VERDICT_COLOUR.get(verdict, "inherit")
    cells.insert(1, f'<td class="col-host">{escape(rec.get("host", ""))}</td>')
    cells.insert(2, f'<td class="col-module">{escape(rec.get("module", ""))}</td>')
    cells.insert(3, f'<td class="col-check">{escape(rec.get("check", ""))}</td>')
    cells.insert(4, f'<td class="col-verdict verdict-{escape(verdict)}" style="color:{colour};font-weight:bold">'
                    f'{escape(verdict.upper())}</td>')
    cells.insert(5, f'<td class="col-remediation"><code>{escape(rec.get("remediation", ""))}</code></td>')
