"""Kind / Helm / nvidia-ctk version checks against real processes.

kind, helm and nvidia-ctk cannot be installed here, so each is a test double: a script on a temporary
PATH printing what the real tool prints for the same arguments (formats from each project's docs and
public transcripts: "kind v0.24.0 go1.22.6 linux/amd64", helm's "v3.16.2" for --template
'{{.Version}}', "NVIDIA Container Toolkit CLI version 1.17.8" + a commit line).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck import config, kind_releases
from labcheck.cmd import CmdResult
from labcheck.config import LabConfig
from labcheck.probes.tools import VERSION_ARGS, InstallTarget, ToolFacts, probe_tool
from labcheck.remedy import Shell
from labcheck.rerun import Rerun
from labcheck.verdicts.tools import INSTALL, LABEL, TOOLKIT_INSTALL, kind_supports_node_image, tool_version
from tests.shell_text import commands, parses
from tests.standins import executable


def _tool(folder, name, body):
    executable(folder / name, "#!/bin/sh\n" + body)


HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "")


def guide(release: str = "0.30.0", arch: str = "amd64", dest: str = "/usr/local/bin/kind", sudo: str = "sudo ") -> str:
    """kind's install line as its quick start spells it (download, chmod +x, mv into place), for one release,
    architecture and place (written out here, not taken from the product)."""
    return (f"curl -fsSLo ./kind https://kind.sigs.k8s.io/dl/v{release}/kind-linux-{arch} && chmod +x ./kind && "
            f"{sudo}mv ./kind {shlex.quote(dest)}")


def expected_install(facts: ToolFacts) -> str:
    """The install line for a probed tool: kind's goes where that kind is (a temp folder this user writes), or
    where its guide puts it when none was found."""
    if facts.name == "nvidia-ctk":
        return TOOLKIT_INSTALL["apt-get"]  # NVIDIA's apt recipe: the default Shell is Ubuntu's
    if facts.name != "kind":
        return INSTALL[facts.name]
    if facts.path:
        return guide(arch=HOST_ARCH, dest=facts.path, sudo="")
    return guide(arch=HOST_ARCH, sudo="" if os.access("/usr/local/bin", os.W_OK | os.X_OK) else "sudo ")


@pytest.fixture
def bindir(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}:/usr/bin:/bin")
    return d


@pytest.mark.parametrize(("name", "printed", "minimum", "status"), [
    ("kind", "kind v0.24.0 go1.22.6 linux/amd64", "0.24.0", "pass"),
    ("kind", "kind v0.20.0 go1.20.4 linux/amd64", "0.24.0", "fail"),
    ("helm", "v3.16.2", "3.10", "pass"),
    ("helm", "v3.9.4", "3.10", "fail"),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.17.8\\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d",
     "1.14", "pass"),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.13.5\\ncommit: 6b8589dc", "1.14", "fail"),
])
def test_versions(bindir, name, printed, minimum, status):
    want = " ".join(VERSION_ARGS[name])
    check_args = f'[ "$*" = "{want}" ] || {{ echo "unexpected args: $*" >&2; exit 2; }}\n'
    _tool(bindir, name, check_args + f'printf "{printed}\\n"\n')
    facts = probe_tool(name, timeout=10)
    verdict = tool_version(facts, minimum)
    assert verdict.status == status, verdict
    if status == "fail":
        assert "older than" in verdict.message and verdict.remediation == expected_install(facts)


@pytest.mark.parametrize("name", ["kind", "helm", "nvidia-ctk"])
def test_missing_binary_fails_with_the_install_command(bindir, monkeypatch, name):
    monkeypatch.setenv("PATH", str(bindir))
    facts = probe_tool(name, extra_dirs=("/nonexistent",), timeout=10)
    verdict = tool_version(facts, "1.0")
    assert verdict.status == "fail" and "not on PATH" in verdict.message
    assert verdict.remediation == expected_install(facts)


def test_tool_in_extra_bin_dir_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    _tool(tmp_path / "nvbin", "nvidia-ctk", 'echo "NVIDIA Container Toolkit CLI version 1.18.0"\n')
    facts = probe_tool("nvidia-ctk", extra_dirs=(str(tmp_path / "nvbin"),), timeout=10)
    assert facts.version == "1.18.0" and tool_version(facts, "1.14").status == "pass"


def test_hung_tool_times_out_and_names_the_command(bindir):
    _tool(bindir, "helm", "sleep 60\n")
    verdict = tool_version(probe_tool("helm", timeout=0.5), "3.10")
    assert verdict.status == "fail" and "helm version --template" in verdict.message and "hung" in verdict.message


def test_unparsable_version_fails(bindir):
    _tool(bindir, "kind", 'echo "kind development build"\n')
    verdict = tool_version(probe_tool("kind", timeout=10), "0.24.0")
    assert verdict.status == "fail" and "cannot read a version" in verdict.message


def test_crashing_tool_fails_with_its_output(bindir):
    _tool(bindir, "kind", 'echo "segmentation fault" >&2; exit 139\n')
    verdict = tool_version(probe_tool("kind", timeout=10), "0.24.0")
    assert verdict.status == "fail" and "exited 139" in verdict.message


def _kind(printed: str | None) -> ToolFacts:
    if printed is None:
        return ToolFacts("kind", None, None)
    return ToolFacts("kind", "/usr/local/bin/kind", CmdResult(("kind", "version"), 0, printed + "\n"), "kind",
                     "x86_64", InstallTarget("/usr/local/bin/kind", True, False))


WORKSHOP_IMAGE = "kindest/node:v1.34.0"  # the workshop's node image (field notes)
# The lab's default: the workshop's tag pinned to the digest kind v0.30.0's release notes list for it.
PINNED = "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
V033_1_34 = "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d"
V032_1_34 = "kindest/node:v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256"
KIND_030 = "kind v0.30.0 go1.24.6 linux/amd64"  # `kind version` of the release whose default is PINNED


def test_default_lab_image_is_the_one_kind_030_lists():
    """The config's default and this table agree (kind's v0.30.0 tag: pkg/apis/config/defaults/image.go)."""
    assert LabConfig().node_image == PINNED == f"{kind_releases.REPO}:{kind_releases.IMAGES['0.30.0'][0]}"


@pytest.mark.parametrize(("printed", "image"), [
    (KIND_030, PINNED),
    (KIND_030, WORKSHOP_IMAGE),                                           # by tag: listed, digest not checked
    ("kind v0.24.0 go1.22.6 linux/amd64", "kindest/node:v1.31.0"),
    ("kind v0.24.0 go1.22.6 linux/amd64", "kindest/node:v1.29.8"),       # an older minor v0.24.0 lists
    ("kind v0.31.0 go1.25.5 linux/amd64", "kindest/node:v1.35.0"),
    ("kind v0.32.0 go1.26.2 linux/amd64", "kindest/node:v1.36.1"),
    ("kind v0.33.0 go1.26.3 linux/amd64", "kindest/node:v1.37.0"),
    ("kind v0.33.0 go1.26.3 linux/amd64", V033_1_34),
])
def test_a_pair_the_release_notes_list_passes_with_the_evidence(printed, image):
    verdict = kind_supports_node_image(_kind(printed), image)
    assert verdict.status == "pass", verdict
    release = printed.split()[1][1:]
    how = "tag and digest" if "@" in image else "tag only: the digest is what guarantees the build"
    assert verdict.message == f"kind {release}'s release notes list node image {image} (matched by {how})"


@pytest.mark.parametrize(("printed", "image", "first"), [
    ("kind v0.24.0 go1.22.6 linux/amd64", WORKSHOP_IMAGE, "0.30.0"),    # passes the seed's >= 0.24.0, cannot run 1.34
    ("kind v0.29.0 go1.24.2 linux/amd64", PINNED, "0.30.0"),
    ("kind v0.30.0 go1.24.6 linux/amd64", "kindest/node:v1.36.4", "0.33.0"),   # only v0.33.0 lists v1.36.4
    ("kind v0.31.0 go1.25.5 linux/amd64", V033_1_34, "0.33.0"),
])
def test_kind_older_than_the_first_release_listing_the_image_fails_with_that_release(printed, image, first):
    verdict = kind_supports_node_image(_kind(printed), image)
    assert verdict.status == "fail", verdict
    assert f"it is listed by kind v{first}, newer than" in verdict.message
    assert verdict.remediation == guide(first)


@pytest.mark.parametrize(("printed", "alt"), [
    ("kind v0.32.0 go1.26.2 linux/amd64", V032_1_34),   # the reviewer's repro: v0.32.0 lists v1.34.8, not v1.34.0
    ("kind v0.33.0 go1.26.3 linux/amd64", V033_1_34),   # v0.33.0 lists v1.34.11
    ("kind v0.31.0 go1.25.5 linux/amd64",
     "kindest/node:v1.34.3@sha256:08497ee19eace7b4b5348db5c6a1591d7752b164530a36f855cb0f2bdcbadd48"),
])
def test_kind_newer_than_the_release_that_built_the_default_image_fails_with_both_fixes(printed, alt):
    """kind supports only images built for its release: v0.30.0's v1.34.0 build on a later kind is no pair."""
    verdict = kind_supports_node_image(_kind(printed), PINNED)
    release = printed.split()[1][1:]
    assert verdict.status == "fail", verdict
    assert verdict.message.startswith(f"kind {release} cannot run node image {PINNED}: it was built for kind "
                                      f"v0.30.0 and kind {release}'s release notes do not list it")
    assert verdict.remediation == (f"{guide()}   # kind v0.30.0 lists it; or set node_image in lab.yaml to "
                                   f"{alt} (the Kubernetes 1.34 image kind v{release} lists)")


