"""Generate the CDI spec (only with --fix-host): ``nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml``.

Changes a system file, so: only when the checks say the spec is missing, unusable, for other GPUs or
stale; the existing file is copied aside first; the new spec is written to a temporary name that CDI
ignores and renamed into place (never a half-written spec); root is needed, and without root we ask
``sudo -n`` (never a password prompt that would hang the run) and otherwise say what needs root.
"""

from __future__ import annotations

import filecmp
import os
import shlex
import shutil
import stat
from pathlib import Path
from shlex import quote as sh

from labcheck import cdi, cmd, fsio, remedy
from labcheck.probes.cdi import CdiFacts
from labcheck.probes.gpu import GpuFacts
from labcheck.remedy import Shell, with_note
from labcheck.verdicts import cdi as cdi_verdicts
from labcheck.verdicts.tools import toolkit_guide_note, toolkit_recipe
from setup_actions.outcome import Outcome
from setup_actions.privilege import privilege_prefix

DEFAULT_OUTPUT = "/etc/cdi/nvidia.yaml"


class CdiSpec:
    def __init__(self, ctk_path: str | None, output: str = DEFAULT_OUTPUT, timeout: float = 60.0,
                 euid: int | None = None, sudo_path: str | None = None, shell: Shell | None = None) -> None:
        self.ctk = ctk_path
        self.shell = shell or remedy.this_host()  # who pastes the fixes: no sudo for root (a root shell may have none)
        self.output = output
        self.timeout = timeout
        self.euid = os.geteuid() if euid is None else euid
        self.sudo = sudo_path if sudo_path is not None else cmd.which("sudo")

    @property
    def generate_command(self) -> str:
        """The fix every failure of this step prints: the configured output, the nvidia-ctk found, this host's
        user (the same line as the CDI checks' own fix, :attr:`labcheck.probes.cdi.CdiFacts.generate_command`)."""
        return cdi.generate_command(self.output, self.shell, self.ctk)

    def reasons(self, facts: CdiFacts, gpu: GpuFacts) -> list[str]:
        """Why the spec needs (re)generating: the failing CDI verdicts, empty when it is fine."""
        out = []
        for v in (cdi_verdicts.spec_present(facts), cdi_verdicts.spec_valid(facts),
                  cdi_verdicts.device_count(facts, gpu), cdi_verdicts.not_stale(facts, gpu)):
            if v.status == "fail":
                out.append(v.message)
        return out

    def plan(self, facts: CdiFacts, gpu: GpuFacts) -> list[str]:
        reasons = self.reasons(facts, gpu)
        if not reasons:
            return []
        steps = []
        if os.path.lexists(self.output):
            steps.append(f"copy {self.output} to {self.output}.labcheck-<time>.bak")
        steps.append(f"run nvidia-ctk cdi generate --output={self.output} (because: {reasons[0]})")
        return steps

    def apply(self, facts: CdiFacts, gpu: GpuFacts) -> Outcome:
        reasons = self.reasons(facts, gpu)
        if not reasons:
            return Outcome(True, "none", f"CDI spec {self.output} is current: nothing to do")
        if self.ctk is None:
            return Outcome(False, "failed", "nvidia-ctk is not installed: cannot generate the CDI spec",
                           self._after_install())
        if not gpu.gpus:
            return Outcome(False, "failed", "no GPU listed by the driver: a generated spec would have no devices",
                           with_note(f"nvidia-smi -L && {self.generate_command}", "fix the NVIDIA driver first "
                                     "(see the driver checks): nvidia-smi -L must list the GPUs"))
        prefix = privilege_prefix(10, euid=self.euid, sudo=self.sudo)
        if prefix is None:
            return Outcome(False, "failed", f"writing {self.output} needs root; not root and `sudo -n` is not allowed "
                           "without a password", self.generate_command)
        try:
            # The file a rename replaces: the spec, or its symlink's target (the link stays a link); a FIFO,
            # device, folder or dangling link at the spec path is never replaced.
            out = fsio.write_target(self.output)
        except fsio.FileProblem as exc:
            return Outcome(False, "failed", f"{exc}: nothing was generated",
                           with_note(self.generate_command, f"first {exc.fix}"))
        tmp = out.with_name(f".{out.name}.labcheck-tmp")  # no .yaml/.json suffix: CDI does not read it

        def step(argv: list[str]) -> str:
            """Run one step ("" when it worked); file steps in-process when we are root."""
            if not prefix and argv[0] in ("mkdir", "cp", "mv", "rm", "chmod"):
                err = _local(argv)
                return f"`{shlex.join(argv)}` failed: {err}" if err else ""
            r = cmd.run(argv, timeout=self.timeout)
            return "" if r.ok else r.describe()

        def fail(err: str, remediation: str = "") -> Outcome:
            step([*prefix, "rm", "-f", str(tmp)])
            return Outcome(False, "failed", err, remediation or self.generate_command)

        # Generate next to the spec under a name CDI ignores; only then back up and rename over it. An
        # interrupted run leaves the old spec in place (and at most the ignored temporary file).
        err = step([*prefix, "mkdir", "-p", str(out.parent)]) or \
            step([*prefix, self.ctk, "cdi", "generate", "--format=yaml", f"--output={tmp}"])
        if err:
            return fail(err)
        existed = os.path.lexists(out)
        if existed and _same_content(tmp, out):
            # Regenerating cannot fix it; replacing the file (and piling up backups) every run would not either.
            return fail(f"nvidia-ctk generated the same spec as {self.output} again, so regenerating does not fix "
                        f"it: {reasons[0]}", with_note(f"{sh(remedy.program(self.ctk, 'nvidia-ctk'))} cdi list",
                                                       "then follow the failing CDI check's fix"))
        backup = fsio.backup_name(self.output) if existed else ""
        err = (step([*prefix, "cp", "-p", str(out), backup]) if backup else "") or \
            (step([*prefix, "chmod", "--reference", str(out), str(tmp)]) if existed else "") or \
            step([*prefix, "mv", "-f", str(tmp), str(out)])
        if err:
            return fail(err)
        kept = f"; previous spec kept as {backup}" if backup else ""
        return Outcome(True, "generate", f"generated {self.output} with nvidia-ctk{kept} (was: {reasons[0]})",
                       changed=True, backup=backup)

    def _after_install(self) -> str:
        """Install the toolkit (NVIDIA's recipe for this host's package manager), then generate with the nvidia-ctk
        it puts on PATH; where NVIDIA publishes no recipe for it (apk, pacman, none found: whatever the
        distribution), generate after installing as the guide says (a note), as the runtime fix does
        (labcheck.verdicts.docker.configure_steps).

        WHY by package manager, not by distribution: install_command chooses so, and it gives only a comment
        where it has no recipe; put before ``&&`` (Debian with no apt-get found) the whole line was a comment."""
        recipe = toolkit_recipe(self.shell)
        if not recipe:
            return with_note(self.generate_command, "first " + toolkit_guide_note(self.shell))
        return f"{recipe} && {self.generate_command}"


def _same_content(a: Path, b: Path) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _local(argv: list[str]) -> str:
    """The file steps done in-process when we are root (atomic rename, metadata-preserving copy)."""
    try:
        if argv[0] == "mkdir":
            os.makedirs(argv[2], exist_ok=True)
        elif argv[0] == "cp":
            shutil.copy2(argv[2], argv[3])
        elif argv[0] == "mv":
            os.replace(argv[2], argv[3])
        elif argv[0] == "rm":
            Path(argv[-1]).unlink(missing_ok=True)
        elif argv[0] == "chmod":  # chmod --reference REF FILE: the new spec keeps the old one's mode
            os.chmod(argv[3], stat.S_IMODE(os.stat(argv[2]).st_mode))
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""

