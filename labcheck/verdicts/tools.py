"""Verdicts on Kind, Helm and the NVIDIA Container Toolkit versions (module 0)."""

from __future__ import annotations

import os
import shlex

from labcheck import config, fsio, versions
from labcheck import kind_releases as kr
from labcheck.probes.tools import INSTALL_DIR, InstallTarget, ToolFacts
from labcheck.remedy import DEFAULT, Shell, with_note
from labcheck.rerun import DEFAULT as DEFAULT_RERUN
from labcheck.rerun import Rerun
from labcheck.verdict import Verdict, failed, passed, skipped, warned

# The exact install commands from each project's install guide.
INSTALL = {
    "helm": "curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash",
}
TOOLKIT_GUIDE = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"
TOOLKIT_RPM_REPO = "https://nvidia.github.io/libnvidia-container/stable/rpm/nvidia-container-toolkit.repo"
# NVIDIA's install guide, one recipe per package manager (its "With apt", "With dnf", "With zypper" sections):
# add NVIDIA's repository, then install the package.
TOOLKIT_INSTALL = {
    "apt-get": (
        "curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | sudo gpg --dearmor -o "
        "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg && curl -s -L "
        "https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list | sed "
        "'s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' | "
        "sudo tee /etc/apt/sources.list.d/nvidia-container-toolkit.list && sudo apt-get update && "
        "sudo apt-get install -y nvidia-container-toolkit"),
    "dnf": (f"curl -s -L {TOOLKIT_RPM_REPO} | sudo tee /etc/yum.repos.d/nvidia-container-toolkit.repo && "
            "sudo dnf install -y nvidia-container-toolkit"),
    "yum": (f"curl -s -L {TOOLKIT_RPM_REPO} | sudo tee /etc/yum.repos.d/nvidia-container-toolkit.repo && "
            "sudo yum install -y nvidia-container-toolkit"),
    "zypper": (f"sudo zypper ar {TOOLKIT_RPM_REPO} && "
               "sudo zypper --gpg-auto-import-keys install -y nvidia-container-toolkit"),
}
# The toolkit's package where NVIDIA's repository is already there (the toolkit was installed once from it).
TOOLKIT_PACKAGE = {"apt-get": "nvidia-container-toolkit", "dnf": "nvidia-container-toolkit",
                   "zypper": "nvidia-container-toolkit"}

# kind's own install lines (kind quick start, "Installing From Release Binaries"; "Installing With go install"),
# one template each: the release, kind's name of this host's architecture, and the step that puts ./kind where
# the configured kind_binary is (:func:`_place`). kind v0.30.0 is the release whose default node image is
# kindest/node:v1.34.0, the workshop's image.
KIND_RELEASE = "0.30.0"
KIND_DOWNLOAD = ("curl -fsSLo ./kind https://kind.sigs.k8s.io/dl/v{release}/kind-linux-{arch} && chmod +x ./kind "
                 "&& {place}")
KIND_FROM_SOURCE = 'GOBIN="$PWD" go install sigs.k8s.io/kind@v{release} && {place}'
# `uname -m` => the architecture in the names of kind's Linux release binaries (it publishes only these two)
KIND_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def toolkit_guide_note(shell: Shell) -> str:
    """Where a host whose package commands this suite does not know (apk, pacman, none found) installs the
    toolkit."""
    distro = "".join(c if c.isprintable() else "?" for c in shell.distro)
    return f"install the NVIDIA Container Toolkit for {distro} as its guide says: {TOOLKIT_GUIDE}"


def toolkit_recipe(shell: Shell = DEFAULT) -> str:
    """NVIDIA's install recipe of the toolkit for this host's package manager (root: no sudo); "" where NVIDIA
    publishes none for it (then :func:`toolkit_guide_note`)."""
    text = TOOLKIT_INSTALL.get(shell.package_manager, "")
    return text.replace("sudo ", "") if shell.root else text


def install_command(name: str, shell: Shell = DEFAULT, *notes: str) -> str:
    """The install command of ``name`` (helm, nvidia-ctk) for this user (root or sudo) and distribution; kind's
    depends on where kind must go: :func:`kind_install`. ``notes``: what the caller adds, after ``#``.

    WHY by package manager: NVIDIA's recipe is apt's on Debian and Ubuntu, dnf's (yum's) on Fedora and RHEL,
    zypper's on SUSE; elsewhere (apk, pacman, none found) the guide, in a note: a comment, not a command. An apt
    recipe on a dnf host failed at its first `sudo apt-get`.
    """
    if name == "nvidia-ctk":
        recipe = toolkit_recipe(shell)
        return with_note(recipe, *notes) if recipe else with_note("", toolkit_guide_note(shell), *notes)
    text = INSTALL.get(name)
    if text is None:
        return with_note("", f"install {name}", *notes)
    return with_note(text.replace("sudo ", "") if shell.root else text, *notes)


