"""nvidia-smi must work on the host for module 0's driver and GPU checks to pass (audit: NVML stood in for it).

The workshop runs nvidia-smi itself, so NVML (which can answer while nvidia-smi fails: another libnvidia-ml, a
missing utilities package) is a cross-check, never a substitute. nvidia-smi works when it exits 0, or 14 with its
infoROM warning; labcheck.probes.gpu.smi_exit is that one rule, used on the host and in the node.
Rows are the real H100 capture (tests/data/h100-host); the probe runs test doubles of nvidia-smi (real processes).
"""

from __future__ import annotations

import pytest

from labcheck.cmd import CmdResult
from labcheck.probes import gpu as probe
from labcheck.remedy import Shell
from labcheck.verdicts import gpu as v
from labcheck.verdicts import node as node_v
from tests.captures import first
from tests.shell_text import parses
from tests.test_gpu_verdicts import _fake_smi, nvml_from_capture

ROW = first("h100-host/nvidia-smi-query-csv-noheader.txt").output  # the real H100 row
MISMATCH = "Failed to initialize NVML: Driver/library version mismatch"
INFOROM = "WARNING: infoROM is corrupted at gpu 0000:3B:00.0"
NOT_LOADED = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the "
              "latest NVIDIA driver is installed and running.")
UBUNTU, DEBIAN, OTHER = Shell(), Shell(distro="debian"), Shell(distro="fedora")


