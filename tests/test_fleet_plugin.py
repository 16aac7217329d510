"""Pieces of the fleet runner that need no SSH: the hosts' command line and the fleet scheduler."""

import json
import os

import pytest

from labcheck import fleet_plugin
from labcheck.cmd import CmdResult
from labcheck.fleet_plugin import HOST_TIMINGS, run_module, worker_args
from labcheck.fleet_session import FleetScheduling, host_clock
from labcheck.inventory import Host
from labcheck.probes import fleet as fleet_probe

PLUGINS = 'pytest_plugins = ["labcheck.plugin", "labcheck.fleet_plugin", "reports.plugin", "reports.fleet_plugin"]'


def _config(pytester, *args):
    pytester.makeconftest(PLUGINS)
    pytester.makeini("[pytest]\n")
    (pytester.path / "tests_env").mkdir()
    (pytester.path / "tests_env" / "test_module0.py").write_text("")
    return pytester.parseconfig(*args)


def test_worker_args_forward_selection_not_controller_paths(pytester):
    config = _config(pytester, "--hosts=hosts.yaml", "-m", "module0 and not gpu", "-k", "docker",
                     "--no-provision", "--results-json", "out.json", "tests_env/test_module0.py")
    assert worker_args(config) == ["-pxdist.plugin", "-mmodule0 and not gpu", "-kdocker", "--no-provision",
                                   "--override-ini=testpaths=tests_env/test_module0.py"]


def test_worker_args_without_paths_use_the_hosts_testpaths(pytester):
    config = _config(pytester, "--hosts=hosts.yaml", "--fix-host")
    assert worker_args(config) == ["-pxdist.plugin", "--fix-host"]


def test_worker_args_refuse_node_ids(pytester):
    config = _config(pytester, "--hosts=hosts.yaml", "tests_env/test_module0.py::test_x")
    with pytest.raises(pytest.UsageError, match="node id"):
        worker_args(config)


def test_run_module():
    assert run_module("module1 and not slow") == "module1"
    assert run_module(None) == "module0"


class Node:
    """Stands in for xdist's WorkerController: records the commands the scheduler sends to a host."""

    def __init__(self, name):
        self.name = name
        self.sent = []

    def send_runtest_all(self):
        self.sent.append("run all")

    def shutdown(self):
        self.sent.append("shutdown")


def test_each_host_is_counted_started_on_its_own_collection():
    a, b, c = Node("a"), Node("b"), Node("c")
    sched = FleetScheduling(expected=3)
    for n in (a, b, c):
        sched.add_node(n)
    sched.add_node_collection(a, ["t1", "t2"])
    assert sched.collection_is_completed
    sched.schedule()
    assert sched.node2pending[a] == [0, 1] and sched.node2pending[b] == [] and sched.has_pending
    assert not sched.tests_finished  # b and c have not started yet
    assert sched.remove_node(c) is None  # c died before collecting: forgotten, not waited for
    sched.add_node_collection(b, ["t1", "t2"])
    sched.schedule()
    assert sched.node2pending[b] == [0, 1] and sched.tests_finished
    # the hosts were told to run everything when their workers started (tests/test_fleet_pace.py): nothing resent
    assert a.sent == b.sent == c.sent == []


def test_a_host_lost_mid_run_names_the_check_it_was_running():
    a, b = Node("a"), Node("b")
    sched = FleetScheduling(expected=2)
    for n in (a, b):
        sched.add_node(n)
        sched.add_node_collection(n, ["t1", "t2", "t3"])
    sched.schedule()
    sched.mark_test_complete(a, 0)
    assert sched.remove_node(a) == "t2"
    assert sched.nodes == [b]
    assert sched.tests_finished  # b already has all its work; a is gone


CHECK = '''
import pytest
from labcheck.verdict import passed
pytestmark = pytest.mark.module0

def test_good(check):
    check(passed("fine"))
'''


def _project(pytester):
    pytester.makeconftest(PLUGINS)
    pytester.makepyfile(test_checks=CHECK)


def test_no_fleet_section_without_hosts(pytester):
    _project(pytester)
    out = pytester.path / "r.json"
    pytester.runpytest(f"--results-json={out}").assert_outcomes(passed=1)
    assert "fleet" not in json.loads(out.read_text())


