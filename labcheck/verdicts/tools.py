"""Verdicts on Kind, Helm and the NVIDIA Container Toolkit versions (module 0)."""

from __future__ import annotations

from labcheck import versions
from labcheck.probes.tools import ToolFacts
from labcheck.verdict import Verdict, failed, passed

# The exact install commands from each project's install guide. kind v0.30.0 is the release whose
# default node image is kindest/node:v1.34.0, the workshop's image.
INSTALL = {
    "kind": ("curl -fsSLo ./kind https://kind.sigs.k8s.io/dl/v0.30.0/kind-linux-amd64 && chmod +x ./kind "
             "&& sudo mv ./kind /usr/local/bin/kind"),
    "helm": "curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash",
    "nvidia-ctk": (
        "curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | sudo gpg --dearmor -o "
        "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg && curl -s -L "
        "https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list | sed "
        "'s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' | "
        "sudo tee /etc/apt/sources.list.d/nvidia-container-toolkit.list && sudo apt-get update && "
        "sudo apt-get install -y nvidia-container-toolkit"),
}
LABEL = {"kind": "Kind", "helm": "Helm", "nvidia-ctk": "NVIDIA Container Toolkit (nvidia-ctk)"}


def tool_version(facts: ToolFacts, minimum: str) -> Verdict:
    label = LABEL.get(facts.name, facts.name)
    install = INSTALL.get(facts.name, f"install {facts.name} >= {minimum}")
    if facts.path is None:
        return failed(f"expected {label} >= {minimum}; `{facts.name}` is not on PATH", install)
    r = facts.result
    if r is None or not r.ok:
        what = r.describe() if r is not None else "not run"
        return failed(f"expected {label} >= {minimum}; asking its version failed: {what}",
                      f"reinstall it: {install}")
    found = facts.version
    if not found:
        return failed(f"cannot read a version from `{r.cmdline}`: {r.output[:200]!r}", f"reinstall it: {install}")
    if not versions.at_least(found, minimum):
        return failed(f"{label} {found} is older than {minimum} ({facts.path})", install)
    return passed(f"{label} {found} >= {minimum} ({facts.path})")
