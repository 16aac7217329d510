"""Verdicts on the host OS."""

from __future__ import annotations

from labcheck import versions
from labcheck.config import ConfigProblem
from labcheck.probes.host import HostFacts
from labcheck.remedy import DEBIAN, UBUNTU, Shell
from labcheck.verdict import Verdict, failed, passed, skipped


def upgrade_kernel(minimum: str, shell: Shell) -> str:
    if shell.family == UBUNTU:
        return (f"upgrade the kernel to {minimum} or newer, e.g. `"
                + shell.sudo("apt-get install --install-recommends linux-generic-hwe-22.04") + "` then reboot")
    if shell.family == DEBIAN:
        return (f"upgrade the kernel to {minimum} or newer from backports, e.g. `"
                + shell.sudo('apt-get install -y -t "$(. /etc/os-release && echo "$VERSION_CODENAME")-backports" '
                             "linux-image-amd64") + "` then reboot")
    return f"upgrade the kernel to {minimum} or newer with {shell.distro}'s package manager, then reboot"


def linux_kernel(facts: HostFacts, minimum: str, shell: Shell) -> Verdict:
    """``shell``: who pastes the fix, on which distribution (the checks' ``fix_shell``, remedy.this_host()).

    WHY passed in, not made from ``facts``: one Shell words every fix of the run, so the kernel's fix cannot say
    ``sudo`` where the others say none (a host without /etc/os-release got ``sudo apt-get`` as root)."""
    if facts.system != "Linux":
        return failed(f"expected Linux, found {facts.system or 'an unknown OS'}",
                      "run the workshop on a Linux host (Ubuntu 22.04 LTS recommended)")
    ok = versions.at_least(facts.kernel_release, minimum)
    if ok is None:
        return failed(f"cannot read a version from kernel release {facts.kernel_release!r}",
                      "check `uname -r`; the workshop needs a Linux kernel >= " + minimum)
    if not ok:
        return failed(f"kernel {facts.kernel_release} is older than {minimum}",
                      upgrade_kernel(minimum, shell))
    return passed(f"Linux kernel {facts.kernel_release} >= {minimum}")


def lab_config(problems: list[ConfigProblem], path: str | None = None) -> Verdict:
    """``path``: the lab config read (None when neither --lab-config nor ./lab.yaml gave one).

    WHY a skip when there is none: "valid" about a file nobody read is no evidence; the defaults apply."""
    if not problems and path is None:
        return skipped("no lab config given (--lab-config) or found (./lab.yaml): nothing to validate, "
                       "the documented defaults apply")
    if not problems:
        return passed(f"lab config {path} is valid")
    first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return failed(f"{_with_outcome(first)}{more}", first.fix, details="\n".join(_with_outcome(p) for p in problems))


def _with_outcome(problem: ConfigProblem) -> str:
    """The problem and what the suite does meanwhile, which differs per problem (default used, kept, ignored)."""
    return f"{problem}; {problem.outcome}" if problem.outcome else str(problem)
