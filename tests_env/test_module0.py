"""Module 0: host prerequisites (../shared/seeds/module0-prerequisites.md).

Each test names the criterion it checks; the logic lives in labcheck.verdicts, the facts come
from session fixtures in fixtures/. Every check is a criterion (READY waits for it to pass) unless it
is marked ``@pytest.mark.optional(reason=...)``; the lab config check is one only when a lab config was read
(``optional_without_lab_config``).
"""

import pytest

from labcheck import rerun
from labcheck.clis import Clis
from labcheck.verdicts import docker as docker_verdicts
from labcheck.verdicts import host

pytestmark = pytest.mark.module0


@pytest.mark.optional_without_lab_config(reason="no lab config was read (--lab-config, ./lab.yaml): nothing to "
                                                "validate, the documented defaults apply")
def test_lab_config_valid(check, lab_config_loaded, pytestconfig):
    from labcheck.plugin import config_path

    check(host.lab_config(lab_config_loaded[1], config_path(pytestconfig)))


def test_linux_kernel_version(check, host_facts, lab_config, fix_shell):
    check(host.linux_kernel(host_facts, lab_config.min_kernel, fix_shell))


# ---------------------------------------------------------------------------------------------------
# Docker engine and NVIDIA runtime
# ---------------------------------------------------------------------------------------------------

def test_docker_cli_present(check, docker_cli, fix_shell):
    check(docker_verdicts.cli_present(docker_cli, fix_shell))


def test_docker_engine_reachable(check, docker_engine, docker_cli, lab_config, fix_shell, pytestconfig):
    check(docker_verdicts.engine_reachable(docker_engine, fix_shell, docker_cli, lab_config.docker_host,
                                           rerun.of(pytestconfig)))


def test_docker_engine_version(check, docker_engine, lab_config, fix_shell):
    check(docker_verdicts.engine_version(docker_engine, lab_config.min_docker, fix_shell, cli=Clis.of(lab_config)))


@pytest.mark.optional(reason="daemon.json is not required: without one the engine runs with its defaults, and "
                              "the NVIDIA runtime checks judge what it runs")
def test_docker_daemon_json_valid(check, docker_daemon_json, docker_engine, dockerd_process, fix_shell):
    check(docker_verdicts.daemon_json_valid(docker_daemon_json, fix_shell, dockerd_process, docker_engine.endpoint))


def test_nvidia_runtime_registered(check, docker_engine, docker_daemon_json, docker_runtime_setup, lab_config,
                                   ctk_facts, dockerd_process, fix_shell):
    note = docker_runtime_setup.note() if docker_runtime_setup.action in ("changed", "failed") else ""
    check(docker_verdicts.runtime_registered(docker_engine, docker_daemon_json, lab_config.docker_runtime_name, note,
                                             fix_shell, ctk_facts, dockerd_process))


def test_nvidia_runtime_usable(check, docker_engine, nvidia_runtime_probe, host_gpu_count, ctk_facts, lab_config,
                               dockerd_process, fix_shell):
    check(docker_verdicts.runtime_usable(docker_engine, nvidia_runtime_probe, host_gpu_count, fix_shell, ctk_facts,
                                         lab_config.docker_daemon_json, dockerd_process, cli=Clis.of(lab_config)))


# ---------------------------------------------------------------------------------------------------
# Kind, Helm, NVIDIA Container Toolkit
# ---------------------------------------------------------------------------------------------------
from labcheck.verdicts import tools as tools_v  # noqa: E402  (imports per section keep merges clean)


def test_kind_version(check, kind_facts, lab_config, fix_shell):
    check(tools_v.tool_version(kind_facts, lab_config.min_kind, fix_shell))


def test_kind_supports_the_node_image(check, kind_facts, lab_config, fix_shell, pytestconfig):
    check(tools_v.kind_supports_node_image(kind_facts, lab_config.node_image, fix_shell, rerun=rerun.of(pytestconfig)))


def test_helm_version(check, helm_facts, lab_config, fix_shell):
    check(tools_v.tool_version(helm_facts, lab_config.min_helm, fix_shell))


def test_nvidia_container_toolkit_version(check, ctk_facts, lab_config, fix_shell):
    check(tools_v.tool_version(ctk_facts, lab_config.min_ctk, fix_shell))


