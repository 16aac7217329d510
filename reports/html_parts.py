"""HTML fragments for the pytest-html report: the check columns and the readiness summary.

Pure functions over check records (reports.results) so they are tested without a browser; how
they look is set by labcheck.css and checked in a real browser (tests/test_report_browser.py).

Colours are carried by classes (``verdict verdict-fail``...), never by colour alone: the verdict
word is always shown too. Remediations are ``.labcheck-fix`` blocks a single click selects whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

from labcheck import versions
from labcheck.plugin import LAB_CONFIG_ENV
from labcheck.progress import format_duration
from reports import areas, results

# Sorting the Verdict column compares the cell's HTML as text: the rank attribute comes first, so
# fail < warn < skip < pass and one click on the header puts what needs attention on top.
VERDICT_RANK = {"fail": 0, "warn": 1, "skip": 2, "pass": 3}

AREA_SORT = "area"  # the table's initial sort: grouped like the tiles, what needs attention first in each


def header_cells(result_cell: str, duration_cell: str, show_host: bool) -> list[str]:
    """The table's header: one verdict column, no pytest Test / Links columns (all said elsewhere).

    pytest-html's Result cell stays first but hidden (labcheck.css): its page script reads each row's
    outcome from it to filter and fold rows; the Verdict column is the one a person reads.
    """
    host = ['<th class="sortable" data-column-type="host">Host</th>'] if show_host else []
    return [result_cell,
            f'<th class="sortable" data-column-type="{AREA_SORT}">Area</th>',
            *host,
            '<th class="sortable" data-column-type="check">Check</th>',
            '<th class="sortable" data-column-type="verdict">Verdict</th>',
            '<th data-column-type="message">Message</th>',
            '<th data-column-type="remediation">Remediation</th>',
            duration_cell]


def verdict_badge(verdict: str) -> str:
    v = escape(verdict or "")
    rank = VERDICT_RANK.get(verdict, 9)
    return f'<span data-rank="{rank}" class="verdict verdict-{v.replace(" ", "-")}">{v.upper()}</span>'


def fix_block(remediation: str, tag: str = "code") -> str:
    return f'<{tag} class="labcheck-fix">{escape(remediation)}</{tag}>' if remediation else ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def host_anchor(host: str) -> str:
    """The id of a host's section in a fleet report."""
    return f"host-{_slug(host)}"


def row_anchor(rec: dict) -> str:
    """The id of a check's row in the table (host and node id: unique in a fleet run too)."""
    return "check-" + _slug(f"{rec.get('host', '')}-{rec.get('nodeid') or rec.get('check', '')}")


