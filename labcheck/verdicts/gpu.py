"""Verdicts on the NVIDIA driver and GPUs (module 0: driver >= 535, compute capability >= 6.0; advisories: driver
>= 580 for NVIDIA's DRA driver, compute capability >= 7.0 for MPS limits)."""

from __future__ import annotations

import re
import shlex

from labcheck import config, versions
from labcheck.probes.gpu import GpuFacts, SmiQuery, missing_indexes
from labcheck.remedy import DEBIAN, DEFAULT, UBUNTU, Shell, with_note
from labcheck.rerun import DEFAULT as DEFAULT_RERUN
from labcheck.rerun import Rerun
from labcheck.verdict import Verdict, failed, passed, skipped, warned

DRIVER_GUIDE = "https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/"
# NVIDIA's DRA install guide (cloud-native-docs gpu-operator/dra-intro-install, ../shared/FIELD-NOTES.md) asks for
# driver >= 580 for the DRA driver the workshop's module 2 installs; the seed's 535 stays the failure line.
DRA_GUIDE_DRIVER = (580,)
# Debian ships the driver in non-free: https://wiki.debian.org/NvidiaGraphicsDrivers
DEBIAN_COMPONENTS = "(with contrib non-free non-free-firmware enabled in /etc/apt/sources.list)"
# "Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error": a PCI bus id, which nvidia-smi -i takes
_BUS_ID = re.compile(r"[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]")


def install_driver(shell: Shell = DEFAULT) -> str:
    """The driver install of this distribution: ubuntu-drivers exists only on Ubuntu."""
    if shell.family == UBUNTU:
        return shell.sudo("ubuntu-drivers install", "reboot") + "   # then check with: nvidia-smi"
    if shell.family == DEBIAN:
        return (shell.sudo("apt-get update", "apt-get install -y nvidia-driver firmware-misc-nonfree", "reboot")
                + f"   {DEBIAN_COMPONENTS}; then check with: nvidia-smi")
    return f"install the NVIDIA driver for {shell.distro} as its guide says ({DRIVER_GUIDE}), then reboot"


def reload_driver(shell: Shell = DEFAULT) -> str:
    return (f"{shell.sudo('dmesg')} | grep -iE 'nvrm|xid' | tail; then reload the driver: "
            + shell.sudo("rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia", "modprobe nvidia")
            + f", or {shell.sudo('reboot')}")


def upgrade_driver(minimum: str, shell: Shell = DEFAULT) -> str:
    """The upgrade to driver branch ``minimum`` (its major number) on Ubuntu; the distribution's install elsewhere.

    WHY the hint names 580: it is the branch NVIDIA's DRA install guide asks for (DRA_GUIDE_DRIVER), the one the
    workshop's next module needs; a minimum at or above it needs no hint. WHY NVIDIA's guide for 580 elsewhere:
    Debian's own nvidia-driver package is an older branch (535 in bookworm, 550 in trixie), so installing it
    would not reach 580.
    """
    branch = versions.parse(minimum)[0]
    if shell.family == UBUNTU:
        hint = "" if branch >= DRA_GUIDE_DRIVER[0] else \
            f"   # or a newer branch, e.g. nvidia-driver-{DRA_GUIDE_DRIVER[0]} (NVIDIA's DRA install guide)"
        return shell.sudo(f"apt-get install -y nvidia-driver-{branch}", "reboot") + hint
    if branch >= DRA_GUIDE_DRIVER[0]:
        return (f"install NVIDIA driver {branch} or newer from NVIDIA's repository as its guide says for "
                f"{shell.distro} ({DRIVER_GUIDE}), then {shell.sudo('reboot')}")
    return install_driver(shell)


def _smi_said(smi: SmiQuery) -> str:
    """What nvidia-smi did, for a message; never "" (an empty probe reason printed "(...): ; NVML answers ...")."""
    if smi.error:
        return smi.error
    r = smi.result
    if r is None:
        return "nvidia-smi was not run"
    if r.ok:
        return f"`{r.cmdline}` exited 0 but reported no driver version"
    return r.describe().rstrip(". ")  # its last line may end a sentence; the message goes on after it


def _no_driver_reason(facts: GpuFacts) -> str:
    return "; ".join(filter(None, (_smi_said(facts.smi), facts.nvml.error)))


