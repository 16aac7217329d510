"""MPS verdicts on the real captures (h100-host from the captures README, h100-run from our device run)."""

from __future__ import annotations

import dataclasses
import re
import sys

import pytest

from labcheck import cmd, mps, mps_idle
from labcheck.probes.mps import ClientRun, MpsFacts, PipeDir
from labcheck.remedy import Shell
from labcheck.verdicts import mps as v
from tests.captures import blocks, first
from tests.shell_fix import HOSTILE_NAMES, marked_words, parses, removed, removes_folder, words

PIPE, LOG = "/tmp/nvidia-mps", "/var/log/nvidia-mps"
CONTROL = "/usr/local/nvidia/bin/nvidia-cuda-mps-control"


def _res(cap) -> cmd.CmdResult:
    return cmd.CmdResult((CONTROL,), cap.rc if cap.rc is not None else 0, cap.output)


def facts(ps_text: str, query: cmd.CmdResult | None, pipe: PipeDir | None = None, env=None,
          daemon_dirs=None, server_path="/usr/local/nvidia/bin/nvidia-cuda-mps-server") -> MpsFacts:
    pipe = pipe or PipeDir(PIPE, True, True, True, False, True, 425)
    return MpsFacts(CONTROL, server_path, cmd.CmdResult(("ps",), 0, ps_text), tuple(mps.parse_ps(ps_text)), pipe,
                    env, daemon_dirs or {}, query)


# --- client steps -----------------------------------------------------------------------------------

def test_client_steps_from_the_capture():
    steps = mps.parse_client_steps(first("h100-host/cuprobe-client.txt").output)
    assert [(s.call, s.rc) for s in steps] == [("cuInit", 0), ("cuDeviceGetCount", 0), ("cuCtxCreate_v2", 0),
                                                ("cuCtxDestroy_v2", 0)]
    assert steps[1].extra == "1" and mps.first_failed_step(steps) is None
    assert mps.ClientStep("cuInit", 999).error_name == "CUDA_ERROR_UNKNOWN"
    assert mps.ClientStep("cuCtxCreate_v2", 805).error_name == "CUDA_ERROR_MPS_CONNECTION_FAILED"


def test_our_client_output_on_the_h100_run():
    caps = {c.command.split("   #")[0]: c for c in blocks("h100-run/captures.txt")}
    client = next(c for k, c in caps.items() if k.startswith("python3 labcheck/cuda_client.py"))
    steps = mps.parse_client_steps(client.output)
    assert [s.call for s in steps] == ["cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuCtxCreate_v2",
                                       "cuCtxDestroy_v2"]
    assert all(s.rc == 0 for s in steps) and "HOLDING 703" in client.output


def test_pipe_dir_from_environ():
    assert mps.pipe_dir_from_environ(b"PATH=/bin\0CUDA_MPS_PIPE_DIRECTORY=/srv/mps\0") == "/srv/mps"
    assert mps.pipe_dir_from_environ(b"PATH=/bin\0") == "/tmp/nvidia-mps"


# --- functional: served by MPS, or not -------------------------------------------------------------

def run_from_h100_host(**changes) -> ClientRun:
    """The client of mps-ps-with-client.txt (pid 447), server 449 appeared, nvidia-smi shows M+C."""
    caps = blocks("h100-host/mps-ps-with-client.txt")
    base = dict(pipe_dir=PIPE, daemon_answered=True, servers_before=(),
                steps=tuple(mps.parse_client_steps(first("h100-host/cuprobe-client.txt").output)), pid=447,
                held=True, rc=0, output=first("h100-host/cuprobe-client.txt").output,
                server_list=_res(caps[1]), servers_during=tuple(mps.parse_server_list(caps[1].output)),
                smi_mps_on=tuple(mps.smi_mps_clients(caps[2].output)))
    base.update(changes)
    return ClientRun(**base)


def test_client_served_by_mps_passes_on_the_h100_capture():
    verdict = v.functional(run_from_h100_host(), LOG)
    assert verdict.status == "pass"
    assert "nvidia-smi shows it as M+C" in verdict.message and "MPS server 449 started for it" in verdict.message


