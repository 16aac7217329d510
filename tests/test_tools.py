"""Kind / Helm / nvidia-ctk version checks against real processes.

kind, helm and nvidia-ctk cannot be installed here, so each is a test double: a script on a temporary
PATH printing what the real tool prints for the same arguments (formats from each project's docs and
public transcripts: "kind v0.24.0 go1.22.6 linux/amd64", helm's "v3.16.2" for --template
'{{.Version}}', "NVIDIA Container Toolkit CLI version 1.17.8" + a commit line).
"""

from __future__ import annotations

import pytest

from labcheck.cmd import CmdResult
from labcheck.probes.tools import VERSION_ARGS, ToolFacts, probe_tool
from labcheck.verdicts.tools import INSTALL, kind_supports_node_image, node_image_kubernetes, tool_version
from tests.standins import executable


def _tool(folder, name, body):
    executable(folder / name, "#!/bin/sh\n" + body)


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
    verdict = tool_version(probe_tool(name, timeout=10), minimum)
    assert verdict.status == status, verdict
    if status == "fail":
        assert "older than" in verdict.message and verdict.remediation == INSTALL[name]


@pytest.mark.parametrize("name", ["kind", "helm", "nvidia-ctk"])
def test_missing_binary_fails_with_the_install_command(bindir, monkeypatch, name):
    monkeypatch.setenv("PATH", str(bindir))
    verdict = tool_version(probe_tool(name, extra_dirs=("/nonexistent",), timeout=10), "1.0")
    assert verdict.status == "fail" and "not on PATH" in verdict.message
    assert verdict.remediation == INSTALL[name]


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
    return ToolFacts("kind", "/usr/local/bin/kind", CmdResult(("kind", "version"), 0, printed + "\n"))


WORKSHOP_IMAGE = "kindest/node:v1.34.0"  # the workshop's node image (field notes)


@pytest.mark.parametrize(("printed", "image", "status"), [
    ("kind v0.24.0 go1.22.6 linux/amd64", WORKSHOP_IMAGE, "fail"),   # passes the seed's >= 0.24.0, cannot run 1.34
    ("kind v0.29.0 go1.24.2 linux/amd64", WORKSHOP_IMAGE, "fail"),
    ("kind v0.30.0 go1.24.6 linux/amd64", WORKSHOP_IMAGE, "pass"),
    ("kind v0.30.0 go1.24.6 linux/amd64",
     "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a", "pass"),
    ("kind v0.24.0 go1.22.6 linux/amd64", "kindest/node:v1.31.0", "pass"),
    ("kind v0.30.0 go1.24.6 linux/amd64", "kindest/node:v1.36.4", "fail"),     # 1.36 first came with v0.32.0
    ("kind v0.32.0 go1.26.2 linux/amd64", "kindest/node:v1.36.1", "pass"),
    ("kind v0.31.0 go1.25.5 linux/amd64", "kindest/node:v1.35.0", "pass"),
    ("kind v0.33.0 go1.26.3 linux/amd64", "kindest/node:v1.37.0", "pass"),
    ("kind v0.30.0 go1.24.6 linux/amd64", "registry.local/my-node:dev", "warn"),
    (None, WORKSHOP_IMAGE, "skip"),
])
def test_kind_release_and_node_image_must_match(printed, image, status):
    verdict = kind_supports_node_image(_kind(printed), image)
    assert verdict.status == status, verdict
    if status == "fail" and image == WORKSHOP_IMAGE:
        assert "built for kind v0.30.0 and later" in verdict.message
        assert verdict.remediation == INSTALL["kind"]
    if status == "fail" and "1.36" in image:
        assert "built for kind v0.32.0 and later" in verdict.message
        assert verdict.remediation == INSTALL["kind"].replace("v0.30.0", "v0.32.0")
    if status == "warn":
        assert "cannot tell which kind release" in verdict.message


@pytest.mark.parametrize(("printed", "image", "status", "words"), [
    ("kind v0.34.0 go1.26.5 linux/amd64", "kindest/node:v1.38.0", "warn",
     "not in this suite's kind table: Kubernetes 1.38 is newer than the minors it knows (1.31 to 1.37)"),
    ("kind v0.24.0 go1.22.6 linux/amd64", "kindest/node:v1.29.8", "warn",
     "not in this suite's kind table: Kubernetes 1.29 is older than the minors it knows (1.31 to 1.37)"),
    ("kind v0.32.0 go1.26.2 linux/amd64", "kindest/node:v1.38.0", "fail",
     "kind 0.32.0 cannot run node image kindest/node:v1.38.0: Kubernetes 1.38 is newer than 1.37, whose node "
     "images first came with kind v0.33.0"),
])
def test_a_minor_the_kind_table_does_not_know(printed, image, status, words):
    """Only a minor truly unknown warns, and says so; a newer minor on a kind older than the newest known fails."""
    verdict = kind_supports_node_image(_kind(printed), image)
    assert verdict.status == status and verdict.message.startswith(words), verdict
    assert "github.com/kubernetes-sigs/kind/releases" in verdict.remediation


def test_node_image_kubernetes_version():
    assert node_image_kubernetes("kindest/node:v1.34.0@sha256:abc") == (1, 34)
    assert node_image_kubernetes("docker.io/kindest/node:v1.31.12") == (1, 31)
    assert node_image_kubernetes("kindest/node:latest") is None
    assert node_image_kubernetes("busybox:1.36") is None
