"""The fleet matrix (hosts x checks, READY per host) built from check records, and its scheduling."""

from reports import fleet
from reports.results import record_from_report


def rec(host, check, verdict, remediation="", module="module0", criterion=True):
    return {"host": host, "module": module, "check": check, "verdict": verdict, "message": f"{check} {verdict}",
            "remediation": remediation, "nodeid": f"{host}::tests_env/test_{module}.py::test_{check}",
            "criterion": criterion, "optional_reason": "" if criterion else "advisory"}


HOSTS = [
    {"name": "a", "target": "u@a", "status": "ok"},
    {"name": "b", "target": "u@b", "status": "ok"},
    {"name": "c", "target": "u@c:2200", "status": "unreachable", "message": "Connection refused",
     "remediation": "ssh -p 2200 u@c true"},
    {"name": "d", "target": "u@d", "status": "died", "message": "connection lost while running slow",
     "remediation": "ssh u@d true && python3 -m pytest --hosts=hosts.yaml --fleet-host=d"},
]
RECORDS = [
    rec("a", "docker", "pass"), rec("a", "gpu", "skip", criterion=False),
    rec("a", "mps", "warn", "nvidia-smi -c 3", criterion=False),
    rec("b", "docker", "fail", "sudo apt-get install docker.io"), rec("b", "gpu", "fail", "sudo modprobe nvidia"),
    rec("b", "mps", "pass"),
    rec("c", fleet.CONNECTION_CHECK, "fail", "ssh -p 2200 u@c true"),
    rec("d", "docker", "pass"), rec("d", fleet.CONNECTION_CHECK, "fail", "ssh u@d true"),
]


def test_matrix_hosts_by_checks():
    doc = fleet.build(RECORDS, HOSTS)
    assert doc["checks"] == ["module0::docker", "module0::gpu", "module0::mps"]  # no connection column
    rows = {h["name"]: h for h in doc["hosts"]}
    assert [h["name"] for h in doc["hosts"]] == ["a", "b", "c", "d"]
    assert rows["a"]["checks"] == {"module0::docker": "pass", "module0::gpu": "skip", "module0::mps": "warn"}
    assert rows["c"]["checks"] == dict.fromkeys(doc["checks"], "not run")
    assert rows["d"]["checks"] == {"module0::docker": "pass", "module0::gpu": "not run", "module0::mps": "not run"}
    assert rows["b"]["counts"] == {"pass": 1, "fail": 2, "warn": 0, "skip": 0}


def test_ready_and_first_remediation_per_host():
    rows = {h["name"]: h for h in fleet.build(RECORDS, HOSTS)["hosts"]}
    assert rows["a"]["ready"] and rows["a"]["first_remediation"] == ""  # optional warn and skip do not block
    assert rows["a"]["state"] == "READY" and rows["b"]["state"] == "NOT READY" and rows["c"]["state"] == "NOT READY"
    assert not rows["b"]["ready"]
    assert rows["b"]["first_remediation"] == "sudo apt-get install docker.io"  # the first failing check's
    assert "2 of 3 checks failed" in rows["b"]["message"]
    assert not rows["c"]["ready"] and rows["c"]["first_remediation"] == "ssh -p 2200 u@c true"
    assert rows["c"]["message"] == "Connection refused"
    assert not rows["d"]["ready"] and rows["d"]["status"] == "died"  # a passing check does not hide the death


def test_fleet_line():
    assert fleet.build(RECORDS, HOSTS)["line"] == "FLEET NOT READY: 1 of 4 hosts ready"
    good = fleet.build([rec("a", "docker", "pass")], HOSTS[:1])
    assert good["ready"] and good["line"] == "FLEET READY (module 0 only; module 1 not run): all 1 hosts ready"
    whole = fleet.build([rec("a", "docker", "pass"), rec("a", "node", "pass", module="module1")], HOSTS[:1])
    assert whole["ready"] and whole["line"] == "FLEET READY: all 1 hosts ready"
    nothing = fleet.build([], HOSTS[:1])
    assert not nothing["ready"] and nothing["hosts"][0]["message"] == "no check ran"
    assert fleet.build([], [])["ready"] is False


def test_hosts_only_in_records_are_listed():
    doc = fleet.build([rec("local", "docker", "pass")], [])
    assert [(h["name"], h["status"], h["ready"]) for h in doc["hosts"]] == [("local", "ok", True)]


def test_html_matrix_and_terminal_lines():
    doc = fleet.build(RECORDS, HOSTS)
    text = fleet.html(doc)
    assert "FLEET NOT READY: 1 of 4 hosts ready" in text
    assert text.count('<tr class="fleet-host"') == 4
    assert 'data-host="c"' in text and "ssh -p 2200 u@c true" in text
    assert ">docker</span></th>" in text and "verdict-not-run" in text
    assert text.index("labcheck-fleet-hosts") < text.index("labcheck-fleet-matrix")
    lines = fleet.terminal_lines(doc)
    assert lines[-1] == ("FLEET NOT READY: 1 of 4 hosts ready", False)
    assert lines[0][1] is True and lines[0][0].split()[:3] == ["a", "READY", "ok"]
    assert "fix: sudo apt-get install docker.io" in lines[1][0]