def test_client_listed_by_get_client_list_on_the_h100_run():
    caps: dict = {}
    for c in blocks("h100-run/captures.txt"):  # the first block of each command: the client was holding then
        caps.setdefault(c.command.split("   #")[0].strip(), c)
    servers = mps.parse_server_list(caps["echo get_server_list | nvidia-cuda-mps-control"].output)
    clients = mps.parse_server_list(caps[f"echo get_client_list {servers[0]} | nvidia-cuda-mps-control"].output)
    smi = mps.smi_mps_client_pids(caps["nvidia-smi"].output)
    assert servers == [705] and clients == [703] and smi == [703]
    run = run_from_h100_host(pid=703, servers_before=(705,), servers_during=(705,), client_lists={705: (703,)},
                             smi_mps_on=())
    verdict = v.functional(run, LOG)
    assert verdict.status == "pass" and "get_client_list of MPS server 705 lists it" in verdict.message


def test_client_that_ran_without_mps_fails():
    """cuprobe-no-daemon.txt: every call succeeded, yet no MPS server served it."""
    run = run_from_h100_host(servers_during=(), smi_mps_on=(),
                             output=first("h100-host/cuprobe-no-daemon.txt").output)
    verdict = v.functional(run, LOG)
    assert verdict.status == "fail" and "ran without MPS" in verdict.message
    assert "get_server_list while it held its context: empty" in verdict.message


def test_preexisting_server_alone_is_no_proof():
    run = run_from_h100_host(servers_before=(449,), smi_mps_on=())
    assert v.functional(run, LOG).status == "fail"


def test_no_daemon_fails_precisely():
    nodaemon = _res(first("h100-host/mps-no-daemon.txt"))
    run = ClientRun(PIPE, False, (), (), None, False, None, before=nodaemon)
    verdict = v.functional(run, LOG)
    assert verdict.status == "fail" and f"no MPS control daemon answers on {PIPE}" in verdict.message
    assert "nvidia-cuda-mps-control -d" in verdict.remediation
    killed = v.functional(run, LOG, started_pid=425)
    assert "this suite started (pid 425) no longer answers" in killed.message
    assert "died or was killed during the run" in killed.message


def test_cuda_error_code_is_named():
    out = "cuInit 999\n"
    run = run_from_h100_host(steps=tuple(mps.parse_client_steps(out)), held=False, rc=3, output=out)
    verdict = v.functional(run, LOG)
    assert verdict.status == "fail" and "cuInit returned 999 (CUDA_ERROR_UNKNOWN)" in verdict.message
    mps_err = "cuInit 0\ncuDeviceGetCount 0 1\ncuDeviceGet 0\ncuCtxCreate_v2 805\n"
    run = run_from_h100_host(steps=tuple(mps.parse_client_steps(mps_err)), held=False, rc=3, output=mps_err)
    verdict = v.functional(run, LOG)
    assert "cuCtxCreate_v2 returned 805 (CUDA_ERROR_MPS_CONNECTION_FAILED)" in verdict.message
    assert "server.log" in verdict.remediation


def test_hung_client_and_hung_control_are_named():
    run = run_from_h100_host(held=False, rc=None, timed_out_at="creating its CUDA context (last output: cuInit 0)")
    assert "hung while creating its CUDA context" in v.functional(run, LOG).message
    hung = cmd.CmdResult((CONTROL,), None, timed_out=True, timeout=5)
    verdict = v.functional(ClientRun(PIPE, False, (), (), None, False, None, before=hung), LOG)
    assert "hung: no answer within 5s" in verdict.message and CONTROL in verdict.message


# --- daemon, binary, pipe dir -----------------------------------------------------------------------

def test_daemon_answering_with_no_server_yet_passes():
    f = facts(first("h100-host/mps-ps-daemon-only.txt").output, _res(first("h100-host/mps-control-queries.txt")))
    verdict = v.daemon(f, PIPE, LOG, True)
    assert verdict.status == "pass" and "pid 425" in verdict.message and "no MPS server yet" in verdict.message


