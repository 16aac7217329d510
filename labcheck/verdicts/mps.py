"""Verdicts on host MPS (module 0: "MPS Control Daemon is running (or ready to start)").

The workshop's script calls MPS fine when the binary exists. We go further: the daemon must answer
on the pipe directory the lab uses, and a real CUDA client must be *served* by it. A client that
merely ran proves nothing: without a daemon on its pipe directory CUDA silently runs without MPS
(real-captures/h100-host/cuprobe-no-daemon.txt). Proof is the MPS server listing the client
(get_server_list / get_client_list) or nvidia-smi showing it as an ``M+C`` process.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from shlex import quote as sh

from labcheck import mps, mps_idle
from labcheck.probes.mps import ClientRun, MpsFacts, PipeDir
from labcheck.remedy import DEBIAN, DEFAULT, UBUNTU, Shell, with_note
from labcheck.verdict import Verdict, failed, passed, skipped, warned
from labcheck.verdicts.gpu import DRIVER_GUIDE

DEFAULT_PIPE_DIR = "/tmp/nvidia-mps"  # where CUDA clients and nvidia-cuda-mps-control look without the variable


def start_command(pipe_dir: str, log_dir: str, control: str = "nvidia-cuda-mps-control",
                  shell: Shell = DEFAULT) -> str:
    """Start the daemon as the current user, with a log dir it can write (created owned by that user)."""
    return (shell.user_folder(log_dir) + f" && CUDA_MPS_PIPE_DIRECTORY={sh(pipe_dir)} "
            f"CUDA_MPS_LOG_DIRECTORY={sh(log_dir)} {sh(control)} -d")


def make_dir_command(path: str, blocking_file: str = "", shell: Shell = DEFAULT) -> str:
    """Create ``path`` owned by the current user (WHY: the daemon runs as that user and creates its pipes and logs
    there; a root-owned folder from ``sudo mkdir`` stops it). A file in the way (``blocking_file``: ``path`` itself
    or an ancestor that is not a directory) is moved aside first: ``mkdir -p`` would stop at it ("File exists")."""
    made = shell.user_folder(path)
    if not blocking_file:
        return made
    # no path in the note: a path may hold a newline, which would end the comment and run the rest
    return f"{shell.move_aside(blocking_file)} && {made}   # then look at what was moved aside"


def restart_command(pipe_dir: str, log_dir: str, control: str = "nvidia-cuda-mps-control",
                    shell: Shell = DEFAULT) -> str:
    return f"{quit_command(pipe_dir, control, root=False)}; " + start_command(pipe_dir, log_dir, control, shell)


def install_mps(driver_version: str, shell: Shell = DEFAULT) -> str:
    """The package that ships nvidia-cuda-mps-control/-server on this distribution."""
    if shell.family == DEBIAN:
        return shell.sudo("apt-get install -y nvidia-cuda-mps") + "   # Debian's package, from non-free"
    if shell.family == UBUNTU:
        if driver_version:
            branch = driver_version.split(".", 1)[0]
            return (shell.sudo(f"apt-get install -y nvidia-compute-utils-{sh(branch)}")
                    + "   # ships nvidia-cuda-mps-control/-server")
        return shell.sudo("ubuntu-drivers install") + "   # the driver's compute utilities ship nvidia-cuda-mps-control"
    # the distribution's name comes from /etc/os-release: with_note escapes what is not printable
    return with_note("", f"install the NVIDIA driver's compute utilities (nvidia-cuda-mps-control) for "
                     f"{shell.distro}: {DRIVER_GUIDE}")


def log_files(log_dir: str, *names: str) -> str:
    """The MPS log files ``<name>.log`` in ``log_dir`` (CUDA_MPS_LOG_DIRECTORY), quoted for a shell (a remediation
    is pasted into one); module 1 names the node's with it."""
    return " ".join(sh(f"{log_dir.rstrip('/')}/{n}.log") for n in names)


def binary(facts: MpsFacts, driver_version: str = "", shell: Shell = DEFAULT) -> Verdict:
    install = install_mps(driver_version, shell)
    if facts.control_path is None:
        return failed("expected nvidia-cuda-mps-control on PATH or in the driver's bin folder; not found", install)
    if facts.server_path is None:
        return failed(f"found {facts.control_path} but not nvidia-cuda-mps-server, which the daemon starts for "
                      "each client", install)
    return passed(f"MPS binaries: {facts.control_path}, {facts.server_path}")