def test_bad_inventory_is_a_usage_error(pytester):
    _project(pytester)
    (pytester.path / "hosts.yaml").write_text("hosts:\n  - {name: a}\n")
    res = pytester.runpytest("--hosts=hosts.yaml")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*hosts entry 1: `ssh`*is missing*"])


def test_a_lab_config_that_cannot_be_read_is_a_usage_error_before_any_host_starts(pytester):
    """The controller reads the lab config once, as a regular file: a FIFO blocked every host's start thread
    forever (past every host's timeout); absent or a folder would ship nothing and check with the defaults."""
    _project(pytester)
    (pytester.path / "hosts.txt").write_text("u@a\n")
    os.mkfifo(pytester.path / "lab-fifo")
    for lab, words in (("lab-fifo", "*a FIFO*"), ("absent.yaml", "*absent.yaml: no such file*"), (".", "*a folder*")):
        res = pytester.runpytest("--hosts=hosts.txt", f"--lab-config={lab}")
        assert res.ret == pytest.ExitCode.USAGE_ERROR, lab
        res.stderr.fnmatch_lines([words])


def test_the_lab_config_is_shipped_as_its_bytes(tmp_path):
    """Not decoded here: text that is not UTF-8 fails each host's lab_config_valid, as on one machine."""
    lab = tmp_path / "lab.yaml"
    lab.write_bytes(b'cluster_name: "\xff\xfe"\n')
    assert fleet_plugin.lab_config_bytes(str(lab)) == b'cluster_name: "\xff\xfe"\n'
    assert fleet_plugin.lab_config_bytes(None) is None


def test_hosts_and_n_do_not_mix(pytester):
    _project(pytester)
    (pytester.path / "hosts.txt").write_text("u@a\n")
    res = pytester.runpytest("--hosts=hosts.txt", "-n", "2")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*drop -n/--tx*"])


def test_a_late_hosts_reports_are_taken_after_the_session_stopped_taking_collections():
    """-x / --maxfail: a host's collection arrives after the stop and is not taken, but the host was told
    "run all" at its start and reports its checks: the scheduler must not crash on them (INTERNALERROR)."""
    late, unknown = Node("late"), Node("never added")
    sched = FleetScheduling(expected=2)
    sched.add_node(late)
    sched.mark_test_complete(late, 0)  # collection not taken
    sched.mark_test_complete(unknown, 3)  # its workerready not taken either
    sched.add_node_collection(late, ["t1"])
    sched.schedule()
    sched.mark_test_complete(late, 0)
    sched.mark_test_complete(late, 0)  # a repeat is no crash either
    assert sched.node2pending[late] == []


@pytest.mark.parametrize("sent", [
    None, "junk", ["host: CPU", 1.0], {"host: CPU": 10**400}, {"host: CPU": float("nan")},
    {"host: CPU": float("inf")}, {"host: CPU": -1}, {"host: CPU": True}, {"host: CPU": "0.5"},
    {"start": 99.0, "finished": 99.0, "evil": 1.0},
])
def test_a_hosts_word_about_its_own_clock_cannot_crash_or_corrupt_the_results(sent):
    """What a host sends is untrusted: only its four own keys, finite numbers >= 0 (float(10**400) raised in
    the controller's run loop, NaN made the JSON results invalid, "start" overwrote the controller's step)."""
    assert host_clock({HOST_TIMINGS: sent}) == {}


def test_a_hosts_own_clock_is_taken_as_sent():
    sent = {"host: CPU at start-up": 0.31, "host: collected": 0.1704, "host: finished": 1, "host: CPU": 0.7}
    assert host_clock({HOST_TIMINGS: sent}) == {"host: CPU at start-up": 0.31, "host: collected": 0.17,
                                               "host: finished": 1.0, "host: CPU": 0.7}
    assert host_clock(None) == host_clock({}) == {}


def test_a_probe_answer_that_is_no_usable_json_is_no_python_not_a_crash():
    """The host's answer goes through the one strict JSON reader: nesting 5000 deep (RecursionError in
    json.loads) or NaN is "did not run the probe", like any other answer that is not the probe's."""
    host = Host(name="a", ssh="u@a")
    for answer in ("[" * 5000 + "]" * 5000, '{"version": NaN}'):
        res = CmdResult(("ssh",), 0, f"{fleet_probe.MARK}{answer}\n")
        probed = fleet_probe.classify(host, res)
        assert probed.status == fleet_probe.NO_PYTHON and "did not run the probe" in probed.message, probed
