"""A Docker engine on another machine never passes as this host's (audit: READY combined two machines).

Module 0 reads this host's driver, GPUs and files; module 1 mounts them into the Kind node. An engine reached over
tcp:// or ssh:// on another machine answers for that machine, so docker_engine_reachable fails on it with the fix
that undoes the setting, the engine checks say "not verified", and no module 1 docker or kind call reaches it.
The engine facts are the real answers of Debian's docker.io 20.10 (tests/data/debian-docker-20.10).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck import docker_endpoint
from labcheck.config import LabConfig
from labcheck.probes import docker as probe
from labcheck.probes import kind as kindcli
from labcheck.probes import node as nodeprobe
from labcheck.rerun import Rerun
from labcheck.verdicts import docker as v
from labcheck.verdicts import node as node_v
from setup_actions import cluster as cluster_action
from tests import captures
from tests.shell_text import commands, parses, sed_delete

ROOT = Path(__file__).resolve().parent.parent
REMOTE = "tcp://gpu-box.example:2375"  # the audit's reproduction
NOWHERE = "tcp://gpu-box.invalid:2375"  # .invalid never resolves (RFC 6761): a probe of it answers at once
DATA = "debian-docker-20.10"


def real_engine(endpoint: str, **kw) -> probe.EngineFacts:
    """What the real engine answered (runtime nvidia registered), as if reached at ``endpoint``."""
    info = json.loads(captures.text(f"{DATA}/docker-info.json"))
    version = json.loads(captures.text(f"{DATA}/docker-version.json"))["Server"]
    return probe.fill_from_api(probe.EngineFacts(endpoint, 30.0, client=object(), **kw), version, info)


def gpu_probe() -> probe.RuntimeProbe:
    """A runtime probe that saw a GPU: what would pass runtime_usable on this host."""
    return probe.RuntimeProbe("nvidia", True, image="labcheck-probe:1", container="c", exit_code=0,
                              output=probe.ProbeOutput(("/dev/nvidia0", "/dev/nvidiactl"), 0, ("GPU 0: H100",), True))


def this_machines_address() -> str:
    """A non-loopback address of this machine (the one a UDP socket would send from; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("203.0.113.1", 9))
        except OSError:
            pytest.skip("no route off this machine, so no non-loopback address to test with")
        address = s.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback address")
    return address


# --- which endpoints are this machine -----------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "unix:///var/run/docker.sock", "unix:///run/user/1000/docker.sock", "unix://var/run/docker.sock", "",
    "tcp://127.0.0.1:2375", "tcp://127.0.0.2:2375", "tcp://localhost:2375", "tcp://LOCALHOST.:2375",
    "tcp://[::1]:2375", "tcp://[::ffff:127.0.0.1]:2375", "tcp://0.0.0.0:2375", "tcp://:2375", "localhost:2375",
    "https://docker.localhost:2376", "tcp://localhost.localdomain:2375", "ssh://me@localhost", " tcp://127.0.0.1:1 ",
    "tcp://admin:pa/ss@w0rd:x@127.0.0.1:9",  # a password with '/' and '@': the host is after the last '@'
])

def test_endpoints_on_this_machine(url):
    assert docker_endpoint.remote_host(url) == ""


@pytest.mark.parametrize("url, host", [
    (REMOTE, "gpu-box.example"), ("gpu-box.example:2375", "gpu-box.example"),  # no scheme: the SDK's tcp://
    (" TCP://GPU-Box:2376", "gpu-box"), ("http://203.0.113.9:2375", "203.0.113.9"),
    ("https://203.0.113.9:2376", "203.0.113.9"), ("ssh://me@gpu-box", "gpu-box"), ("ssh://gpu-box:2222", "gpu-box"),
    ("tcp://user:secret@203.0.113.9:2376", "203.0.113.9"),  # the SDK refuses it; the docker CLI (module 1) takes it
    ("tcp://[2001:db8::5]:2375", "2001:db8::5"), ("tcp://127.0.0.1.gpu-box.example:2375", "127.0.0.1.gpu-box.example"),
    ("tcp://localhost.gpu-box.example:2375", "localhost.gpu-box.example"),
])
def test_endpoints_on_another_machine(url, host):
    assert docker_endpoint.remote_host(url) == host


def test_this_machines_name_and_addresses_are_this_machine():
    assert docker_endpoint.remote_host(f"tcp://{socket.gethostname()}:2375") == ""
    assert docker_endpoint.remote_host(f"tcp://{this_machines_address()}:2375") == ""