def test_daemon_with_server_passes():
    caps = blocks("h100-host/mps-ps-with-client.txt")
    verdict = v.daemon(facts(caps[0].output, _res(caps[1])), PIPE, LOG, True)
    assert verdict.status == "pass" and "MPS server pid 449" in verdict.message


def test_no_daemon_is_ready_to_start_without_provisioning_and_fails_with_it():
    nodaemon = _res(first("h100-host/mps-no-daemon.txt"))
    quit_ps = first("h100-host/mps-quit.txt").output  # only a zombie left
    f = facts(quit_ps, nodaemon)
    ready = v.daemon(f, PIPE, LOG, provisioning=False)
    assert ready.status == "warn" and "ready to start" in ready.message
    assert ready.remediation.endswith("nvidia-cuda-mps-control -d")
    assert v.daemon(f, PIPE, LOG, provisioning=True).status == "fail"
    start_failed = v.daemon(f, PIPE, LOG, True, "`nvidia-cuda-mps-control -d` exited 1: boom", "the fix")
    assert start_failed.status == "fail" and "starting it failed" in start_failed.message
    assert start_failed.remediation == "the fix"


def test_daemon_on_another_pipe_dir_fails_in_both_checks():
    nodaemon = _res(first("h100-host/mps-no-daemon.txt"))
    f = facts(first("h100-host/mps-ps-daemon-only.txt").output, nodaemon, daemon_dirs={425: "/srv/mps"})
    d = v.daemon(f, PIPE, LOG, True)
    assert d.status == "fail" and "pid 425 on /srv/mps" in d.message
    p = v.pipe_dir(f, PIPE, LOG)
    assert p.status == "fail" and "pid 425 uses /srv/mps" in p.message


def test_hung_control_query_fails_naming_the_command():
    hung = cmd.CmdResult((CONTROL,), None, timed_out=True, timeout=30)
    verdict = v.daemon(facts("", hung), PIPE, LOG, True)
    assert verdict.status == "fail" and f"`{CONTROL}` hung" in verdict.message


def test_binary_checks():
    assert v.binary(facts("", None)).status == "pass"
    missing_server = v.binary(facts("", None, server_path=None), "580.159.04")
    assert missing_server.status == "fail" and "nvidia-compute-utils-580" in missing_server.remediation
    no_control = MpsFacts(None, None, cmd.CmdResult(("ps",), 0), (), PipeDir(PIPE, False, False, False, True, False),
                          None)
    assert v.binary(no_control).status == "fail"
    assert v.daemon(no_control, PIPE, LOG, True).status == "skip"


def test_pipe_dir_must_agree_with_the_environment():
    f = facts("", None, env="/run/mps")
    verdict = v.pipe_dir(f, PIPE, LOG)
    assert verdict.status == "fail" and "CUDA_MPS_PIPE_DIRECTORY=/run/mps" in verdict.message
    assert verdict.remediation.startswith(f"export CUDA_MPS_PIPE_DIRECTORY={PIPE}")
    assert v.pipe_dir(facts("", None, env=PIPE + "/"), PIPE, LOG).status == "pass"


def test_non_default_pipe_dir_needs_the_variable():
    verdict = v.pipe_dir(facts("", None, pipe=PipeDir("/srv/mps", True, True, True, False, True)), "/srv/mps", LOG)
    assert verdict.status == "fail" and "CUDA_MPS_PIPE_DIRECTORY is unset" in verdict.message
    assert verdict.remediation == "export CUDA_MPS_PIPE_DIRECTORY=/srv/mps"
    ok = v.pipe_dir(facts("", None, env="/srv/mps", pipe=PipeDir("/srv/mps", True, True, True, False, True)),
                    "/srv/mps", LOG)
    assert ok.status == "pass"


# --- every MPS fix for any valid configured folder ------------------------------------------------------------

