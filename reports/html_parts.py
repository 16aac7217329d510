"""HTML fragments for the pytest-html report: the check columns and the readiness summary.

Pure functions over check records (reports.results) so they are tested without a browser; how
they look is set by labcheck.css and checked in a real browser (tests/test_report_browser.py).

Colours are carried by classes (``verdict verdict-fail``...), never by colour alone: the verdict
word is always shown too. Remediations are ``.labcheck-fix`` blocks a single click selects whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from labcheck.progress import format_duration
from reports import results

# Sorting the Verdict column compares the cell's HTML as text: the rank attribute comes first, so
# fail < warn < skip < pass and one click on the header puts what needs attention on top.
VERDICT_RANK = {"fail": 0, "warn": 1, "skip": 2, "pass": 3}

EXTRA_HEADER_CELLS = [
    '<th class="sortable" data-column-type="host">Host</th>',
    '<th class="sortable" data-column-type="module">Module</th>',
    '<th class="sortable" data-column-type="check">Check</th>',
    '<th class="sortable" data-column-type="verdict">Verdict</th>',
    '<th data-column-type="message">Message</th>',
    '<th data-column-type="remediation">Remediation</th>',
]


def verdict_badge(verdict: str) -> str:
    v = escape(verdict or "")
    rank = VERDICT_RANK.get(verdict, 9)
    return f'<span data-rank="{rank}" class="verdict verdict-{v}">{v.upper()}</span>'


def fix_block(remediation: str, tag: str = "code") -> str:
    return f'<{tag} class="labcheck-fix">{escape(remediation)}</{tag}>' if remediation else ""


def row_cells(rec: dict) -> list[str]:
    """The six cells after pytest-html's Result cell (see EXTRA_HEADER_CELLS)."""
    verdict = rec.get("verdict", "") or ""
    return [
        f'<td class="col-host">{escape(rec.get("host", ""))}</td>',
        f'<td class="col-module">{escape(rec.get("module", ""))}</td>',
        f'<td class="col-check">{escape(rec.get("check", ""))}</td>',
        f'<td class="col-verdict verdict-{escape(verdict)}">{verdict_badge(verdict)}</td>',
        f'<td class="col-message">{escape(rec.get("message", ""))}</td>',
        # "col-links": pytest-html's marker for cells whose clicks do not fold the row, so a click
        # selects the command instead of redrawing the table under the mouse.
        f'<td class="col-remediation col-links">{fix_block(rec.get("remediation", ""))}</td>',
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _item(rec: dict, show_host: bool) -> str:
    host = f' <span class="labcheck-host">on {escape(rec["host"])}</span>' if show_host and rec.get("host") else ""
    where = f'{escape(rec.get("module", ""))} &rsaquo; {escape(rec.get("check", ""))}'
    return (f'<li class="labcheck-item">{verdict_badge(rec["verdict"])} <span class="labcheck-where">{where}</span>'
            f'{host}: <span class="labcheck-message">{escape(rec.get("message", ""))}</span>'
            f'{fix_block(rec.get("remediation", ""), "pre")}</li>')


def step_label(step: dict, multi_host: bool = False) -> str:
    return f"{step['what']} ({step['host']})" if multi_host and step.get("host") else step["what"]


def step_outcome(step: dict) -> str:
    took = format_duration(step["seconds"])
    return took if step["ok"] else f"failed after {took}: {step['error']}"


def summary_blocks(recs: Iterable[dict], steps: Iterable[dict] = ()) -> list[str]:
    """READY / NOT READY, the verdict counts, what to fix (failures, then warnings), skips, setup steps."""
    recs = list(recs)
    steps = list(steps)
    s = results.summarize(recs)
    state = s.state.lower().replace(" ", "-")  # ready, not-ready, not-verified
    blocks = [f'<h2 class="labcheck-summary {state}">{escape(s.line)}</h2>']
    passed = s.total - s.failed - s.warned - s.skipped
    counts = [("fail", s.failed, f"{s.failed} failed"), ("warn", s.warned, _plural(s.warned, "warning")),
              ("skip", s.skipped, f"{s.skipped} skipped"), ("pass", passed, f"{passed} passed")]
    # A zero is greyed: a red "0 failed" reads as an alarm at a glance.
    blocks.append('<p class="labcheck-counts">' + "".join(
        f'<span class="verdict verdict-{v}{" zero" if not count else ""}">{text}</span>'
        for v, count, text in counts) + "</p>")
    show_host = len({r.get("host") for r in recs}) > 1
    parts = []
    for verdict, title in (("fail", "What to fix"), ("warn", "Warnings")):
        items = [r for r in recs if r["verdict"] == verdict]
        if items:
            parts.append(f"<h3>{title}</h3><ol>" + "".join(_item(r, show_host) for r in items) + "</ol>")
    skipped = [r for r in recs if r["verdict"] == "skip"]
    if skipped:
        parts.append(f"<details><summary>{_plural(len(skipped), 'check')} skipped</summary><ol>"
                     + "".join(_item(r, show_host) for r in skipped) + "</ol></details>")
    if parts:
        blocks.append('<section class="labcheck-attention">' + "".join(parts) + "</section>")
    if s.unverified:  # criteria that skipped or only warned: why the run is not READY
        blocks.append('<section class="labcheck-unverified"><h3>Not verified</h3><ul>' + "".join(
            f'<li>{escape(r.get("module", ""))} &rsaquo; {escape(r.get("check", ""))}: '
            f'{escape(results.unverified_reason(r))}</li>' for r in s.unverified) + "</ul></section>")
    if steps:
        multi = len({st.get("host") for st in steps}) > 1
        rows = "".join(
            f'<tr class="{"step-ok" if st["ok"] else "step-failed"}"><td>{escape(step_label(st, multi))}</td>'
            f"<td>{escape(step_outcome(st))}</td></tr>" for st in steps)
        blocks.append(f'<section class="labcheck-steps"><h3>Setup steps</h3><table>{rows}</table></section>')
    return blocks


def readable_skip_log(report, data: list) -> None:
    """Replace the first log entry of a skip (pytest-html shows ``str(longrepr)``, a tuple) with its reason."""
    longrepr = getattr(report, "longrepr", None)
    if not (report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3 and data):
        return
    reason = str(longrepr[2])
    if data[0] == escape(getattr(report, "longreprtext", "")) + "\n":
        data[0] = escape(reason if reason.startswith("Skipped") else f"Skipped: {reason}") + "\n"


def escape_environment(metadata: dict) -> None:
    """HTML-escape the Environment values in place (and the keys of nested dicts).

    pytest-html's page script puts each value (and each ``key: value`` of a nested dict) into the page
    as HTML, not text: a fact like ``<none>`` would vanish and a hostile one would run. Top-level keys
    are set as text by the script, so they stay as they are. Only done when an HTML report is written,
    as the last change to the dict.
    """
    def esc(value: object) -> object:
        if isinstance(value, dict):
            return {escape(str(k)): esc(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [esc(v) for v in value]
        return escape(value) if isinstance(value, str) else value

    for key in list(metadata):
        metadata[key] = esc(metadata[key])