def test_a_name_is_this_machine_only_when_every_address_it_resolves_to_is():
    assert docker_endpoint.remote_host("tcp://dockerbox:2375", lambda h: ["127.0.1.1"]) == ""
    assert docker_endpoint.remote_host("tcp://dockerbox:2375", lambda h: ["127.0.0.1", "203.0.113.9"]) == "dockerbox"
    assert docker_endpoint.remote_host("tcp://dockerbox:2375", lambda h: []) == "dockerbox"
    assert docker_endpoint.remote_host("tcp://dockerbox:2375") == "dockerbox"  # not resolved: another machine


def test_with_ip_nonlocal_bind_a_bind_proves_nothing(tmp_path, monkeypatch):
    """Where any address can be bound (net.ipv4.ip_nonlocal_bind=1), binding is no evidence of a local address."""
    address = this_machines_address()
    on = tmp_path / "ip_nonlocal_bind"
    on.write_text("1\n")
    monkeypatch.setitem(docker_endpoint.NONLOCAL_BIND, 4, str(on))
    assert docker_endpoint.remote_host(f"tcp://{address}:2375") == address


def test_a_name_that_never_resolves_is_another_machine_and_the_lookup_is_bounded():
    assert docker_endpoint.remote_host(NOWHERE, docker_endpoint.resolver(5)) == "gpu-box.invalid"
    assert docker_endpoint.resolver(5)("localhost")  # the resolver does resolve


# --- module 0: the audit's reproduction -----------------------------------------------------------------------

def test_a_remote_engine_that_answers_fails_reachable_with_the_unset_fix():
    """EngineFacts('tcp://gpu-box.example:2375', ..., server_version='27.3.1') passed docker_engine_reachable."""
    engine = probe.EngineFacts(REMOTE, 30.0, client=object(), server_version="27.3.1")
    verdict = v.engine_reachable(engine)
    assert verdict.status == "fail"
    assert verdict.message.startswith(f"the engine at {REMOTE} is on another machine (gpu-box.example); the lab must "
                                      "run on this host")
    assert verdict.remediation.startswith("unset DOCKER_HOST && python3 -m pytest tests_env   # ")
    assert "to check gpu-box.example itself, run the suite there" in verdict.remediation
    assert parses(verdict.remediation)


HOSTILE_FOLDER = "lab dir; it's $(touch PWNED) \"q\""


def _recording_python(tmp_path: Path) -> Path:
    """A stand-in for the rerun's interpreter: records its arguments, runs nothing."""
    stub = tmp_path / "python"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/rerun-args"\n')
    stub.chmod(0o755)
    return stub


