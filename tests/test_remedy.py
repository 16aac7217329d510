"""Remediations fit the situation (issue 10 item 4): root or sudo, the distribution, what is installed.

Each test builds the situation that calls for a different fix and checks the words of that fix.
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from labcheck import cmd, remedy
from labcheck.inventory import Host
from labcheck.probes import fleet as fleet_probe
from labcheck.probes.docker import CliFacts, DaemonJson, EngineFacts, RuntimeProbe
from labcheck.probes.gpu import GpuFacts, NvmlFacts, SmiQuery
from labcheck.probes.host import HostFacts, probe_host
from labcheck.probes.mps import MpsFacts, PipeDir, probe_pipe_dir
from labcheck.probes.tools import ToolFacts
from labcheck.remedy import OTHER, Shell, note_text, this_host, with_note
from labcheck.verdicts import docker as dv
from labcheck.verdicts import gpu as gv
from labcheck.verdicts import host as hv
from labcheck.verdicts import mps as mv
from labcheck.verdicts import tools as tv
from tests import needs, shell_text
from tests.other_user import SETPRIV, run_as_nobody
from tests.shell_text import parses

ROOT = Shell(root=True, distro="ubuntu")
USER = Shell(root=False, distro="ubuntu")
DEBIAN = Shell(root=False, distro="debian")
DEBIAN_ROOT = Shell(root=True, distro="debian")


def _missing(argv) -> cmd.CmdResult:
    return cmd.run(argv, timeout=5)


NO_SUCH = "/nonexistent/labcheck-no-such-binary"


def _engine_down() -> EngineFacts:
    return EngineFacts("unix:///var/run/docker.sock", 2.0,
                       error="Error while fetching server API version: ('Connection aborted.', "
                             "FileNotFoundError(2, 'No such file or directory'))")


def test_shell_from_os_release(tmp_path: Path):
    rel = tmp_path / "os-release"
    rel.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    facts = probe_host(rel)
    assert (facts.os_id, facts.os_name) == ("debian", "Debian GNU/Linux 12 (bookworm)")
    assert Shell.of(facts).family == "debian"
    mint = HostFacts("Linux", "6.8", "Linux Mint", "linuxmint", ("ubuntu", "debian"), True)
    assert Shell.of(mint).family == "ubuntu" and Shell.of(mint).root
    assert Shell(distro="fedora").family == "other"


def test_sudo_only_when_not_root():
    assert USER.sudo("a", "b") == "sudo a && sudo b"
    assert ROOT.sudo("a", "b") == "a && b"


def test_docker_not_installed_says_install_not_start():
    cli = CliFacts(result=_missing([NO_SUCH, "--version"]), path=None, version="")
    assert cli.result.missing
    v = dv.engine_reachable(_engine_down(), USER, cli)
    assert v.status == "fail" and "Docker is not installed" in v.message
    assert "get.docker.com" in v.remediation and "systemctl start" not in v.remediation
    # Installed but stopped: then starting it is the fix.
    present = CliFacts(result=cmd.run(["true"], timeout=5), path="/usr/bin/docker", version="20.10.24")
    assert dv.engine_reachable(_engine_down(), USER, present).remediation.startswith("sudo systemctl start docker")


def test_root_gets_no_sudo_in_docker_fixes():
    cli = CliFacts(result=cmd.run(["true"], timeout=5), path="/usr/bin/docker", version="20.10.24")
    v = dv.engine_reachable(_engine_down(), ROOT, cli)
    assert v.remediation.startswith("systemctl start docker") and "sudo" not in v.remediation
    missing = CliFacts(result=_missing([NO_SUCH, "--version"]), path=None, version="")
    assert "sudo" not in dv.cli_present(missing, ROOT).remediation
    assert "sudo sh get-docker.sh" in dv.cli_present(missing, USER).remediation


def _engine_without_nvidia() -> EngineFacts:
    return EngineFacts("unix:///var/run/docker.sock", 2.0, client=object(), server_version="20.10.24",
                       runtimes={"runc": {"path": "runc"}}, default_runtime="runc")


def _engine_with_nvidia() -> EngineFacts:
    return EngineFacts("unix:///var/run/docker.sock", 2.0, client=object(), server_version="20.10.24",
                       runtimes={"runc": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"}},
                       default_runtime="runc")


def test_toolkit_missing_installs_it_before_nvidia_ctk():
    ctk = ToolFacts(name="nvidia-ctk", path=None, result=None)
    dj = DaemonJson(path="/etc/docker/daemon.json", exists=False)
    v = dv.runtime_registered(_engine_without_nvidia(), dj, "nvidia", "", USER, ctk)
    assert v.status == "fail"
    first = v.remediation.split("&&")[0]
    assert "nvidia-ctk" not in first and "libnvidia-container/gpgkey" in first
    assert v.remediation.index("apt-get install -y nvidia-container-toolkit") < v.remediation.index(
        "nvidia-ctk runtime configure")
    installed = ToolFacts(name="nvidia-ctk", path="/usr/bin/nvidia-ctk", result=None)
    v = dv.runtime_registered(_engine_without_nvidia(), dj, "nvidia", "", ROOT, installed)
    assert v.remediation.startswith("nvidia-ctk runtime configure --runtime=docker && systemctl reload docker   # ")


def test_no_ubuntu_drivers_on_debian():
    none = GpuFacts(smi=SmiQuery(None, None, error="nvidia-smi: not found"), nvml=NvmlFacts(error="no libnvidia-ml"))
    assert "ubuntu-drivers install" in gv.driver(none, "535", USER).remediation
    deb = gv.driver(none, "535", DEBIAN).remediation
    assert "ubuntu-drivers" not in deb and "apt-get install -y nvidia-driver firmware-misc-nonfree" in deb
    assert "sudo" not in gv.driver(none, "535", DEBIAN_ROOT).remediation
    assert "ubuntu-drivers" not in gv.driver(none, "535", Shell(distro="rocky")).remediation
    mps_none = MpsFacts(control_path=None, server_path=None, ps=cmd.run(["true"], timeout=5), procs=(),
                        pipe=probe_pipe_dir("/tmp/nvidia-mps"), env_pipe_dir=None)
    assert mv.binary(mps_none, "", DEBIAN).remediation.startswith("sudo apt-get install -y nvidia-cuda-mps")
    assert "ubuntu-drivers" in mv.binary(mps_none, "", USER).remediation
    assert "ubuntu-drivers" not in hv.upgrade_kernel("5.15", DEBIAN) and "backports" in hv.upgrade_kernel("5.15",
                                                                                                       DEBIAN)
    assert hv.upgrade_kernel("5.15", USER).count("sudo") == 1


def test_no_mkdir_on_a_path_that_exists_as_a_file(tmp_path: Path):
    blocker = tmp_path / "run"
    blocker.write_text("a file where the pipe dir's parent should be\n")
    pipe = str(blocker / "nvidia-mps")
    facts = MpsFacts(control_path="/usr/bin/nvidia-cuda-mps-control", server_path="/usr/bin/nvidia-cuda-mps-server",
                     ps=cmd.run(["true"], timeout=5), procs=(), pipe=probe_pipe_dir(pipe), env_pipe_dir=pipe)
    assert facts.pipe.blocking_file == str(blocker)
    v = mv.pipe_dir(facts, pipe, str(tmp_path / "log"), ROOT)
    assert v.status == "fail" and "is not a directory" in v.message
    fix = v.remediation
    assert re.match(rf"mv -n -- {blocker} {blocker}\.labcheck-[0-9]{{14}}(-[0-9]+)?\.bak && if \[ -d {pipe} \]",
                    fix) and "sudo" not in fix, fix
    assert f'else install -d -o "$(id -un)" -- {pipe}; fi' in fix



def test_a_note_shows_every_control_character_as_its_escape_and_nothing_else_changes():
    """Only a newline ends a comment in bash; a terminal also acts on a carriage return, Ctrl-O or an escape
    sequence as they are pasted, and a line separator or bidi control makes the line read otherwise than it runs."""
    assert note_text("a\nb\rc\td\x0fe\x1b[201~f\x7fg\x85h\u2028i\u202ej\u00a0k") == \
        "a\\nb\\rc\\td\\x0fe\\x1b[201~f\\x7fg\\x85h\\u2028i\\u202ej\\xa0k"
    kept = "it's \"q\" $(id) `id` ; && | # d\u00e9j\u00e0 \u4e2d\u6587 \\ -x"
    assert note_text(kept) == kept  # harmless after '#': shown as they are
    fix = with_note("ls -ld -- '/a\nb'", "then: rm -- '/a\nb' #\nid", "", "  ")
    assert fix == "ls -ld -- '/a\nb'   # then: rm -- '/a\\nb' #\\nid"
    assert shell_text.ran(fix) == [["ls", "-ld", "--", "/a\nb"]]
    assert with_note("", "x\ny") == "# x\\ny" and with_note("cmd") == "cmd"


def test_remediations_quote_configured_values(tmp_path: Path):
    odd = str(tmp_path / "pipe dir; rm -rf ~")
    cmdline = mv.start_command(odd, odd + "/log", shell=ROOT)
    assert "'" + odd + "'" in cmdline and not cmdline.startswith("sudo")
    assert 'else sudo install -d -o "$(id -un)" ' in mv.start_command(odd, odd + "/log")
    kind = tv.ToolFacts("kind", None, None, "kind", "x86_64", tv.InstallTarget("/usr/local/bin/kind", True, False))
    assert tv.kind_install(kind, shell=ROOT).count("sudo") == 0 and "sudo mv" in tv.kind_install(kind)
    assert tv.install_command("nvidia-ctk", ROOT).count("sudo") == 0 and "sudo " in tv.install_command("nvidia-ctk")


# --- one way to get this host's Shell: the fixture and the probes cannot disagree ----------------------------

ONE_SHELL_CHECKS = '''
from labcheck.probes.cdi import probe_cdi
from labcheck.probes.host import probe_host
from labcheck.remedy import OTHER, Shell, this_host


def test_worker_a(fix_shell, host_facts, tmp_path):
    _same(fix_shell, host_facts, tmp_path)


def test_worker_b(fix_shell, host_facts, tmp_path):
    _same(fix_shell, host_facts, tmp_path)


def _same(fix_shell, host_facts, tmp_path):
    real = Shell.of(probe_host())
    assert host_facts.is_root != real.root  # the conftest's host facts lie: the fixture must not follow them
    assert fix_shell == this_host() == real
    assert probe_cdi([str(tmp_path)], None).shell == fix_shell  # a probe's own fixes: the same Shell
    assert fix_shell.sudo("x") == ("x" if real.root else "sudo x")
'''

LYING_HOST_FACTS = '''
import dataclasses

import pytest

from labcheck.probes.host import probe_host

pytest_plugins = ["labcheck.plugin", "fixtures.facts", "fixtures.host"]


@pytest.fixture(scope="session")
def host_facts():
    real = probe_host()
    return dataclasses.replace(real, is_root=not real.is_root, os_id="fedora", os_like=())
'''


def test_fix_shell_and_the_probes_shell_are_one_under_xdist(pytester):
    """Host facts that say the opposite of the truth (root or not, the distribution) are given to the fixtures;
    on each of two xdist workers the checks' fix_shell still equals remedy.this_host() and a probe's Shell, so a
    fixture that built its own Shell from the facts (a second way, which could disagree) fails here."""
    pytester.makeconftest(LYING_HOST_FACTS)
    pytester.makepyfile(test_one_shell=ONE_SHELL_CHECKS)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2", timeout=120)
    res.assert_outcomes(passed=2)


def test_this_host_is_probed_once_a_process_and_fits_who_runs_it():
    assert this_host() is this_host() and this_host() == Shell.of(probe_host())
    assert this_host().sudo("x") == ("x" if os.geteuid() == 0 else "sudo x")


@pytest.mark.needs("other_user")
def test_a_user_gets_sudo_where_root_gets_none():
    """A real non-root process (nobody): its Shell says sudo; this root one says none."""
    code = "from labcheck.remedy import this_host\nprint(this_host().sudo('modprobe nvidia'))\n"
    res = run_as_nobody(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "sudo modprobe nvidia"
    assert this_host().sudo("modprobe nvidia") == "modprobe nvidia"


# --- the kernel check's fix is worded by the same Shell as every other fix ------------------------------------

OLD_KERNEL_HOSTS = [HostFacts("Linux", "5.4.0-42-generic", name, os_id, like, root)
                    for name, os_id, like in (("Ubuntu 20.04.6 LTS", "ubuntu", ("debian",)),
                                              ("Debian GNU/Linux 11 (bullseye)", "debian", ()),
                                              ("Linux Mint 20", "linuxmint", ("ubuntu", "debian")),
                                              ("Rocky Linux 8", "rocky", ("rhel", "fedora")),
                                              ("", "", ()))  # no /etc/os-release
                    for root in (True, False)]


# A command that needs root, at the start of a fix or of one of its steps, with the prefix the fix gives it.
_AS_ROOT = re.compile(r"(?:^|`|&&\s|;\s)\s*(sudo )?(?:apt-get|systemctl|sh get-docker\.sh|install -d|ubuntu-drivers)\b")


def _prefixes(fix: str) -> set[str]:
    """The prefixes ("sudo " or "") a fix puts before its commands that need root."""
    return {m.group(1) or "" for m in _AS_ROOT.finditer(fix)}


@pytest.mark.parametrize("facts", OLD_KERNEL_HOSTS, ids=lambda f: f"{f.os_id or 'no-os-release'}-"
                                                                  f"{'root' if f.is_root else 'user'}")
def test_the_kernel_fix_and_the_other_fixes_agree_on_sudo_for_the_same_host(facts):
    """The Shell this_host() makes of a host's facts words the kernel check's fix as it words the Docker, driver and
    MPS fixes: ``sudo`` before each command for a user, none for root. Regression: the kernel verdict made its own
    Shell from the facts, ``Shell()`` (a sudo user on Ubuntu) without os-release, so root got ``sudo apt-get``."""
    shell = Shell.of(facts)
    kernel = hv.linux_kernel(facts, "5.15", shell)
    assert kernel.status == "fail" and "older than 5.15" in kernel.message
    missing = CliFacts(result=_missing([NO_SUCH, "--version"]), path=None, version="")
    no_gpu = GpuFacts(smi=SmiQuery(None, None, error="nvidia-smi: not found"), nvml=NvmlFacts(error="no libnvidia-ml"))
    others = [dv.cli_present(missing, shell).remediation, dv.engine_reachable(_engine_down(), shell, CliFacts(
        result=cmd.run(["true"], timeout=5), path="/usr/bin/docker", version="20.10.24")).remediation,
        gv.driver(no_gpu, "535", shell).remediation, mv.start_command("/tmp/nvidia-mps", "/var/log/nvidia-mps",
                                                                     shell=shell)]
    prefix = "" if facts.is_root else "sudo "
    assert _prefixes(kernel.remediation) <= {prefix}, kernel.remediation
    assert {p for fix in others for p in _prefixes(fix)} == {prefix}, others
    if facts.is_root:
        assert "sudo" not in kernel.remediation and not any("sudo" in fix for fix in others)
    if shell.family != OTHER:  # a distribution the fixes know: the kernel's fix is a command, with that prefix
        assert _prefixes(kernel.remediation) == {prefix}, kernel.remediation


KERNEL_CHECK_CONFTEST = """
import dataclasses

