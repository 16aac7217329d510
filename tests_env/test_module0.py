"""Module 0: host prerequisites (../shared/seeds/module0-prerequisites.md).

Each test names the criterion it checks; the logic lives in labcheck.verdicts, the facts come
from session fixtures in fixtures/.
"""

import pytest

from labcheck.verdicts import host

pytestmark = pytest.mark.module0


def test_lab_config_valid(check, lab_config_loaded):
    check(host.lab_config(lab_config_loaded[1]))


def test_linux_kernel_version(check, host_facts, lab_config):
    check(host.linux_kernel(host_facts, lab_config.min_kernel))


# ---------------------------------------------------------------------------------------------------
# Docker engine and NVIDIA runtime
# ---------------------------------------------------------------------------------------------------


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