def _every_fix(pipe: str, log: str, shell: Shell) -> dict[str, str]:
    """Each MPS remediation of module 0, for the configured ``pipe`` and ``log`` folders (real captures as facts)."""
    hung = cmd.CmdResult((CONTROL,), None, timed_out=True, timeout=30)
    nodaemon = _res(first("h100-host/mps-no-daemon.txt"))
    quit_ps = first("h100-host/mps-quit.txt").output
    daemon_ps = first("h100-host/mps-ps-daemon-only.txt").output
    here = PipeDir(pipe, True, True, True, False, True)
    mps_err = "cuInit 0\ncuDeviceGetCount 0 1\ncuCtxCreate_v2 805\n"
    run = run_from_h100_host(pipe_dir=pipe)
    fixes = {
        "daemon hung": v.daemon(facts("", hung, here), pipe, log, True, shell=shell),
        "daemon elsewhere": v.daemon(facts(daemon_ps, nodaemon, here, daemon_dirs={425: pipe + "/other"}), pipe,
                                     log, True, shell=shell),
        "daemon deaf": v.daemon(facts(daemon_ps, nodaemon, here), pipe, log, True, shell=shell),
        "no daemon": v.daemon(facts(quit_ps, nodaemon, here), pipe, log, True, shell=shell),
        "not provisioned": v.daemon(facts(quit_ps, nodaemon, here), pipe, log, False, shell=shell),
        "env differs": v.pipe_dir(facts("", None, here, env=pipe + "/env\nrm -rf ~"), pipe, log, shell),
        "env unset": v.pipe_dir(facts("", None, here), pipe, log, shell),
        "a file": v.pipe_dir(facts("", None, PipeDir(pipe, True, False, False, False, False), env=pipe), pipe, log,
                             shell),
        "other daemon": v.pipe_dir(facts(daemon_ps, None, here, env=pipe, daemon_dirs={425: pipe + "/other"}), pipe,
                                   log, shell),
        "no access": v.pipe_dir(facts("", None, PipeDir(pipe, True, True, False, False, False), env=pipe), pipe,
                                log, shell),
        "parent locked": v.pipe_dir(facts("", None, PipeDir(pipe, False, False, False, False, False), env=pipe),
                                    pipe, log, shell),
        "blocked": v.pipe_dir(facts("", None, PipeDir(pipe, False, False, False, False, False, None, pipe + "/f"),
                                    env=pipe), pipe, log, shell),
        "control hung": v.functional(ClientRun(pipe, False, (), (), None, False, None, before=hung), log,
                                     control=CONTROL, shell=shell),
        "daemon died": v.functional(dataclasses.replace(run, daemon_answered=False), log, 425, CONTROL, shell),
        "daemon absent": v.functional(dataclasses.replace(run, daemon_answered=False), log, None, CONTROL, shell),
        "805": v.functional(dataclasses.replace(run, steps=tuple(mps.parse_client_steps(mps_err)), held=False, rc=3),
                            log, control=CONTROL, shell=shell),
        "46": v.functional(dataclasses.replace(run, steps=(mps.ClientStep("cuInit", 46),), held=False, rc=3), log,
                           control=CONTROL, shell=shell),
        "client hung": v.functional(dataclasses.replace(run, held=False, rc=None, timed_out_at="creating it"), log,
                                    control=CONTROL, shell=shell),
        "not served": v.functional(dataclasses.replace(run, servers_during=(), smi_mps_on=()), log, control=CONTROL,
                                   shell=shell),
        "container answers": v.daemon(_node(True, answer=True, pipe=here), pipe, log, True, shell=shell),
        "container may answer": v.daemon(_node(None, answer=True, pipe=here), pipe, log, True, shell=shell),
        "two daemons": v.daemon(_node(True, answer=True, pipe=here, host_dir=pipe), pipe, log, True, shell=shell),
        "container deaf": v.daemon(_node(True, answer=False, pipe=here), pipe, log, True, shell=shell),
    }
    for name, verdict in fixes.items():
        assert verdict.status in ("fail", "warn"), (name, verdict)
    out = {name: verdict.remediation for name, verdict in fixes.items()}
    out["install"] = v.install_mps("", Shell(distro="arch\nrm -rf ~"))
    return out


