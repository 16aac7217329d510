import json

import pytest

from labcheck import versions
from labcheck.cmd import CmdResult
from labcheck.probes import docker as docker_probe
from labcheck.probes import gpu as gpu_probe
from labcheck.probes.docker import cli_version
from labcheck.probes.host import HostFacts
from labcheck.probes.tools import version_field
from labcheck.remedy import Shell
from labcheck.verdicts import docker as docker_verdicts
from labcheck.verdicts import gpu as gpu_verdicts
from labcheck.verdicts import host as host_verdicts
from tests import captures


def test_parse_forms_tools_print():
    assert versions.parse("v0.24.0") == (0, 24, 0)
    assert versions.parse("20.10.24+dfsg1") == (20, 10, 24)
    assert versions.parse("580.159.04") == (580, 159, 4)
    assert versions.parse("no digits") is None


@pytest.mark.parametrize("text", [
    "master-dockerproject-2019-07-17",  # Docker's nightly builds name their branch and date in Version
    "kind v0.24.0 go1.22.6 linux/amd64",  # a whole answer: its version field is the caller's to pick
    "Docker version 28.2.2, build e6534b4", "NVIDIA Container Toolkit CLI version 1.17.8",
    "unknown-6.8.0", "dev 24.0", " 24.0", "24abc", "24.0.7a", "24٢", "1.2.3.dev0", "24.0.", "", "?",
])
def test_a_version_is_read_from_the_start_of_its_text_only(text):
    """The first number anywhere made Docker's dev build "master-dockerproject-2019-07-17" version 2019, at least
    24.0 (the engine check passed); a number inside a word ("24abc") or after other words is no version either."""
    assert versions.parse(text) is None, text
    assert versions.at_least(text, "24.0") is None and versions.at_least(text, "1") is None, text
    assert versions.prerelease(text) == "" and not versions.same(text, "24.0")


@pytest.mark.parametrize(("tool", "printed", "field"), [
    ("kind", "kind v0.24.0 go1.22.6 linux/amd64", "0.24.0"),
    ("kind", "kind v0.20.0 go1.24.6 linux/amd64", "0.20.0"),
    ("helm", "v3.16.2", "3.16.2"),
    ("helm", 'version.BuildInfo{Version:"v3.17.0-rc.1", GitCommit:"301108e", GoVersion:"go1.23.4"}', "3.17.0-rc.1"),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d",
     "1.17.8"),
    ("docker", "Docker version 28.2.2, build e6534b4", "28.2.2"),  # the real docker CLI here
    ("docker", "Docker version 20.10.24+dfsg1, build 297e128", "20.10.24+dfsg1"),
])
def test_each_tool_s_version_field_is_read_where_the_tool_prints_it(tool, printed, field):
    assert _field(tool, printed) == field and versions.parse(field) is not None


def _field(tool: str | None, printed: str) -> str:
    """What the probes hand to labcheck.versions: the tool's own version field (None: the text is that field)."""
    if tool is None:
        return printed
    return cli_version(printed) if tool == "docker" else version_field(tool, printed)


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
    # (the tool (None: the text is its version field, as the engine's Version), what it printed, the pre-release
    # in it, its release, the release before it)
    ("kind", "kind v0.30.0-alpha.12+0123456789abcd go1.24.6 linux/amd64", "alpha.12", "0.30.0", "0.29.0"),
    ("kind", "kind v0.31.0-alpha go1.24.6 linux/amd64", "alpha", "0.31.0", "0.30.0"),
    ("kind", "kind v0.30.0-rc.1 go1.24.6 linux/amd64", "rc.1", "0.30.0", "0.29.0"),
    ("helm", "v3.17.0-rc.1", "rc.1", "3.17.0", "3.16.4"),
    ("helm", 'version.BuildInfo{Version:"v3.17.0-rc.1", GitCommit:"301108e", GitTreeState:"clean", '
     'GoVersion:"go1.23.4"}', "rc.1", "3.17.0", "3.16.4"),
    (None, "28.0.0-rc.1", "rc.1", "28.0.0", "27.5.1"),
    ("docker", "Docker version 28.0.0-rc.1, build 1234567", "rc.1", "28.0.0", "27.5.1"),
    (None, "25.0.0-beta.1", "beta.1", "25.0.0", "24.0.9"),
    (None, "19.03.0-beta3", "beta3", "19.03.0", "18.09.9"),
    (None, "17.06.0-ce-rc1", "rc1", "17.06.0", "17.05.0"),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.17.0-rc.1\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d",
     "rc.1", "1.17.0", "1.16.2"),
    (None, "1.17.0~rc.1", "rc.1", "1.17.0", "1.16.2"),
]


@pytest.mark.parametrize(("tool", "printed", "pre", "release", "previous"), PRERELEASES)
def test_a_prerelease_is_below_its_release_and_above_the_one_before(tool, printed, pre, release, previous):
    printed = _field(tool, printed)
    assert versions.prerelease(printed) == pre
    assert versions.parse(printed) == versions.parse(release)  # the numbers alone are the release's
    assert versions.at_least(printed, release) is False
    assert versions.at_least(printed, previous) is True
    assert not versions.same(printed, release)
    assert versions.below_as_prerelease(printed, release) == \
        f" (a pre-release, {pre}, of {versions.show(versions.parse(release))}: a pre-release ranks below its release)"


