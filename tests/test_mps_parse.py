"""MPS parsers on the real H100 captures."""

from labcheck import mps
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