def test_a_remote_docker_host_in_the_lab_config_is_removed_from_that_file_then_the_suite_reruns(tmp_path):
    """The fix said `remove docker_host from '/srv/lab/my lab.yaml', then: ...`: pasted, bash ran a command named
    `remove`. Now it removes the line the one way a fix removes a setting (labcheck.config.removal_steps: a copy,
    then sed deletes exactly that line), then runs the suite again; pasted for real here, in a hostile folder."""
    folder = tmp_path / HOSTILE_FOLDER
    folder.mkdir()
    lab = folder / "my lab.yaml"
    text = f"cluster_name: lab-a\ndocker_host: {REMOTE}   # the GPU box\nmin_kind: 0.30.0\n"
    lab.write_text(text)
    rerun = Rerun(cwd=str(folder), python=str(_recording_python(tmp_path)), lab_config=str(lab))
    verdict = v.engine_reachable(real_engine(REMOTE), configured=REMOTE, rerun=rerun)
    assert verdict.status == "fail" and "another machine (gpu-box.example)" in verdict.message
    fix = verdict.remediation
    assert fix.startswith(f"cp -p {shlex.quote(str(lab))} ")
    assert f" && {sed_delete(None, 'docker_host', shlex.quote(str(lab)))} && cd " in fix
    assert "unset DOCKER_HOST" not in fix and "remove docker_host" not in fix.partition("#")[0] and parses(fix)
    assert "keeps a copy, then deletes line 2 (docker_host) of the lab config, so the suite uses DOCKER_HOST" in fix
    res = subprocess.run(["bash", "-c", fix], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert lab.read_text() == "cluster_name: lab-a\nmin_kind: 0.30.0\n"
    (backup,) = [p for p in folder.iterdir() if p.name.endswith(".bak")]
    assert backup.read_text() == text and not list(tmp_path.rglob("PWNED"))
    assert (tmp_path / "rerun-args").read_text().split("\n")[:4] == ["-m", "pytest", "tests_env",
                                                                    f"--lab-config={lab}"]


@pytest.mark.parametrize("text,line", [(f'{{cluster_name: lab-a, docker_host: "{REMOTE}"}}\n', 1),
                                       (f"docker_host: >-\n  {REMOTE}\n", 1),
                                       (f"docker_host: {REMOTE}\ndocker_host: {REMOTE}\n", None)])
def test_a_docker_host_sed_cannot_remove_exactly_opens_the_lab_config_then_reruns(tmp_path, text, line):
    """A flow mapping, a value over two lines, the key twice: no one line to delete, so the editor (at its line
    when there is one), then the rerun."""
    lab = tmp_path / "lab.yaml"
    lab.write_text(text)
    rerun = Rerun(cwd=str(tmp_path), lab_config=str(lab))
    fix = v.engine_reachable(real_engine(REMOTE), configured=REMOTE, rerun=rerun).remediation
    at = f"+{line} " if line else ""
    assert fix.startswith(f"${{EDITOR:-vi}} {at}{lab} && cd {tmp_path} && python3 -m pytest tests_env "), fix
    assert "remove " in fix.partition("#")[2] and "docker_host" in fix.partition("#")[2] and parses(fix)


def test_a_remote_engine_that_does_not_answer_fails_the_same_way_not_start_docker():
    engine = probe.EngineFacts(REMOTE, 2.0, error="ConnectionError: connection refused")
    verdict = v.engine_reachable(engine)
    assert verdict.status == "fail" and "another machine" in verdict.message
    assert "systemctl start docker" not in verdict.remediation


@pytest.mark.parametrize("url", ["unix:///run/user/1000/docker.sock", "tcp://127.0.0.1:2375"])
def test_an_engine_on_this_machine_still_passes(url):
    engine = real_engine(url)
    assert v.engine_reachable(engine).status == "pass"
    assert v.engine_version(engine, "20.10").status == "pass"
    assert v.runtime_usable(engine, gpu_probe(), 1).status == "pass"


def test_no_engine_check_passes_on_a_remote_engine():
    """The engine's version, runtimes and a container that saw a GPU are that machine's: not verified here."""
    engine = real_engine(REMOTE)
    dj = probe.DaemonJson("/etc/docker/daemon.json", True, {"runtimes": {"nvidia": {"path": "x"}}})
    for verdict in (v.engine_version(engine, "20.10"), v.runtime_registered(engine, dj, "nvidia"),
                    v.runtime_usable(engine, gpu_probe(), 1)):
        assert verdict.status == "skip", verdict
        assert verdict.message == (f"not verified on this host: the Docker engine at {REMOTE} runs on "
                                   "gpu-box.example, another machine (see docker_engine_reachable)")


class _Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"the probe used the remote engine's client ({name})")


def test_no_probe_container_is_started_on_a_remote_engine():
    engine = real_engine(REMOTE)
    engine.client = _Untouchable()
    run = probe.probe_runtime(engine, LabConfig())
    assert not run.attempted


def test_the_probe_knows_the_engine_is_elsewhere_before_it_connects():
    engine = probe.probe_engine(LabConfig(docker_host=NOWHERE, command_timeout=5))
    assert engine.remote == "gpu-box.invalid" and not engine.reachable
    assert "another machine" in v.engine_reachable(engine, configured=NOWHERE).message


# --- module 1: no docker or kind call reaches it --------------------------------------------------------------

def recording_binary(tmp_path: Path, name: str) -> tuple[str, Path]:
    """A docker/kind stand-in that records that it ran."""
    ran = tmp_path / f"{name}.ran"
    exe = tmp_path / name
    exe.write_text(f"#!/bin/sh\necho \"$@\" >> '{ran}'\necho '[]'\n")
    exe.chmod(0o755)
    return str(exe), ran


def test_module1_runs_no_docker_or_kind_command_against_a_remote_engine(tmp_path, monkeypatch):
    docker, docker_ran = recording_binary(tmp_path, "docker")
    kind, kind_ran = recording_binary(tmp_path, "kind")
    state = nodeprobe.inspect("workshop-dra-control-plane", 5, docker, docker_host=REMOTE)
    assert not state.exists and state.remote == REMOTE and "another machine" in state.error
    res = nodeprobe.node_exec("workshop-dra-control-plane", ["ldconfig"], timeout=5, docker=docker,
                              docker_host=REMOTE)
    assert not res.ok and "another machine" in res.describe()
    names, res = kindcli.get_clusters(kind, 5, docker_host=REMOTE)
    assert names == [] and "another machine" in res.describe()
    monkeypatch.setenv("DOCKER_HOST", REMOTE)  # the same from DOCKER_HOST, which kind and docker read
    assert kindcli.create("workshop-dra", "kc.yaml", "img", kind=kind, timeout=5).rc is None
    assert not docker_ran.exists() and not kind_ran.exists()


