"""Module 0: host prerequisites (../shared/seeds/module0-prerequisites.md).

Each test names the criterion it checks; the logic lives in labcheck.verdicts, the facts come
from session fixtures in fixtures/.
"""

import pytest

from labcheck.verdicts import docker as docker_verdicts
from labcheck.verdicts import host

pytestmark = pytest.mark.module0


def test_lab_config_valid(check, lab_config_loaded):
    check(host.lab_config(lab_config_loaded[1]))


def test_linux_kernel_version(check, host_facts, lab_config):
    check(host.linux_kernel(host_facts, lab_config.min_kernel))


# ---------------------------------------------------------------------------------------------------
# Docker engine and NVIDIA runtime
# ---------------------------------------------------------------------------------------------------

def test_docker_cli_present(check, docker_cli):
    check(docker_verdicts.cli_present(docker_cli))


def test_docker_engine_reachable(check, docker_engine):
    check(docker_verdicts.engine_reachable(docker_engine))


def test_docker_engine_version(check, docker_engine, lab_config):
    check(docker_verdicts.engine_version(docker_engine, lab_config.min_docker))


def test_docker_daemon_json_valid(check, docker_daemon_json):
    check(docker_verdicts.daemon_json_valid(docker_daemon_json))


def test_nvidia_runtime_registered(check, docker_engine, docker_daemon_json, docker_runtime_setup, lab_config):
    note = docker_runtime_setup.note() if docker_runtime_setup.status in ("changed", "failed") else ""
    check(docker_verdicts.runtime_registered(docker_engine, docker_daemon_json, lab_config.docker_runtime_name, note))


def test_nvidia_runtime_usable(check, docker_engine, nvidia_runtime_probe, host_gpu_count):
    check(docker_verdicts.runtime_usable(docker_engine, nvidia_runtime_probe, host_gpu_count))


# ---------------------------------------------------------------------------------------------------
# Kind, Helm, NVIDIA Container Toolkit
# ---------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------
# NVIDIA driver and GPUs
# ---------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------
# CDI spec
# ---------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------
# MPS
# ---------------------------------------------------------------------------------------------------
