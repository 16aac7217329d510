"""Probes, verdicts and the MPS setup action against a real NVIDIA GPU (marker ``gpu``).

These start and stop real MPS control daemons, each on its own temporary pipe directory so they
never touch a daemon the machine's owner runs on /tmp/nvidia-mps. They skip cleanly where there is
no GPU (no nvidia-smi answering, or no MPS binaries).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from labcheck import cmd, mps
from labcheck.config import LabConfig
from labcheck.probes.gpu import probe_gpus
from labcheck.probes.mps import client_specs, control_asker, control_query, probe_mps, run_cuda_clients
from labcheck.verdicts import gpu as gpu_v
from labcheck.verdicts import mps as mps_v
from setup_actions.mps_daemon import MpsDaemon
from tests.mps_client import run_one

pytestmark = pytest.mark.gpu
CFG = LabConfig()


@pytest.fixture(scope="module")
def gpu():
    facts = probe_gpus(CFG.extra_bin_dirs, timeout=30)
    if not facts.gpus:
        pytest.skip(f"no NVIDIA GPU here: {facts.smi.error or facts.nvml.error}")
    return facts


@pytest.fixture
def mps_tools(gpu):
    control = cmd.which("nvidia-cuda-mps-control", CFG.extra_bin_dirs)
    if control is None:
        pytest.skip("nvidia-cuda-mps-control not installed")
    return control, cmd.which("nvidia-smi", CFG.extra_bin_dirs)


@pytest.fixture
def dirs(tmp_path):
    pipe, log = tmp_path / "pipe", tmp_path / "log"
    yield str(pipe), str(log), tmp_path / "state"
    # never leave a daemon behind, whatever the test did
    control = cmd.which("nvidia-cuda-mps-control", CFG.extra_bin_dirs)
    if control and pipe.exists():
        control_query(control, "quit", str(pipe), 10)


def test_driver_gpus_and_compute_capability_pass_on_a_real_gpu(gpu):
    assert gpu_v.driver(gpu, CFG.min_driver).status == "pass", gpu_v.driver(gpu, CFG.min_driver)
    assert gpu_v.gpus_present(gpu).status == "pass"
    assert gpu_v.compute_capability(gpu, CFG.min_compute_capability).status == "pass"
    assert gpu.smi.driver == gpu.nvml.driver, "nvidia-smi and NVML should report the same driver"
    assert [g.uuid for g in gpu.smi.gpus] == [g.uuid for g in gpu.nvml.gpus]
    assert all(g.compute_cap for g in gpu.gpus)
    print("driver:", gpu.driver, "cuda:", gpu.cuda_version, "gpus:", gpu.gpus)


def test_setup_action_starts_then_stops_a_real_daemon_and_mps_serves_a_client(gpu, mps_tools, dirs):
    control, smi = mps_tools
    pipe, log, state = dirs
    action = MpsDaemon(control, pipe, log, 30, state_root=state)
    assert action.plan(), "no daemon yet: the plan should say it starts one"
    first = action.apply()
    assert first.ok and first.changed, first
    assert action.started_pid and os.path.exists(f"/proc/{action.started_pid}")
    assert action.plan() == [], "idempotent: nothing left to do once it runs"
    again = action.apply()
    assert again.ok and not again.changed, again

    facts = probe_mps(pipe, CFG.extra_bin_dirs, 30)
    assert mps_v.daemon(facts, pipe, log, True).status == "pass"
    assert [p.pid for p in facts.daemons if p.pid == action.started_pid]
    assert facts.daemon_pipe_dirs.get(action.started_pid) == pipe

    run = run_one(pipe, control, smi, 30, gpu.gpus[0], CFG.extra_lib_dirs)
    verdict = mps_v.functional(run, log, action.started_pid)
    print(run)
    print(verdict)
    assert verdict.status == "pass", verdict
    assert run.pid in run.smi_mps_clients or any(run.pid in c for c in run.client_lists.values())

    stopped = action.stop()
    assert stopped.ok and stopped.changed, stopped
    after = control_query(control, "get_server_list", pipe, 10)
    assert not after.ok and mps.NO_DAEMON in after.output
    assert not action.stop().changed, "a second stop finds nothing this suite started"


def test_stop_leaves_alone_a_daemon_the_suite_did_not_start(mps_tools, dirs):
    control, _ = mps_tools
    pipe, log, state = dirs
    os.makedirs(pipe)
    os.makedirs(log)
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": pipe, "CUDA_MPS_LOG_DIRECTORY": log}
    subprocess.run([control, "-d"], env=env, timeout=30, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    action = MpsDaemon(control, pipe, log, 30, state_root=state)
    started = action.apply()
    assert started.ok and not started.changed and "already" in started.message
    assert not action.stop().changed
    assert control_query(control, "get_server_list", pipe, 10).ok, "the attendee's daemon must still run"


def test_daemon_killed_mid_run_gives_a_clear_verdict(gpu, mps_tools, dirs):
    control, smi = mps_tools
    pipe, log, state = dirs
    action = MpsDaemon(control, pipe, log, 30, state_root=state)
    assert action.apply().changed
    pid = action.started_pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    run = run_one(pipe, control, smi, 10, gpu.gpus[0], CFG.extra_lib_dirs)
    verdict = mps_v.functional(run, log, pid)
    print(run.before)
    print(verdict)
    assert verdict.status == "fail"
    assert f"pid {pid}" in verdict.message or "hung" in verdict.message
    assert action.stop().ok  # the dead daemon is noticed, not "stopped"


def test_client_without_daemon_is_not_taken_as_mps(gpu, mps_tools, tmp_path):
    control, smi = mps_tools
    pipe = tmp_path / "empty-mps"
    pipe.mkdir()
    run = run_one(str(pipe), control, smi, 20, gpu.gpus[0], CFG.extra_lib_dirs)
    verdict = mps_v.functional(run, str(tmp_path / "log"))
    assert verdict.status == "fail" and "no MPS control daemon answers" in verdict.message


def test_one_client_per_gpu_pinned_by_uuid_is_served_on_each_gpu(gpu, mps_tools, dirs):
    """Issue 14 on this host: one client per GPU nvidia-smi lists (CUDA_VISIBLE_DEVICES=<UUID>, --device 0), all
    at once; each must open the GPU it was pinned to (its cuDeviceGetUuid line) and be listed as served."""
    control, smi = mps_tools
    pipe, log, state = dirs
    action = MpsDaemon(control, pipe, log, 30, state_root=state)
    assert action.apply().ok
    try:
        runs = run_cuda_clients(pipe, client_specs(pipe, gpu.gpus, 30, CFG.extra_lib_dirs),
                                control_asker(control, pipe, 30), smi, 30)
        verdict = mps_v.functional(runs, log, action.started_pid)
        for run in runs:
            print(run.gpu, run.device_uuid, run.client_lists, run.smi_mps_on)
        print(verdict)
        assert len(runs) == len(gpu.gpus) and verdict.status == "pass", verdict
        assert [r.device_uuid for r in runs] == [g.uuid for g in gpu.gpus]
    finally:
        action.stop()
