"""How the runtime fixes make dockerd load daemon.json's runtimes: systemd's restart where systemd runs it, else a
SIGHUP to its pid (labcheck.probes.docker.probe_dockerd -> labcheck.verdicts.docker.reload_runtimes).

The fact comes from real places: this machine's hand-started dockerd (no systemd; its /proc entries are captured in
tests/data/dockerd-by-hand/dockerd-process.txt) and throw-away engines of our own (tests/private_dockerd.py). No
systemd host was at hand: the systemd cgroups below are derived from systemd's naming (a service's processes live
in /system.slice/<unit>), each saying what it stands for.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from labcheck import docker_endpoint
from labcheck.config import LabConfig
from labcheck.probes import docker as probe
from labcheck.remedy import Shell, this_host
from labcheck.verdicts import docker as v
from setup_actions import docker_runtime as dr
from tests import captures, needs, private_dockerd
from tests.child_signals import default_signals
from tests.shell_text import commands
from tests.test_docker_verdicts import engine_from_capture

CAPTURE = "dockerd-by-hand/dockerd-process.txt"
USER, ROOT = Shell(root=False), Shell(root=True)
CONFIGURE = "sudo nvidia-ctk runtime configure --runtime=docker"


def captured(command: str) -> str:
    return next(c.output for c in captures.blocks(CAPTURE) if c.command == command)


def no_nvidia() -> probe.EngineFacts:
    e = engine_from_capture()
    del e.runtimes["nvidia"]
    return e


def fake_proc(tmp_path: Path, pid: int, comm: str, cgroup: str) -> str:
    """A /proc with one process, as the kernel shows it."""
    d = tmp_path / "proc" / str(pid)
    d.mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    (d / "cgroup").write_text(cgroup + "\n")
    return str(tmp_path / "proc")


def pidfile(tmp_path: Path, pid: int) -> str:
    p = tmp_path / "docker.pid"
    p.write_text(str(pid))
    return str(p)


# --- the verdict: each situation gets the line that works there -------------------------------------

BY_HAND = probe.Dockerd(2777, "the process listening on /var/run/docker.sock")
UNDER_SYSTEMD = probe.Dockerd(812, "pidfile /var/run/docker.pid", "docker.service")


RELOAD_NOTE = ("only if the reload is refused, or the engine still does not list the runtime after it, restart: "
               "sudo systemctl restart docker (a restart stops every running container (an attendee's Kind "
               "cluster too))")


def test_systemd_runs_dockerd_gets_the_reload_fix_host_does():
    """NVIDIA's guide says `systemctl restart docker`, which stops every running container (an attendee's kind
    cluster), while --fix-host reloads (systemctl reload: Docker's unit sends SIGHUP, and runtimes are reloadable).
    The printed fix is the same reload; the note says when a restart is really needed, and what it costs."""
    fix = v.runtime_registered(no_nvidia(), probe.DaemonJson("/etc/docker/daemon.json", False),
                               dockerd=UNDER_SYSTEMD).remediation
    assert fix.startswith(f"{CONFIGURE} && sudo systemctl reload docker   # {RELOAD_NOTE}; or rerun"), fix
    assert "kill" not in fix and "&& sudo systemctl restart" not in fix
    snap = probe.Dockerd(812, "pidfile /var/run/docker.pid", "snap.docker.dockerd.service")
    assert v.reload_runtimes(USER, snap).startswith("sudo systemctl reload snap.docker.dockerd.service   # ")


def test_no_systemd_gets_a_sighup_to_the_dockerd_pid():
    fix = v.runtime_registered(no_nvidia(), probe.DaemonJson("/etc/docker/daemon.json", False),
                               dockerd=BY_HAND).remediation
    assert fix.startswith(f"{CONFIGURE} && sudo kill -HUP 2777   # dockerd, pid 2777 from the process listening on "
                          "/var/run/docker.sock: SIGHUP makes it re-read the runtimes in daemon.json"), fix
    assert "systemctl" not in fix
    assert v.reload_runtimes(ROOT, BY_HAND).startswith("kill -HUP 2777   # ")  # root: no sudo


def test_runtime_in_file_not_loaded_and_runtime_usable_reload_the_same_way():
    dj = probe.parse_daemon_json('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}', "/d.json")
    assert v.runtime_registered(no_nvidia(), dj, dockerd=BY_HAND).remediation.startswith("sudo kill -HUP 2777   # ")
    assert v.runtime_registered(no_nvidia(), dj, dockerd=UNDER_SYSTEMD).remediation == \
        f"sudo systemctl reload docker   # {RELOAD_NOTE}"
    usable = v.runtime_usable(no_nvidia(), probe.RuntimeProbe("nvidia", False), 1, USER, dockerd=BY_HAND)
    assert usable.status == "fail" and " && sudo kill -HUP 2777   # " in usable.remediation
    refused = v.runtime_usable(engine_from_capture(), probe.RuntimeProbe(
        "nvidia", True, error="unknown runtime specified nvidia"), 0, USER, dockerd=BY_HAND)
    assert " && sudo kill -HUP 2777   # " in refused.remediation


def test_no_pid_known_says_so_and_gives_both_restarts_with_the_configured_file():
    nowhere = probe.Dockerd(problem="socket /var/run/docker.sock: cannot connect (No such file or directory); "
                                    "pidfile /var/run/docker.pid: absent")
    dj = probe.DaemonJson("/srv/my docker/daemon.json", False)
    fix = v.runtime_registered(no_nvidia(), dj, "nv rt", dockerd=nowhere).remediation
    # one command line (configure && restart), the other ways after '#' (a ", then reload dockerd: `...`" was prose)
    assert fix.startswith(f"{CONFIGURE} '--config=/srv/my docker/daemon.json' '--nvidia-runtime-name=nv rt' && "
                          "sudo systemctl reload docker   # no dockerd pid is known here (socket "
                          "/var/run/docker.sock: cannot connect (No such file or directory); pidfile "
                          "/var/run/docker.pid: absent); where systemd does not run Docker, send dockerd SIGHUP "
                          "instead (sudo kill -HUP <pid of dockerd>), or stop it and start it again "
                          "(sudo dockerd '--config-file=/srv/my docker/daemon.json' &)"), fix


def test_an_engine_on_another_host_names_no_local_pid_and_its_fix_runs_nothing_over_ssh():
    """The probe's answer (Dockerd.remote) is the one rule: no fix re-reads the URL to send a line over ssh."""
    remote = probe.probe_dockerd("tcp://gpu-7.lab:2376", "/var/run/docker.pid", 5)
    assert remote == probe.Dockerd(problem="the engine at tcp://gpu-7.lab:2376 runs on gpu-7.lab, not on this "
                                           "machine", remote="gpu-7.lab")
    fix = v.configure_runtime(USER, None, "nvidia", "/etc/docker/daemon.json", "tcp://gpu-7.lab:2376", remote)
    assert commands(fix) == [CONFIGURE.split(), ["sudo", "systemctl", "reload", "docker"]], fix
    assert "no dockerd pid is known here (the engine at tcp://gpu-7.lab:2376 runs on gpu-7.lab" in fix, fix


# --- the probe on the captured process and on derived systemd cgroups ---------------------------------

def test_probe_on_the_captured_hand_started_dockerd(tmp_path):
    pid = int(captured("cat /var/run/docker.pid; echo"))
    proc = fake_proc(tmp_path, pid, captured(f"cat /proc/{pid}/comm"), captured(f"cat /proc/{pid}/cgroup"))
    assert "No such file" in captured("ls -d /run/systemd/system")
    found = probe.probe_dockerd("", pidfile(tmp_path, pid), 5, proc=proc, booted=str(tmp_path / "no-systemd"))
    assert found == probe.Dockerd(pid, f"pidfile {tmp_path / 'docker.pid'}")
    # even where systemd were the init, this process is in no service's cgroup (name=systemd:/): a SIGHUP
    (tmp_path / "booted").mkdir()
    assert probe.systemd_unit(pid, proc, str(tmp_path / "booted")) == ""


SYSTEMD_CGROUPS = {
    # cgroup v2 (Ubuntu 22.04+, Debian 12): the one line; Docker's own service
    "0::/system.slice/docker.service": "docker.service",
    # v1/hybrid: systemd's tree says it
    "1:name=systemd:/system.slice/docker.service\n0::/system.slice/docker.service": "docker.service",
    "0::/system.slice/snap.docker.dockerd.service": "snap.docker.dockerd.service",
    # a dockerd in a container on a hybrid host: the unified line shows the parent engine's service, systemd's
    # own tree shows the container; restarting docker.service would restart the host's engine
    "1:name=systemd:/docker/0123abcd\n0::/system.slice/docker.service": "",
    "0::/system.slice/docker-0123abcd.scope": "",  # a dockerd in a container (systemd cgroup driver)
    "0::/user.slice/user-1000.slice/session-3.scope": "",  # started by hand from a login on a systemd host
    "0::/system.slice/actions.runner.lab.service": "",  # a CI runner's service started it: not Docker's unit
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker.service": "",  # rootless: user manager
    "0::/system.slice/docker.service/nested": "",  # not the unit's own cgroup
}


USER_CGROUPS = {
    # rootless Docker (dockerd-rootless-setuptool.sh installs ~/.config/systemd/user/docker.service)
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker.service": "docker.service",
    "1:name=systemd:/user.slice/user-1000.slice/user@1000.service/docker.service": "docker.service",
    "0::/user.slice/user-1000.slice/session-3.scope": "",  # by hand from a login: no service
    "0::/system.slice/docker.service": "",  # the system's engine
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/ci.service": "",  # not Docker's
}


@pytest.mark.parametrize("cgroup", USER_CGROUPS)
def test_a_rootless_dockerd_is_found_in_its_users_manager(tmp_path, cgroup):
    proc = fake_proc(tmp_path, 1777, "dockerd", cgroup)
    (tmp_path / "booted").mkdir()
    found = probe.probe_dockerd("", pidfile(tmp_path, 1777), 5, proc=proc, booted=str(tmp_path / "booted"))
    assert (found.pid, found.user_unit) == (1777, USER_CGROUPS[cgroup])
    assert not (found.unit and found.user_unit)  # never both: sudo systemctl and systemctl --user


@pytest.mark.parametrize("cgroup", SYSTEMD_CGROUPS)
def test_systemd_unit_only_for_dockers_own_service_on_a_systemd_host(tmp_path, cgroup):
    proc = fake_proc(tmp_path, 812, "dockerd", cgroup)
    (tmp_path / "booted").mkdir()
    assert probe.systemd_unit(812, proc, str(tmp_path / "booted")) == SYSTEMD_CGROUPS[cgroup]
    assert probe.systemd_unit(812, proc, str(tmp_path / "not-booted")) == ""  # no systemd init: never systemctl
    found = probe.probe_dockerd("", pidfile(tmp_path, 812), 5, proc=proc, booted=str(tmp_path / "booted"))
    assert (found.pid, found.unit) == (812, SYSTEMD_CGROUPS[cgroup])


def test_a_pidfile_naming_another_program_or_nothing_gives_no_pid(tmp_path):
    proc = fake_proc(tmp_path, 4242, "sleep", "0::/")
    found = probe.probe_dockerd("", pidfile(tmp_path, 4242), 5, proc=proc)
    assert found.pid is None
    assert found.problem == f"pidfile {tmp_path / 'docker.pid'}: process 4242 is 'sleep', not dockerd"
    found = probe.probe_dockerd("", pidfile(tmp_path, 4343), 5, proc=proc)
    assert found.problem.endswith("no process 4343 is running")
    (tmp_path / "docker.pid").write_text("12ab")
    assert probe.probe_dockerd("", str(tmp_path / "docker.pid"), 5, proc=proc).problem.endswith("holds no process id")


# --- the real machine ----------------------------------------------------------------------------------

def _runs_dockerd(pid: int) -> bool:
    """Independent of the probe's /proc/PID/comm: the program the process executes, and its argv[0]."""
    exe = Path(os.readlink(f"/proc/{pid}/exe")).name
    argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    return exe == "dockerd" and Path(argv0).name == "dockerd"


@pytest.mark.needs("docker_engine")
def test_the_running_engine_here_gets_the_fix_that_works_here():
    cfg = LabConfig()
    found = probe.probe_dockerd(probe.endpoint(cfg), cfg.docker_pidfile, 10)
    assert found.pid is not None, found
    assert _runs_dockerd(found.pid), found
    if docker_endpoint.unix_socket(probe.endpoint(cfg)) and os.path.exists(cfg.docker_pidfile):
        assert probe.probe_dockerd("", cfg.docker_pidfile, 10).pid == found.pid  # both sources agree
    engine = probe.probe_engine(cfg)
    shell = this_host()
    sudo = "" if shell.root else "sudo "
    verdict = v.runtime_registered(engine, probe.read_daemon_json(cfg.docker_daemon_json), "labcheck-absent",
                                   shell=shell, dockerd=found)
    assert verdict.status == "fail"
    configure = f"{sudo}nvidia-ctk runtime configure --runtime=docker --nvidia-runtime-name=labcheck-absent && "
    if not os.path.isdir(probe.SYSTEMD_BOOTED):  # this project's machines and CI: dockerd started by hand
        assert found.unit == ""
        assert verdict.remediation.startswith(f"{configure}{sudo}kill -HUP {found.pid}   # "), verdict.remediation
    elif found.unit:
        assert verdict.remediation.startswith(f"{configure}{sudo}systemctl reload"), verdict.remediation


@pytest.fixture
def engine(tmp_path):
    needs.skip_unless("private_dockerd")
    d = private_dockerd.start({"log-level": "info"})
    yield d
    d.cleanup()


def test_the_sighup_fix_loads_the_runtime_into_a_real_engine(engine, tmp_path):
    """The pasted fix itself, run: the engine lists the runtime afterwards, its container still running."""
    d = engine
    assert probe.probe_dockerd(d.host, "/nonexistent/docker.pid", 10).pid == d.proc.pid  # the socket's listener
    found = probe.probe_dockerd("", str(d.pidfile), 10)  # and its pidfile
    assert (found.pid, found.unit) == (d.proc.pid, "")
    cfg = LabConfig(docker_host=d.host, docker_daemon_json=str(d.daemon_json), docker_pidfile=str(d.pidfile))
    wrapper = private_dockerd.runc_wrapper(tmp_path)
    d.daemon_json.write_text(f'{{"log-level": "info", "runtimes": {{"nvidia": {{"path": "{wrapper}"}}}}}}')
    engine_facts = probe.probe_engine(cfg)
    verdict = v.runtime_registered(engine_facts, probe.read_daemon_json(d.daemon_json), shell=ROOT,
                                   dockerd=probe.probe_dockerd(d.host, str(d.pidfile), 10))
    assert "has not loaded it" in verdict.message
    command = verdict.remediation.split("   #")[0]
    assert command == f"kill -HUP {d.proc.pid}"
    subprocess.run(["sh", "-c", command], check=True, timeout=10)
    deadline = time.monotonic() + 20
    while "nvidia" not in probe.probe_engine(cfg).runtimes and time.monotonic() < deadline:
        time.sleep(0.2)
    assert v.runtime_registered(probe.probe_engine(cfg), probe.read_daemon_json(d.daemon_json)).status == "pass"
    assert d.proc.poll() is None  # reloaded, not restarted


def test_fix_host_reloads_the_same_dockerd_the_fixes_name(tmp_path, monkeypatch):
    """--fix-host's reload takes the same fact: systemd's unit through systemctl (a stand-in records the call: no
    systemd here), else SIGHUP to the pid; without a pid it names the same restarts the checks do."""
    calls = tmp_path / "calls"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bindir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    note = dr.reload_engine(UNDER_SYSTEMD, "/etc/docker/daemon.json", [], 5, ROOT)
    assert note == "reloaded Docker (systemctl reload docker.service)"
    assert calls.read_text() == "reload docker.service\n"
    nowhere = probe.Dockerd(problem="pidfile /var/run/docker.pid: absent")
    assert dr.reload_engine(nowhere, "/etc/docker/daemon.json", [], 5, ROOT) == \
        f"no running dockerd found: {v.reload_runtimes(ROOT, nowhere)}"
    # a pid to signal that is not dockerd's (the fact says which), with SIGHUP's default action: it ends
    sleeper = subprocess.Popen(["sleep", "30"], preexec_fn=default_signals)  # noqa: PLW1509
    try:
        note = dr.reload_engine(probe.Dockerd(sleeper.pid, "a test"), "/etc/docker/daemon.json", [], 5, ROOT)
        assert note == f"sent SIGHUP to dockerd (pid {sleeper.pid}, a test) to reload its runtimes"
        assert sleeper.wait(timeout=10) == -1  # SIGHUP ends sleep: it was delivered
    finally:
        sleeper.kill()
        sleeper.wait()


# --- the engine's own service: a rootless engine is the user's; a remote one gets none (engine_elsewhere) --------

ROOTLESS = "unix:///run/user/1000/docker.sock"


def test_the_reload_fix_and_fix_host_reload_the_same_way_and_restart_only_when_reload_fails(tmp_path, monkeypatch):
    """The printed fix (systemctl reload) is what --fix-host runs; a restart (which stops every container) is only
    --fix-host's answer to a reload systemd refused, and then it says what a restart costs."""
    calls = tmp_path / "calls"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    refuse = f'[ "$1" != reload ] || [ ! -e {tmp_path}/no ]'  # refuses the reload once "no" exists
    (bindir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n{refuse}\n')
    (bindir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    printed = commands(v.reload_runtimes(ROOT, UNDER_SYSTEMD))
    dr.reload_engine(UNDER_SYSTEMD, "/etc/docker/daemon.json", [], 5, ROOT)
    assert printed == [["systemctl", "reload", "docker"]] and calls.read_text() == "reload docker.service\n"
    (tmp_path / "no").touch()  # now systemd refuses the reload
    note = dr.reload_engine(UNDER_SYSTEMD, "/etc/docker/daemon.json", [], 5, ROOT)
    assert "could not reload Docker" in note and "restart it: `systemctl restart docker`" in note, note
    assert "a restart stops every running container" in note


def test_a_rootless_engine_is_driven_by_its_users_manager_never_sudo():
    """DOCKER_HOST=unix:///run/user/1000/docker.sock: `sudo systemctl start docker` starts the system's engine (or
    none), not this one; rootless Docker's service is the user's (systemctl --user)."""
    down = probe.EngineFacts(ROOTLESS, 5, error="connection refused")
    fix = v.engine_reachable(down, USER).remediation
    assert commands(fix)[0] == ["systemctl", "--user", "start", "docker"], fix
    assert "sudo" not in fix.partition("#")[0] and "dockerd-rootless.sh" in fix
    assert v.restart_docker(USER, ROOTLESS) == "systemctl --user restart docker"
    assert v.journal(USER, ROOTLESS) == "journalctl --user -u docker -n 50"
    assert "as the user whose rootless engine it is (uid 1000), not as root" in v.restart_docker(ROOT, ROOTLESS)
    mine = probe.Dockerd(1777, "the process listening on /run/user/1000/docker.sock", user_unit="docker.service")
    assert v.reload_runtimes(USER, mine, endpoint=ROOTLESS).startswith("kill -HUP 1777   # ")  # its own process
    unknown = probe.Dockerd(problem="socket: its listener is in another pid namespace")
    assert v.reload_runtimes(USER, unknown, endpoint=ROOTLESS).startswith(
        "systemctl --user reload docker   # only if the reload is refused, or the engine still does not list the "
        "runtime after it, restart: systemctl --user restart docker (a restart stops")


@pytest.mark.parametrize("url", ["tcp://gpu-7.lab:2376", "ssh://bob@gpu-7.lab:2222",
                                 "ssh://-oProxyCommand=touch${IFS}pwned"])  # a host, never an ssh option
def test_a_remote_engine_fails_with_the_fix_that_points_back_here_and_no_ssh_fix(url):
    """One rule for an engine on another machine (engine-gpu's): it never passes, docker_engine_reachable fails with
    the fix that undoes the setting (unset DOCKER_HOST, or docker_host removed from the lab config), the
    engine-dependent checks skip, and no fix runs a line there over ssh (host-fixes' ssh lines were unreachable
    where right, and wrong where reached: they re-read "remote" from the URL without the probe's name lookup)."""
    host = docker_endpoint.target_host(url)
    down = probe.EngineFacts(url, 5, error="connection refused", remote=host)  # the probe's looked-up answer
    there = probe.probe_dockerd(url, "/var/run/docker.pid", 5)
    assert there.remote == host and there.pid is None
    reachable = v.engine_reachable(down, USER)
    assert reachable.status == "fail" and "on another machine" in reachable.message, reachable
    assert commands(reachable.remediation) == [["unset", "DOCKER_HOST"], ["python3", "-m", "pytest", "tests_env"]]
    up = engine_from_capture()
    up.endpoint, up.remote = url, host
    for skipped in (v.engine_version(up, "24.0", USER),
                    v.runtime_registered(up, probe.DaemonJson("/etc/docker/daemon.json", False), shell=USER,
                                         dockerd=there),
                    v.runtime_usable(up, probe.RuntimeProbe("nvidia", False), 1, USER, dockerd=there)):
        assert skipped.status == "skip" and "not verified on this host" in skipped.message, skipped
    for fix in (reachable.remediation, v.reload_runtimes(USER, there, endpoint=url),
                v.configure_runtime(USER, None, "nvidia", "/etc/docker/daemon.json", url, there)):
        assert not any(c[0] == "ssh" for c in commands(fix)) and host not in fix.partition("#")[0], fix
    words = v.restart_dockerd(USER, "/etc/docker/daemon.json", url, there)  # words for a message, not a fix
    assert "ssh" not in words and host not in words, words


@pytest.mark.parametrize("url", ["http://127.1:2375", "tcp://127.1:1"])
def test_an_engine_the_probe_finds_on_this_machine_gets_this_machines_fixes(url):
    """http://127.1:2375 is this machine (the lookup says 127.0.0.1; the URL alone does not): the probe calls it
    local, and so does every fix (it said `ssh -- 127.1 'sudo systemctl start docker'`)."""
    engine = probe.probe_engine(LabConfig(command_timeout=5, docker_host=url))
    assert engine.remote == "" and not engine.reachable, engine
    assert docker_endpoint.remote_host(url) == "127.1"  # the URL alone would say another machine
    fix = v.engine_reachable(engine, USER, configured=url).remediation
    assert commands(fix)[0] == ["sudo", "systemctl", "start", "docker"] and "ssh" not in fix, fix
    dockerd = probe.probe_dockerd(url, "/nonexistent/docker.pid", 5)
    assert dockerd.remote == ""
    assert commands(v.reload_runtimes(USER, dockerd, endpoint=url))[0] == ["sudo", "systemctl", "reload", "docker"]


def test_a_local_dockerd_found_for_a_url_naming_another_host_is_restarted_here():
    """tcp://localhost6.localdomain6:2375 (Red Hat's /etc/hosts name for ::1): the probe resolved it here and
    found its dockerd under systemd; the restart is this machine's, not `ssh -- localhost6.localdomain6 ...`."""
    url, found = "tcp://localhost6.localdomain6:2375", probe.Dockerd(pid=77, unit="docker.service")
    assert v.restart_docker(USER, url, found) == "sudo systemctl restart docker"
    assert v.start_docker(USER, url, found) == "sudo systemctl start docker"
    assert v.journal(USER, url, found) == "sudo journalctl -u docker -n 50"
    assert v.reload_runtimes(USER, found, endpoint=url).startswith("sudo systemctl reload docker   # ")
    assert v.restart_dockerd(USER, "/etc/docker/daemon.json", url, found) == (
        f"restart it: `sudo systemctl restart docker` ({v.RESTART_STOPS})")