BACKUP = re.compile(r".*\.labcheck-[0-9]{14}(-[0-9]+)?\.bak", re.S)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_every_mps_fix_parses_quotes_the_configured_folders_and_removes_no_folder(tmp_path, name):
    """A hostile but valid mps_pipe_dir / mps_log_dir (spaces, quotes, $, ;, *, #, a newline): each fix parses in
    bash, holds each configured folder as one word (whole, or VAR=folder), and never runs a recursive rm or
    removes a folder it was given (it once printed `rm -rf /tmp` for mps_pipe_dir: /tmp)."""
    pipe, log = f"/srv/{name}/pipe", f"/srv/{name}/log"
    whole = {pipe, log, pipe + ".bak", pipe + "/f", pipe + "/f.bak", f"CUDA_MPS_PIPE_DIRECTORY={pipe}",
             f"CUDA_MPS_LOG_DIRECTORY={log}", f"CUDA_MPS_PIPE_DIRECTORY={pipe}/other",
             *(f"{log}/{n}.log" for n in ("control", "server")), *(f"{pipe}/{e}" for e in mps.PIPE_ENTRIES)}
    for shell in (Shell(), Shell(root=True)):
        for what, fix in _every_fix(pipe, log, shell).items():
            assert not parses(fix), (what, fix, parses(fix))
            # a backup name (fsio.backup_name) is the folder's name plus a timestamped suffix: one word too
            marked = {w for w in marked_words(fix) if not BACKUP.fullmatch(w)}
            assert marked <= whole, (what, fix, marked - whole)
            assert not removes_folder(fix, pipe, log, "/srv", "~", "/"), (what, fix)
            assert "rm" not in words(fix) or what in ("daemon hung", "control hung"), (what, fix)


def test_the_stale_pipe_fix_removes_only_the_daemons_entries_and_only_with_no_mps_process():
    fix = v.stale_pipe_fix("/tmp", LOG, CONTROL, Shell(), python="/opt/py 3/python")
    assert fix.startswith(f"(cd {mps_idle.IMPORT_ROOT} && '/opt/py 3/python' -m labcheck.mps_idle /tmp) && "
                          "{ sudo rm -f -- /tmp/control /tmp/control_lock "), fix
    assert [args for args in removed(fix)] == [("-f", "--", *(f"/tmp/{e}" for e in mps.PIPE_ENTRIES))]
    assert "rm -rf" not in fix and "if no daemon" not in fix and "pgrep" not in fix and not parses(fix)
    assert v.stale_pipe_fix(PIPE + "/", LOG, CONTROL, Shell(root=True), python="python3").startswith(
        f"(cd {mps_idle.IMPORT_ROOT} && python3 -m labcheck.mps_idle {PIPE}/) && {{ rm -f -- {PIPE}/control ")


def test_the_kind_nodes_daemon_is_not_taken_for_the_hosts():
    """ps on the host lists the kind node's MPS daemon too (a container's process, another pid namespace), with the
    same pipe path in its environment: it was "an MPS control daemon runs (pid N) but does not answer", and the fix
    quit-and-restarted on the host's folder. It is not the host's daemon: the host has none, start one; a
    container daemon's pipe folder (a path in its own mounts) is no "daemon on another pipe dir" either."""
    ps = ("    PID    PPID STAT COMMAND         COMMAND\n"
          "   4242       1 Ssl  nvidia-cuda-mps nvidia-cuda-mps-control -d\n")
    missing = cmd.CmdResult((CONTROL,), 1, mps.NO_DAEMON)
    node = dataclasses.replace(facts(ps, missing, daemon_dirs={4242: "/run/elsewhere"}), daemon_in_host={4242: False})
    verdict = v.daemon(node, PIPE, LOG, provisioning=True)
    assert verdict.status == "fail" and "none runs" in verdict.message, verdict
    assert "pid 4242, e.g. the kind node's): not this host's, left alone" in verdict.message
    assert verdict.remediation == v.start_command(PIPE, LOG, CONTROL) and "quit" not in verdict.remediation
    assert v.pipe_dir(dataclasses.replace(node, env_pipe_dir=PIPE), PIPE, LOG).status == "pass"
    host = dataclasses.replace(node, daemon_in_host={4242: True})  # the same daemon, of the host: it is one
    assert "runs (pid 4242 on /run/elsewhere) but none answers" in v.daemon(host, PIPE, LOG, True).message