# ---------------------------------------------------------------------------------------------------
# NVIDIA driver and GPUs
# ---------------------------------------------------------------------------------------------------
from labcheck.verdicts import gpu as gpu_v  # noqa: E402


def test_nvidia_driver_version(check, gpu_facts, lab_config, fix_shell):
    check(gpu_v.driver(gpu_facts, lab_config.min_driver, fix_shell))


@pytest.mark.optional(reason="advisory: NVIDIA's DRA install guide asks for driver 580; the seed's 535 stays the "
                              "failure line")
def test_nvidia_driver_version_for_dra_driver(check, gpu_facts, fix_shell):
    check(gpu_v.driver_for_dra(gpu_facts, fix_shell))


def test_gpus_present(check, gpu_facts, fix_shell):
    check(gpu_v.gpus_present(gpu_facts, fix_shell))


def test_gpu_compute_capability(check, gpu_facts, lab_config, pytestconfig):
    check(gpu_v.compute_capability(gpu_facts, lab_config.min_compute_capability, rerun=rerun.of(pytestconfig)))


@pytest.mark.optional(reason="advisory: MPS thread limits need Volta (7.0); the seed's 6.0 stays the failure line")
def test_gpu_compute_capability_for_mps_limits(check, gpu_facts):
    check(gpu_v.compute_capability_for_mps_limits(gpu_facts))


@pytest.mark.optional(reason="advisory: EXCLUSIVE_PROCESS is recommended with MPS, not required (Prohibited "
                              "still fails)")
def test_gpu_compute_mode(check, gpu_facts, fix_shell):
    check(gpu_v.compute_mode(gpu_facts, fix_shell))


# ---------------------------------------------------------------------------------------------------
# CDI spec
# ---------------------------------------------------------------------------------------------------
from labcheck.verdicts import cdi as cdi_v  # noqa: E402


def test_cdi_spec_present(check, cdi_facts, cdi_provisioned, pytestconfig):
    check(cdi_v.with_generation(cdi_v.spec_present(cdi_facts, rerun=rerun.of(pytestconfig)), cdi_provisioned))


def test_cdi_spec_valid(check, cdi_facts):
    check(cdi_v.spec_valid(cdi_facts))


def test_cdi_spec_lists_this_hosts_gpus(check, cdi_facts, gpu_facts):
    check(cdi_v.device_count(cdi_facts, gpu_facts))


def test_cdi_spec_not_stale(check, cdi_facts, gpu_facts):
    check(cdi_v.not_stale(cdi_facts, gpu_facts))


def test_cdi_specs_do_not_conflict(check, cdi_facts):
    check(cdi_v.no_conflicts(cdi_facts))


# ---------------------------------------------------------------------------------------------------
# MPS
# ---------------------------------------------------------------------------------------------------
from labcheck.verdict import skipped  # noqa: E402
from labcheck.verdicts import mps as mps_v  # noqa: E402


def test_mps_control_binary(check, mps_facts, gpu_facts, fix_shell):
    check(mps_v.binary(mps_facts, gpu_facts.driver, fix_shell))


def test_mps_control_daemon_running(check, pytestconfig, mps_facts, mps_provisioned, lab_config, fix_shell):
    provisioning = not pytestconfig.getoption("--no-provision")
    failure = fix = note = ""
    if mps_provisioned is not None:
        if not mps_provisioned.ok:
            failure, fix = mps_provisioned.message, mps_provisioned.remediation
        elif mps_provisioned.changed:
            note = mps_provisioned.message
    check(mps_v.daemon(mps_facts, lab_config.mps_pipe_dir, lab_config.mps_log_dir, provisioning, failure, fix,
                       note, fix_shell))


def test_mps_pipe_directory(check, mps_facts, lab_config, fix_shell):
    check(mps_v.pipe_dir(mps_facts, lab_config.mps_pipe_dir, lab_config.mps_log_dir, fix_shell))


def test_mps_serves_a_cuda_client(check, mps_client_run, mps_daemon_action, lab_config, fix_shell):
    if isinstance(mps_client_run, str):
        check(skipped(mps_client_run))
    check(mps_v.functional(mps_client_run, lab_config.mps_log_dir, mps_daemon_action.started_pid,
                           mps_daemon_action.control or "nvidia-cuda-mps-control", fix_shell))
