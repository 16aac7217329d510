"""No `sudo` in a fix shown to root (issue 10 item 4), for the remediations whose facts carry their own fix
command (CDI: module 0 and the node; the kind config's missing folders) and for module 1's host-side fixes.
Seen on the GPU host as root: `sudo nvidia-ctk cdi generate ...` and `sudo mkdir -p /etc/cdi`."""

from __future__ import annotations

import dataclasses
import re

from labcheck import cdi, kindconfig
from labcheck.cmd import CmdResult
from labcheck.probes.cdi import CdiFacts, probe_cdi
from labcheck.remedy import Shell, this_host
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import node as v
from tests.captures import first

ROOT, USER = Shell(root=True), Shell(root=False)


def _facts(tmp_path, shell: Shell, spec_text: str | None = None) -> CdiFacts:
    if spec_text is not None:
        (tmp_path / "nvidia.yaml").write_text(spec_text)
    facts = probe_cdi([str(tmp_path)], None, spec_path=str(tmp_path / "nvidia.yaml"))
    return dataclasses.replace(facts, shell=shell)


def test_cdi_generate_is_prefixed_only_for_a_user(tmp_path):
    as_root = "nvidia-ctk cdi generate '--output=/etc/cdi/my spec.yaml'"
    assert cdi.generate_command("/etc/cdi/my spec.yaml", ROOT) == as_root
    assert cdi.generate_command("/etc/cdi/my spec.yaml", USER) == "sudo " + as_root
    missing = cdi_v.spec_present(_facts(tmp_path, ROOT))
    assert missing.status == "fail" and "sudo " not in missing.remediation
    assert missing.remediation.startswith("nvidia-ctk cdi generate")
    assert cdi_v.spec_present(_facts(tmp_path, USER)).remediation.startswith("sudo nvidia-ctk cdi generate")


def test_cdi_backup_before_regenerating_has_no_sudo_for_root(tmp_path):
    bad = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: 5\n"
    verdict = cdi_v.spec_valid(_facts(tmp_path, ROOT, bad))
    assert verdict.status == "fail" and "sudo " not in verdict.remediation
    assert re.match(rf"cp -p {tmp_path}/nvidia\.yaml {tmp_path}/nvidia\.yaml\.labcheck-[0-9]{{14}}\.bak && nvidia-ctk",
                    verdict.remediation), verdict.remediation
    assert cdi_v.spec_valid(_facts(tmp_path, USER, bad)).remediation.startswith("sudo cp -p ")


def test_the_probe_fills_in_who_runs_the_suite(tmp_path):
    assert probe_cdi([str(tmp_path)], None).shell == this_host()


def test_missing_kind_config_folder_fix_is_quoted_and_fits_the_user(tmp_path):
    gone = tmp_path / "no such dir"
    path = tmp_path / "kind.yaml"
    path.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
                    f"  extraMounts:\n  - hostPath: {gone}\n    containerPath: /etc/cdi\n")
    _, dirs = kindconfig.missing_host_paths(kindconfig.load(str(path)))
    assert len(dirs) == 1
    sudo = "" if this_host().root else "sudo "
    assert dirs[0].fix.startswith(f"{sudo}mkdir -p -- '{gone}'")


def test_module1_host_side_fixes_have_no_sudo_for_root():
    shm = v.shm(1024, 8 * 1024**3, CmdResult(("df",), 0), "n-control-plane", ROOT)
    assert shm.status == "fail" and shm.remediation.startswith("mount -o remount,size=8G /dev/shm")
    assert v.shm(1024, 8 * 1024**3, CmdResult(("df",), 0), "n", USER).remediation.startswith("sudo mount")
    devices = v.host_devices([], ROOT)
    assert devices.status == "fail" and "sudo " not in devices.remediation
    assert "sudo nvidia-modprobe" in v.host_devices([], USER).remediation
    pipe = v.shared_pipe_conflict([42], "/tmp/nvidia-mps", "n-control-plane", CmdResult(("ps",), 0), shell=ROOT)
    assert pipe.status == "fail"
    assert pipe.remediation.startswith("kill 42 && ")  # by pid: a quit through the shared folder may reach the node's
    user = v.shared_pipe_conflict([42], "/tmp/nvidia-mps", "n-control-plane", CmdResult(("ps",), 0), shell=USER)
    assert user.remediation.startswith("sudo kill 42 && ")


def test_nvidia_smi_exit_14_with_an_inforom_warning_passes_as_the_workshop_counts_it():
    out = first("h100-host/nvidia-smi.txt").output
    res = CmdResult(("nvidia-smi",), 14, out, "WARNING: infoROM is corrupted at gpu 0000:00:05.0")
    verdict = v.nvidia_smi(res, "workshop-dra-control-plane", "/usr/bin/nvidia-smi")
    assert verdict.status == "pass" and "infoROM" in verdict.message and "14" in verdict.message
    broken = CmdResult(("nvidia-smi",), 14, "", "some other failure")
    assert v.nvidia_smi(broken, "workshop-dra-control-plane", "/usr/bin/nvidia-smi").status == "fail"
