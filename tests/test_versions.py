import json

import pytest

from labcheck import versions
from tests import captures


def test_parse_forms_tools_print():
    assert versions.parse("kind v0.24.0 go1.22.6 linux/amd64") == (0, 24, 0)
    assert versions.parse("20.10.24+dfsg1") == (20, 10, 24)
    assert versions.parse("580.159.04") == (580, 159, 4)
    assert versions.parse("no digits") is None


def test_at_least_pads_and_compares():
    assert versions.at_least("24.0.7", "24.0") is True
    assert versions.at_least("20.10.24+dfsg1", "24.0") is False
    assert versions.at_least("6.18.44-fc-v669", "5.15") is True
    assert versions.at_least("3.10", "3.10.0") is True
    assert versions.at_least("?", "1") is None


# --- pre-releases -----------------------------------------------------------------------------------------
# Each tool's real release output (tests/data, the docker CLI on this machine, the formats tests/standins.py and
# tests/test_tools.py use) and the pre-release form of it that tool's own source prints: kind's version package
# ("-alpha", plus ".<commits>+<14-hex commit>" when built from git), helm's release-candidate tags through its
# ldflags, Docker's test channel ("-rc.N", "-beta.N"; 19.03 "-beta3", 17.x "-ce-rc1"), nvidia-ctk's Makefile
# (LIB_VERSION-LIB_TAG; its .deb packages write LIB_VERSION~LIB_TAG).

def _engine_version() -> str:
    return json.loads(captures.text("debian-docker-20.10/docker-version.json"))["Server"]["Version"]


PRERELEASES = [
    # (what the tool printed, the pre-release in it, its release, the release before it)
    ("kind v0.30.0-alpha.12+0123456789abcd go1.24.6 linux/amd64", "alpha.12", "0.30.0", "0.29.0"),
    ("kind v0.31.0-alpha go1.24.6 linux/amd64", "alpha", "0.31.0", "0.30.0"),
    ("kind v0.30.0-rc.1 go1.24.6 linux/amd64", "rc.1", "0.30.0", "0.29.0"),
    ("v3.17.0-rc.1", "rc.1", "3.17.0", "3.16.4"),
    ('version.BuildInfo{Version:"v3.17.0-rc.1", GitCommit:"301108e", GitTreeState:"clean", GoVersion:"go1.23.4"}',
     "rc.1", "3.17.0", "3.16.4"),
    ("28.0.0-rc.1", "rc.1", "28.0.0", "27.5.1"),
    ("Docker version 28.0.0-rc.1, build 1234567", "rc.1", "28.0.0", "27.5.1"),
    ("25.0.0-beta.1", "beta.1", "25.0.0", "24.0.9"),
    ("19.03.0-beta3", "beta3", "19.03.0", "18.09.9"),
    ("17.06.0-ce-rc1", "rc1", "17.06.0", "17.05.0"),
    ("NVIDIA Container Toolkit CLI version 1.17.0-rc.1\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d", "rc.1",
     "1.17.0", "1.16.2"),
    ("1.17.0~rc.1", "rc.1", "1.17.0", "1.16.2"),
]


@pytest.mark.parametrize(("printed", "pre", "release", "previous"), PRERELEASES)
def test_a_prerelease_is_below_its_release_and_above_the_one_before(printed, pre, release, previous):
    assert versions.prerelease(printed) == pre
    assert versions.parse(printed) == versions.parse(release)  # the numbers alone are the release's
    assert versions.at_least(printed, release) is False
    assert versions.at_least(printed, previous) is True
    assert not versions.same(printed, release)
    assert versions.below_as_prerelease(printed, release) == \
        f" (a pre-release, {pre}, of {versions.show(versions.parse(release))}: a pre-release ranks below its release)"


@pytest.mark.parametrize("printed", [
    "20.10.24+dfsg1",  # the real engine here (tests/data/debian-docker-20.10): Debian's build, a release
    "Docker version 28.2.2, build e6534b4",  # the real docker CLI here
    "24.0.7-0ubuntu4",  # a distribution revision
    "17.06.0-ce",  # Docker 17.x's release: the edition, not a pre-release
    "6.8.0-45-generic", "6.18.44-fc-v669", "5.15.153.1-microsoft-standard-WSL2", "6.1.0-preempt",  # kernels
    "kind v0.30.0 go1.24.6 linux/amd64", "v3.16.2", "NVIDIA Container Toolkit CLI version 1.17.8",
    "kind v0.31.0-development go1",  # "dev" only as a whole word
])
def test_what_follows_a_release_is_no_prerelease(printed):
    numbers = versions.show(versions.parse(printed))
    assert versions.prerelease(printed) == ""
    assert versions.at_least(printed, numbers) is True
    assert versions.below_as_prerelease(printed, numbers) == ""


def test_the_captured_engine_version_is_a_release():
    assert _engine_version() == "20.10.24+dfsg1"
    assert versions.same(_engine_version(), "20.10.24") and versions.at_least(_engine_version(), "20.10.24")


def test_prereleases_rank_among_themselves_as_semver_says():
    ranked = ["1.17.0-alpha", "1.17.0-alpha.1", "1.17.0-beta.2", "1.17.0-rc", "1.17.0-rc.1", "1.17.0-rc.2",
              "1.17.0-rc.10", "1.17.0", "1.17.1-rc.1", "1.17.1"]
    for lower, higher in zip(ranked, ranked[1:], strict=False):
        assert versions.at_least(higher, lower) and not versions.at_least(lower, higher), (lower, higher)
    assert versions.same("0.31.0-alpha.12+0123abcd", "v0.31.0-alpha.12+fedc")  # build metadata aside
    assert versions.same("1.17.0-rc.1", "1.17.0~rc.1") and versions.same("0.30.0", "v0.30.0")
    assert not versions.same("0.30.0", "0.30")  # as before: the numbers as written
    assert versions.at_least("28.0.0-rc.1", "28.0") is False  # a minimum written short (min_docker: "28.0")