def probed(tmp_path, monkeypatch, body: str | None, nvml: bool = True) -> probe.GpuFacts:
    """probe_gpus with nvidia-smi a shell script ``body`` (None: no nvidia-smi) and NVML answering as on the H100."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    if body is not None:
        _fake_smi(bindir, body)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setattr(probe, "probe_nvml", nvml_from_capture if nvml else lambda: probe.NvmlFacts(error="NVML: x"))
    return probe.probe_gpus((), timeout=10, use_nvml=True, proc_version=tmp_path / "absent")


def prints(stdout: str, rc: int, stderr: str = "") -> str:
    return f"cat <<'E'\n{stdout}\nE\n" + (f"cat >&2 <<'E'\n{stderr}\nE\n" if stderr else "") + f"exit {rc}\n"


def no_pass(facts: probe.GpuFacts) -> list[str]:
    """The driver and GPU checks of module 0 that passed on ``facts`` (each must not)."""
    verdicts = {"driver": v.driver(facts, "535"), "gpus_present": v.gpus_present(facts),
                "compute_capability": v.compute_capability(facts, "6.0"), "dra": v.driver_for_dra(facts),
                "mps_limits": v.compute_capability_for_mps_limits(facts), "mode": v.compute_mode(facts)}
    return [name for name, verdict in verdicts.items() if verdict.status == "pass"]


# --- the audit's reproduction ---------------------------------------------------------------------------------

def test_a_version_mismatch_fails_the_driver_check_although_nvml_answers(tmp_path, monkeypatch):
    """nvidia-smi exits 9 after a valid-looking row and the mismatch line; NVML answers: all three passed."""
    facts = probed(tmp_path, monkeypatch, prints(f"{ROW}\n{MISMATCH}", 9))
    assert facts.nvml.driver == "580.159.04"  # NVML does answer
    d = v.driver(facts, "535")
    assert d.status == "fail", d
    assert "expected `nvidia-smi` to work on this host" in d.message
    assert "exited 9: 0, GPU-683e20a0-8269-a95e-460e-0a9073519f0d, NVIDIA H100 80GB HBM3" in d.message
    assert MISMATCH in d.message and "NVML answers (driver 580.159.04, 1 GPU(s))" in d.message
    assert d.remediation.startswith("sudo reboot   # the loaded kernel module is not the version of the driver")
    assert "sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia" in d.remediation
    assert no_pass(facts) == []
    assert facts.gpus == () and v.gpus_present(facts).status == "skip"  # NVML's GPU list is not the host's


def test_a_missing_nvidia_smi_fails_with_the_utilities_of_the_driver_branch(tmp_path, monkeypatch):
    facts = probed(tmp_path, monkeypatch, None)
    d = v.driver(facts, "535", UBUNTU)
    assert d.status == "fail" and "nvidia-smi not found" in d.message and "but not its nvidia-smi" in d.message
    assert d.remediation.startswith("sudo apt-get install -y nvidia-utils-580   # the branch of the installed driver "
                                    "(NVML reports 580.159.04); a -server driver")
    assert "nvidia-utils-580-server" in d.remediation and "extra_bin_dirs" in d.remediation
    assert v.driver(facts, "535", DEBIAN).remediation.startswith("sudo apt-get install -y nvidia-smi   ")
    assert "NVIDIA's .run installer again" in v.driver(facts, "535", OTHER).remediation
    assert v.driver(facts, "535", Shell(root=True)).remediation.startswith("apt-get install -y nvidia-utils-580 ")
    assert no_pass(facts) == []


def test_a_driver_that_is_not_loaded_says_modprobe(tmp_path, monkeypatch):
    facts = probed(tmp_path, monkeypatch, prints(NOT_LOADED, 9))
    d = v.driver(facts, "535", DEBIAN)
    assert d.status == "fail" and "exited 9: NVIDIA-SMI has failed because it couldn't communicate" in d.message
    assert d.remediation.startswith("sudo modprobe nvidia && nvidia-smi   # if modprobe fails")
    assert "apt-get install -y nvidia-driver firmware-misc-nonfree" in d.remediation  # Debian's reinstall


def test_any_other_failure_shows_what_it_printed_first_and_last(tmp_path, monkeypatch):
    lines = "\n".join(f"line {i}" for i in range(1, 9))
    facts = probed(tmp_path, monkeypatch, prints(lines, 3), nvml=False)
    d = v.driver(facts, "535")
    assert d.status == "fail" and "exited 3: line 1 | line 2 | line 3 | ... line 8" in d.message
    assert d.remediation.startswith("nvidia-smi; sudo dmesg | grep -iE 'nvrm|xid' | tail   # ")
    assert parses(d.remediation) and "line 8" in d.details
    assert no_pass(facts) == []


# --- exit 14: the infoROM warning works, on the host as in the node ------------------------------------------

@pytest.mark.parametrize("where", ["stdout", "stderr"])
def test_exit_14_with_the_inforom_warning_passes_and_says_so(tmp_path, monkeypatch, where):
    body = prints(f"{INFOROM}\n{ROW}", 14) if where == "stdout" else prints(ROW, 14, INFOROM)
    facts = probed(tmp_path, monkeypatch, body)
    d = v.driver(facts, "535")
    assert d.status == "pass", d
    assert f"nvidia-smi {probe.INFOROM_OK}: {INFOROM}" in d.message and "NVML agrees" in d.message
    assert v.gpus_present(facts).status == "pass"  # the warning line is no GPU row nvidia-smi could not read
    assert v.compute_capability(facts, "6.0").status == "pass"


def test_exit_14_without_the_inforom_warning_is_a_failure(tmp_path, monkeypatch):
    facts = probed(tmp_path, monkeypatch, prints(ROW, 14))
    assert v.driver(facts, "535").status == "fail" and no_pass(facts) == []


def test_a_working_nvidia_smi_still_passes_as_before(tmp_path, monkeypatch):
    facts = probed(tmp_path, monkeypatch, prints(ROW, 0))
    d = v.driver(facts, "535")
    assert d.status == "pass" and d.message == "NVIDIA driver 580.159.04 >= 535 (from nvidia-smi; NVML agrees)"


SMI = first("h100-host/nvidia-smi.txt").output  # the real `nvidia-smi` table


@pytest.mark.parametrize("res, works", [
    (CmdResult(("nvidia-smi",), 0, SMI), True),
    (CmdResult(("nvidia-smi",), 14, SMI, INFOROM), True),
    (CmdResult(("nvidia-smi",), 14, f"{INFOROM}\n{SMI}"), True),
    (CmdResult(("nvidia-smi",), 14, SMI), False),  # 14 without the warning: not the infoROM exit
    (CmdResult(("nvidia-smi",), 9, f"{ROW}\n{MISMATCH}"), False),
    (CmdResult(("nvidia-smi",), 18, MISMATCH), False),
    (CmdResult(("nvidia-smi",), None, timed_out=True), False),
    (CmdResult(("nvidia-smi",), None, missing=True), False),
])
def test_host_and_node_read_nvidia_smis_exit_the_same_way(res, works):
    """One rule: the node's three nvidia-smi checks pass exactly when the host's reading says it worked."""
    assert probe.smi_exit(res).works is works
    node = "workshop-dra-control-plane"
    assert (node_v.nvidia_smi(res, node, "/usr/bin/nvidia-smi").status == "pass") is works
    assert (node_v.workshop_nvidia_smi(res, node, "workshop-dra", "kc.yaml").status == "pass") is works
    gpu = probe.Gpu(0, "GPU-683e20a0-8269-a95e-460e-0a9073519f0d", "NVIDIA H100 80GB HBM3", (9, 0), "Default")
    query = CmdResult(res.argv, res.rc, res.stdout.replace(SMI, ROW), res.stderr, res.timed_out, res.missing)
    assert (node_v.gpus_in_node(query, [gpu], node, "workshop-dra", "kc.yaml").status == "pass") is works


@pytest.mark.parametrize("nvml_driver", ["580.159.04\nrm -rf ~ #", "garbage $(id)", ""])
def test_the_utilities_fix_is_one_shell_line_whatever_nvml_reports(nvml_driver):
    """NVML's version string is the driver's answer, not ours: it never leaves the comment or breaks the line."""
    for shell in (UBUNTU, DEBIAN, OTHER):
        fix = v.install_utilities(shell, nvml_driver)
        assert parses(fix) and "\n" not in fix, fix
        assert "rm -rf" not in fix.split("#")[0] and "$(id)" not in fix.split("#")[0], fix
