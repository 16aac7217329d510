"""The real H100 host (tests/data/h100-run/README.md), replayed through the product's parsers and verdicts.

captures.txt holds what nvidia-smi, nvidia-cuda-mps-control and our CUDA client really printed there
(run 1); module0*.json hold the verdicts the suite itself recorded there (run 2, other pids). Each test
feeds the real outputs to the functions module 0's checks use and asserts the verdict and its message,
then that the run recorded the same verdict with the same evidence: a broken parser or verdict fails
here, and so does a check whose real-host verdict the product could no longer reach.
"""

from __future__ import annotations

import json
import re

from labcheck import cmd, mps
from labcheck.probes.gpu import GpuFacts, NvmlFacts, SmiQuery, parse_query_csv
from labcheck.probes.mps import ClientRun, MpsFacts, PipeDir
from labcheck.verdicts import gpu as gpu_v
from labcheck.verdicts import mps as mps_v
from tests.captures import DATA, blocks

PIPE, LOG = "/tmp/cap-mps", "/var/log/nvidia-mps"  # the capture's pipe dir (CUDA_MPS_PIPE_DIRECTORY=/tmp/cap-mps)
CONTROL = "/usr/local/nvidia/bin/nvidia-cuda-mps-control"


def _capture(start: str, note: str = "") -> str:
    """The output of the captured command that starts with ``start`` (and whose comment holds ``note``)."""
    found = [c for c in blocks("h100-run/captures.txt") if c.command.startswith(start) and note in c.command]
    assert found, f"tests/data/h100-run/captures.txt has no `{start}` block (note {note!r})"
    return found[0].output


def _recorded(name: str) -> dict[str, dict]:
    return {r["check"]: r for r in json.loads((DATA / "h100-run" / name).read_text())["records"]}


def _shape(message: str) -> str:
    """A message with its pids and pipe dir taken out: run 1's captures and run 2's records differ there."""
    return re.sub(r"\d+", "N", message.replace(PIPE, "/tmp/nvidia-mps"))


def _ok(out: str) -> cmd.CmdResult:
    return cmd.CmdResult(("nvidia-cuda-mps-control",), 0, out)


def _client_run(**changes) -> ClientRun:
    """The CUDA client run on the H100 host, from its real outputs: the client holding its context, the
    daemon's server and client lists meanwhile, and nvidia-smi's process table."""
    client_out = _capture("python3 labcheck/cuda_client.py --hold 10")
    steps = tuple(mps.parse_client_steps(client_out))
    pid = int(re.search(r"^HOLDING (\d+)$", client_out, re.M).group(1))
    servers = tuple(mps.parse_server_list(_capture("echo get_server_list", "holding")))
    clients = tuple(mps.parse_server_list(_capture(f"echo get_client_list {servers[0]}")))
    smi = _capture("nvidia-smi", "holding")
    facts = dict(pipe_dir=PIPE, daemon_answered=True, servers_before=(), steps=steps, pid=pid, held=True, rc=0,
                 output=client_out, server_list=_ok(f"{servers[0]}\n"), servers_during=servers,
                 client_lists={servers[0]: clients}, smi=cmd.CmdResult(("nvidia-smi",), 0, smi),
                 smi_mps_on=tuple(mps.smi_mps_clients(smi)), before=_ok(""))
    return ClientRun(**{**facts, **changes})


def test_mps_functional_check_passes_on_the_real_client_with_all_three_proofs():
    verdict = mps_v.functional(_client_run(), LOG, control=CONTROL)
    assert verdict.status == "pass", verdict
    assert verdict.message == (f"MPS serves a CUDA client (pid 703, CUDA_MPS_PIPE_DIRECTORY={PIPE}): get_client_list "
                               "of MPS server 705 lists it; nvidia-smi shows it as M+C on GPU 0; "
                               "MPS server 705 started for it")
    recorded = _recorded("module0.json")["mps_serves_a_cuda_client"]
    # Recorded before the M+C evidence named its GPU (tests/data/h200-final's records do: "M+C on GPU 0").
    then = _shape(recorded["message"]).replace("as M+C;", "as M+C on GPU N;")
    assert recorded["verdict"] == "pass" and then == _shape(verdict.message), recorded