def test_html_escapes_host_text():
    doc = fleet.build([], [{"name": "x", "target": "<b>", "status": "unreachable", "message": "<script>",
                            "remediation": "a && b"}])
    text = fleet.html(doc)
    assert "<script>" not in text and "&lt;script&gt;" in text and "a &amp;&amp; b" in text


def test_connection_record_from_fleet_report():
    """The report the fleet runner makes for a lost host becomes an ordinary failing record."""
    from labcheck.fleet_session import HostState, connection_reports
    from labcheck.inventory import Host

    state = HostState(Host(name="c", ssh="u@c", port=2200), status="unreachable", message="Connection refused",
                      remediation="ssh -p 2200 u@c true")
    call, teardown = connection_reports(state, "module1", rerun="python3 -m pytest --hosts=h.yaml")
    r = record_from_report(call)
    assert (r["host"], r["module"], r["check"], r["verdict"]) == ("c", "module1", fleet.CONNECTION_CHECK, "fail")
    assert r["remediation"] == "ssh -p 2200 u@c true"
    assert "unreachable" in r["message"] and "Connection refused" in r["message"]
    assert record_from_report(teardown) is None


def test_unverified_host_shows_as_such():
    """A host where nothing failed but a criterion skipped is NOT VERIFIED: in the row, the line, HTML, terminal."""
    recs = [rec("a", "docker", "pass"), rec("a", "mps_server", "pass"), rec("e", "docker", "pass"),
            rec("e", "mps_server", "skip", "sudo nvidia-cuda-mps-control -d")]
    hosts = [HOSTS[0], {"name": "e", "target": "u@e", "status": "ok"}]
    doc = fleet.build(recs, hosts)
    rows = {h["name"]: h for h in doc["hosts"]}
    assert rows["a"]["state"] == "READY"
    assert rows["e"]["state"] == "NOT VERIFIED" and not rows["e"]["ready"]
    assert rows["e"]["unverified"] == ["mps_server"]
    assert "mps_server: skipped: mps_server skip" in rows["e"]["message"]
    assert rows["e"]["first_remediation"] == "sudo nvidia-cuda-mps-control -d"  # the skipped check's own fix
    assert not doc["ready"] and doc["state"] == "NOT VERIFIED"
    assert doc["line"] == "FLEET NOT VERIFIED: 1 of 2 hosts ready, 1 not verified"
    text = fleet.html(doc)
    assert 'data-host="e" data-state="NOT VERIFIED"' in text and ">NOT VERIFIED</td>" in text
    lines = fleet.terminal_lines(doc)
    assert lines[1][0].split()[:4] == ["e", "NOT", "VERIFIED", "ok"] and lines[1][1] is False
    # A failure elsewhere makes the fleet NOT READY, still counting the unverified host.
    worse = fleet.build([*recs, rec("b", "docker", "fail", "x")], [*hosts, HOSTS[1]])
    assert worse["state"] == "NOT READY" and worse["line"] == "FLEET NOT READY: 1 of 3 hosts ready, 1 not verified"


def test_a_host_without_a_check_that_other_hosts_ran_is_not_ready():
    """Every check of a host passed, but one check other hosts ran has no record from it (its file did not
    collect there, say): it was never checked on that host, so the host is NOT VERIFIED, not READY."""
    recs = [rec("a", "docker", "pass"), rec("a", "mps_server", "pass"), rec("e", "docker", "pass")]
    hosts = [HOSTS[0], {"name": "e", "target": "u@e", "status": "ok"}]
    doc = fleet.build(recs, hosts)
    rows = {h["name"]: h for h in doc["hosts"]}
    assert rows["a"]["state"] == "READY" and rows["a"]["ready"]
    assert rows["e"]["state"] == "NOT VERIFIED" and not rows["e"]["ready"]
    assert rows["e"]["checks"]["module0::mps_server"] == "not run"
    assert rows["e"]["message"] == ("none failed, but 1 check that other hosts ran did not run here; "
                                    "first: module0::mps_server")
    assert not doc["ready"] and doc["line"] == "FLEET NOT VERIFIED: 1 of 2 hosts ready, 1 not verified"
    assert rows["e"]["first_remediation"] == ""  # no rerun command known
    # The fix: run that host again, alone, where its own output says why the check did not run.
    doc = fleet.build(recs, hosts, "python3 -m pytest --hosts='my hosts.yaml' -m module0")
    e = {h["name"]: h for h in doc["hosts"]}["e"]
    assert e["first_remediation"] == "python3 -m pytest --hosts='my hosts.yaml' -m module0 --fleet-host=e"
    assert "fix: python3 -m pytest --hosts='my hosts.yaml' -m module0 --fleet-host=e" in fleet.terminal_lines(doc)[1][0]


def test_a_check_deselected_on_every_host_is_not_counted_absent():
    """-k/-m leave a check out on every host ("not run" records): each host says it was deselected, not that
    other hosts ran it (the absent rule is only for checks a host has no record of at all)."""
    deselected = [{**rec(h, "two", "not run"), "message": "not run: deselected by -k/-m/node id"} for h in "ae"]
    recs = [rec("a", "one", "pass"), rec("e", "one", "pass"), *deselected]
    doc = fleet.build(recs, [HOSTS[0], {"name": "e", "target": "u@e", "status": "ok"}])
    for row in doc["hosts"]:
        assert row["state"] == "NOT VERIFIED", row
        assert "did not run here" not in row["message"] and "deselected" in row["message"], row