import pytest

from labcheck.probes.host import probe_host

pytest_plugins = ["labcheck.plugin", "reports.plugin", "fixtures.facts", "fixtures.host"]


@pytest.fixture(scope="session")
def host_facts():
    real = probe_host()  # an old kernel, and root or not and the distribution the opposite of the truth
    return dataclasses.replace(real, kernel_release="5.4.0-42-generic", is_root=not real.is_root, os_id="fedora",
                               os_like=())
"""


def test_the_kernel_check_takes_the_runs_shell_not_one_made_from_the_host_facts(pytester, tmp_path):
    """Module 0's kernel check as written (tests_env/test_module0.py) with the real fix_shell fixture, on host facts
    that lie about root and the distribution: its fix is worded by remedy.this_host(), as every check's fix, so a
    check or verdict that made its own Shell (from the facts, or the default) fails here."""
    pytester.makeconftest(KERNEL_CHECK_CONFTEST)
    pytester.makepyfile(test_module0=(Path(__file__).parent.parent / "tests_env" / "test_module0.py").read_text())
    out = tmp_path / "r.json"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "linux_kernel_version", f"--results-json={out}",
                                  timeout=120)
    (rec,) = [r for r in json.loads(out.read_text())["records"] if r["check"] == "linux_kernel_version"]
    assert rec["verdict"] == "fail" and "5.4.0-42-generic is older than 5.15" in rec["message"], rec
    assert rec["remediation"] == hv.upgrade_kernel("5.15", this_host()), rec
    prefix = "" if this_host().root else "sudo "
    assert _prefixes(rec["remediation"]) == {prefix}, rec


# --- Shell.user_folder: creates what is missing, never re-owns or re-modes what is there -------------------------

def _paste_folder_fix(path: Path, *prefix: str) -> subprocess.CompletedProcess:
    """Shell.user_folder's line for ``path``, pasted in bash (as root: no sudo in it), by ``prefix`` (setpriv ...)."""
    return subprocess.run([*prefix, "bash", "-c", ROOT.user_folder(str(path))], capture_output=True, text=True,
                          timeout=30, cwd="/")