def kind_install(facts: ToolFacts, release: str = KIND_RELEASE, shell: Shell = DEFAULT, *notes: str) -> str:
    """Install kind ``release`` where module 1 will run it (``facts.target``: the configured kind_binary, or the
    kind found for it), built for this host's architecture (``facts.machine``; from source where kind publishes
    no binary for it), with sudo only where this user may not write. ``notes``: the caller's, after ``#``.

    WHY the configured place: an upgrade put in /usr/local/bin/kind left `kind_binary: /opt/kind/kind` (or a
    kind found first on PATH) as old as before, and both kind checks failed again after the fix.
    """
    target = facts.target or InstallTarget(f"{INSTALL_DIR}/{facts.name}", True, False)  # the guide's line
    arch = KIND_ARCH.get(facts.machine.lower())
    template = KIND_DOWNLOAD if arch else KIND_FROM_SOURCE
    text = template.format(release=release, arch=arch, place=_place(target, shell))
    if arch:
        return with_note(text, *notes)
    seen = f"this host is {facts.machine}" if facts.machine else "this host's architecture is not known"
    return with_note(text, f"kind publishes Linux binaries for amd64 and arm64 only; {seen}: built from source "
                           "(needs Go)", *notes)


def _place(target: InstallTarget, shell: Shell) -> str:
    """``mv ./kind <target>`` (its folder made first when missing), as root only where this user may not write."""
    steps = ([] if target.folder_exists else [f"mkdir -p {shlex.quote(os.path.dirname(target.path))}"])
    steps.append(f"mv ./kind {shlex.quote(target.path)}")
    return " && ".join(steps) if target.writable else shell.sudo(*steps)


LABEL = {"kind": "Kind", "helm": "Helm", "nvidia-ctk": "NVIDIA Container Toolkit (nvidia-ctk)"}


def _install(facts: ToolFacts, minimum: str, shell: Shell, *notes: str) -> str:
    if facts.name == "kind":
        return kind_install(facts, KIND_RELEASE, shell, *notes)
    if facts.name in INSTALL or facts.name == "nvidia-ctk":
        return install_command(facts.name, shell, *notes)
    return with_note("", f"install {facts.name} >= {minimum}", *notes)


def tool_version(facts: ToolFacts, minimum: str, shell: Shell = DEFAULT) -> Verdict:
    label = LABEL.get(facts.name, facts.name)
    install = _install(facts, minimum, shell)
    if facts.path is None and facts.binary and facts.binary != facts.name:
        # The lab config names the program module 1 drives: that one is missing, whatever PATH has.
        return failed(f"expected {label} >= {minimum}; the lab config's kind_binary {facts.binary!r} is not an "
                      f"executable file{'' if facts.binary.startswith('/') else ' on PATH'}",
                      _install(facts, minimum, shell, "or set kind_binary in the lab config to the kind you "
                                                      "have (e.g. kind_binary: kind)"))
    if facts.path is None:
        return failed(f"expected {label} >= {minimum}; `{facts.name}` is not on PATH", install)
    r = facts.result
    if r is None or not r.ok:
        what = r.describe() if r is not None else "not run"
        return failed(f"expected {label} >= {minimum}; asking its version failed: {what}",
                      _install(facts, minimum, shell, f"reinstall {facts.path}"))
    found = facts.version
    if not found:
        return failed(f"cannot read a version from `{r.cmdline}`: {fsio.shown(r.output, 200)}",
                      _install(facts, minimum, shell, f"reinstall {facts.path}"))
    if not versions.at_least(found, minimum):
        return failed(f"{label} {found} is older than {minimum}{versions.below_as_prerelease(found, minimum)} "
                      f"({facts.path})", install)
    return passed(f"{label} {found} >= {minimum} ({facts.path})")


UNKNOWN_MINOR = "not in this suite's kind table"  # starts the message of a minor the table cannot judge


def _is(found: str, release: str) -> bool:
    """``found`` is that release: a pre-release of it is not (its notes are not the release's)."""
    return versions.same(found, release)


def _older(found: str, release: str) -> bool:
    return not versions.at_least(found, release)


def kind_supports_node_image(facts: ToolFacts, image: str, shell: Shell = DEFAULT, *,
                             rerun: Rerun = DEFAULT_RERUN) -> Verdict:
    """Whether the installed kind release lists the lab's node image in its release notes (labcheck.kind_releases).

    The exact pair listed: pass. kind older than the first release listing the image: fail (install that release).
    kind newer than the newest release listing it, with a known release in between (or this one) that does not:
    fail (kind supports only images built for its release: ../shared/FIELD-NOTES.md), with both fixes: the kind
    release that lists the image, or the image this kind release lists for the same Kubernetes minor. A kind
    release or an image this suite does not know: a warning saying what was compared, never a pass. ``rerun``:
    names the lab config a fix that sets node_image opens.
    """
    if facts.path is None or not facts.version:
        return skipped("kind is not installed or did not say its version (see the Kind check)")
    found, ref = facts.version, kr.split(image)
    if ref is None:
        return warned(f"node image {image!r} is not a kindest/node release image: cannot tell which kind "
                      "release it was built for", with_note("", "check that it was built with `kind build "
                                                                f"node-image` by kind {found}"))
    tag, digest = ref
    listed = kr.listing(tag, digest)
    if any(_is(found, r) for r in listed):
        how = "tag and digest" if digest else "tag only: the digest is what guarantees the build"
        return passed(f"kind {found}'s release notes list node image {image} (matched by {how})")
    if listed:
        return _listed_elsewhere(facts, image, tag, listed, shell)
    return _unlisted(facts, image, tag, digest, shell, rerun)