def test_a_kind_newer_than_every_known_release_fails_when_a_known_release_dropped_the_image():
    verdict = kind_supports_node_image(_kind("kind v0.34.0 go1.26.5 linux/amd64"), PINNED)
    assert verdict.status == "fail", verdict
    assert "the later releases kind v0.31.0, v0.32.0, v0.33.0 no longer list it" in verdict.message
    assert verdict.remediation.endswith(f"; or set node_image in lab.yaml to {V033_1_34} (the Kubernetes 1.34 image "
                                        "kind v0.33.0 lists)")


def test_an_unknown_kind_release_right_after_the_one_listing_the_image_warns_with_what_was_compared():
    verdict = kind_supports_node_image(_kind("kind v0.33.1 go1.26.5 linux/amd64"), V033_1_34)
    assert verdict.status == "warn", verdict
    assert verdict.message == (f"kind 0.33.1 is not a release this suite knows (v0.24.0 to v0.33.0): node image "
                               f"{V033_1_34} is listed by kind v0.33.0; cannot tell whether kind 0.33.1 lists it")
    assert "github.com/kubernetes-sigs/kind/releases" in verdict.remediation


def test_a_digest_no_release_lists_warns_naming_the_digest_the_notes_give(tmp_path):
    """A rebuilt or foreign image under the workshop's tag: not the build kind v0.30.0 lists, so no pass."""
    image = "kindest/node:v1.34.0@sha256:" + "0" * 64
    verdict = kind_supports_node_image(_kind(KIND_030), image)
    assert verdict.status == "warn", verdict
    assert verdict.message == (f"node image {image} is in the release notes of no kind release this suite knows "
                               "(v0.24.0 to v0.33.0); kind v0.30.0 lists kindest/node:v1.34.0 with digest "
                               f"{PINNED.partition('@')[2]}: cannot tell whether kind 0.30.0 runs it")
    # the editor on the lab config (a comment alone was no command), what to set after '#'
    assert verdict.remediation == config.edit_fix("lab.yaml", None, f"set node_image: {PINNED} (the Kubernetes 1.34 "
                                                                    "image kind 0.30.0 lists)")
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"cluster_name: lab-a\nnode_image: {image}\n")
    at_line = kind_supports_node_image(_kind(KIND_030), image, rerun=Rerun(lab_config=str(lab))).remediation
    assert at_line.startswith(f"${{EDITOR:-vi}} +2 {lab}   # set node_image: {PINNED}"), at_line