def test_the_folder_fix_leaves_an_existing_folder_as_it_is(tmp_path):
    """`install -d -o "$(id -un)" P` re-owned and re-moded a folder already there (a user's 0700 folder came back
    0755, and another user's was given away): the fix makes only a missing folder and uses one it can write in
    as it is."""
    mine = tmp_path / "it's mine"
    mine.mkdir(mode=0o700)
    os.chmod(mine, 0o700)
    before = os.stat(mine)
    res = _paste_folder_fix(mine)
    assert res.returncode == 0, res.stderr
    after = os.stat(mine)
    assert (after.st_uid, after.st_gid, oct(after.st_mode)) == (before.st_uid, before.st_gid, oct(before.st_mode))


def test_the_folder_fix_makes_a_missing_folder_and_its_parents_for_the_user(tmp_path):
    target = tmp_path / "no such" / "new\nline" / "mps"
    res = _paste_folder_fix(target)
    assert res.returncode == 0, res.stderr
    assert target.is_dir() and os.stat(target).st_uid == os.geteuid()


def test_the_folder_fix_stops_at_a_file_in_the_way_and_changes_nothing(tmp_path):
    blocker = tmp_path / "pipe"
    blocker.write_text("not a folder")
    res = _paste_folder_fix(blocker)
    assert res.returncode != 0 and f"{blocker} {remedy.NOT_A_FOLDER}" in res.stderr, res
    assert blocker.read_text() == "not a folder"


