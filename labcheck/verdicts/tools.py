"""Verdicts on Kind, Helm and the NVIDIA Container Toolkit versions (module 0)."""

from __future__ import annotations

from labcheck import versions
from labcheck.probes.tools import ToolFacts
from labcheck.remedy import DEFAULT, OTHER, Shell
from labcheck.verdict import Verdict, failed, passed, skipped, warned

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
TOOLKIT_GUIDE = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"


def install_command(name: str, shell: Shell = DEFAULT) -> str:
    """The install command of ``name`` for this user (root or sudo) and distribution.

    WHY the guide on other distributions: the toolkit recipe above is NVIDIA's apt one (Ubuntu and
    Debian); dnf/zypper hosts follow the guide's own section instead.
    """
    if name == "nvidia-ctk" and shell.family == OTHER:
        return f"install the NVIDIA Container Toolkit for {shell.distro} as its guide says: {TOOLKIT_GUIDE}"
    text = INSTALL.get(name, f"install {name}")
    return text.replace("sudo ", "") if shell.root else text


LABEL = {"kind": "Kind", "helm": "Helm", "nvidia-ctk": "NVIDIA Container Toolkit (nvidia-ctk)"}


def tool_version(facts: ToolFacts, minimum: str, shell: Shell = DEFAULT) -> Verdict:
    label = LABEL.get(facts.name, facts.name)
    install = install_command(facts.name, shell) if facts.name in INSTALL else f"install {facts.name} >= {minimum}"
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


# The first kind release whose notes list pre-built node images for each Kubernetes minor ("Images pre-built for
# this release"; v1.32.0 came as an additional image of v0.25.0). kind supports a node image only with the
# release that built it: the seed asks for kind >= 0.24.0 but pins kindest/node:v1.34.0, which needs v0.30.0.
# v0.31.0 defaults to v1.35.0; v0.32.0 to v1.36.1 (its containerd also needs it for `kind load`); v0.33.0, the newest
# release known here, lists v1.37.0, v1.36.4, v1.35.8 and v1.34.11.
FIRST_KIND_FOR_KUBERNETES = {
    (1, 31): "0.24.0", (1, 32): "0.25.0", (1, 33): "0.28.0", (1, 34): "0.30.0", (1, 35): "0.31.0", (1, 36): "0.32.0",
    (1, 37): "0.33.0",
}
NEWEST_KNOWN = max(FIRST_KIND_FOR_KUBERNETES)
UNKNOWN_MINOR = "not in this suite's kind table"  # starts the message of a minor the table cannot judge
KIND_RELEASES = "https://github.com/kubernetes-sigs/kind/releases"


def node_image_kubernetes(image: str) -> tuple[int, int] | None:
    """(1, 34) for "kindest/node:v1.34.0" or "kindest/node:v1.34.0@sha256:..."; None for other images."""
    repo, _, rest = image.partition("@")[0].rpartition(":")
    if not repo.endswith("kindest/node"):
        return None
    version = versions.parse(rest) if rest.startswith("v") else None
    return (version[0], version[1]) if version and len(version) >= 2 else None


def kind_supports_node_image(facts: ToolFacts, image: str, shell: Shell = DEFAULT) -> Verdict:
    """Whether the installed kind can run the lab's node image (kind release and node image must match)."""
    if facts.path is None or not facts.version:
        return skipped("kind is not installed or did not say its version (see the Kind check)")
    k8s = node_image_kubernetes(image)
    if k8s is None:
        return warned(f"node image {image!r} is not a kindest/node release image: cannot tell which kind "
                      "release it was built for", "check that it was built with `kind build node-image` by "
                      f"kind {facts.version}")
    first = FIRST_KIND_FOR_KUBERNETES.get(k8s)
    minor = f"{k8s[0]}.{k8s[1]}"
    if first is None:
        return _unknown_minor(facts, image, k8s)
    if not versions.at_least(facts.version, first):
        return failed(f"kind {facts.version} cannot run node image {image}: Kubernetes {minor} node images are "
                      f"built for kind v{first} and later (kind supports only images built for its release)",
                      install_command("kind", shell).replace("v0.30.0", f"v{first}"))
    return passed(f"kind {facts.version} runs Kubernetes {minor} node images (first in kind v{first}): {image}")


def _unknown_minor(facts: ToolFacts, image: str, k8s: tuple[int, int]) -> Verdict:
    """A Kubernetes minor the table does not list: older than it, or newer than the newest kind release known here.

    WHY a fail for a newer minor on an older kind: kind ships a new minor only in a release after the one that
    first shipped the previous minor, so a kind older than that release cannot have it. Only a kind at least as
    new as the newest known release is truly unknown (a warn, marked by UNKNOWN_MINOR).
    """
    minor, newest = f"{k8s[0]}.{k8s[1]}", FIRST_KIND_FOR_KUBERNETES[NEWEST_KNOWN]
    known = f"{min(FIRST_KIND_FOR_KUBERNETES)[0]}.{min(FIRST_KIND_FOR_KUBERNETES)[1]} to " \
            f"{NEWEST_KNOWN[0]}.{NEWEST_KNOWN[1]}"
    check_notes = f"check that the release notes of kind {facts.version} list {image} ({KIND_RELEASES})"
    if k8s > NEWEST_KNOWN and not versions.at_least(facts.version, newest):
        return failed(f"kind {facts.version} cannot run node image {image}: Kubernetes {minor} is newer than "
                      f"{NEWEST_KNOWN[0]}.{NEWEST_KNOWN[1]}, whose node images first came with kind v{newest}",
                      f"install a kind release newer than v{newest} whose release notes list {image} "
                      f"({KIND_RELEASES}), or set node_image in the lab config to an image the notes of kind "
                      f"{facts.version} list")
    when = "newer than" if k8s > NEWEST_KNOWN else "older than"
    return warned(f"{UNKNOWN_MINOR}: Kubernetes {minor} is {when} the minors it knows ({known}); cannot tell "
                  f"whether kind {facts.version} runs {image}", check_notes)
