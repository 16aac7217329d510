"""Module 1 hardening (issue 4): ``pytest tests_env -m module1`` interrupted in the middle of
``kind create cluster``, and a state folder that cannot be used.

``kind`` is module 1's test double (tests/doubles/kind: creates the node container on the real
Docker engine, no Kubernetes; KIND_DOUBLE_HANG_AFTER_CREATE=1 makes it hang after creating the
container, like a ``kind create`` stuck waiting for the control plane). Containers get this helper's
label (labcheck.test=harden) and a cluster name starting with ``harden-``; only those are removed.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from labcheck import state
from labcheck.probes import node as nodeprobe
from tests import m1_cluster as m1
from tests.test_hardening import _pids_running
from tests.test_hardening_interrupt import end_session, finish, interrupt, start_run

pytestmark = [pytest.mark.docker, pytest.mark.needs("docker_engine")]  # before _node_image: its teardown
LABEL = "harden"
IMAGE = "labcheck-kind-double/node-harden:v1.34.0"


def _remove(name: str) -> None:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}",
                          "--filter", f"label=labcheck.test={LABEL}"], capture_output=True, text=True, timeout=60)
    for cid in out.stdout.split():
        subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _node_image():
    """The double builds IMAGE on first use: remove it after this module (only ours, by its name)."""
    yield
    subprocess.run(["docker", "rmi", IMAGE], capture_output=True, timeout=60)


@pytest.fixture
def cluster(tmp_path, request):
    name = f"harden-{uuid.uuid4().hex[:8]}"
    request.addfinalizer(lambda: _remove(name))
    libdir, bindir = m1.fake_driver(tmp_path)
    cfg = m1.lab_config(tmp_path, name, node_image=IMAGE, extra_lib_dirs=(str(libdir),),
                        extra_bin_dirs=(str(bindir),))
    lab = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    return name, cfg, lab


def _run(tmp_path, lab, env_extra=None, name="r", *args):
    env = {**m1.double_env(), "KIND_DOUBLE_LABEL": LABEL, **(env_extra or {})}
    return start_run(tmp_path, lab, "-k", "cluster_provisioned or node_container_running", *args, env=env,
                     name=name, module="module1")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_kind_create_interrupted_is_repaired_by_the_next_run(tmp_path, cluster, sig):
    name, cfg, lab = cluster
    proc, out = _run(tmp_path, lab, {"KIND_DOUBLE_HANG_AFTER_CREATE": "1"})
    deadline = time.monotonic() + 90
    while not nodeprobe.inspect(cfg.node_name, 10).running:  # kind made and started the node, then hangs
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "kind never created the node container"
        time.sleep(0.2)
    time.sleep(0.5)  # past `docker run` (the double may retry it unprivileged), into the hang
    half = nodeprobe.inspect(cfg.node_name, 10)
    # the run records the half-made node's ID while kind still runs: the evidence that it is the suite's, which
    # even kill -9 cannot take away (a record without it would claim nothing)
    while getattr(state.read(state.state_dir(cfg.state_dir), name), "node_id", "") != half.id:
        assert time.monotonic() < deadline, state.read(state.state_dir(cfg.state_dir), name)
        time.sleep(0.2)
    interrupt(proc, sig)
    rc, _, text = finish(proc, out, timeout=60)
    kind_left = _pids_running(f"--name {name}")
    if sig == signal.SIGINT:
        assert rc == 2, text
        assert kind_left == [], "the interrupted `kind create cluster` went on after the run ended"
    else:
        for pid in kind_left:  # kill -9 cannot reach kind: it would hang on (an hour, in the double)
            end_session(pid)
    rec = state.read(state.state_dir(cfg.state_dir), name)
    assert rec is not None and rec.phase == "creating" and rec.node_id == half.id  # the next run may repair it

    rc, recs, text = finish(*_run(tmp_path, lab, name="r2"))
    prov = recs["cluster_provisioned"]
    assert prov["verdict"] == "pass" and "created cluster" in prov["message"], text
    assert "half-made by an interrupted run" in prov["message"]
    assert recs["node_container_running"]["verdict"] == "pass"
    assert nodeprobe.inspect(cfg.node_name, 10).id != half.id
    assert state.read(state.state_dir(cfg.state_dir), name).phase == "created"

    rc, recs, text = finish(*_run(tmp_path, lab, name="r3"))
    assert "exists and matches" in recs["cluster_provisioned"]["message"], recs["cluster_provisioned"]


def test_unusable_state_folder_gives_verdicts_not_tracebacks(tmp_path, cluster):
    """state_dir under a regular file: the kind config, cluster and node checks fail or skip with a reason."""
    name, cfg, lab = cluster
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    lab["state_dir"] = str(blocker / "state")
    rc, recs, text = finish(*start_run(tmp_path, lab, env={**m1.double_env(), "KIND_DOUBLE_LABEL": LABEL},
                                       module="module1"))
    assert rc == 1, text
    assert recs and all("raised an error" not in r["message"] for r in recs.values()), text
    prov = recs["cluster_provisioned"]
    assert prov["verdict"] == "fail" and f"cannot use the state folder {blocker / 'state'}" in prov["message"]
    assert prov["remediation"]
    assert not nodeprobe.inspect(cfg.node_name, 10).exists
    assert not Path(lab["state_dir"]).exists()


# --- the node's MPS daemon killed mid-run --------------------------------------------------------------

MPS_CONTROL_C = r"""
/* Stand-in for nvidia-cuda-mps-control, compiled static so it runs in the double's busybox node, and named
 * like the real binary so ps shows `nvidia-cuda-mps-control -d` (how the suite recognises the daemon).
 * -d: start a background daemon (fork, setsid) that records its pid in the pipe dir, or refuse with the
 *     real "already running" message. Client: read one command; without a live daemon print the real
 *     "Cannot find MPS control daemon process"; get_server_list answers (no server yet); quit stops it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char pidfile[4096];

static int daemon_pid(void) {
    FILE *f = fopen(pidfile, "r");
    int pid = 0;
    if (!f) return 0;
    if (fscanf(f, "%d", &pid) != 1) pid = 0;
    fclose(f);
    return (pid > 0 && kill(pid, 0) == 0) ? pid : 0;
}

int main(int argc, char **argv) {
    const char *dir = getenv("CUDA_MPS_PIPE_DIRECTORY");
    snprintf(pidfile, sizeof pidfile, "%s/nvidia-cuda-mps-control.pid", dir && *dir ? dir : "/tmp/nvidia-mps");
    if (argc > 1 && strcmp(argv[1], "-d") == 0) {
        if (daemon_pid()) { puts("An instance of this daemon is already running"); return 1; }
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid > 0) return 0;
        setsid();
        FILE *f = fopen(pidfile, "w");
        if (!f) return 1;
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
        freopen("/dev/null", "r", stdin); freopen("/dev/null", "w", stdout); freopen("/dev/null", "w", stderr);
        for (;;) pause();
    }
    char line[256] = "";
    if (!fgets(line, sizeof line, stdin)) return 1;
    int pid = daemon_pid();
    if (!pid) { puts("Cannot find MPS control daemon process"); return 1; }
    if (strncmp(line, "quit", 4) == 0) kill(pid, SIGTERM);
    return 0;
}
"""


def _static_control(folder: Path) -> Path:
    src = folder / "mps-control.c"
    src.write_text(MPS_CONTROL_C)
    out = folder / "nvidia-cuda-mps-control.bin"
    res = subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(src)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, f"gcc could link a static binary (tests/needs.py) but not this one: {res.stderr}"
    return out


@pytest.mark.needs("gcc_static", "ps")  # the stand-in is built static; the host's ps finds the node's daemon
def test_node_mps_daemon_killed_mid_run_gives_clear_verdicts_and_the_next_start_repairs(tmp_path, cluster,
                                                                                       monkeypatch):
    """The driver folder is fake_driver's "nvidia drv; 'x'" (spaces, quotes, ';'): the daemon must still be
    recognised in the node's ps by its full command line."""
    import os
    import shutil

    from labcheck import kindconfig, mps
    from labcheck.verdicts import node as v
    from setup_actions import cluster as cluster_action
    from setup_actions import kind_config as kind_config_action
    from setup_actions import node_mps

    name, cfg, lab = cluster
    control = Path(cfg.extra_bin_dirs[0]) / "nvidia-cuda-mps-control"
    shutil.copy(_static_control(tmp_path), control)  # replaces fake_driver's "cannot start" script
    monkeypatch.setenv("KIND_DOUBLE_LABEL", LABEL)
    kind_config_action.apply(cfg, kind_config_action.inspect(cfg))
    assert cluster_action.apply(cfg, cfg.kind_config_path).ok
    paths = kindconfig.node_paths(kindconfig.load(cfg.kind_config_path), cfg.mps_pipe_dir)
    started = node_mps.apply(cfg, paths)
    assert started.ok and "started" in started.message, started
    procs, res = nodeprobe.processes(cfg.node_name)
    assert v.mps_control(procs, res, cfg.node_name, node_mps.start_command(cfg, paths)).status == "pass"

    node = nodeprobe.inspect(cfg.node_name)
    victims = [p.pid for p in mps.control_daemons(nodeprobe.host_processes())
               if nodeprobe.in_container(p.pid, node.id)]
    assert victims, "the node's daemon is not visible from the host"
    for pid in victims:  # killed from outside (OOM killer, an admin): the run must notice
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while mps.control_daemons(nodeprobe.processes(cfg.node_name)[0]) and time.monotonic() < deadline:
        time.sleep(0.2)

    procs, res = nodeprobe.processes(cfg.node_name)
    control_v = v.mps_control(procs, res, cfg.node_name, node_mps.start_command(cfg, paths))
    assert control_v.status == "fail" and "no `nvidia-cuda-mps-control -d` process" in control_v.message
    assert control_v.remediation.startswith("docker exec ") and control_v.remediation.endswith(" -d")
    server_v = v.mps_server(procs, [], "", cfg.node_name, node_mps.start_command(cfg, paths), False)
    assert server_v.status == "fail" and "no MPS control daemon" in server_v.message

    assert node_mps.plan(cfg, paths).action == "start"  # the dead daemon's pid file does not block a restart
    again = node_mps.apply(cfg, paths)
    assert again.ok and "started" in again.message, again
    procs, res = nodeprobe.processes(cfg.node_name)
    assert v.mps_control(procs, res, cfg.node_name, node_mps.start_command(cfg, paths)).status == "pass"


def test_state_folder_lost_after_the_cluster_exists_gives_node_verdicts_not_tracebacks(tmp_path, cluster):
    """A running node, then a run whose state folder cannot be used (e.g. a full or read-only home): the
    node setup steps (loader config, MPS start) take file locks there; they must fail as verdicts."""
    name, cfg, lab = cluster
    env = {**m1.double_env(), "KIND_DOUBLE_LABEL": LABEL}
    rc, recs, text = finish(*_run(tmp_path, lab))
    assert recs["node_container_running"]["verdict"] == "pass", text
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    lab = {**lab, "state_dir": str(blocker / "state")}
    rc, recs, text = finish(*start_run(tmp_path, lab, env=env, module="module1", name="r2"))
    assert rc == 1, text
    assert all("raised an error" not in r["message"] for r in recs.values()), text
    assert recs["node_container_running"]["verdict"] == "pass"
    loader = recs["node_loader_finds_driver_libraries"]  # blocked node setup: a failure (issue 10)
    assert loader["verdict"] == "fail" and "cannot use the state folder" in loader["message"], loader
    control = recs["mps_control_running_in_node"]
    assert control["verdict"] == "fail" and "cannot use the state folder" in control["message"], control