def test_the_folder_fix_refuses_another_users_folder_it_cannot_write_in():
    """As nobody, a root-owned 0755 folder (e.g. one a root MPS daemon made): the line says why and fails, and the
    folder keeps its owner and mode (no sudo chown/chmod of a folder the suite did not make)."""
    needs.skip_unless("other_user")
    seen = Path(tempfile.mkdtemp(prefix="lc-folder-", dir="/tmp"))  # pytest's tmp_path is root's 0700
    try:
        os.chmod(seen, 0o755)
        theirs = seen / "root's"
        theirs.mkdir(mode=0o755)
        before = os.stat(theirs)
        res = _paste_folder_fix(theirs, *SETPRIV)
        assert res.returncode != 0 and f"{theirs} {remedy.NOT_WRITABLE}" in res.stderr, res
        after = os.stat(theirs)
        assert (after.st_uid, oct(after.st_mode)) == (before.st_uid, oct(before.st_mode))
    finally:
        shutil.rmtree(seen)


def test_a_pipe_folder_this_user_cannot_use_is_not_chmodded_unless_it_is_theirs():
    """The pipe-dir check's fix was `sudo chmod a+rx <mps_pipe_dir>` on any folder (and a+rx never gave the write
    the check asks for): the user's own folder gets `chmod u+rwx`, anyone else's is left as it is."""
    pipe = "/srv/lab mps"
    theirs = MpsFacts(control_path=None, server_path=None, ps=cmd.run(["true"], timeout=5), procs=(),
                      pipe=PipeDir(pipe, True, True, False, False, False, owner=0, mine=False), env_pipe_dir=pipe)
    verdict = mv.pipe_dir(theirs, pipe, "/var/log/nvidia-mps", USER)
    assert verdict.status == "fail" and "uid 0's" in verdict.message
    assert "chmod" not in verdict.remediation and verdict.remediation.startswith("ls -ld -- '/srv/lab mps'   # ")
    mine = dataclasses.replace(theirs, pipe=PipeDir(pipe, True, True, False, False, False, owner=1000, mine=True))
    assert mv.pipe_dir(mine, pipe, "/var/log/nvidia-mps", USER).remediation == "chmod u+rwx '/srv/lab mps'"