def stale_pipe_fix(pipe_dir: str, log_dir: str, control: str = "nvidia-cuda-mps-control",
                   shell: Shell = DEFAULT, python: str = sys.executable) -> str:
    """A control client hung on the pipe: a dead daemon's leftovers. Only when no MPS process uses the folder, of this
    host or of a container (:func:`labcheck.mps_idle.guard_command`: it lists them, and then nothing is removed),
    remove the daemon's own entries in the pipe folder (:data:`labcheck.mps.PIPE_ENTRIES`, ``rm -f`` without ``-r``:
    never the folder, nor anything else in it, which may be the user's), then start a daemon.

    WHY not ``rm -rf`` of the folder: the folder is whatever lab.yaml names (it once printed ``rm -rf /tmp``). WHY
    the containers' processes too: the kind node's daemon keeps its live socket in this very folder (it is mounted
    into the node); a guard that skipped it removed that socket and started a second daemon on the folder."""
    entries = " ".join(sh(f"{pipe_dir.rstrip('/')}/{name}") for name in mps.PIPE_ENTRIES)
    return (mps_idle.guard_command(pipe_dir, python) + " && { " + shell.sudo(f"rm -f -- {entries}") + " && "
            + start_command(pipe_dir, log_dir, control, shell) + "; }"
            "   # a process listed is an MPS process on that folder, of this host or of a container (the kind "
            "node's daemon): stop it, then run this again")


def quit_command(pipe_dir: str, control: str = "nvidia-cuda-mps-control", shell: Shell = DEFAULT, *,
                 root: bool = True) -> str:
    """Ask the daemon answering on ``pipe_dir`` to quit: the one way the fixes stop a daemon (a daemon quits
    cleanly, removing its own socket and pid file). ``root``: as root (WHY: the kind node's runs as root); without,
    as the user, for a host daemon the user started (the suite starts it as the user)."""
    if not root:
        return f"echo quit | CUDA_MPS_PIPE_DIRECTORY={sh(pipe_dir)} {sh(control)}"
    return "echo quit | " + shell.sudo(f"env CUDA_MPS_PIPE_DIRECTORY={sh(pipe_dir)} {sh(control)}")


def _pids(procs: Sequence[mps.Proc]) -> str:
    return ", ".join(str(p.pid) for p in procs)


def _in_containers(facts: MpsFacts) -> str:
    """A note on MPS control daemons of other pid namespaces ("" when none): the kind node's is not the host's."""
    pids = _pids(facts.container_daemons)
    return (f"; an MPS control daemon of a container runs (pid {pids}, e.g. the kind node's): not this host's, "
            "left alone") if pids else ""


AFTER_MODULE0 = ("module 1 starts the kind node's daemon on the folder again, after module 0 has checked and "
                 "stopped the host's")


def containers_in_the_way(pids: Sequence[int], pipe_dir: str, why: str, shell: Shell = DEFAULT) -> tuple[str, str]:
    """(message, fix) when an MPS control daemon of a container (``pids``, as this host numbers them) uses the pipe
    folder but does not answer there: a host daemon started there would share the folder with it (two daemons, one
    socket path), so none is started and none of its files is touched. The fix stops it by its pid."""
    shown = ", ".join(map(str, pids))
    return (f"an MPS control daemon of a container (pid {shown} on this host: another pid namespace, e.g. the kind "
            f"node's) uses the pipe folder {pipe_dir} but does not answer there ({why}): a daemon of this host "
            "started there would share the folder with it",
            with_note(shell.sudo("kill " + " ".join(map(str, pids))), "stops the container's daemon, which does not "
                      "answer on the folder", f"then rerun module 0; {AFTER_MODULE0}"))


