"""Config generation on this machine's real NVIDIA driver files (runs on the GPU host; skips elsewhere)."""

from __future__ import annotations

import os

import pytest

from labcheck import kindconfig
from labcheck.config import LabConfig
from labcheck.probes.driver_files import inspect_host
from setup_actions import kind_config as kind_config_action

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def inspection():
    cfg = LabConfig()
    ins = inspect_host(cfg.extra_lib_dirs, cfg.extra_bin_dirs)
    if not any(f.ok for f in ins.libraries):
        pytest.skip("no NVIDIA driver libraries on this machine")
    return ins


def test_real_driver_files_are_found_and_resolve(inspection):
    for f in inspection.files:
        assert f.ok, f.problem
        assert os.path.isfile(f.real) and not os.path.islink(f.real)
    assert any(d.name == "nvidiactl" for d in inspection.devices)


def test_generated_config_for_this_host_is_valid_and_mounts_every_real_file(inspection, tmp_path):
    cfg = LabConfig(kind_config_path=str(tmp_path / "kind-config.yaml"))
    out = kind_config_action.apply(cfg, inspection)
    assert out.ok and out.action == "create"
    parsed = kindconfig.load(cfg.kind_config_path)
    assert parsed.problems == ()
    mounted = {m.host_path for m in parsed.mounts}
    for f in inspection.files:
        assert f.path in mounted and f.real in mounted
    assert kindconfig.missing_host_paths(parsed)[0] == []
    assert not kind_config_action.apply(cfg, inspection).changed  # idempotent on real data