# --- the host's package manager: its install line, or the package named plainly --------------------------------

@pytest.mark.parametrize("distro,like,tools,expected", [
    ("ubuntu", (), None, "apt-get"), ("linuxmint", ("ubuntu", "debian"), ("apt-get",), "apt-get"),
    ("fedora", (), ("dnf", "yum"), "dnf"), ("rhel", ("fedora",), ("yum",), "yum"),  # an old RHEL: yum only
    ("rocky", ("rhel", "centos", "fedora"), None, "dnf"), ("opensuse-leap", ("suse", "opensuse"), None, "zypper"),
    ("alpine", (), ("apk",), "apk"), ("arch", (), None, "pacman"),
    ("fedora", (), ("apt-get", "dnf"), "dnf"),  # a stray apt-get on a Fedora: os-release decides
    ("gentoo", (), ("dnf",), "dnf"),  # os-release names none known: the one on PATH
    ("gentoo", (), (), ""), (OTHER, (), (), ""),
])
def test_the_package_manager_follows_os_release_then_the_tools_there(distro, like, tools, expected):
    assert Shell(distro=distro, like=like, tools=tools).package_manager == expected


def test_the_host_probe_records_the_package_tools_on_path():
    host = probe_host()
    assert set(host.package_tools) <= {"apt-get", "dnf", "yum", "zypper", "apk", "pacman"}
    assert Shell.of(host).tools == host.package_tools
    assert ("apt-get" in host.package_tools) == (shutil.which("apt-get") is not None)