def _container_answers(facts: MpsFacts, pipe_dir: str, host_pids: list[int], control: str,
                       shell: Shell) -> Verdict | None:
    """The verdict when a container's daemon uses the lab's pipe folder while a daemon answers there (None: none
    does). Module 0 checks the host's daemon; the kind node's, which answers on the host's folder through the
    node's mount (FIELD-NOTES "MPS across namespaces"), is not it, and two on one folder cannot be told apart.
    The LAB'S OWN kind node's alone (:attr:`MpsFacts.node_daemons_on_pipe`) passes: module 1 starts it there, so a
    second run of the suite finds it answering, and it serves this host's clients through the shared folder (the
    client check proves it); a fix that quit it would break module 1's setup for nothing."""
    theirs, foreign = facts.containers_on_pipe, facts.foreign_on_pipe
    if foreign and not host_pids:
        return failed(f"the MPS control daemon answering on {pipe_dir} is a container's, not this host's: pid "
                      f"{_pids(foreign)} (another pid namespace, e.g. the kind node's, whose pipe folder is this one "
                      f"through its mount){_not_the_lab_node(facts)}; module 0 checks this host's daemon, which "
                      "cannot share the folder with it",
                      with_note(quit_command(pipe_dir, control, shell), "stops the container's daemon (it removes "
                                "its own files)", f"then rerun module 0; {AFTER_MODULE0}"))
    if theirs and host_pids:
        both = " ".join(map(str, [*host_pids, *(p.pid for p in theirs)]))
        return failed(f"two MPS control daemons use {pipe_dir}: this host's (pid {', '.join(map(str, host_pids))}) "
                      f"and a container's (pid {_pids(theirs)}, e.g. the kind node's): clients reach whichever holds "
                      "the socket, so it cannot be told that the host's answers",
                      with_note(shell.sudo(f"kill {both}"), "stops both",
                                f"then rerun module 0, which starts this host's; {AFTER_MODULE0}"))
    maybe = facts.containers_maybe_on_pipe
    if maybe and not host_pids:
        return warned(f"an MPS control daemon answers on {pipe_dir}, but none of this host's is on it in ps, and the "
                      f"container's daemon pid {_pids(maybe)} (another pid namespace) may be the one: its pipe folder "
                      "cannot be read as this user, so it cannot be told that the host's answers",
                      with_note(mps_idle.guard_command(pipe_dir, sys.executable, shell),
                                "as root, lists each MPS process on the folder: a container's listed is the one "
                                "answering (then stop it: " + quit_command(pipe_dir, control, shell)
                                + ", and rerun module 0)"))
    if theirs and not host_pids:  # all of them the lab's kind node's (foreign is empty)
        return passed(f"MPS control daemon on {pipe_dir} is the kind node {facts.lab_node}'s (pid {_pids(theirs)}, "
                      "started by module 1): it serves this host's CUDA clients through the shared pipe folder; "
                      + _servers(facts.server_list))
    return None


def _not_the_lab_node(facts: MpsFacts) -> str:
    """Why a container's daemon on the folder is not taken for the lab's kind node's ("" when the node was not asked:
    no container daemon answers there)."""
    if facts.node_top is None:
        return ""
    if facts.node_pids is None:
        return (f"; whether it is the lab's kind node {facts.lab_node}'s cannot be told: "
                f"{facts.node_top.describe()}")
    return f"; `docker top {facts.lab_node}` does not list it, so it is not the lab's kind node's"


def _servers(q) -> str:
    """What ``get_server_list`` said of the MPS servers (the daemon answered)."""
    servers = mps.parse_server_list(q.stdout)
    return f"MPS server pid {', '.join(map(str, servers))}" if servers else ("no MPS server yet (starts with the "
                                                                             "first CUDA client)")


def _hung(r) -> bool:
    return r is not None and r.timed_out