@pytest.mark.parametrize(("tool", "printed"), [
    (None, "20.10.24+dfsg1"),  # the real engine here (tests/data/debian-docker-20.10): Debian's build, a release
    ("docker", "Docker version 28.2.2, build e6534b4"),  # the real docker CLI here
    (None, "24.0.7-0ubuntu4"),  # a distribution revision
    (None, "17.06.0-ce"),  # Docker 17.x's release: the edition, not a pre-release
    *((None, k) for k in ("6.8.0-45-generic", "6.18.44-fc-v669", "5.15.153.1-microsoft-standard-WSL2",
                          "6.1.0-preempt", "5.14.0-427.13.1.el9_4.x86_64")),  # kernels (uname -r)
    ("kind", "kind v0.30.0 go1.24.6 linux/amd64"), ("helm", "v3.16.2"),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.17.8"),
    ("kind", "kind v0.31.0-development go1"),  # "dev" only as a whole word
])
def test_what_follows_a_release_is_no_prerelease(tool, printed):
    printed = _field(tool, printed)
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


# --- every caller, on the real captures (tests/data: copied from ../shared/real-captures) -------------------------

def _engine(version: str) -> docker_probe.EngineFacts:
    info = json.loads(captures.text("debian-docker-20.10/docker-info.json"))
    server = {**json.loads(captures.text("debian-docker-20.10/docker-version.json"))["Server"], "Version": version}
    return docker_probe.fill_from_api(docker_probe.EngineFacts("unix:///var/run/docker.sock", 30.0, client=object()),
                                      server, info)


def test_every_version_caller_still_reads_the_real_captures():
    """The Docker engine (its Version), the kernel (`uname -r`; the engine's KernelVersion on that machine), the
    driver (nvidia-smi's CSV, NVML, /proc/driver/nvidia/version) as the probes read them, judged by the verdicts."""
    server = json.loads(captures.text("debian-docker-20.10/docker-version.json"))["Server"]
    engine = _engine(server["Version"])
    assert engine.server_version == "20.10.24+dfsg1"
    assert docker_verdicts.engine_version(engine, "20.10").status == "pass"
    low = docker_verdicts.engine_version(engine, "24.0")
    assert low.status == "fail" and "Docker engine 20.10.24+dfsg1 is older than the required 24.0" in low.message
    kernel = server["Components"][0]["Details"]["KernelVersion"]
    assert kernel == "6.18.44-fc-v657"
    assert host_verdicts.linux_kernel(HostFacts("Linux", kernel, "Debian"), "5.15", Shell()).status == "pass"
    assert host_verdicts.linux_kernel(HostFacts("Linux", kernel, "Debian"), "7.0", Shell()).status == "fail"
    gpus, driver = gpu_probe.parse_query_csv(captures.first("h100-host/nvidia-smi-query-csv-noheader.txt").output)
    kmod = gpu_probe.parse_proc_version(captures.first("h100-host/proc-driver-version.txt").output)
    nvml = captures.text("h100-host/pynvml.txt").splitlines()[0].split()[1]
    assert driver == kmod == nvml == "580.159.04" and versions.parse(driver) == (580, 159, 4)
    facts = gpu_probe.GpuFacts(gpu_probe.SmiQuery("nvidia-smi", None, tuple(gpus), driver),
                               gpu_probe.NvmlFacts(nvml), "13.0", kmod)
    assert gpu_verdicts.driver(facts, "535").status == "pass"
    assert gpu_verdicts.driver_for_dra(facts).status == "pass"
    assert gpu_verdicts.driver(facts, "590").status == "fail"


@pytest.mark.parametrize("printed", ["master-dockerproject-2019-07-17", "dev", "unknown-24.0"])
def test_an_engine_version_that_does_not_start_with_one_fails_the_check_showing_it(printed):
    """Docker's dev builds report their branch and date as Version: read as 2019 before, at least 24.0 (passed)."""
    verdict = docker_verdicts.engine_version(_engine(printed), "24.0")
    assert verdict.status == "fail", verdict
    assert verdict.message == f"cannot read the Docker engine version (found {printed!r}); the workshop needs >= 24.0"


@pytest.mark.parametrize("release", ["unknown", "master-2019-07-17", "linux-6.8.0"])
def test_a_kernel_release_that_does_not_start_with_a_version_fails_the_check_showing_it(release):
    verdict = host_verdicts.linux_kernel(HostFacts("Linux", release, "Debian"), "5.15", Shell())
    assert verdict.status == "fail" and f"cannot read a version from kernel release {release!r}" in verdict.message


@pytest.mark.parametrize("driver", ["master-2019-07-17", "r580.159.04"])
def test_a_driver_that_does_not_start_with_a_version_fails_the_check_showing_it(driver):
    # nvidia-smi itself works (exit 0) and prints that driver field; NVML reports the same
    smi = gpu_probe.SmiQuery("nvidia-smi", CmdResult(("nvidia-smi",), 0, ""), driver=driver)
    facts = gpu_probe.GpuFacts(smi, gpu_probe.NvmlFacts(driver))
    verdict = gpu_verdicts.driver(facts, "535")
    assert verdict.status == "fail" and f"cannot read a version from driver {driver!r}" in verdict.message