def row_cells(rec: dict, result_cell: str, duration_cell: str, show_host: bool) -> list[str]:
    """The cells of one row, in the order of header_cells."""
    verdict = rec.get("verdict", "") or ""
    area = areas.area_of(rec) if rec else areas.OTHER
    rank = f"{areas.area_rank(rec) if rec else len(areas.AREAS):02d}.{VERDICT_RANK.get(verdict, 9)}"
    host = [f'<td class="col-host">{escape(rec.get("host", ""))}</td>'] if show_host else []
    check = escape(rec.get("check", "")).replace("_", "_<wbr>")  # long ids wrap at a word, not mid-word
    title = escape(f'{rec.get("module", "")}: {rec.get("nodeid", "")}', quote=True)
    return [
        result_cell,
        # data-rank first: the table sorts a column by its cell's HTML as text
        f'<td class="col-area area-{area.key}"><span data-rank="{rank}">{escape(area.title)}</span></td>',
        *host,
        f'<td class="col-check"><span id="{row_anchor(rec)}" title="{title}">{check}</span></td>',
        f'<td class="col-verdict verdict-{escape(verdict)}">{verdict_badge(verdict)}</td>',
        f'<td class="col-message">{escape(rec.get("message", ""))}</td>',
        # "col-links": pytest-html's marker for cells whose clicks do not fold the row, so a click
        # selects the command instead of redrawing the table under the mouse.
        f'<td class="col-remediation col-links">{fix_block(rec.get("remediation", ""))}</td>',
        duration_cell,
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _host(rec: dict, show_host: bool) -> str:
    return f' <span class="labcheck-host">on {escape(rec["host"])}</span>' if show_host and rec.get("host") else ""


def _item(rec: dict, show_host: bool) -> str:
    host = _host(rec, show_host)
    where = (f'<a href="#{row_anchor(rec)}">{escape(rec.get("module", ""))} &rsaquo; '
             f'{escape(rec.get("check", ""))}</a>')
    return (f'<li class="labcheck-item">{verdict_badge(rec["verdict"])} <span class="labcheck-where">{where}</span>'
            f'{host}: <span class="labcheck-message">{escape(rec.get("message", ""))}</span>'
            f'{fix_block(rec.get("remediation", ""), "pre")}</li>')


def step_label(step: dict, multi_host: bool = False) -> str:
    return f"{step['what']} ({step['host']})" if multi_host and step.get("host") else step["what"]


def step_outcome(step: dict) -> str:
    took = format_duration(step["seconds"])
    return took if step["ok"] else f"failed after {took}: {step['error']}"


_COUNT_WORDS = (("fail", "failed"), ("warn", "warned"), ("skip", "skipped"), ("pass", "passed"),
                (results.NOT_RUN, "not run"))  # deselected, or the run stopped first


def counts_text(counts: dict[str, int]) -> str:
    """``2 failed · 1 skipped · 4 passed`` (zeros left out)."""
    return " · ".join(f"{counts[v]} {word}" for v, word in _COUNT_WORDS if counts.get(v))


def tiles(recs: Iterable[dict]) -> str:
    """One tile per area in fix order: its word, its counts, a link to its first row in the table.

    The first row is the one the area-sorted table shows first: the worst verdict, earliest in the run.
    """
    out = []
    for st in areas.area_statuses(recs):
        first = min(st.records, key=lambda r: VERDICT_RANK.get(r["verdict"], 9))
        out.append(
            f'<a class="labcheck-tile tile-{state_class(st.word)} area-{st.area.key}" href="#{row_anchor(first)}" '
            f'title="{escape(st.area.covers, quote=True)}">'
            f'<span class="tile-title">{escape(st.area.title)}</span>'
            f'<span class="tile-word">{st.word}</span>'
            f'<span class="tile-counts">{_plural(st.total, "check")}: {counts_text(st.counts)}</span></a>')
    return '<nav class="labcheck-tiles">' + "".join(out) + "</nav>"


def state_class(word: str) -> str:
    return word.lower().replace(" ", "-")  # ready, not-ready, not-verified


def attention(recs: Iterable[dict], show_host: bool) -> str:
    """What to fix (failures in tile order), then warnings, then the criteria not verified (why the run is
    not READY: skipped or only warned), then optional checks that skipped, folded."""
    recs = list(recs)
    ordered = areas.in_area_order(recs)
    parts = []
    for verdict, title in (("fail", "What to fix"), ("warn", "Warnings")):
        items = [r for r in ordered if r["verdict"] == verdict]
        if items:
            parts.append(f"<h3>{title}</h3><ol>" + "".join(_item(r, show_host) for r in items) + "</ol>")
    out = '<section class="labcheck-attention">' + "".join(parts) + "</section>" if parts else ""
    unverified = areas.in_area_order(results.summarize(recs).unverified)
    if unverified:
        out += ('<section class="labcheck-unverified"><h3>Not verified</h3><ul class="labcheck-skips">' + "".join(
            f'<li>{verdict_badge(r["verdict"])} <span class="labcheck-where"><a href="#{row_anchor(r)}">'
            f'{escape(r.get("module", ""))} &rsaquo; {escape(r.get("check", ""))}</a></span>'
            f'{_host(r, show_host)}: {escape(results.unverified_reason(r))}</li>' for r in unverified)
            + "</ul></section>")
    optional = [r for r in ordered if r["verdict"] == "skip" and not r.get("criterion", True)]
    if optional:
        out += (f'<details class="labcheck-optional"><summary>{_plural(len(optional), "optional check")} skipped'
                '</summary><ul class="labcheck-skips">' + "".join(_item(r, show_host) for r in optional)
                + "</ul></details>")
    return out


def _counts_line(recs: list[dict]) -> str:
    s = results.summarize(recs)
    passed = s.total - s.failed - s.warned - s.skipped
    counts = [("fail", s.failed, f"{s.failed} failed"), ("warn", s.warned, _plural(s.warned, "warning")),
              ("skip", s.skipped, f"{s.skipped} skipped"), ("pass", passed, f"{passed} passed")]
    # A zero is greyed: a red "0 failed" reads as an alarm at a glance.
    return (f'<p class="labcheck-counts">{_plural(s.total, "check")}: ' + "".join(
        f'<span class="verdict verdict-{v}{" zero" if not count else ""}">{text}</span>'
        for v, count, text in counts) + "</p>")


def host_sections(recs: list[dict], hosts: Iterable[str] = ()) -> list[str]:
    """Fleet run: per host (inventory order, then any other), its word, its tile row, and folded what to fix.

    Folded: a fleet's hosts often share their fixes; the tiles say at a glance where each host stands.
    """
    by_host: dict[str, list[dict]] = {h: [] for h in hosts}
    for r in recs:
        by_host.setdefault(r.get("host") or "", []).append(r)
    out = []
    for host, hrecs in by_host.items():
        if not hrecs:
            continue
        s = results.summarize(hrecs)
        state = state_class(s.state)
        fix = attention(hrecs, False)
        folded = (f"<details><summary>What to fix on {escape(host)}, warnings, not verified</summary>{fix}</details>"
                  if fix else "")
        out.append(f'<section class="labcheck-host-section" id="{host_anchor(host)}">'
                   f'<h3 class="labcheck-summary {state}">{escape(host)}: {escape(s.line)}</h3>'
                   + tiles(hrecs) + folded + "</section>")
    return out


def summary_blocks(recs: Iterable[dict], steps: Iterable[dict] = (), fleet: list[str] | None = None) -> list[str]:
    """The dashboard: READY / NOT READY, counts, area tiles, what to fix, warnings, skips, setup steps.

    ``fleet`` (a --hosts run: the inventory's host names): the fleet view (reports.fleet) is already on
    top; each host gets its own section instead.
    """
    recs = list(recs)
    steps = list(steps)
    s = results.summarize(recs)
    blocks = []
    if fleet is not None:
        blocks.append(_counts_line(recs))
        blocks.extend(host_sections(recs, fleet))
    else:
        blocks.append(f'<h2 class="labcheck-summary {state_class(s.state)}">{escape(s.line)}</h2>')
        blocks.append(_counts_line(recs))
        blocks.append(tiles(recs))
        show_host = len({r.get("host") for r in recs}) > 1
        blocks.append(attention(recs, show_host))
    if steps:
        multi = len({st.get("host") for st in steps}) > 1
        rows = "".join(
            f'<tr class="{"step-ok" if st["ok"] else "step-failed"}"><td>{escape(step_label(st, multi))}</td>'
            f"<td>{escape(step_outcome(st))}</td></tr>" for st in steps)
        blocks.append(f'<section class="labcheck-steps"><h3>Setup steps</h3><table>{rows}</table></section>')
    return [b for b in blocks if b]


# pytest-html's filter bar counts pytest outcomes; here each is a check. Its script needs a box for each
# outcome, so the ones that did not occur (xfail, reruns, retries cannot in a lab run) stay in the page
# but are hidden (labcheck.css hides a disabled box: pytest-html disables those with a zero count).
CHECK_OUTCOME_LABELS = {"failed": "failed", "error": "broke (setup error)", "skipped": "skipped", "passed": "passed"}


def check_outcomes(outcomes: dict, warned: int) -> None:
    """Relabel pytest-html's outcome counts (in place) so the filter bar agrees with the check counts.

    A warning is a passed pytest test, so with warnings the passed box says "passed or warned".
    """
    for key, label in CHECK_OUTCOME_LABELS.items():
        if key in outcomes:
            outcomes[key]["label"] = label
    if warned and "passed" in outcomes:
        outcomes["passed"]["label"] = "passed or warned"


# The Environment section in the order of the tiles (fixtures record facts in whatever order they run,
# concurrently too); facts not named here follow in their recorded order, GPU 0..N after "GPUs", the lab config's
# settings ("Lab config: <key>", labcheck.plugin) after the file's path.
FACT_ORDER = ("OS", "Kernel", "Kind", "Helm", "Docker CLI", "Docker", "Docker engine endpoint", "Docker runtimes",
              "Docker default runtime", "NVIDIA driver", "CUDA (driver API)", "GPUs", "GPU ",
              "NVIDIA Container Toolkit", LAB_CONFIG_ENV, f"{LAB_CONFIG_ENV}: ")


def facts_in_order(facts: dict[str, str]) -> dict[str, str]:
    def rank(item: tuple[int, str]) -> tuple[int, int, int]:
        pos, key = item
        for i, name in enumerate(FACT_ORDER):
            n = versions.ascii_int(key[len(name):]) if name.endswith(" ") and key.startswith(name) else None
            if name.endswith(": ") and key.startswith(name):  # a group kept in its recorded order
                return i, 0, pos
            if key == name or n is not None:  # "GPU ²" / "GPU ١٢" (a fleet host's facts) is no GPU N: kept last
                return i, n or 0, pos
        return len(FACT_ORDER), 0, pos

    return {key: facts[key] for _, key in sorted(enumerate(facts), key=rank)}


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
