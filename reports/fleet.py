"""The fleet view: hosts x checks, and whether each host is READY, from check records.

Pure functions over the records of :mod:`reports.results` plus the state of each host (what the
fleet runner learnt about the connection: ``ok``, ``unreachable``, ``no python``, ``missing
packages``, ``died``, ``timed out``). Used for the matrix at the top of the HTML report, the
``fleet`` key of the JSON results and the terminal summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

import pytest

from labcheck.fleet_plugin import fleet_states, for_host, rerun_command
from labcheck.inventory import COLLECT_CHECK, CONNECTION_CHECK
from reports import results
from reports.html_parts import host_anchor

__all__ = ["CONNECTION_CHECK", "build", "document", "html", "terminal_lines"]  # CONNECTION_CHECK: re-exported
NOT_RUN = "not run"
OK = "ok"


def document(config: pytest.Config, records: list[dict]) -> dict | None:
    """The ``fleet`` section of the results (None unless this run used --hosts)."""
    states = fleet_states(config)
    if states is None:
        return None
    return build(records, [s.as_dict() for s in states], rerun_command(config, config.getoption("--hosts")))


def check_key(record: dict) -> str:
    return f"{record['module']}::{record['check']}"


def build(records: Iterable[dict], hosts: Sequence[dict], rerun: str = "") -> dict:
    """The fleet document.

    ``hosts``: dicts with ``name``, ``target``, ``status`` and, for a bad status, ``message`` and
    ``remediation``; in inventory order. Hosts that appear only in records are appended. ``rerun``: the
    command that runs this fleet again (labcheck.fleet_plugin.rerun_command), for a host's fix that is "run it
    again, alone".
    A host's ``state`` is the words of :class:`reports.results.Summary` over its records: READY when
    its connection was ok and its own run was READY; NOT READY when it could not run or a check failed;
    NOT VERIFIED when nothing failed but a criterion could not be verified (``unverified`` says which).
    """
    recs = list(records)
    checks: list[str] = []
    for r in recs:
        key = check_key(r)
        if r["check"] != CONNECTION_CHECK and key not in checks:
            checks.append(key)
    by_host: dict[str, list[dict]] = {}
    for r in recs:
        by_host.setdefault(r.get("host") or "", []).append(r)
    states = [dict(h) for h in hosts]
    known = {h["name"] for h in states}
    states += [{"name": name, "target": "", "status": OK} for name in by_host if name not in known]

    rows = []
    for h in states:
        hrecs = [r for r in by_host.get(h["name"], []) if r["check"] != CONNECTION_CHECK]
        cells = {key: NOT_RUN for key in checks}
        for r in hrecs:
            cells[check_key(r)] = r["verdict"]
        failed = [r for r in hrecs if r["verdict"] == "fail"]
        status = h.get("status") or OK
        summary = results.summarize(hrecs)
        state = summary.state if status == OK else results.NOT_READY
        # A check other hosts ran and this one has no record of (not even "not run"): it was never checked here
        # (e.g. its file did not collect on this host), so this host cannot be READY.
        have = {check_key(r) for r in hrecs}  # a deselected check has its "not run" record: not absent
        absent = [key for key in checks
                  if key not in have and not key.endswith(f"::{COLLECT_CHECK}")]  # that one: a host's fault
        if absent and state == results.READY:
            state = results.NOT_VERIFIED
        ready = state == results.READY
        if status != OK:
            first = h.get("remediation", "")
            message = h.get("message", "") or status
        elif failed:
            first = failed[0]["remediation"]
            message = (f"{len(failed)} of {len(hrecs)} checks failed; "
                       f"first: {failed[0]['check']}: {failed[0]['message']}")
        elif not hrecs:
            first, message = "", "no check ran"
        elif absent:
            # Its own run (alone, in the foreground) shows why those checks did not run there.
            first = for_host(rerun, h["name"]) if rerun else ""
            message = (f"none failed, but {len(absent)} check{'s' * (len(absent) != 1)} that other hosts ran did "
                       f"not run here; first: {absent[0]}")
        elif summary.unverified:
            first = summary.unverified[0].get("remediation") or ""  # a skip's prerequisite, a warning's fix
            message = (f"none failed, but {len(summary.unverified)} of {len(hrecs)} checks not verified; first: "
                       f"{summary.unverified[0]['check']}: {results.unverified_reason(summary.unverified[0])}")
        elif not ready:
            first, message = "", f"{len(hrecs)} checks, none failed, but no criterion was verified"
        else:
            first, message = "", f"{len(hrecs)} checks, none failed"
        rows.append({
            "name": h["name"],
            "target": h.get("target", ""),
            "status": status,
            "python": h.get("python", ""),
            "ready": ready,
            "state": state,
            "unverified": [r["check"] for r in summary.unverified] if status == OK else [],
            "message": message,
            "first_remediation": first,
            "counts": {v: sum(r["verdict"] == v for r in hrecs) for v in ("pass", "fail", "warn", "skip")},
            "checks": cells,
            "timings": dict(h.get("timings") or {}),
        })
    n_ready = sum(r["ready"] for r in rows)
    all_ready = bool(rows) and n_ready == len(rows)
    n_unverified = sum(r["state"] == results.NOT_VERIFIED for r in rows)
    scope = results.coverage(r["module"] for r in recs if r.get("module"))
    if all_ready:  # what it covers, as a host's READY says it (results.coverage)
        state, line = results.READY, f"FLEET READY{f' ({scope})' if scope else ''}: all {len(rows)} hosts ready"
    elif rows and n_unverified + n_ready == len(rows):
        state = results.NOT_VERIFIED
        line = f"FLEET NOT VERIFIED: {n_ready} of {len(rows)} hosts ready, {n_unverified} not verified"
    else:
        state = results.NOT_READY
        line = f"FLEET NOT READY: {n_ready} of {len(rows)} hosts ready"
        line += f", {n_unverified} not verified" if n_unverified else ""
    return {"ready": all_ready, "state": state, "line": line, "checks": checks, "hosts": rows}


def terminal_lines(fleet: dict) -> list[tuple[str, bool]]:
    """One line per host (text, ready) and the fleet line last."""
    out = []
    width = max((len(h["name"]) for h in fleet["hosts"]), default=0)
    for h in fleet["hosts"]:
        text = f"{h['name']:<{width}}  {h['state']:<12}  {h['status']:<16}  {h['message']}"
        if h["first_remediation"]:
            text += f"\n{'':<{width}}  fix: {h['first_remediation']}"
        out.append((text, h["ready"]))
    out.append((fleet["line"], fleet["ready"]))
    return out


_COLOUR = {"pass": "#1b7a1b", "fail": "#b00020", "warn": "#b26a00", "skip": "#666666", NOT_RUN: "#999999"}
_BACKGROUND = {"pass": "#e6f4e6", "fail": "#fbe3e6", "warn": "#fdf0dc", "skip": "#f0f0f0", NOT_RUN: "#ffffff"}
_SHORT = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP", NOT_RUN: "—"}
_CELL = "border:1px solid #ccc;padding:2px 6px;color:#222"
_STATE_COLOUR = {results.READY: "#1b7a1b", results.NOT_READY: "#b00020", results.NOT_VERIFIED: "#b26a00"}


def html(fleet: dict) -> str:
    """The fleet view as an HTML fragment: the fleet line, one row per host (READY or not, why, the
    first fix), then the hosts x checks matrix. Inline styles: pytest-html ships its own CSS."""
    colour = _STATE_COLOUR[fleet["state"]]
    return (f'<div class="labcheck-fleet"><h2 style="color:{colour}">{escape(fleet["line"])}</h2>'
            + _hosts_table(fleet) + _matrix(fleet) + "</div>")


def _hosts_table(fleet: dict) -> str:
    rows = []
    for h in fleet["hosts"]:
        word, wc = h["state"], _STATE_COLOUR[h["state"]]
        fix = f'<code>{escape(h["first_remediation"])}</code>' if h["first_remediation"] else ""
        rows.append(
            f'<tr class="fleet-host" data-host="{escape(h["name"])}" data-state="{escape(h["state"])}">'
            f'<td style="{_CELL}"><a href="#{host_anchor(h["name"])}"><b>{escape(h["name"])}</b></a>'
            f'<br><small>{escape(h["target"])}</small></td>'
            f'<td class="fleet-ready" style="{_CELL};color:{wc};font-weight:bold;white-space:nowrap">{word}</td>'
            f'<td class="fleet-status" style="{_CELL}">{escape(h["status"])}</td>'
            f'<td style="{_CELL}">{escape(h["message"])}</td>'
            f'<td class="fleet-fix" style="{_CELL}">{fix}</td></tr>')
    head = "".join(f'<th style="{_CELL}">{t}</th>' for t in ("Host", "Readiness", "Connection", "Why", "First fix"))
    return (f'<table class="labcheck-fleet-hosts" style="border-collapse:collapse;margin-bottom:1em">'
            f'<tr>{head}</tr>' + "".join(rows) + "</table>")


def _matrix(fleet: dict) -> str:
    """Hosts x checks; check names written vertically so that a module's checks fit a screen."""
    vertical = "writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:normal"
    head = "".join(f'<th style="{_CELL};vertical-align:bottom" title="{escape(c)}">'
                   f'<span style="{vertical}">{escape(c.split("::", 1)[-1])}</span></th>' for c in fleet["checks"])
    body = []
    for h in fleet["hosts"]:
        cells = "".join(
            f'<td class="fleet-cell verdict-{escape(v.replace(" ", "-"))}" title="{escape(c)}: {escape(v)}" '
            f'style="{_CELL};text-align:center;font-size:smaller;font-weight:bold;'
            f'color:{_COLOUR.get(v, "inherit")};background:{_BACKGROUND.get(v, "inherit")}">'
            f'{escape(_SHORT.get(v, v))}</td>'
            for c, v in ((c, h["checks"][c]) for c in fleet["checks"]))
        body.append(f'<tr><td style="{_CELL};white-space:nowrap"><a href="#{host_anchor(h["name"])}">'
                    f'<b>{escape(h["name"])}</b></a></td>{cells}</tr>')
    return (f'<table class="labcheck-fleet-matrix" style="border-collapse:collapse;margin-bottom:1em">'
            f'<tr><th style="{_CELL};vertical-align:bottom">Host</th>{head}</tr>' + "".join(body) + "</table>")