def daemon(facts: MpsFacts, pipe_dir: str, log_dir: str, provisioning: bool,
           start_failure: str = "", start_fix: str = "", started_note: str = "", shell: Shell = DEFAULT) -> Verdict:
    ctl = facts.control_path or "nvidia-cuda-mps-control"
    if facts.control_path is None:
        return skipped("nvidia-cuda-mps-control is not installed (see the MPS binary check)")
    q = facts.server_list
    if _hung(q):
        return failed(f"{q.describe()} (pipe dir {pipe_dir}): a daemon that died and left its pipe behind, "
                      "or one that is stuck", stale_pipe_fix(pipe_dir, log_dir, ctl, shell))
    on_it = facts.host_daemons_on(pipe_dir)
    pids = ", ".join(map(str, on_it)) or "not visible in ps"
    theirs = _container_answers(facts, pipe_dir, on_it, ctl, shell) if facts.answers else None
    if theirs is not None:
        return theirs
    if facts.answers:
        note = f" ({started_note})" if started_note else ""
        return passed(f"MPS control daemon (pid {pids}) answers on {pipe_dir}; {_servers(q)}{note}")
    elsewhere = {pid: d for pid, d in facts.host_pipe_dirs.items() if d and d.rstrip("/") != pipe_dir.rstrip("/")}
    if elsewhere:
        shown = ", ".join(f"pid {pid} on {d}" for pid, d in elsewhere.items())
        other = next(iter(elsewhere.values()))
        return failed(f"an MPS control daemon runs ({shown}) but none answers on the lab's pipe dir {pipe_dir}",
                      f"{quit_command(other, ctl, root=False)}; " + start_command(pipe_dir, log_dir, ctl, shell))
    if facts.daemons:
        return failed(f"an MPS control daemon runs (pid {pids}) but does not answer on {pipe_dir}: "
                      f"{q.describe() if q else 'not asked'}", restart_command(pipe_dir, log_dir, ctl, shell))
    if facts.containers_on_pipe:  # not answering, yet on the folder: no second daemon there
        message, fix = containers_in_the_way([p.pid for p in facts.containers_on_pipe], pipe_dir,
                                             q.describe() if q else "not asked", shell)
        return failed(message, fix)
    others = _in_containers(facts)
    if start_failure:
        return failed(f"MPS control daemon not running; starting it failed: {start_failure}{others}",
                      start_fix or start_command(pipe_dir, log_dir, ctl, shell))
    if not provisioning and (facts.pipe.accessible or facts.pipe.creatable):
        return warned(f"MPS control daemon not running, ready to start (binary {facts.control_path}, "
                      f"pipe dir {pipe_dir} usable); --no-provision left it stopped{others}",
                      start_command(pipe_dir, log_dir, ctl, shell))
    return failed(f"expected an MPS control daemon answering on {pipe_dir}; none runs "
                  f"({q.describe() if q else 'not asked'}){others}", start_command(pipe_dir, log_dir, ctl, shell))


def pipe_dir(facts: MpsFacts, configured: str, log_dir: str, shell: Shell = DEFAULT) -> Verdict:
    ctl = facts.control_path or "nvidia-cuda-mps-control"
    env = facts.env_pipe_dir
    if env and env.rstrip("/") != configured.rstrip("/"):
        return failed(f"CUDA_MPS_PIPE_DIRECTORY={env} but the lab uses {configured}: daemon, server and clients "
                      "must agree on one pipe directory",
                      with_note(f"export CUDA_MPS_PIPE_DIRECTORY={sh(configured)}",
                                f"or set mps_pipe_dir: {json.dumps(env)} in lab.yaml"))
    if not env and configured.rstrip("/") != DEFAULT_PIPE_DIR:
        return failed(f"the lab uses MPS pipe dir {configured} but CUDA_MPS_PIPE_DIRECTORY is unset, so CUDA clients "
                      f"look in {DEFAULT_PIPE_DIR} and miss the daemon",
                      f"export CUDA_MPS_PIPE_DIRECTORY={sh(configured)}")
    p = facts.pipe
    if p.exists and not p.is_dir:
        return failed(f"MPS pipe dir {configured} exists but is not a directory",
                      shell.move_aside(configured) + " && "
                      + start_command(configured, log_dir, ctl, shell))
    other = {pid: d for pid, d in facts.host_pipe_dirs.items() if d and d.rstrip("/") != configured.rstrip("/")}
    if other:
        shown = ", ".join(f"pid {pid} uses {d}" for pid, d in other.items())
        return failed(f"MPS control daemon {shown}, not the lab's pipe dir {configured}",
                      f"{quit_command(next(iter(other.values())), ctl, root=False)}; "
                      + start_command(configured, log_dir, ctl, shell))
    if p.is_dir and not p.accessible:
        return _not_accessible(p, configured)
    if not p.exists:
        if p.creatable:
            return passed(f"MPS pipe dir {configured} does not exist yet; `nvidia-cuda-mps-control -d` will create it")
        if p.blocking_file:  # mkdir -p would stop at it ("File exists"): move it away first
            return failed(f"MPS pipe dir {configured} cannot be created: {p.blocking_file} exists and is not a "
                          "directory", make_dir_command(configured, p.blocking_file, shell))
        return failed(f"MPS pipe dir {configured} does not exist and its parent is not writable",
                      make_dir_command(configured, "", shell))
    sock = "control socket present" if p.control_socket else "no control socket (no daemon on it yet)"
    return passed(f"MPS pipe dir {configured} usable; {sock}"
                  + ("; CUDA_MPS_PIPE_DIRECTORY agrees" if env else "; CUDA_MPS_PIPE_DIRECTORY unset (default)"))