def test_an_unlisted_patch_of_a_known_minor_still_fails_on_a_kind_too_old_for_the_minor():
    verdict = kind_supports_node_image(_kind("kind v0.30.0 go1.24.6 linux/amd64"), "kindest/node:v1.36.9")
    assert verdict.status == "fail", verdict
    assert "Kubernetes 1.36 node images are built for kind v0.32.0 and later" in verdict.message
    assert verdict.remediation == guide("0.32.0")


def test_other_images_and_no_kind():
    foreign = kind_supports_node_image(_kind(KIND_030), "registry.local/my-node:dev")
    assert foreign.status == "warn" and "cannot tell which kind release" in foreign.message
    assert kind_supports_node_image(_kind(None), WORKSHOP_IMAGE).status == "skip"


@pytest.mark.parametrize(("printed", "image", "status", "words"), [
    ("kind v0.34.0 go1.26.5 linux/amd64", "kindest/node:v1.38.0", "warn",
     "not in this suite's kind table: Kubernetes 1.38 is newer than the minors it knows (1.25 to 1.37)"),
    ("kind v0.24.0 go1.22.6 linux/amd64", "kindest/node:v1.24.17", "warn",
     "not in this suite's kind table: Kubernetes 1.24 is older than the minors it knows (1.25 to 1.37)"),
    ("kind v0.32.0 go1.26.2 linux/amd64", "kindest/node:v1.38.0", "fail",
     "kind 0.32.0 cannot run node image kindest/node:v1.38.0: Kubernetes 1.38 is newer than 1.37, whose node "
     "images first came with kind v0.33.0"),
])
def test_a_minor_the_kind_table_does_not_know(printed, image, status, words):
    """Only a minor truly unknown warns, and says so; a newer minor on a kind older than the newest known fails."""
    verdict = kind_supports_node_image(_kind(printed), image)
    assert verdict.status == status and verdict.message.startswith(words), verdict
    assert "github.com/kubernetes-sigs/kind/releases" in verdict.remediation