NODE_PS = "   4242       1 Ssl  nvidia-cuda-mps nvidia-cuda-mps-control -d\n"  # the kind node's, on the host
HOST_PS = "    425       1 Ssl  nvidia-cuda-mps nvidia-cuda-mps-control -d\n"


def _node(on_pipe: bool | None, answer: bool, pipe: PipeDir | None = None, host_dir: str = "") -> MpsFacts:
    """The kind node's daemon (host pid 4242, another pid namespace) whose pipe folder is the lab's (``on_pipe``;
    None: cannot be told), a daemon answering on the folder or not, and (``host_dir``) a host daemon 425 there."""
    query = cmd.CmdResult((CONTROL,), 0, "") if answer else cmd.CmdResult((CONTROL,), 1, mps.NO_DAEMON)
    ps = "    PID    PPID STAT COMMAND         COMMAND\n" + NODE_PS + (HOST_PS if host_dir else "")
    f = facts(ps, query, pipe, daemon_dirs={425: host_dir} if host_dir else None)
    return dataclasses.replace(f, daemon_in_host={4242: False, **({425: True} if host_dir else {})},
                               container_on_pipe={4242: on_pipe})


def test_a_containers_daemon_answering_on_the_hosts_folder_is_not_the_hosts():
    """Module 0 checks the HOST's daemon. The kind node's answers on the host's folder (the node mounts it at the same
    path): the check passed as "MPS control daemon (pid not visible in ps) answers". It fails, naming it, and the fix
    quits it through the folder (it removes its own files: nothing of its is removed by hand)."""
    verdict = v.daemon(_node(True, answer=True), PIPE, LOG, True)
    assert verdict.status == "fail" and "answering on /tmp/nvidia-mps is a container's, not this host's: pid 4242" \
        in verdict.message and "not visible in ps" not in verdict.message
    assert verdict.remediation.startswith(f"echo quit | sudo env CUDA_MPS_PIPE_DIRECTORY={PIPE} {CONTROL}   # ")
    assert "then rerun module 0" in verdict.remediation and "rm " not in verdict.remediation
    assert v.daemon(_node(True, answer=True), PIPE, LOG, False).status == "fail"  # --no-provision: the same
    assert v.daemon(_node(False, answer=True), PIPE, LOG, True).status == "pass"  # its folder is another one


NODE = "workshop-dra-control-plane"


def _lab_node(f: MpsFacts, pids: frozenset[int] | None, top_ok: bool = True) -> MpsFacts:
    """``f`` with the lab's kind node asked (``docker top NODE``): ``pids``, the host pids it lists (None: it could
    not be told)."""
    top = cmd.CmdResult(("docker", "top", NODE), 0 if top_ok else 1, "" if top_ok else "",
                        "" if top_ok else "Cannot connect to the Docker daemon")
    return dataclasses.replace(f, lab_node=NODE, node_pids=pids, node_top=top)


def test_the_lab_nodes_own_daemon_answering_on_the_shared_folder_passes():
    """Run twice: module 1 of the first run left the kind node's daemon answering on the shared folder, and module 0
    of the second failed with a fix that quit the daemon module 1 needs. The lab's own node's daemon (its pid among
    the host pids `docker top NODE` lists) passes, saying whose it is; any other container's keeps failing."""
    verdict = v.daemon(_lab_node(_node(True, answer=True), frozenset({4100, 4242})), PIPE, LOG, True)
    assert verdict.status == "pass", verdict
    assert verdict.message.startswith(f"MPS control daemon on {PIPE} is the kind node {NODE}'s (pid 4242, started "
                                      "by module 1): it serves this host's CUDA clients through the shared pipe "
                                      "folder"), verdict.message
    assert v.daemon(_lab_node(_node(True, answer=True), frozenset({4242})), PIPE, LOG, False).status == "pass"
    other = v.daemon(_lab_node(_node(True, answer=True), frozenset({4100, 4243})), PIPE, LOG, True)
    assert other.status == "fail" and "is a container's, not this host's: pid 4242" in other.message
    assert f"`docker top {NODE}` does not list it" in other.message
    assert other.remediation.startswith(f"echo quit | sudo env CUDA_MPS_PIPE_DIRECTORY={PIPE} {CONTROL}   # ")