def _not_accessible(p: PipeDir, configured: str) -> Verdict:
    """The pipe folder exists and this user cannot enter or write it. Their own folder: ``chmod u+rwx`` (their bits
    only). Anyone else's is left as it is (WHY: a fix once ran ``sudo chmod a+rx`` on whatever folder lab.yaml named,
    and a+rx did not even give the write the check asks for): the fix shows it and says what to choose instead."""
    what = (f"MPS pipe dir {configured} is not accessible to this user (the daemon creates its pipes in it, clients "
            "connect to sockets in it)")
    if p.mine:
        return failed(f"{what}; it is yours", f"chmod u+rwx {sh(configured)}")
    owner = f"uid {p.owner}'s" if p.owner is not None else "another user's"
    return failed(f"{what}; it is {owner}, and the suite changes no folder it did not make",
                  with_note(f"ls -ld -- {sh(configured)}", "ask its owner to let you in, or set mps_pipe_dir in the "
                                                           "lab config to a folder of your own (it is made for you)"))


def _client_fix(rc: int, pipe_dir: str, log_dir: str, control: str, shell: Shell = DEFAULT) -> str:
    if 805 <= rc <= 810:
        return (f"tail {log_files(log_dir, 'control', 'server')}; "
                + restart_command(pipe_dir, log_dir, control, shell) + "   # the logs say why; then MPS restarts")
    if rc == 46:
        return "nvidia-smi   # another process holds a GPU in EXCLUSIVE_PROCESS mode: find and stop it"
    return "nvidia-smi   # does the driver see the GPU? then: " + shell.sudo("dmesg") + " | grep -iE 'nvrm|xid' | tail"


def gpu_name(run: ClientRun) -> str:
    return f"GPU {run.gpu.index} ({run.gpu.uuid})" if run.gpu is not None else ""


def served_evidence(run: ClientRun, alone: bool) -> list[str]:
    """Why MPS served this client: the server's client list or nvidia-smi's M+C row name its pid; a server that
    appeared for it counts only when it was the only client (with several, it may have started for another)."""
    evidence = []
    in_lists = [s for s, clients in run.client_lists.items() if run.pid in clients]
    if in_lists:
        evidence.append(f"get_client_list of MPS server {in_lists[0]} lists it")
    on = [gpu for gpu, pid in run.smi_mps_on if pid == run.pid]
    if on:
        evidence.append("nvidia-smi shows it as M+C" + (f" on GPU {on[0]}" if on[0] is not None else ""))
    new = sorted(set(run.servers_during) - set(run.servers_before))
    if new and alone:
        evidence.append(f"MPS server {', '.join(map(str, new))} started for it")
    return evidence