def install_utilities(shell: Shell = DEFAULT, nvml_driver: str = "") -> str:
    """nvidia-smi for a driver that is installed without it (NVML answers, so the driver's libraries are there): the
    utilities package of the driver's branch (``nvml_driver``: the version NVML reports, "" unknown).

    WHY a note on which package: Ubuntu ships nvidia-smi in nvidia-utils-<branch>, and in nvidia-utils-<branch>-server
    for the -server drivers; Debian in nvidia-smi; a driver from NVIDIA's .run installer or another distribution
    brings its own: the right command depends on how the driver was installed, so the fix says what to check."""
    parsed = versions.parse(nvml_driver)
    elsewhere = "nvidia-smi installed in another folder: add that folder to extra_bin_dirs in the lab config"
    if shell.family == UBUNTU:
        if not parsed:
            return with_note("dpkg -l 'nvidia-driver-*'", "names the installed driver's branch; then "
                             + shell.sudo("apt-get install -y nvidia-utils-BRANCH") + " (-server too for a -server "
                             "driver)", elsewhere)
        branch = parsed[0]
        server = f"a -server driver (dpkg -l 'nvidia-driver-*' lists it) needs nvidia-utils-{branch}-server instead"
        return with_note(shell.sudo(f"apt-get install -y nvidia-utils-{branch}"),
                         f"the branch of the installed driver (NVML reports {nvml_driver})", server, elsewhere)
    if shell.family == DEBIAN:
        return with_note(shell.sudo("apt-get install -y nvidia-smi"), DEBIAN_COMPONENTS,
                         "a driver from NVIDIA's .run installer brings its own: run that installer again", elsewhere)
    return with_note("", f"install nvidia-smi from where the driver came from (the {shell.distro} driver packages, or "
                         f"NVIDIA's .run installer again: {DRIVER_GUIDE})", elsewhere)


def _smi_fix(facts: GpuFacts, shell: Shell) -> str:
    """The fix for an nvidia-smi that ran and failed, after what it printed."""
    out = facts.smi.result.output.lower() if facts.smi.result is not None else ""
    if "version mismatch" in out:  # "Failed to initialize NVML: Driver/library version mismatch"
        return (shell.sudo("reboot") + "   # the loaded kernel module is not the version of the driver libraries (a "
                "driver upgrade or downgrade without a reboot; cat /proc/driver/nvidia/version shows the loaded one); "
                "without a reboot, once no process uses a GPU: "
                + shell.sudo("rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia", "modprobe nvidia"))
    if "couldn't communicate with the nvidia driver" in out:  # the kernel module is not loaded
        return (shell.sudo("modprobe nvidia") + " && nvidia-smi   # if modprobe fails, no module is built for this "
                f"kernel (uname -r) or Secure Boot refuses it: {shell.sudo('dmesg')} | grep -i nvidia says which; "
                f"then reinstall the driver: {install_driver(shell)}")
    return (f"nvidia-smi; {shell.sudo('dmesg')} | grep -iE 'nvrm|xid' | tail   # what nvidia-smi says and what the "
            "driver logged (its exit codes: man nvidia-smi, RETURN VALUE); a broken installation is repaired by "
            f"reinstalling the driver ({install_driver(shell)})")


def _smi_not_working(facts: GpuFacts, minimum: str, shell: Shell) -> Verdict:
    """The driver check when nvidia-smi gave no answer: missing, hung, or ran and failed. NVML answering does not
    make it pass (the workshop runs nvidia-smi itself); it only says the driver is there."""
    smi, nvml = facts.smi, facts.nvml
    want = (f"expected `nvidia-smi` to work on this host and report a driver >= {minimum} (exit 0, or 14 with an "
            "infoROM warning; the workshop runs it)")
    said = _smi_said(smi)
    also = f"; NVML answers (driver {nvml.driver}, {len(nvml.gpus)} GPU(s)), so the driver is there" \
        if nvml.driver else ""
    r = smi.result
    if r is None or r.missing:
        if not nvml.driver:
            return failed(f"expected an NVIDIA driver >= {minimum}; none answered: {_no_driver_reason(facts)}",
                          install_driver(shell))
        return failed(f"{want}, found: {said}{also}, but not its nvidia-smi", install_utilities(shell, nvml.driver))
    if r.timed_out:
        return failed(f"expected an NVIDIA driver >= {minimum} answering; {said} (the driver or a GPU is stuck)",
                      reload_driver(shell))
    return failed(f"{want}, found: {said}{also}", _smi_fix(facts, shell), details=r.output[-2000:])