def test_mps_functional_check_fails_on_the_same_client_when_mps_shows_no_trace_of_it():
    """The real client output (context created) but no MPS server, client list or M+C row: it ran without MPS."""
    run = _client_run(servers_during=(), client_lists={}, smi_mps_on=(), server_list=_ok(""))
    verdict = mps_v.functional(run, LOG, control=CONTROL)
    assert verdict.status == "fail", verdict
    assert "created a CUDA context but no MPS server appeared for it" in verdict.message
    assert "nvidia-smi M+C processes: none" in verdict.message and "it ran without MPS" in verdict.message
    assert verdict.remediation.startswith(f"tail {LOG}/control.log")


def test_daemon_killed_on_the_real_host_fails_both_mps_checks():
    """After `kill -9` of the control daemon: ps lists only zombies, and the control client's real answer."""
    gone = cmd.CmdResult(("nvidia-cuda-mps-control",), 1, "Cannot find MPS control daemon process")
    procs = tuple(mps.parse_ps(_capture("ps -eo pid,ppid,stat,comm,args | grep mps", "after the kill")))
    pipe = PipeDir(PIPE, True, True, True, False, True, 698)
    facts = MpsFacts(CONTROL, "/usr/local/nvidia/bin/nvidia-cuda-mps-server", cmd.CmdResult(("ps",), 0), procs, pipe,
                     PIPE, server_list=gone)
    assert facts.daemons == [], "a <defunct> daemon counted as running"
    daemon = mps_v.daemon(facts, PIPE, LOG, provisioning=True)
    assert daemon.status == "fail" and f"expected an MPS control daemon answering on {PIPE}; none runs" in \
        daemon.message and "Cannot find MPS control daemon process" in daemon.message, daemon
    functional = mps_v.functional(_client_run(daemon_answered=False, before=gone), LOG, control=CONTROL)
    assert functional.status == "fail" and functional.message == (
        f"no MPS control daemon answers on {PIPE}: a CUDA client would run without MPS, which proves nothing")
    recorded = _recorded("module0-noprovision.json")["mps_serves_a_cuda_client"]  # no daemon there either
    assert recorded["verdict"] == "fail" and _shape(recorded["message"]) == _shape(functional.message), recorded


def test_real_running_daemon_is_found_in_ps_by_its_full_command_line():
    procs = mps.parse_ps(_capture("ps -eo pid,ppid,stat,comm,args | grep -E 'mps|cuda_client'"))
    assert [p.pid for p in mps.control_daemons(procs)] == [698]
    assert [p.pid for p in mps.servers(procs)] == [705]


def test_real_nvidia_smi_query_passes_driver_and_compute_capability():
    gpus, driver_version = parse_query_csv(_capture("nvidia-smi --query-gpu="))
    assert driver_version == "580.159.04" and [g.name for g in gpus] == ["NVIDIA H100 80GB HBM3"]
    facts = GpuFacts(SmiQuery("nvidia-smi", None, tuple(gpus), driver_version), NvmlFacts())
    driver = gpu_v.driver(facts, "535")
    assert driver.status == "pass" and driver.message.startswith("NVIDIA driver 580.159.04 >= 535"), driver
    cc = gpu_v.compute_capability(facts, "6.0")
    assert cc.status == "pass" and cc.message == "compute capability >= 6.0: GPU 0 9.0", cc
    assert gpu_v.compute_capability(facts, "9.1").status == "fail"  # the minimum is compared, not just present
    recorded = _recorded("module0.json")
    assert recorded["gpu_compute_capability"]["message"] == cc.message
    assert recorded["nvidia_driver_version"]["verdict"] == "pass"