def _one_client(run: ClientRun, log_dir: str, control: str, shell: Shell, alone: bool) -> Verdict:
    """The verdict on one client (its daemon is known to answer)."""
    pipe = run.pipe_dir
    pinned = f", GPU {run.gpu.index}: CUDA_VISIBLE_DEVICES={run.gpu.uuid}" if run.gpu is not None else ""
    where = f"CUDA client (pid {run.pid}, CUDA_MPS_PIPE_DIRECTORY={pipe}{pinned})"
    if "dlopen libcuda.so.1 failed" in run.output:
        return failed(f"{where} could not load libcuda.so.1: {run.output.strip()[:300]}",
                      shell.sudo("ldconfig") + "   # and check: ldconfig -p | grep libcuda.so.1")
    if run.timed_out_at:
        return failed(f"{where} hung while {run.timed_out_at}", f"tail {log_files(log_dir, 'server', 'control')}; "
                      + restart_command(pipe, log_dir, control, shell), details=run.output)
    bad = mps.first_failed_step(list(run.steps))
    if bad is not None and bad.call != "cuCtxDestroy_v2":
        return failed(f"{where}: {bad.call} returned {bad.rc} ({bad.error_name})",
                      _client_fix(bad.rc, pipe, log_dir, control, shell), details=run.output)
    if not run.held:
        return failed(f"{where} exited {run.rc} before creating a CUDA context: "
                      f"{run.output.strip().splitlines()[-1] if run.output.strip() else 'no output'}",
                      "nvidia-smi   # does the driver see the GPU?", details=run.output)
    if run.gpu is not None and run.device_uuid.lower() != run.gpu.uuid.lower():
        got = run.device_uuid or "no cuDeviceGetUuid line"
        return failed(f"{where} opened device {got}, not {run.gpu.uuid}: CUDA_VISIBLE_DEVICES did not pin it to "
                      f"GPU {run.gpu.index}", "nvidia-smi -L   # compare the UUIDs; unset CUDA_DEVICE_ORDER / "
                      "CUDA_VISIBLE_DEVICES overrides in the shell profile, then rerun", details=run.output)
    evidence = served_evidence(run, alone)
    if evidence:
        return passed(f"MPS serves a {where}: " + "; ".join(evidence))
    seen = (f"get_server_list while it held its context: {list(run.servers_during) or 'empty'}; "
            f"get_client_list: {dict(run.client_lists) or 'none'}; "
            f"nvidia-smi M+C processes: {list(run.smi_mps_clients) or 'none'}")
    if run.server_list is not None and not run.server_list.ok:
        seen += f"; {run.server_list.describe()}"
    what = "no MPS server appeared for it" if alone else "MPS does not list it as a client"
    return failed(f"{where} created a CUDA context but {what} ({seen}): it ran without MPS",
                  f"tail {log_files(log_dir, 'control', 'server')}; " + restart_command(pipe, log_dir, control, shell),
                  details=run.output)


def functional(runs: ClientRun | Sequence[ClientRun], log_dir: str, started_pid: int | None = None,
               control: str = "nvidia-cuda-mps-control", shell: Shell = DEFAULT) -> Verdict:
    """MPS serves a real CUDA client -- on every GPU when ``runs`` holds one client per GPU (each pinned with
    CUDA_VISIBLE_DEVICES=<UUID>): each must have created its context on its own GPU and be listed as served.
    A failure names the GPU(s) not served."""
    runs = (runs,) if isinstance(runs, ClientRun) else tuple(runs)
    if not runs:
        return failed("no CUDA client ran (no GPU to run one on)", "nvidia-smi -L   # does the driver list a GPU?")
    first = runs[0]
    pipe = first.pipe_dir
    if _hung(first.before):
        return failed(f"{first.before.describe()}: nvidia-cuda-mps-control hung asking the daemon on {pipe}",
                      stale_pipe_fix(pipe, log_dir, control, shell))
    if not first.daemon_answered:
        if started_pid:
            return failed(f"the MPS control daemon this suite started (pid {started_pid}) no longer answers on {pipe}: "
                          "it died or was killed during the run", f"tail {log_files(log_dir, 'control')}; "
                          + start_command(pipe, log_dir, control, shell))
        return failed(f"no MPS control daemon answers on {pipe}: a CUDA client would run without MPS, which proves "
                      "nothing", start_command(pipe, log_dir, control, shell))
    verdicts = [(run, _one_client(run, log_dir, control, shell, alone=len(runs) == 1)) for run in runs]
    if len(runs) == 1:
        return verdicts[0][1]
    bad = [(run, vd) for run, vd in verdicts if vd.status != "pass"]
    if bad:
        ok = ", ".join(gpu_name(run) for run, vd in verdicts if vd.status == "pass") or "none"
        shown = "; ".join(f"{gpu_name(run)} not served: {vd.message}" for run, vd in bad)
        return failed(f"{len(bad)} of {len(runs)} GPUs not served by MPS: {shown} (served: {ok})",
                      bad[0][1].remediation, details="\n\n".join(f"{gpu_name(r)}:\n{r.output}" for r, _ in bad))
    return passed(f"MPS serves a CUDA client on each of the {len(runs)} GPUs: "
                  + "; ".join(f"{gpu_name(run)}: pid {run.pid}, {vd.message.split(': ', 1)[-1]}"
                              for run, vd in verdicts))