def test_the_node_check_fails_with_the_same_fix_as_module_0():
    state = nodeprobe.inspect("workshop-dra-control-plane", 5, docker_host=REMOTE)
    rerun = Rerun(cwd="/srv/lab", lab_config="/srv/lab/lab.yaml")
    verdict = node_v.node_running(state, "workshop-dra", "kc.yaml", cli=node_v.Clis(rerun=rerun), docker_host=REMOTE)
    expected = v.engine_elsewhere(REMOTE, "gpu-box.example", REMOTE, rerun)
    assert verdict.status == "fail" and verdict == expected


def test_no_cluster_is_made_on_a_remote_engine(tmp_path):
    kind, kind_ran = recording_binary(tmp_path, "kind")
    cfg = LabConfig(docker_host=REMOTE, kind_binary=kind, state_dir=str(tmp_path / "state"), command_timeout=5)
    outcome = cluster_action.apply(cfg, str(tmp_path / "kc.yaml"))
    assert not outcome.ok and outcome.action == "error"
    assert "another machine (gpu-box.example)" in outcome.message
    fix = outcome.remediation  # no lab config file: the editor on ./lab.yaml, then the rerun
    assert parses(fix) and " && python3 -m pytest tests_env" in fix and "remove every docker_host line" in fix, fix
    assert fix.startswith(("${EDITOR:-vi} ", "sudoedit ")) and not fix.startswith("remove"), fix
    assert not kind_ran.exists()


# --- a real run: the checks and the report's environment ------------------------------------------------------

def test_a_run_against_a_remote_docker_host_is_not_ready_and_names_the_endpoint(tmp_path):
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    env = {**{k: val for k, val in os.environ.items() if not k.startswith("PYTEST_")}, "DOCKER_HOST": NOWHERE}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests_env" / "test_module0.py"), "-m", "module0", "-k",
         "docker_engine or nvidia_runtime", "--no-provision", "-p", "no:cacheprovider", "-q",
         f"--results-json={out}", f"--html={html}", "--self-contained-html"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"]}
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert recs["docker_engine_reachable"]["verdict"] == "fail"
    assert "is on another machine (gpu-box.invalid)" in recs["docker_engine_reachable"]["message"]
    assert recs["docker_engine_reachable"]["remediation"].startswith("unset DOCKER_HOST && ")
    for check in ("docker_engine_version", "nvidia_runtime_registered", "nvidia_runtime_usable"):
        assert recs[check]["verdict"] == "skip" and "another machine" in recs[check]["message"], recs[check]
    assert f"{NOWHERE} (on gpu-box.invalid, another machine)" in html.read_text()


def test_the_fix_keeps_a_hostile_lab_config_path_in_one_word():
    lab = "/srv/HOSTILE new\nline $(touch pwned) it's.yaml"
    fix = v.engine_reachable(real_engine(REMOTE), configured=REMOTE, rerun=Rerun(lab_config=lab)).remediation
    assert parses(fix) and commands(fix)[0] in (["${EDITOR:-vi}", lab], ["sudoedit", lab]), fix  # one word


def test_fix_host_changes_nothing_for_a_remote_engine(tmp_path, monkeypatch):
    """--fix-host registers the runtime in THIS host's daemon.json after the engine's runtimes: a remote engine's
    runtimes say nothing about this host, so nothing is planned, locked or written."""
    from types import SimpleNamespace

    from fixtures import docker as docker_fixtures

    options = {"--fix-host": True, "--no-provision": False}
    daemon_json = tmp_path / "daemon.json"
    cfg = LabConfig(docker_host=REMOTE, docker_daemon_json=str(daemon_json), command_timeout=5)
    monkeypatch.setattr(docker_fixtures.probe, "probe_engine", lambda c: pytest.fail("the remote engine was asked"))
    facts = SimpleNamespace(config=SimpleNamespace(getoption=options.get), lab_config=cfg)
    outcome = docker_fixtures.gather_runtime_setup(facts)
    assert outcome.action == "not run" and "another machine (gpu-box.example)" in outcome.message
    assert not daemon_json.exists()