def _listed_elsewhere(facts: ToolFacts, image: str, tag: str, listed: tuple[str, ...], shell: Shell) -> Verdict:
    """The image is in the notes of known releases, not of this kind's."""
    found = facts.version
    names = ", ".join(f"v{r}" for r in listed)
    if _older(found, listed[0]):
        return failed(f"kind {found} cannot run node image {image}: it is listed by kind {names}, newer than "
                      f"{found} (kind supports only images built for its release)",
                      kind_install(facts, listed[0], shell))
    known = any(_is(found, r) for r in kr.RELEASES)
    between = [r for r in kr.RELEASES if _older(listed[-1], r) and not _older(found, r) and r not in listed]
    upgrade = next((r for r in listed if _older(found, r)), listed[-1])  # the nearest release that lists it
    if not known and not between:
        return warned(f"kind {found} is not a release this suite knows (v{kr.OLDEST} to v{kr.NEWEST}): node image "
                      f"{image} is listed by kind {names}; cannot tell whether kind {found} lists it",
                      kind_install(facts, upgrade, shell, f"kind v{upgrade} lists it; or check that the release "
                                                          f"notes of kind {found} list it ({kr.RELEASE_NOTES})"))
    release = found if known else between[-1]
    alt = kr.for_minor(release, kr.minor(tag))
    instead = f"; or set node_image in lab.yaml to {alt} (the Kubernetes {_show(kr.minor(tag))} image kind " \
              f"v{release} lists)" if alt else ""
    why = f"kind {found}'s release notes do not list it" if known else \
        f"the later releases kind {', '.join(f'v{r}' for r in between)} no longer list it"
    return failed(f"kind {found} cannot run node image {image}: it was built for kind {names} and {why} (kind "
                  "supports only images built for its release)",
                  kind_install(facts, upgrade, shell, f"kind v{upgrade} lists it{instead}"))


def _unlisted(facts: ToolFacts, image: str, tag: str, digest: str, shell: Shell, rerun: Rerun) -> Verdict:
    """An image in no known release's notes: judged by its Kubernetes minor only where that can fail for sure."""
    found = facts.version
    k8s = kr.minor(tag)
    minor = _show(k8s)
    first = kr.first_for_minor(k8s)
    if first and _older(found, first):
        return failed(f"kind {found} cannot run node image {image}: Kubernetes {minor} node images are built for "
                      f"kind v{first} and later (kind supports only images built for its release)",
                      kind_install(facts, first, shell))
    newest = kr.MINORS[-1]
    if k8s > newest and _older(found, kr.NEWEST):
        return failed(f"kind {found} cannot run node image {image}: Kubernetes {minor} is newer than "
                      f"{_show(newest)}, whose node images first came with kind v{kr.NEWEST}",
                      with_note("", f"install a kind release newer than v{kr.NEWEST} whose release notes list "
                                    f"{image} ({kr.RELEASE_NOTES}), or set node_image in the lab config to an image "
                                    f"the notes of kind {found} list"))
    other = kr.entries(tag) if digest else ()
    compared = "; " + ", ".join(f"kind v{r} lists {kr.REPO}:{tag} with digest {d}" for r, d in other) if other else ""
    alt = next((kr.for_minor(r, k8s) for r in kr.RELEASES if _is(found, r)), "")
    fix = config.edit_setting(rerun.lab_file, "node_image", f"set node_image: {alt} (the Kubernetes {minor} image "
                              f"kind {found} lists)") if alt else \
        with_note("", f"check that the release notes of kind {found} list {image} ({kr.RELEASE_NOTES})")
    if not kr.MINORS[0] <= k8s <= newest:
        when = "newer than" if k8s > newest else "older than"
        return warned(f"{UNKNOWN_MINOR}: Kubernetes {minor} is {when} the minors it knows ({_show(kr.MINORS[0])} "
                      f"to {_show(newest)}); cannot tell whether kind {found} runs {image}", fix)
    return warned(f"node image {image} is in the release notes of no kind release this suite knows (v{kr.OLDEST} to "
                  f"v{kr.NEWEST}){compared}: cannot tell whether kind {found} runs it", fix)


def _show(k8s: tuple[int, int]) -> str:
    return f"{k8s[0]}.{k8s[1]}"