@pytest.mark.parametrize("case", ["docker unreachable", "not asked"])
def test_a_container_daemon_not_told_to_be_the_lab_nodes_keeps_failing(case):
    """Where it cannot be told (docker not reachable, no such node, an engine elsewhere: no pids), or the node was
    not asked, the container's daemon is not taken for the lab node's."""
    f = _node(True, answer=True)
    f = _lab_node(f, None, top_ok=False) if case == "docker unreachable" else f
    verdict = v.daemon(f, PIPE, LOG, True)
    assert verdict.status == "fail" and "is a container's, not this host's: pid 4242" in verdict.message
    if case == "docker unreachable":
        assert f"whether it is the lab's kind node {NODE}'s cannot be told" in verdict.message


def test_the_lab_nodes_daemon_beside_a_host_daemon_still_fails_naming_both():
    f = _lab_node(_node(True, answer=True, host_dir=PIPE), frozenset({4242}))
    verdict = v.daemon(f, PIPE, LOG, True)
    assert verdict.status == "fail" and verdict.remediation.startswith("sudo kill 425 4242   # ")


def test_a_containers_daemon_that_may_be_the_one_answering_is_not_verified():
    """Its folder cannot be read (a user, root's daemon in the node) and no host daemon is on the folder in ps: who
    answers cannot be told, so the check warns (NOT VERIFIED), with the guard, as root, that tells."""
    verdict = v.daemon(_node(None, answer=True), PIPE, LOG, True)
    assert verdict.status == "warn" and "pid 4242 (another pid namespace) may be the one" in verdict.message
    assert verdict.remediation.startswith(mps_idle.guard_command(PIPE, sys.executable, Shell()) + "   # ")
    assert "&& sudo " in verdict.remediation.split("#")[0]
    served = v.daemon(_node(None, answer=True, host_dir=PIPE), PIPE, LOG, True)  # this host's on it: its answer
    assert served.status == "pass" and "pid 425" in served.message


def test_a_host_and_a_containers_daemon_on_one_folder_fail_and_both_are_named():
    verdict = v.daemon(_node(True, answer=True, host_dir=PIPE), PIPE, LOG, True)
    assert verdict.status == "fail" and "this host's (pid 425) and a container's (pid 4242" in verdict.message
    assert verdict.remediation.startswith("sudo kill 425 4242   # ")


def test_a_containers_daemon_on_the_folder_that_does_not_answer_gets_no_host_daemon_beside_it():
    """Starting the host's daemon on a folder whose socket the node's daemon holds would make two daemons share it
    (the stale-pipe fix once did that too): the fix stops the container's by its pid, and starts nothing."""
    verdict = v.daemon(_node(True, answer=False), PIPE, LOG, True)
    assert verdict.status == "fail" and "pid 4242 on this host" in verdict.message and "would share" in verdict.message
    assert verdict.remediation.startswith("sudo kill 4242   # ") and " -d" not in verdict.remediation
    assert v.daemon(_node(None, answer=False), PIPE, LOG, True).remediation == v.start_command(PIPE, LOG, CONTROL)


def test_a_pipe_folder_that_cannot_be_made_is_made_for_the_user_not_root():
    """`sudo mkdir -p` made a root-owned folder, where the daemon the start fix runs as the user cannot create its
    pipes: the fix is make_dir_command's `sudo install -d -o "$(id -un)"` (when the folder is missing)."""
    f = facts("", None, PipeDir("/var/run/mps", False, False, False, False, False), env="/var/run/mps")
    verdict = v.pipe_dir(f, "/var/run/mps", LOG)
    assert verdict.status == "fail" and verdict.remediation.endswith('else sudo install -d -o "$(id -un)" -- '
                                                                     '/var/run/mps; fi')
    assert verdict.remediation == v.make_dir_command("/var/run/mps")
