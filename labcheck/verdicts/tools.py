"""Verdicts on Kind, Helm and the NVIDIA Container Toolkit versions (module 0)."""

from __future__ import annotations

import shlex

from labcheck import kind_releases as kr
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
    if facts.path is None and facts.binary and facts.binary != facts.name:
        # The lab config names the program module 1 drives: that one is missing, whatever PATH has.
        where = shlex.quote(facts.binary)
        if facts.name == "kind" and facts.binary.startswith("/"):
            install = install.replace("/usr/local/bin/kind", where)
        return failed(f"expected {label} >= {minimum}; the lab config's kind_binary {facts.binary!r} is not an "
                      f"executable file{'' if facts.binary.startswith('/') else ' on PATH'}",
                      f"{install}   # or set kind_binary in the lab config to the kind you have (e.g. kind_binary: "
                      f"kind)")
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
        return failed(f"{label} {found} is older than {minimum}{versions.below_as_prerelease(found, minimum)} "
                      f"({facts.path})", install)
    return passed(f"{label} {found} >= {minimum} ({facts.path})")


UNKNOWN_MINOR = "not in this suite's kind table"  # starts the message of a minor the table cannot judge


def _install_kind(release: str, shell: Shell) -> str:
    return install_command("kind", shell).replace("v0.30.0", f"v{release}")


def _is(found: str, release: str) -> bool:
    """``found`` is that release: a pre-release of it is not (its notes are not the release's)."""
    return versions.same(found, release)


def _older(found: str, release: str) -> bool:
    return not versions.at_least(found, release)


def kind_supports_node_image(facts: ToolFacts, image: str, shell: Shell = DEFAULT) -> Verdict:
    """Whether the installed kind release lists the lab's node image in its release notes (labcheck.kind_releases).

    The exact pair listed: pass. kind older than the first release listing the image: fail (install that release).
    kind newer than the newest release listing it, with a known release in between (or this one) that does not:
    fail (kind supports only images built for its release: ../shared/FIELD-NOTES.md), with both fixes: the kind
    release that lists the image, or the image this kind release lists for the same Kubernetes minor. A kind
    release or an image this suite does not know: a warning saying what was compared, never a pass.
    """
    if facts.path is None or not facts.version:
        return skipped("kind is not installed or did not say its version (see the Kind check)")
    found, ref = facts.version, kr.split(image)
    if ref is None:
        return warned(f"node image {image!r} is not a kindest/node release image: cannot tell which kind "
                      "release it was built for", "check that it was built with `kind build node-image` by "
                      f"kind {found}")
    tag, digest = ref
    listed = kr.listing(tag, digest)
    if any(_is(found, r) for r in listed):
        how = "tag and digest" if digest else "tag only: the digest is what guarantees the build"
        return passed(f"kind {found}'s release notes list node image {image} (matched by {how})")
    if listed:
        return _listed_elsewhere(found, image, tag, listed, shell)
    return _unlisted(found, image, tag, digest, shell)


def _listed_elsewhere(found: str, image: str, tag: str, listed: tuple[str, ...], shell: Shell) -> Verdict:
    """The image is in the notes of known releases, not of this kind's."""
    names = ", ".join(f"v{r}" for r in listed)
    if _older(found, listed[0]):
        return failed(f"kind {found} cannot run node image {image}: it is listed by kind {names}, newer than "
                      f"{found} (kind supports only images built for its release)", _install_kind(listed[0], shell))
    known = any(_is(found, r) for r in kr.RELEASES)
    between = [r for r in kr.RELEASES if _older(listed[-1], r) and not _older(found, r) and r not in listed]
    upgrade = next((r for r in listed if _older(found, r)), listed[-1])  # the nearest release that lists it
    if not known and not between:
        return warned(f"kind {found} is not a release this suite knows (v{kr.OLDEST} to v{kr.NEWEST}): node image "
                      f"{image} is listed by kind {names}; cannot tell whether kind {found} lists it",
                      f"{_install_kind(upgrade, shell)}   # kind v{upgrade} lists it; or check that the release "
                      f"notes of kind {found} list it ({kr.RELEASE_NOTES})")
    release = found if known else between[-1]
    alt = kr.for_minor(release, kr.minor(tag))
    instead = f"; or set node_image in lab.yaml to {alt} (the Kubernetes {_show(kr.minor(tag))} image kind " \
              f"v{release} lists)" if alt else ""
    why = f"kind {found}'s release notes do not list it" if known else \
        f"the later releases kind {', '.join(f'v{r}' for r in between)} no longer list it"
    return failed(f"kind {found} cannot run node image {image}: it was built for kind {names} and {why} (kind "
                  "supports only images built for its release)",
                  f"{_install_kind(upgrade, shell)}   # kind v{upgrade} lists it{instead}")


def _unlisted(found: str, image: str, tag: str, digest: str, shell: Shell) -> Verdict:
    """An image in no known release's notes: judged by its Kubernetes minor only where that can fail for sure."""
    k8s = kr.minor(tag)
    minor = _show(k8s)
    first = kr.first_for_minor(k8s)
    if first and _older(found, first):
        return failed(f"kind {found} cannot run node image {image}: Kubernetes {minor} node images are built for "
                      f"kind v{first} and later (kind supports only images built for its release)",
                      _install_kind(first, shell))
    newest = kr.MINORS[-1]
    if k8s > newest and _older(found, kr.NEWEST):
        return failed(f"kind {found} cannot run node image {image}: Kubernetes {minor} is newer than "
                      f"{_show(newest)}, whose node images first came with kind v{kr.NEWEST}",
                      f"install a kind release newer than v{kr.NEWEST} whose release notes list {image} "
                      f"({kr.RELEASE_NOTES}), or set node_image in the lab config to an image the notes of kind "
                      f"{found} list")
    other = kr.entries(tag) if digest else ()
    compared = "; " + ", ".join(f"kind v{r} lists {kr.REPO}:{tag} with digest {d}" for r, d in other) if other else ""
    alt = next((kr.for_minor(r, k8s) for r in kr.RELEASES if _is(found, r)), "")
    fix = f"set node_image in lab.yaml to {alt} (the Kubernetes {minor} image kind {found} lists)" if alt else \
        f"check that the release notes of kind {found} list {image} ({kr.RELEASE_NOTES})"
    if not kr.MINORS[0] <= k8s <= newest:
        when = "newer than" if k8s > newest else "older than"
        return warned(f"{UNKNOWN_MINOR}: Kubernetes {minor} is {when} the minors it knows ({_show(kr.MINORS[0])} "
                      f"to {_show(newest)}); cannot tell whether kind {found} runs {image}", fix)
    return warned(f"node image {image} is in the release notes of no kind release this suite knows (v{kr.OLDEST} to "
                  f"v{kr.NEWEST}){compared}: cannot tell whether kind {found} runs it", fix)


def _show(k8s: tuple[int, int]) -> str:
    return f"{k8s[0]}.{k8s[1]}"

