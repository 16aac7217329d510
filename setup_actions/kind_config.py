"""Setup action: write manifests/kind-config.yaml from this host's driver files.

``plan`` returns what writing would do (created / unchanged / the unified diff) without writing;
``apply`` writes atomically, backing up a different existing file first. Running it twice on an
unchanged host changes nothing (the generated text is deterministic).
"""

from __future__ import annotations

import contextlib
import os

from labcheck import kindconfig
from labcheck.config import LabConfig
from labcheck.probes.driver_files import Inspection, inspect_host


def inspect(cfg: LabConfig) -> Inspection:
    return inspect_host(cfg.extra_lib_dirs, cfg.extra_bin_dirs, timeout=cfg.command_timeout)


def generate(cfg: LabConfig, inspection: Inspection) -> str:
    return kindconfig.render(kindconfig.build(inspection, cfg))


def plan(cfg: LabConfig, inspection: Inspection) -> kindconfig.WriteOutcome:
    return kindconfig.plan_write(cfg.kind_config_path, generate(cfg, inspection))


def apply(cfg: LabConfig, inspection: Inspection) -> kindconfig.WriteOutcome:
    """Write the config, and create the MPS pipe folder it mounts (else Docker creates it when the node starts)."""
    with contextlib.suppress(OSError):  # e.g. no permission: the host-paths check then says so
        os.makedirs(cfg.mps_pipe_dir, exist_ok=True)
    return kindconfig.write(cfg.kind_config_path, generate(cfg, inspection))
