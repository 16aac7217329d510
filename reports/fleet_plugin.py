"""The fleet view of a ``--hosts`` run (see labcheck.fleet_plugin): the hosts x checks matrix in the terminal
summary and at the top of the HTML report.

WHY here and not in labcheck.fleet_plugin: the view needs the report's records (reports.plugin), and labcheck
never imports reports (tests/test_layering.py), so the hooks that draw it live on the reports side.
"""

from __future__ import annotations

import pytest

from reports import fleet
from reports.plugin import records


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    doc = fleet.document(config, records(config))
    if doc is None:
        return
    terminalreporter.write_sep("=", "fleet readiness", bold=True)
    for text, ready in fleet.terminal_lines(doc):
        terminalreporter.write_line(text, green=ready, red=not ready, bold=text == doc["line"])


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # first: the fleet view tops the summary
def pytest_html_results_summary(prefix, summary, postfix, session) -> None:
    doc = fleet.document(session.config, records(session.config))
    if doc is not None:
        prefix.append(fleet.html(doc))
