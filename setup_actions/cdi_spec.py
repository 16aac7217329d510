"""Generate the CDI spec (only with --fix-host): ``nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml``.

Changes a system file, so: only when the checks say the spec is missing, unusable, for other GPUs or
stale; the existing file is copied aside first; the new spec is written to a temporary name that CDI
ignores and renamed into place (never a half-written spec); root is needed, and without root we ask
``sudo -n`` (never a password prompt that would hang the run) and otherwise say what needs root.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from shlex import quote as sh

from labcheck import cmd
from labcheck.probes.cdi import CdiFacts
from labcheck.probes.gpu import GpuFacts
from labcheck.verdicts import cdi as cdi_verdicts
from setup_actions.outcome import Outcome

DEFAULT_OUTPUT = "/etc/cdi/nvidia.yaml"


class CdiSpec:
    def __init__(self, ctk_path: str | None, output: str = DEFAULT_OUTPUT, timeout: float = 60.0,
                 euid: int | None = None, sudo_path: str | None = None) -> None:
        self.ctk = ctk_path
        self.output = output
        self.timeout = timeout
        self.euid = os.geteuid() if euid is None else euid
        self.sudo = sudo_path if sudo_path is not None else cmd.which("sudo")

    @property
    def generate_command(self) -> str:
        return f"sudo nvidia-ctk cdi generate {sh('--output=' + self.output)}"

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

    def _root_prefix(self) -> list[str] | None:
        if self.euid == 0:
            return []
        if self.sudo:
            r = cmd.run([self.sudo, "-n", "true"], timeout=10)
            if r.ok:
                return [self.sudo, "-n"]
        return None

    def apply(self, facts: CdiFacts, gpu: GpuFacts) -> Outcome:
        reasons = self.reasons(facts, gpu)
        if not reasons:
            return Outcome(True, False, f"CDI spec {self.output} is current: nothing to do")
        if self.ctk is None:
            return Outcome(False, False, "nvidia-ctk is not installed: cannot generate the CDI spec",
                           "install the NVIDIA Container Toolkit (see the nvidia-ctk check), then "
                           + self.generate_command)
        if not gpu.gpus:
            return Outcome(False, False, "no GPU listed by the driver: a generated spec would have no devices",
                           "fix the driver first (see the driver check), then " + self.generate_command)
        prefix = self._root_prefix()
        if prefix is None:
            return Outcome(False, False, f"writing {self.output} needs root; not root and `sudo -n` is not allowed "
                           "without a password", self.generate_command)
        out = Path(self.output)
        tmp = out.with_name(f".{out.name}.labcheck-tmp")  # no .yaml/.json suffix: CDI does not read it
        backup = ""
        steps = [[*prefix, "mkdir", "-p", str(out.parent)]]
        if os.path.lexists(out):
            backup = f"{out}.labcheck-{time.strftime('%Y%m%d%H%M%S')}.bak"
            steps.append([*prefix, "cp", "-p", str(out), backup])
        steps.append([*prefix, self.ctk, "cdi", "generate", "--format=yaml", f"--output={tmp}"])
        steps.append([*prefix, "mv", "-f", str(tmp), str(out)])
        for argv in steps:
            if not prefix and argv[0] in ("mkdir", "cp", "mv"):
                err = _local(argv)
                if err:
                    return Outcome(False, False, f"`{' '.join(argv)}` failed: {err}", self.generate_command)
                continue
            r = cmd.run(argv, timeout=self.timeout)
            if not r.ok:
                if prefix:
                    cmd.run([*prefix, "rm", "-f", str(tmp)], timeout=10)
                else:
                    _local(["rm", str(tmp)])
                return Outcome(False, False, f"{r.describe()}", self.generate_command)
        kept = f"; previous spec kept as {backup}" if backup else ""
        return Outcome(True, True, f"generated {self.output} with nvidia-ctk{kept} (was: {reasons[0]})")


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
            Path(argv[1]).unlink(missing_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""