def driver(facts: GpuFacts, minimum: str, shell: Shell = DEFAULT) -> Verdict:
    """nvidia-smi works and reports a driver >= minimum; NVML (a cross-check) and the kernel module agree."""
    found = facts.driver
    if not found:
        return _smi_not_working(facts, minimum, shell)
    ok = versions.at_least(found, minimum)
    if ok is None:
        return failed(f"cannot read a version from driver {found!r} (nvidia-smi)",
                      "check `nvidia-smi --version`; the workshop needs driver >= " + minimum)
    if not ok:
        return failed(f"NVIDIA driver {found} is older than {minimum}", upgrade_driver(minimum, shell))
    if facts.kernel_module and versions.parse(facts.kernel_module) != versions.parse(found):
        return failed(f"driver library {found} does not match the loaded kernel module {facts.kernel_module} "
                      "(a driver upgrade without a reboot)", shell.sudo("reboot"))
    if facts.nvml.driver and facts.smi.driver != facts.nvml.driver:
        return warned(f"NVIDIA driver {found} >= {minimum}, but NVML reports {facts.nvml.driver}",
                      shell.sudo("reboot") + "   # after a driver upgrade, so every component reports the same version")
    extra = [] if facts.smi.exit.how == "exit 0" else [f"nvidia-smi {facts.smi.exit.how}: "
                                                       + "; ".join(facts.smi.warnings)]
    if facts.nvml.driver:
        extra.append("NVML agrees")
    if facts.kernel_module:
        extra.append(f"kernel module {facts.kernel_module}")
    return passed(f"NVIDIA driver {found} >= {minimum} (from nvidia-smi"
                  + (f"; {', '.join(extra)}" if extra else "") + ")")


def driver_for_dra(facts: GpuFacts, shell: Shell = DEFAULT) -> Verdict:
    """Advisory, next to :func:`driver` and over the same facts: NVIDIA's DRA driver asks for 580 or newer.

    The running driver is judged: the version nvidia-smi/NVML report and, when it was read, the loaded kernel
    module's (after an upgrade without a reboot the old module still runs). No version read is a skip with the
    reason (the driver check fails with its own fix), never a pass.
    """
    want = versions.show(DRA_GUIDE_DRIVER)
    found = facts.driver
    if not found:
        return skipped(f"nvidia-smi reported no driver, so its version cannot be compared with {want} (see the driver "
                       f"check): {_no_driver_reason(facts)}")
    seen = {f"driver {found} (nvidia-smi)": found}
    if facts.kernel_module:
        seen[f"kernel module {facts.kernel_module}"] = facts.kernel_module
    unreadable = [what for what, v in seen.items() if versions.parse(v) is None]
    if unreadable:
        return skipped(f"cannot read a version from {', '.join(unreadable)}: cannot compare it with {want} (see the "
                       "driver check)")
    shown = ", ".join(seen)
    low = [what for what, v in seen.items() if not versions.at_least(v, want)]
    if low:
        return warned(f"{', '.join(low)} is below {want}, which NVIDIA's DRA install guide asks for the DRA driver "
                      f"of the workshop's next module (the workshop itself needs 535; seen: {shown})",
                      upgrade_driver(want, shell))
    return passed(f"NVIDIA driver {found} >= {want} (NVIDIA's DRA install guide; seen: {shown})")


def _unreadable_gpus(facts: GpuFacts) -> str:
    """``nvidia-smi -q -i`` for each GPU the listing shows as there but unreadable (a gap in the indexes, the PCI
    bus id of an error line), so the fix starts by showing that GPU's state; empty when none."""
    ids = [str(i) for i in missing_indexes(facts.gpus)]
    ids += [m[0] for line in facts.smi.strays for m in [_BUS_ID.search(line)] if m]
    return "".join(f"nvidia-smi -q -i {shlex.quote(i)}; " for i in dict.fromkeys(ids))


def gpus_present(facts: GpuFacts, shell: Shell = DEFAULT) -> Verdict:
    if not facts.answered:  # NVML's list is a cross-check, not the host's GPUs
        return skipped(f"nvidia-smi did not answer, so GPUs cannot be listed (see the driver check): "
                       f"{_no_driver_reason(facts)}")
    gpus = facts.gpus
    if not gpus:
        return failed("expected at least one NVIDIA GPU; the driver answered but lists none",
                      "lspci | grep -i nvidia   # is the GPU seen on the bus? then: "
                      f"{shell.sudo('dmesg')} | grep -i nvrm")
    names = ", ".join(f"GPU {g.index}: {g.name} ({g.uuid})" for g in gpus)
    problems = facts.list_problems()
    if problems:  # per-GPU checks (one MPS client per UUID, CDI devices by UUID) cannot trust this list
        return failed(f"the driver's GPU list is not usable: {'; '.join(problems)} (listed: {names})",
                      _unreadable_gpus(facts) + "nvidia-smi -L; nvidia-smi --query-gpu=index,uuid --format=csv   # "
                      f"each GPU once, with its own UUID; if not: {shell.sudo('dmesg')} | grep -iE 'nvrm|xid' | tail "
                      f"(Xid 79: the GPU fell off the bus), then {shell.sudo('reboot')}; still missing: reseat the GPU",
                      details=facts.smi.result.stdout if facts.smi.result is not None else "")
    return passed(f"{len(gpus)} GPU{'s' * (len(gpus) != 1)}: {names}")