@pytest.mark.parametrize("shell,expected", [
    (Shell(distro="debian"), "sudo apt-get install -y busybox-static"),
    (Shell(distro="fedora", root=True), "dnf install -y busybox"),
    (Shell(distro="rhel", tools=("yum",)), "sudo yum install -y busybox"),  # yum takes dnf's package names
    (Shell(distro="alpine", root=True), "apk add busybox-static"),
])
def test_the_busybox_fix_installs_with_the_hosts_package_manager(shell, expected):
    """The probe image's busybox fix said `sudo apt-get install -y busybox-static` on every host (review): on a
    dnf, yum or apk host that line fails at once."""
    verdict = dv.runtime_usable(_engine_with_nvidia(), RuntimeProbe("nvidia", True, image_error="no busybox"), 1,
                                shell)
    assert verdict.status == "fail" and verdict.remediation.startswith(expected + "   # "), verdict.remediation


@pytest.mark.parametrize("shell", [Shell(distro="opensuse-leap"), Shell(distro="gentoo", tools=())])
def test_where_the_package_is_not_known_the_fix_names_it_plainly(shell):
    fix = dv.runtime_usable(_engine_with_nvidia(), RuntimeProbe("nvidia", True, image_error="no busybox"), 1,
                            shell).remediation
    assert fix.startswith("# install a static busybox with ") and "busybox-static (apt-get), busybox (dnf)" in fix
    assert "apt-get install" not in fix and parses(fix)


