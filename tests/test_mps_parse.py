"""MPS parsers on the real H100 captures."""

import pytest

from labcheck import cmd, mps
from labcheck.probes.mps import MpsFacts, PipeDir
from labcheck.verdicts import mps as mps_v
from tests.captures import blocks, first


def test_daemon_only_ignores_zombies_and_finds_no_server():
    procs = mps.parse_ps(first("h100-host/mps-ps-daemon-only.txt").output)
    assert [p.pid for p in mps.control_daemons(procs)] == [425]
    assert mps.servers(procs) == []
    assert all(p.comm == "nvidia-cuda-mps" for p in procs)  # comm is truncated: args decide


def test_with_client_finds_server_by_full_command_line():
    caps = blocks("h100-host/mps-ps-with-client.txt")
    procs = mps.parse_ps(caps[0].output)
    assert [p.pid for p in mps.control_daemons(procs)] == [425]
    assert [p.pid for p in mps.servers(procs)] == [449]
    assert mps.parse_server_list(caps[1].output) == [449]
    assert mps.smi_mps_client_pids(caps[2].output) == [447]


def test_quit_leaves_only_a_zombie():
    cap = first("h100-host/mps-quit.txt")
    assert mps.control_daemons(mps.parse_ps(cap.output)) == []


def test_empty_server_list_before_any_client():
    cap = first("h100-host/mps-control-queries.txt")
    assert cap.rc == 0 and mps.parse_server_list(cap.output) == []


def test_in_node_ps_with_full_path():
    procs = mps.parse_ps("  27     1 Ssl  nvidia-cuda-mps /usr/local/nvidia/bin/nvidia-cuda-mps-control -d\n")
    assert [p.pid for p in mps.control_daemons(procs)] == [27]


def test_no_daemon_message_matches_capture():
    cap = first("h100-host/mps-no-daemon.txt")
    assert cap.rc == 1 and mps.NO_DAEMON in cap.output


# A server / client list is one pid per line (the real captures below). Hostile lines: digits that are not ASCII
# ("²" passes str.isdigit() and crashes int(); "١٢" and "٣" are read by int() as 12 and 3), two words on one line.
HOSTILE_PID_LINES = ["²", "١٢", "٣", "12 34", "12\u200b", "4٤9", "+449", "-1", "0x1c1", "449.0"]
SERVER_LIST = blocks("h100-host/mps-ps-with-client.txt")[1]  # get_server_list while a client ran: "449"
CLIENT_LIST = blocks("h100-run/captures.txt")[3]  # get_client_list 705: "703"


@pytest.mark.parametrize("hostile", HOSTILE_PID_LINES)
def test_a_hostile_pid_line_is_no_pid_and_no_crash(hostile):
    assert SERVER_LIST.command.startswith("echo get_server_list") and CLIENT_LIST.command.startswith(
        "echo get_client_list 705")
    for real, pid in ((SERVER_LIST.output, 449), (CLIENT_LIST.output, 703)):
        assert mps.parse_server_list(f"{hostile}\n{real}\n") == [pid]
        assert mps.parse_server_list(f"{real}\r\n{hostile}\r\n") == [pid]  # CRLF, hostile line last
        assert mps.parse_server_list(hostile) == []


def test_the_daemon_check_names_only_real_server_pids():
    """Through the MPS daemon check: a get_server_list answer with a hostile line next to the real one passes on
    server 449 alone (the daemon answered), never a traceback and never "²" or "١٢" shown as a server pid."""
    ps = blocks("h100-host/mps-ps-with-client.txt")[0].output
    answer = cmd.CmdResult(("nvidia-cuda-mps-control",), 0, "²\n١٢\n12 34\n" + SERVER_LIST.output + "\n")
    facts = MpsFacts("/usr/bin/nvidia-cuda-mps-control", "/usr/bin/nvidia-cuda-mps-server",
                     cmd.CmdResult(("ps",), 0, ps), tuple(mps.parse_ps(ps)),
                     PipeDir("/tmp/nvidia-mps", True, True, True, False, True, 425), None, {}, answer)
    verdict = mps_v.daemon(facts, "/tmp/nvidia-mps", "/var/log/nvidia-mps", True)
    assert verdict.status == "pass" and "MPS server pid 449;" in verdict.message + ";", verdict
    assert not any(bad in verdict.message for bad in ("²", "١٢", "12", "34")), verdict