def test_node_image_tag_and_digest():
    assert kind_releases.split("kindest/node:v1.34.0@sha256:abc") == ("v1.34.0", "sha256:abc")
    assert kind_releases.split("docker.io/kindest/node:v1.31.12") == ("v1.31.12", "")
    assert kind_releases.split("kindest/node:latest") is None
    assert kind_releases.split("busybox:1.36") is None


def test_the_table_is_well_formed():
    """Every row: a tag and a 64-hex digest, newest Kubernetes first (the first is the release's default), no
    tag twice in one release."""
    for release, refs in kind_releases.IMAGES.items():
        tags = [r.partition("@")[0] for r in refs]
        assert len(set(tags)) == len(tags), release
        assert all(re.fullmatch(r"v1\.\d+\.\d+@sha256:[0-9a-f]{64}", r) for r in refs), release
        assert tags == sorted(tags, key=lambda t: kind_releases.versions.parse(t), reverse=True), release


def test_module0_checks_the_configured_kind_binary_not_the_kind_on_path(tmp_path):
    """kind v0.30.0 on PATH, lab config kind_binary: a v0.20.0 elsewhere (audit m0-3): module 1 drives the
    configured one, so module 0's kind checks must judge it (they passed on the PATH kind before)."""
    root = Path(__file__).resolve().parents[1]
    on_path = tmp_path / "bin"
    # stand for `kind version` of the two releases (kind's own format, see the module docstring)
    _tool(on_path, "kind", 'echo "kind v0.30.0 go1.24.6 linux/amd64"\n')
    old = tmp_path / "opt old" / "kind"
    _tool(old.parent, "kind", 'echo "kind v0.20.0 go1.20.4 linux/amd64"\n')
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"kind_binary: {json.dumps(str(old))}\n")
    out = tmp_path / "r.json"
    env = {**os.environ, "PATH": f"{on_path}:{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "pytest", str(root / "tests_env"), "-m", "module0", "-k", "kind",
                    "--no-provision", f"--lab-config={lab}", f"--results-json={out}", "-p", "no:cacheprovider",
                    "-q"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"]}
    assert recs["kind_version"]["verdict"] == "fail", recs["kind_version"]
    assert f"0.20.0 is older than 0.24.0 ({old})" in recs["kind_version"]["message"]
    assert recs["kind_supports_the_node_image"]["verdict"] == "fail"
    lab.write_text(f"kind_binary: {json.dumps(str(on_path / 'kind'))}\n")
    subprocess.run([sys.executable, "-m", "pytest", str(root / "tests_env"), "-m", "module0", "-k", "kind_version",
                    "--no-provision", f"--lab-config={lab}", f"--results-json={out}", "-p", "no:cacheprovider",
                    "-q"], cwd=root, env={**os.environ, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                   timeout=120)
    rec = [r for r in json.loads(out.read_text())["records"] if r["check"] == "kind_version"][0]
    assert rec["verdict"] == "pass" and str(on_path / "kind") in rec["message"], rec  # a path: not looked up on PATH


def test_a_configured_binary_is_found_as_module1_runs_it(tmp_path, bindir):
    """A bare name: PATH only (module 1 runs it by name, never from extra_bin_dirs); a path: as written."""
    extra = tmp_path / "extra"
    _tool(extra, "kind", 'echo "kind v0.30.0 go1.24.6 linux/amd64"\n')
    assert probe_tool("kind", (str(extra),), 10, binary="kind").path is None
    assert probe_tool("kind", (str(extra),), 10).path == str(extra / "kind")  # unconfigured tools: extra dirs too
    assert probe_tool("kind", (), 10, binary=str(extra / "kind")).version == "0.30.0"


def test_a_missing_configured_kind_binary_is_named_with_a_fix_for_that_path(tmp_path, bindir):
    """kind_binary: /opt/old kind (absent): the message names that program, not "`kind` is not on PATH", and
    the install puts kind where the lab config says (quoted), or the config is pointed at the kind there is."""
    _tool(bindir, "kind", 'echo "kind v0.30.0 go1.24.6 linux/amd64"\n')  # a kind on PATH does not count
    missing = str(tmp_path / "opt old" / "kind")
    verdict = tool_version(probe_tool("kind", (), 10, binary=missing), "0.24.0")
    assert verdict.status == "fail", verdict
    assert f"the lab config's kind_binary {missing!r} is not an executable file" in verdict.message
    assert f"mv ./kind '{missing}'" in verdict.remediation and "set kind_binary" in verdict.remediation
    by_name = tool_version(probe_tool("kind", (), 10, binary="kind-0.30"), "0.24.0")
    assert "kind_binary 'kind-0.30' is not an executable file on PATH" in by_name.message, by_name


# --- pre-releases: the real tools' release outputs above, with the pre-release each project's source prints ----
# (kind's version package: "-alpha[.<commits>+<commit>]"; helm's rc tags; nvidia-ctk's LIB_VERSION-LIB_TAG)

@pytest.mark.parametrize(("name", "printed", "found", "minimum", "previous"), [
    ("kind", "kind v0.30.0-alpha.12+0123456789abcd go1.24.6 linux/amd64", "0.30.0-alpha.12+0123456789abcd",
     "0.30.0", "0.29.0"),
    ("kind", "kind v0.24.0-alpha go1.22.6 linux/amd64", "0.24.0-alpha", "0.24.0", "0.23.0"),
    ("kind", "kind v0.30.0-rc.1 go1.24.6 linux/amd64", "0.30.0-rc.1", "0.30.0", "0.29.0"),
    ("helm", "v3.17.0-rc.1", "3.17.0-rc.1", "3.17", "3.16"),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.17.0-rc.1\\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c",
     "1.17.0-rc.1", "1.17", "1.16"),
])
def test_a_prerelease_of_the_minimum_fails_and_says_so(bindir, name, printed, found, minimum, previous):
    want = " ".join(VERSION_ARGS[name])
    check_args = f'[ "$*" = "{want}" ] || {{ echo "unexpected args: $*" >&2; exit 2; }}\n'
    _tool(bindir, name, check_args + f'printf "{printed}\\n"\n')
    facts = probe_tool(name, timeout=10)
    assert facts.version == found  # the pre-release is kept, not cut off
    verdict = tool_version(facts, minimum)
    assert verdict.status == "fail", verdict
    pre = found.partition("-")[2].partition("+")[0]
    assert verdict.message.startswith(f"{LABEL[name]} {found} is older than {minimum} (a pre-release, {pre}, of "), \
        verdict
    assert verdict.remediation == expected_install(facts)
    assert tool_version(facts, previous).status == "pass"  # above the release before


def test_a_kind_prerelease_is_not_the_release_whose_notes_list_the_image():
    """kind 0.30.0's notes list the lab's image; a 0.30.0 pre-release is older than that release, not it."""
    verdict = kind_supports_node_image(_kind("kind v0.30.0-alpha.12+0123456789abcd go1.24.6 linux/amd64"), PINNED)
    assert verdict.status == "fail", verdict
    assert verdict.message.startswith(f"kind 0.30.0-alpha.12+0123456789abcd cannot run node image {PINNED}: it is "
                                      "listed by kind v0.30.0, newer than 0.30.0-alpha.12+0123456789abcd")
    assert verdict.remediation == guide()
    later = kind_supports_node_image(_kind("kind v0.31.0-alpha go1.24.6 linux/amd64"), PINNED)
    assert later.status == "warn" and later.message.startswith("kind 0.31.0-alpha is not a release this suite knows")


# --- the kind fixes install the kind module 1 runs, for this host's architecture (audit: fixes-2) -----------------

def _fake_curl(folder: Path, printed: str) -> None:
    """Stand-in for curl (no network here): ``curl -fsSLo FILE URL`` writes a kind that prints ``printed``, and the
    URL it was asked for goes to ``FILE.url`` (so a test sees which release and architecture it fetched)."""
    _tool(folder, "curl", 'while [ $# -gt 1 ]; do case "$1" in -fsSLo) out=$2; shift;; esac; shift; done\n'
                          f'printf \'#!/bin/sh\\necho "{printed}"\\n\' > "$out"; echo "$1" > "$out.url"\n')


@pytest.mark.parametrize("configured", ["/tmp/x/bin dir/kind $x", "/tmp/q'uote/a;b/`id`/kind",
                                        '/tmp/dq"x/$(id) y/kind'])
def test_the_kind_fixes_replace_the_configured_kind_binary(tmp_path, configured):
    """kind_binary: a hostile but valid path with kind v0.22.0 there: both kind checks fail, and their fix, pasted
    into bash, replaces that very file (it put /usr/local/bin/kind in place before, so both still failed)."""
    binary = str(tmp_path) + configured  # under tmp_path: the test writes there
    _tool(Path(binary).parent, Path(binary).name, 'echo "kind v0.22.0 go1.22.6 linux/amd64"\n')
    facts = probe_tool("kind", (), 10, binary=binary)
    assert facts.version == "0.22.0" and facts.path == binary
    for verdict in (tool_version(facts, "0.24.0"), kind_supports_node_image(facts, PINNED)):
        fix = verdict.remediation
        assert verdict.status == "fail" and parses(fix), fix
        assert ["mv", "./kind", binary] in commands(fix), fix  # one word, quoted, where the kind is
        assert "/usr/local/bin" not in fix and "sudo" not in fix  # this user may write there: no sudo
        assert f"https://kind.sigs.k8s.io/dl/v0.30.0/kind-linux-{HOST_ARCH}" in fix
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _fake_curl(tmp_path / "fakebin", "kind v0.30.0 go1.24.6 linux/amd64")
    env = {**os.environ, "PATH": f"{tmp_path / 'fakebin'}:/usr/bin:/bin"}
    subprocess.run(["bash", "-c", tool_version(facts, "0.24.0").remediation], cwd=cwd, env=env, check=True,
                   timeout=30)
    after = probe_tool("kind", (), 10, binary=binary)
    assert tool_version(after, "0.24.0").status == "pass" and kind_supports_node_image(after, PINNED).status == "pass"


def test_a_missing_kind_binary_goes_where_the_lab_config_says(tmp_path):
    """A path whose folder is missing: made first; a bare name not on PATH: /usr/local/bin/<name>, not
    /usr/local/bin/kind (module 1 would run kind-v0.30 and find none)."""
    missing = str(tmp_path / "no such $dir" / "kind")
    fix = tool_version(probe_tool("kind", (), 10, binary=missing), "0.24.0").remediation
    assert parses(fix) and ["mkdir", "-p", os.path.dirname(missing)] in commands(fix), fix
    assert ["mv", "./kind", missing] in commands(fix)
    bare = tool_version(probe_tool("kind", (), 10, binary="kind-v0.30"), "0.24.0").remediation
    assert parses(bare) and "/usr/local/bin/kind-v0.30" in bare and "/usr/local/bin/kind " not in bare, bare
    mv = next(c for c in commands(bare) if "mv" in c)
    assert mv[-2:] == ["./kind", "/usr/local/bin/kind-v0.30"]
    assert (mv[0] == "sudo") != os.access("/usr/local/bin", os.W_OK | os.X_OK)  # sudo only where it is needed


@pytest.mark.parametrize(("writable", "root", "sudo"),
                         [(False, False, True), (False, True, False), (True, False, False)])
def test_sudo_only_where_the_user_may_not_write(writable, root, sudo):
    """A folder that is not the user's (a probed fact): sudo mv, unless the user is root (labcheck.remedy.Shell)."""
    dest = "/opt/lab tools/kind"
    facts = ToolFacts("kind", dest, CmdResult(("kind", "version"), 0, "kind v0.20.0 go1.20.4 linux/amd64\n"), dest,
                      "x86_64", InstallTarget(dest, True, writable))
    fix = tool_version(facts, "0.24.0", Shell(root=root)).remediation
    assert parses(fix) and commands(fix)[-1] == [*(["sudo"] if sudo else []), "mv", "./kind", dest], fix


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64")])
def test_the_download_is_the_binary_for_this_hosts_architecture(machine, arch):
    """kind publishes linux-amd64 and linux-arm64: the probed `uname -m` picks one (amd64 was hard-coded)."""
    facts = ToolFacts("kind", "/usr/local/bin/kind", CmdResult(("kind", "version"), 0, KIND_030 + "\n"), "kind",
                      machine, InstallTarget("/usr/local/bin/kind", True, False))
    fix = kind_supports_node_image(facts, "kindest/node:v1.36.4").remediation
    assert commands(fix)[0] == ["curl", "-fsSLo", "./kind", f"https://kind.sigs.k8s.io/dl/v0.33.0/kind-linux-{arch}"]


def test_an_architecture_kind_publishes_no_binary_for_builds_it_from_source():
    facts = ToolFacts("kind", None, None, "kind", "ppc64le", InstallTarget("/usr/local/bin/kind", True, False))
    fix = tool_version(facts, "0.24.0").remediation
    assert parses(fix) and commands(fix)[0] == ["GOBIN=$PWD", "go", "install", "sigs.k8s.io/kind@v0.30.0"], fix
    assert commands(fix)[1] == ["sudo", "mv", "./kind", "/usr/local/bin/kind"]
    assert "# kind publishes Linux binaries for amd64 and arm64 only; this host is ppc64le" in fix


def test_the_probe_records_this_hosts_machine_and_where_kind_goes(tmp_path, bindir):
    _tool(bindir, "kind", 'echo "kind v0.30.0 go1.24.6 linux/amd64"\n')
    facts = probe_tool("kind", (), 10, binary="kind")
    assert facts.machine == platform.machine().lower()
    assert facts.target == InstallTarget(str(bindir / "kind"), True, True)  # the kind found on PATH is replaced


def test_every_kind_fix_parses_with_hostile_names():
    """Each branch of the node-image check, with a kind_binary and a node_image holding shell syntax: each fix
    parses, and what is not a command (release notes, lab.yaml edits) is a comment on one line."""
    dest = "/tmp/a b/`k`;$(x)/kind"
    images = (PINNED, WORKSHOP_IMAGE, "kindest/node:v1.36.4", "kindest/node:v1.36.9", "kindest/node:v1.38.0",
              "kindest/node:v1.24.17", "kindest/node:v1.34.0@sha256:" + "0" * 64, "registry.local/my node:dev\n`id`")
    for printed in (KIND_030, "kind v0.24.0 go1.22.6 linux/amd64", "kind v0.32.0 go1.26.2 linux/amd64",
                    "kind v0.33.1 go1.26.5 linux/amd64", "kind v0.34.0 go1.26.5 linux/amd64"):
        facts = ToolFacts("kind", dest, CmdResult(("kind", "version"), 0, printed + "\n"), dest, "x86_64",
                          InstallTarget(dest, True, False))
        for image in images:
            fix = kind_supports_node_image(facts, image).remediation
            assert parses(fix) and "\n" not in fix, (printed, image, fix)
            mv = [c for c in commands(fix) if "mv" in c]
            assert mv in ([], [["sudo", "mv", "./kind", dest]]), fix