def test_install_with_any_picks_the_manager_where_it_runs(tmp_path):
    """For another host that cannot be asked (no Python there), the line picks its package manager when it runs:
    with only dnf there it runs dnf; with none it fails and names the packages."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sh").symlink_to(shutil.which("sh"))
    (bindir / "dnf").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/dnf-args\n")
    (bindir / "dnf").chmod(0o755)
    line = remedy.install_with_any({"apt-get": "python3 python3-venv", "dnf": "python3"}, "Python 3")
    res = subprocess.run(["/bin/sh", "-c", line], env={"PATH": str(bindir)}, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0 and (tmp_path / "dnf-args").read_text() == "install -y python3\n", res
    (bindir / "dnf").unlink()
    res = subprocess.run(["/bin/sh", "-c", line], env={"PATH": str(bindir)}, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0 and "install Python 3: python3 python3-venv (apt-get), python3 (dnf)" in res.stderr


def test_the_fleet_fixes_install_with_the_package_manager_there():
    """No Python on a host: `ssh host sudo apt-get install ...` failed on every non-Debian host; the line picks the
    manager there. The controller's own ssh client: its package manager's package."""
    host = Host(name="a", ssh="u@a")
    fix = fleet_probe.classify(host, cmd.CmdResult(("ssh",), 127, stderr="python3: not found")).remediation
    assert "command -v dnf" in fix and "apt-get install -y python3 python3-venv" in fix, fix
    missing = cmd.CmdResult(("ssh",), None, missing=True)
    assert fleet_probe.classify(host, missing, Shell(distro="fedora")).remediation == \
        "sudo dnf install -y openssh-clients"
    unknown = fleet_probe.classify(host, missing, Shell(distro="gentoo", tools=())).remediation
    assert unknown.startswith("# install an OpenSSH client with this host's package manager; its package is "), unknown


def test_moving_a_file_aside_never_overwrites_one_there(tmp_path):
    """`mv X X.bak` (the MPS and CDI fixes before) overwrote an X.bak already there, maybe the user's only copy."""
    blocker = tmp_path / "-pipe dir"
    blocker.write_text("mine")
    (tmp_path / "-pipe dir.bak").write_text("the user's older copy")
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    subprocess.run(["bash", "-c", ROOT.move_aside(str(blocker))], cwd=tmp_path, check=True, timeout=30)
    assert not blocker.exists() and (tmp_path / "-pipe dir.bak").read_text() == "the user's older copy"
    [moved] = tmp_path.glob("-pipe dir.labcheck-*.bak")
    assert moved.read_text() == "mine"
    moved.rename(blocker)
    subprocess.run(["bash", "-c", ROOT.move_aside(str(blocker), str(taken))], cwd=tmp_path, timeout=30)
    assert taken.read_text() == "keep me" and blocker.read_text() == "mine"