def compute_capability(facts: GpuFacts, minimum: str, *, rerun: Rerun = DEFAULT_RERUN) -> Verdict:
    """``rerun``: names the lab config the fix of an unreadable minimum opens."""
    gpus = facts.gpus
    if not gpus:
        return skipped("no GPU to check (see the GPU and driver checks)")
    need = versions.parse(minimum)
    if need is None:  # comparing against "no minimum" would pass every GPU
        return failed(f"cannot read a version from the required compute capability {minimum!r}",
                      config.edit_setting(rerun.lab_file, "min_compute_capability", "set min_compute_capability "
                                          "to a version such as \"6.0\" (the workshop's minimum)"))
    unknown = [g for g in gpus if g.compute_cap is None]
    low = [g for g in gpus if g.compute_cap is not None and tuple(g.compute_cap) < need]
    if low:
        shown = ", ".join(f"GPU {g.index} {g.name} has {g.cc_text}" for g in low)
        keep = ",".join(str(g.index) for g in gpus if g not in low)
        fix = (f"export CUDA_VISIBLE_DEVICES={keep}   # use only the GPUs that qualify" if keep else
               "run the workshop on a Pascal (GTX 10-series) or newer GPU")
        return failed(f"MPS needs compute capability >= {minimum} (Pascal or newer); {shown}", fix)
    if unknown:
        return failed(f"cannot read the compute capability of GPU {', '.join(str(g.index) for g in unknown)} "
                      f"(nvidia-smi has no compute_cap field and NVML did not answer: {facts.nvml.error or 'n/a'})",
                      "pip install nvidia-ml-py   # lets the check read it through NVML; or upgrade the driver")
    shown = ", ".join(f"GPU {g.index} {g.cc_text}" for g in gpus)
    return passed(f"compute capability >= {minimum}: {shown}")


ADVISED_COMPUTE_CAPABILITY = (7, 0)  # Volta: MPS active-thread-percentage limits (the workshop's module 5) need it


def compute_capability_for_mps_limits(facts: GpuFacts) -> Verdict:
    """Advisory, next to :func:`compute_capability` and over the same facts: the seed's minimum (6.0) stays the
    failure line; below 7.0 MPS runs, but the per-client thread limits later modules set do not apply."""
    known = [g for g in facts.gpus if g.compute_cap is not None]
    if not known:
        return skipped("no GPU with a known compute capability to check (see the compute capability check)")
    want = ".".join(map(str, ADVISED_COMPUTE_CAPABILITY))
    low = [g for g in known if tuple(g.compute_cap) < ADVISED_COMPUTE_CAPABILITY]
    if low:
        keep = ",".join(str(g.index) for g in known if g not in low)
        shown = ", ".join(f"GPU {g.index} {g.name} has {g.cc_text}" for g in low)
        return warned(f"{shown}: below {want} (Volta), MPS active-thread-percentage limits used in later modules "
                      "do not apply", f"export CUDA_VISIBLE_DEVICES={keep}   # use only Volta or newer GPUs" if keep
                      else "use a Volta (V100) or newer GPU for the MPS limits modules")
    return passed(f"compute capability >= {want} (MPS thread limits apply): "
                  + ", ".join(f"GPU {g.index} {g.cc_text}" for g in known))


def compute_mode(facts: GpuFacts, shell: Shell = DEFAULT) -> Verdict:
    """EXCLUSIVE_PROCESS is recommended with MPS (one MPS server owns the GPU), not required."""
    gpus = facts.gpus
    if not gpus:
        return skipped("no GPU to check (see the GPU and driver checks)")
    prohibited = [g for g in gpus if g.compute_mode.lower() == "prohibited"]
    if prohibited:
        ids = ",".join(str(g.index) for g in prohibited)
        return failed(f"GPU {ids} is in compute mode Prohibited: no CUDA context (and no MPS server) can run on it",
                      shell.sudo(f"nvidia-smi -i {ids} -c EXCLUSIVE_PROCESS"))
    other = [g for g in gpus if g.compute_mode.lower().replace(" ", "_") != "exclusive_process"]
    if other:
        ids = ",".join(str(g.index) for g in other)
        modes = ", ".join(f"GPU {g.index}: {g.compute_mode}" for g in other)
        return warned(f"compute mode is not EXCLUSIVE_PROCESS ({modes}); recommended with MPS so only the "
                      "MPS server holds the GPU, not required",
                      shell.sudo(f"nvidia-smi -i {ids} -c EXCLUSIVE_PROCESS"))
    return passed("every GPU is in compute mode EXCLUSIVE_PROCESS")
