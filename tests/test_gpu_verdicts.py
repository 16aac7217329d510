"""Driver/GPU parsers and verdicts on the real H100 captures; the probe against real (fake-binary) processes."""

from __future__ import annotations

import re

import pytest

from labcheck import cmd
from labcheck.probes import gpu as probe
from labcheck.probes.gpu import Gpu, GpuFacts, NvmlFacts, SmiQuery
from labcheck.remedy import Shell
from labcheck.verdicts import gpu as v
from tests import needs
from tests.captures import first, text

H100_UUID = "GPU-683e20a0-8269-a95e-460e-0a9073519f0d"


def nvml_from_capture() -> NvmlFacts:
    """tests/data/h100-host/pynvml.txt: what nvidia-ml-py read on the H100 host."""
    lines = text("h100-host/pynvml.txt").splitlines()
    driver = lines[0].split()[1]
    cuda = probe.cuda_from_int(int(lines[1].split()[1]))
    m = re.match(r"(\d+) (.+) (GPU-\S+) \((\d+), (\d+)\) (\d+) (\d+)", lines[3])
    gpu = Gpu(int(m[1]), m[3], m[2], (int(m[4]), int(m[5])), probe.NVML_COMPUTE_MODES[int(m[6])],
              int(m[7]) // 2**20)
    return NvmlFacts(driver, cuda, (gpu,))


def smi_from_capture() -> SmiQuery:
    cap = first("h100-host/nvidia-smi-query-csv-noheader.txt")
    gpus, driver = probe.parse_query_csv(cap.output)
    result = cmd.CmdResult(("nvidia-smi", *probe.QUERY_ARGS), cap.rc, cap.output)
    return SmiQuery("/usr/local/nvidia/bin/nvidia-smi", result, tuple(gpus), driver)


@pytest.fixture
def h100() -> GpuFacts:
    kmod = probe.parse_proc_version(first("h100-host/proc-driver-version.txt").output)
    return GpuFacts(smi_from_capture(), nvml_from_capture(), "13.0", kmod)


def test_query_csv_parses_the_h100():
    gpus, driver = probe.parse_query_csv(first("h100-host/nvidia-smi-query-csv-noheader.txt").output)
    assert driver == "580.159.04"
    assert gpus == [Gpu(0, H100_UUID, "NVIDIA H100 80GB HBM3", (9, 0), "Default", 81559)]


def test_query_csv_with_header_and_units_parses_too():
    gpus, driver = probe.parse_query_csv(first("h100-host/nvidia-smi-query-csv.txt").output)
    assert driver == "580.159.04" and gpus[0].memory_mib == 81559 and gpus[0].compute_cap == (9, 0)


def test_versions_from_smi_and_proc():
    assert probe.parse_cuda_version(first("h100-host/nvidia-smi-version.txt").output) == "13.0"
    assert probe.parse_cuda_version(first("h100-host/nvidia-smi.txt").output) == "13.0"
    assert probe.parse_proc_version(first("h100-host/proc-driver-version.txt").output) == "580.159.04"
    assert probe.parse_proc_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug") \
        == "535.104.05"


def test_nvml_capture_agrees_with_nvidia_smi(h100):
    assert h100.nvml.driver == h100.smi.driver == "580.159.04"
    assert [g.uuid for g in h100.nvml.gpus] == [g.uuid for g in h100.smi.gpus]
    assert h100.nvml.cuda == "13.0"


def test_h100_passes_driver_gpus_and_compute_capability(h100):
    d = v.driver(h100, "535")
    assert d.status == "pass" and "580.159.04 >= 535" in d.message and "NVML agrees" in d.message
    assert v.gpus_present(h100).status == "pass"
    cc = v.compute_capability(h100, "6.0")
    assert cc.status == "pass" and "GPU 0 9.0" in cc.message


def test_default_compute_mode_warns_with_the_command(h100):
    verdict = v.compute_mode(h100)
    assert verdict.status == "warn" and "Default" in verdict.message
    assert verdict.remediation == "sudo nvidia-smi -i 0 -c EXCLUSIVE_PROCESS"


def _with(facts: GpuFacts, **gpu_changes) -> GpuFacts:
    g = facts.smi.gpus[0]
    new = Gpu(**{**g.__dict__, **gpu_changes})
    return GpuFacts(SmiQuery(facts.smi.path, facts.smi.result, (new,), facts.smi.driver), NvmlFacts(),
                    facts.cuda_version, facts.kernel_module)


def test_exclusive_process_passes_and_prohibited_fails(h100):
    assert v.compute_mode(_with(h100, compute_mode="Exclusive_Process")).status == "pass"
    bad = v.compute_mode(_with(h100, compute_mode="Prohibited"))
    assert bad.status == "fail" and "EXCLUSIVE_PROCESS" in bad.remediation


def test_old_gpu_fails_compute_capability(h100):
    verdict = v.compute_capability(_with(h100, compute_cap=(5, 2), name="Tesla M60"), "6.0")
    assert verdict.status == "fail" and "Tesla M60 has 5.2" in verdict.message


def test_unknown_compute_capability_fails_rather_than_passing(h100):
    verdict = v.compute_capability(_with(h100, compute_cap=None), "6.0")
    assert verdict.status == "fail" and "cannot read" in verdict.message


def test_unreadable_minimum_compute_capability_fails_rather_than_passing_every_gpu(h100):
    verdict = v.compute_capability(h100, "pascal")
    assert verdict.status == "fail" and "'pascal'" in verdict.message
    assert "min_compute_capability" in verdict.remediation


def test_old_driver_fails_with_install_command(h100):
    verdict = v.driver(h100, "600")
    assert verdict.status == "fail" and "older than 600" in verdict.message
    assert "apt-get install" in verdict.remediation


def test_kernel_module_mismatch_needs_a_reboot(h100):
    facts = GpuFacts(h100.smi, h100.nvml, h100.cuda_version, "570.86.15")
    verdict = v.driver(facts, "535")
    assert verdict.status == "fail" and verdict.remediation == "sudo reboot"


def test_nvml_disagreeing_warns(h100):
    facts = GpuFacts(h100.smi, NvmlFacts("575.57.08", "12.9", h100.nvml.gpus), "13.0", "")
    assert v.driver(facts, "535").status == "warn"


def test_no_driver_fails_and_gpu_checks_skip():
    facts = GpuFacts(SmiQuery(None, None, error="nvidia-smi not found on PATH or in the extra driver folders"),
                     NvmlFacts(error="NVML: NVML Shared Library Not Found"))
    d = v.driver(facts, "535")
    assert d.status == "fail" and "nvidia-smi not found" in d.message and "NVML Shared Library" in d.message
    assert "ubuntu-drivers install" in d.remediation
    assert v.gpus_present(facts).status == "skip"
    assert v.compute_capability(facts, "6.0").status == "skip"
    assert v.compute_mode(facts).status == "skip"


def test_nvml_alone_is_not_enough_when_nvidia_smi_is_missing(h100):
    """NVML is a cross-check, never a substitute: the workshop runs nvidia-smi (tests/test_host_nvidia_smi.py)."""
    facts = GpuFacts(SmiQuery(None, None, error="nvidia-smi not found"), h100.nvml)
    d = v.driver(facts, "535")
    assert d.status == "fail" and "NVML answers (driver 580.159.04, 1 GPU(s))" in d.message
    assert v.gpus_present(facts).status == "skip"


def test_driver_answering_without_gpus_fails_gpus_present(h100):
    facts = GpuFacts(SmiQuery(h100.smi.path, h100.smi.result, (), "580.159.04"), NvmlFacts("580.159.04", "13.0", ()))
    verdict = v.gpus_present(facts)
    assert verdict.status == "fail" and "lists none" in verdict.message


# --- the probe against real processes ----------------------------------------------------------------

def _fake_smi(folder, body: str):
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "nvidia-smi"
    f.write_text("#!/bin/sh\n" + body)
    f.chmod(0o755)
    return f


def test_probe_reads_a_driver_through_nvidia_smi_in_extra_bin_dirs(tmp_path, monkeypatch):
    """A test double of nvidia-smi (prints the H100 capture), found in an extra driver folder, not on PATH."""
    out = first("h100-host/nvidia-smi-query-csv-noheader.txt").output
    ver = first("h100-host/nvidia-smi-version.txt").output
    _fake_smi(tmp_path / "nvbin", f'case "$1" in --version) cat <<"E"\n{ver}\nE\n;; *) cat <<"E"\n{out}\nE\n;; esac\n')
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    proc_version = tmp_path / "version"
    proc_version.write_text(first("h100-host/proc-driver-version.txt").output)
    facts = probe.probe_gpus((str(tmp_path / "nvbin"),), timeout=10, use_nvml=False, proc_version=proc_version)
    assert facts.smi.path == str(tmp_path / "nvbin" / "nvidia-smi")
    assert facts.driver == "580.159.04" and facts.cuda_version == "13.0" and facts.kernel_module == "580.159.04"
    assert v.driver(facts, "535").status == "pass"


def test_hung_nvidia_smi_times_out_and_the_check_names_the_command(tmp_path, monkeypatch):
    """A test double of a hung driver: nvidia-smi that never answers (as on a GPU stuck after an Xid error)."""
    _fake_smi(tmp_path / "bin", "sleep 60\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    facts = probe.probe_gpus((), timeout=0.5, use_nvml=False, proc_version=tmp_path / "absent")
    assert facts.smi.result.timed_out
    verdict = v.driver(facts, "535")
    assert verdict.status == "fail"
    assert "nvidia-smi --query-gpu=" in verdict.message and "hung: no answer within 0.5s" in verdict.message
    assert "modprobe nvidia" in verdict.remediation


def test_nvml_is_not_consulted_after_nvidia_smi_hung(tmp_path, monkeypatch):
    """NVML runs in-process without a timeout; after a hung nvidia-smi it would hang the run the same way.
    Here probe_nvml stands for that wedged nvmlInit: it must not be called."""
    _fake_smi(tmp_path / "bin", "sleep 60\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setattr(probe, "probe_nvml", lambda: pytest.fail("NVML consulted after nvidia-smi hung"))
    facts = probe.probe_gpus((), timeout=0.5, use_nvml=True, proc_version=tmp_path / "absent")
    assert facts.smi.result.timed_out and "NVML not consulted" in facts.nvml.error
    assert v.driver(facts, "535").status == "fail"


def test_nvidia_smi_error_exit_is_reported(tmp_path, monkeypatch):
    """A test double of nvidia-smi on a host whose driver is not loaded (the real message and exit code 9)."""
    _fake_smi(tmp_path / "bin", "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                                "driver. Make sure that the latest NVIDIA driver is installed and running.\"\nexit 9\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    facts = probe.probe_gpus((), timeout=5, use_nvml=False, proc_version=tmp_path / "absent")
    verdict = v.driver(facts, "535")
    assert verdict.status == "fail" and "exited 9" in verdict.message and "couldn't communicate" in verdict.message


def test_this_machine_gives_the_driver_verdict_it_deserves_not_a_crash():
    """The real probe on this machine: a pass only where a real driver answers, else the install command."""
    facts = probe.probe_gpus(("/nonexistent",), timeout=10)
    verdict = v.driver(facts, "535")
    if needs.missing("gpu") is None:
        assert verdict.status == "pass" and verdict.message.startswith(f"NVIDIA driver {facts.driver} >= 535"), verdict
    else:
        assert verdict.status == "fail", verdict
        assert verdict.message.startswith("expected an NVIDIA driver >= 535; none answered: ")
        assert "nvidia-smi not found" in verdict.message and verdict.remediation == v.install_driver(v.DEFAULT)


def test_old_nvidia_smi_without_compute_cap_is_asked_again(tmp_path, monkeypatch):
    """A test double of an old nvidia-smi that rejects the compute_cap field (its real error text, exit 2)."""
    row = "0, GPU-683e20a0-8269-a95e-460e-0a9073519f0d, Tesla P100-PCIE-16GB, 470.82.01, Default, 16280"
    _fake_smi(tmp_path / "bin", 'case "$1" in *compute_cap*) echo \'Field "compute_cap" is not a valid field to '
                                f"query.'; exit 2;; esac\necho '{row}'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    facts = probe.probe_gpus((), timeout=5, use_nvml=False, proc_version=tmp_path / "absent")
    assert facts.driver == "470.82.01" and facts.gpus[0].name == "Tesla P100-PCIE-16GB"
    assert facts.gpus[0].compute_cap is None and facts.gpus[0].compute_mode == "Default"
    assert v.driver(facts, "535").status == "fail"  # and older than the workshop's minimum
    assert v.compute_capability(facts, "6.0").status == "fail"  # unknown is not a pass


# --- the DRA driver's advisory: driver >= 580 (NVIDIA's DRA install guide) ------------------------------------

REAL_DRIVER = "580.159.04"  # the H100 and H200 hosts' driver (real captures); no capture of an older driver exists


def h100_running(version: str, kernel_module: str | None = None) -> GpuFacts:
    """The real H100 captures as a host with driver ``version`` would print them: the same nvidia-smi query line,
    /proc/driver/nvidia/version and NVML answer with only the version string changed (DERIVED, not captured: no
    host with a 535..579 driver was available), parsed by the product's own parsers."""
    csv = first("h100-host/nvidia-smi-query-csv-noheader.txt").output.replace(REAL_DRIVER, version)
    gpus, driver = probe.parse_query_csv(csv)
    smi = SmiQuery("/usr/local/nvidia/bin/nvidia-smi", cmd.CmdResult(("nvidia-smi", *probe.QUERY_ARGS), 0, csv),
                   tuple(gpus), driver)
    proc = first("h100-host/proc-driver-version.txt").output.replace(REAL_DRIVER, kernel_module or version)
    nvml = nvml_from_capture()
    return GpuFacts(smi, NvmlFacts(version, nvml.cuda, nvml.gpus), "13.0", probe.parse_proc_version(proc))


def test_real_580_driver_passes_the_dra_advisory_with_its_version(h100):
    verdict = v.driver_for_dra(h100)
    assert verdict.status == "pass", verdict
    assert verdict.message == ("NVIDIA driver 580.159.04 >= 580 (NVIDIA's DRA install guide; seen: driver "
                               "580.159.04 (nvidia-smi), kernel module 580.159.04)")


@pytest.mark.parametrize("version", ["535.104.05", "550.163.01", "570.86.15", "575.57.08", "579.99"])
def test_driver_535_to_579_passes_the_workshop_but_warns_for_the_dra_driver(version):
    facts = h100_running(version)
    assert v.driver(facts, "535").status == "pass"  # the seed's minimum: still a pass
    verdict = v.driver_for_dra(facts, Shell(root=False, distro="ubuntu"))
    assert verdict.status == "warn", verdict
    assert verdict.message.startswith(f"driver {version} (nvidia-smi), kernel module {version} is below 580, which "
                                      "NVIDIA's DRA install guide asks for")
    assert verdict.remediation == "sudo apt-get install -y nvidia-driver-580 && sudo reboot"


@pytest.mark.parametrize(("shell", "fix"), [
    (Shell(root=True, distro="ubuntu"), "apt-get install -y nvidia-driver-580 && reboot"),
    (Shell(root=False, distro="debian"), "install NVIDIA driver 580 or newer from NVIDIA's repository as its guide "
     f"says for debian ({v.DRIVER_GUIDE}), then sudo reboot"),
])
def test_dra_driver_upgrade_is_the_command_of_this_host(shell, fix):
    """Debian's own nvidia-driver is an older branch: its fix is NVIDIA's repository, not `apt-get install
    nvidia-driver` (the 535 criterion's fix there)."""
    assert v.driver_for_dra(h100_running("570.86.15"), shell).remediation == fix


def test_580_library_over_an_older_running_kernel_module_warns():
    """After an upgrade without a reboot the old module still runs: the DRA driver gets that one."""
    verdict = v.driver_for_dra(h100_running("580.65.06", kernel_module="570.86.15"))
    assert verdict.status == "warn" and verdict.message.startswith("kernel module 570.86.15 is below 580")


def test_first_580_release_passes():
    verdict = v.driver_for_dra(h100_running("580.65.06"))
    assert verdict.status == "pass" and "580.65.06 >= 580" in verdict.message


def test_no_driver_or_an_unreadable_version_skips_the_dra_advisory_never_passes():
    absent = GpuFacts(SmiQuery(None, None, error="nvidia-smi not found on PATH or in the extra driver folders"),
                      NvmlFacts(error="NVML: NVML Shared Library Not Found"))
    verdict = v.driver_for_dra(absent)
    assert verdict.status == "skip" and "nvidia-smi not found" in verdict.message and "NVML Shared" in verdict.message
    garbled = h100_running("N/A")
    verdict = v.driver_for_dra(garbled)
    assert verdict.status == "skip" and "cannot read a version from driver N/A" in verdict.message


def test_probe_of_an_older_driver_feeds_the_dra_advisory(tmp_path, monkeypatch):
    """A test double of nvidia-smi printing the H100 capture as a 570 driver would (derived), found by the probe."""
    out = first("h100-host/nvidia-smi-query-csv-noheader.txt").output.replace(REAL_DRIVER, "570.86.15")
    _fake_smi(tmp_path / "nvbin", f'cat <<"E"\n{out}\nE\n')
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    proc_version = tmp_path / "version"
    proc_version.write_text(first("h100-host/proc-driver-version.txt").output.replace(REAL_DRIVER, "570.86.15"))
    facts = probe.probe_gpus((str(tmp_path / "nvbin"),), timeout=10, use_nvml=False, proc_version=proc_version)
    assert facts.driver == "570.86.15" and v.driver_for_dra(facts).status == "warn"


SMI_RUNS = {  # every way the driver check sees nvidia-smi give no driver: its CmdResult, what the message says of it
    "not run": (None, "nvidia-smi was not run"),
    "missing": (cmd.CmdResult(("nvidia-smi",), None, missing=True), "`nvidia-smi` not found on PATH"),
    "hung": (cmd.CmdResult(("nvidia-smi",), None, timed_out=True, timeout=30), "`nvidia-smi` hung: no answer within "
                                                                               "30s"),
    "failed": (cmd.CmdResult(("nvidia-smi",), 9, "NVIDIA-SMI has failed because it couldn't communicate with the "
                                                "NVIDIA driver.\n"), "`nvidia-smi` exited 9: NVIDIA-SMI has failed"),
    "exit 0, nothing read": (cmd.CmdResult(("nvidia-smi",), 0, ""), "`nvidia-smi` exited 0 but reported no driver "
                                                                    "version"),
}


@pytest.mark.parametrize("run", SMI_RUNS)
@pytest.mark.parametrize("error", ["", "nvidia-smi exited 9"], ids=["no reason", "reason"])
@pytest.mark.parametrize("nvml", [NvmlFacts(), NvmlFacts("580.159.04", "13.0", ())], ids=["no NVML", "NVML"])
def test_the_driver_message_reads_right_whatever_nvidia_smi_said(run, error, nvml):
    """An empty probe reason printed `...(the workshop runs it): ; NVML answers ...`: the message names what
    nvidia-smi did in every combination, with no empty field between its separators."""
    result, said = SMI_RUNS[run]
    message = v.driver(GpuFacts(SmiQuery("/usr/bin/nvidia-smi", result, error=error), nvml), "535").message
    assert not re.search(r"[:;.]\s*[;:(]|[:;]\s*$|\(\s*\)|\s{2}", message), message
    assert (error or said) in message, message
    if nvml.driver and not result or result and not result.timed_out and nvml.driver:
        assert message.endswith(("so the driver is there", "so the driver is there, but not its nvidia-smi")), message
