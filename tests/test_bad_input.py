"""Issue 11 (bad input, round 2) on real files and real pytest processes: outputs that are not regular files,
inputs that are FIFOs, devices, binary or alias bombs, fields of the wrong type, lab config values out of range,
secrets and control characters in messages, CDI as the spec defines it, tool output, usage errors.

The table of cases is docs/hardening.md. Each pytest run here is a child process with a timeout, so a case that
regresses into a hang (a FIFO) fails instead of blocking the suite.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from labcheck import cdi, config, fsio, redact
from labcheck.probes import cdi as cdi_probe
from labcheck.probes import docker as docker_probe
from labcheck.probes import gpu as gpu_probe
from labcheck.probes import mps as mps_probe
from labcheck.probes import tools as tools_probe
from labcheck.probes.docker import DaemonJson, read_daemon_json
from labcheck.remedy import this_host
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import docker as docker_v
from labcheck.verdicts import gpu as gpu_v
from labcheck.verdicts import tools as tools_v
from reports import results
from setup_actions import docker_runtime as dr
from setup_actions.cdi_spec import CdiSpec
from tests import needs, private_dockerd
from tests.standins import executable
from tests.test_cdi import SPEC, SUDO, gpu_facts, materialize
from tests.test_fsio import null_device

ROOT = Path(__file__).resolve().parent.parent

CHECKS = '''
import os, sys
import pytest
from labcheck.verdict import passed, failed
pytestmark = pytest.mark.module0

def test_good(check):
    check(passed("fine"))

def test_bad(check):
    check(failed("docker too old", "sudo apt-get install docker-ce"))

def test_swap_the_results_path(check):
    # stands for the output path changing under a running suite (another process, a user's mistake)
    path = os.environ.get("SWAP_RESULTS")
    if path:
        os.mkdir(path)
    check(passed("swapped"))
'''


def _run(pytester, *args):
    pytester.makeconftest('pytest_plugins = ["labcheck.plugin", "reports.plugin"]')
    pytester.makepyfile(test_checks=CHECKS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=60)


NOT_REGULAR = ["fifo", "folder", "dangling symlink", "symlink to a null device"]


def plant(path: Path, kind: str) -> Path:
    """Put one of :data:`NOT_REGULAR` at ``path`` (a real FIFO, folder, link; a private null device)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nowhere" / path.name)
    else:
        path.symlink_to(null_device(path.parent))
    return path


def _tmp_left(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if "tmp" in n]


# --- 1. outputs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--results-json", "--html"])
@pytest.mark.parametrize("kind", NOT_REGULAR)
def test_an_output_that_is_not_a_regular_file_is_a_usage_error_and_is_left_alone(pytester, tmp_path, option, kind):
    out = plant(tmp_path / "out", kind)
    before = os.lstat(out)
    result = _run(pytester, f"{option}={out}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"{option}={out}" in err and "not a regular file" in err or "does not exist" in err, err
    after = os.lstat(out)
    assert (before.st_ino, stat.S_IFMT(before.st_mode)) == (after.st_ino, stat.S_IFMT(after.st_mode))
    assert _tmp_left(tmp_path) == []


@pytest.mark.parametrize("option", ["--results-json", "--html"])
def test_a_character_device_as_root_is_refused_and_stays_a_device(pytester, tmp_path, option):
    dev = null_device(tmp_path)  # /dev/null's twin: a regression must not replace the machine's /dev/null
    ino = os.stat(dev).st_ino
    result = _run(pytester, f"{option}={dev}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "a character device, not a regular file" in result.stderr.str()
    assert stat.S_ISCHR(os.stat(dev).st_mode) and os.stat(dev).st_ino == ino


@pytest.mark.parametrize("option", ["--results-json", "--html"])
def test_an_empty_output_name_is_a_usage_error(pytester, option):
    result = _run(pytester, f"{option}=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"{option}= needs a file name" in result.stderr.str()


def test_results_json_through_a_symlink_writes_its_target_and_keeps_the_link_and_mode(pytester, tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    os.chmod(real, 0o640)
    link = tmp_path / "results.json"
    link.symlink_to(real)
    _run(pytester, f"--results-json={link}")
    assert link.is_symlink() and json.loads(real.read_text())["summary"]["total"] == 3
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert _tmp_left(tmp_path) == []


def test_a_failing_results_write_keeps_the_html_report_the_summary_and_the_exit_code(pytester, tmp_path,
                                                                                    monkeypatch):
    out = tmp_path / "results.json"
    html = tmp_path / "report.html"
    monkeypatch.setenv("SWAP_RESULTS", str(out))
    result = _run(pytester, f"--results-json={out}", f"--html={html}", "--self-contained-html")
    assert result.ret == 1  # the failing check, as without the write error
    text = result.stdout.str()
    assert f"results JSON NOT written: {out}" in text and "is a folder" in text
    assert "NOT READY: 1 of 3 checks failed" in text
    assert html.is_file() and "docker too old" in html.read_text()
    assert out.is_dir() and os.listdir(out) == [] and _tmp_left(tmp_path) == []


# --- 2. inputs: lab config, daemon.json, CDI specs ---------------------------------------------------------

def _lab_run(tmp_path, lab: Path, *args, module: str = "module0", timeout: int = 90):
    out = tmp_path / "r.json"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests_env"), "-m", module, "-k", "lab_config_valid",
         "--no-provision", f"--lab-config={lab}", f"--results-json={out}", "-p", "no:cacheprovider", "-q", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"]} if out.exists() else {}
    return res, recs


@pytest.mark.parametrize("module", ["module0", "module1"])
@pytest.mark.parametrize("case", ["fifo", "folder", "binary", "alias bomb", "oversize", "/dev/zero"])
def test_a_lab_config_that_cannot_be_used_is_a_failing_check_naming_the_file(tmp_path, case, module):
    lab = tmp_path / "lab.yaml"
    words = {"fifo": "a FIFO", "folder": "a folder", "binary": "is not UTF-8 text", "alias bomb": "alias bomb",
             "oversize": "bytes this file may have", "/dev/zero": "a character device"}[case]
    if case == "fifo":
        os.mkfifo(lab)
    elif case == "folder":
        lab.mkdir()
    elif case == "binary":
        lab.write_bytes(bytes(range(256)) * 4)
    elif case == "alias bomb":
        lab.write_text(BOMB_LAB)
    elif case == "oversize":
        lab.write_text("# padding\n" * 40_000)
    else:
        lab.symlink_to("/dev/zero")
    t0 = time.monotonic()
    res, recs = _lab_run(tmp_path, lab, module=module)
    assert time.monotonic() - t0 < 60
    rec = recs["lab_config_valid"]
    assert rec["verdict"] == "fail" and str(lab) in rec["message"] and words in rec["message"], rec
    assert res.returncode == 1 and "Traceback" not in res.stdout


BOMB_LAB = "cdi_dirs: " + "".join(f"\n  - &{c} [" + ", ".join([f"*{p}"] * 9 if p else ["x"] * 9) + "]"
                                  for c, p in zip("abcdefghi", ["", *"abcdefgh"], strict=True))


def test_a_900_byte_alias_bomb_lab_config_fails_fast():
    assert len(BOMB_LAB) < 1000
    t0 = time.monotonic()
    _, problems = config.parse(BOMB_LAB, "lab.yaml")
    assert time.monotonic() - t0 < 2 and "alias bomb" in problems[0].message


# --- 3 and 4. lab config field types and values --------------------------------------------------------------

@pytest.mark.parametrize("line,words", [
    ("command_timeout: .inf", "expected a finite number of seconds from 1 to 86400, found inf"),
    ("command_timeout: 10000000000", "from 1 to 86400, found 10000000000.0"),  # OverflowError in 9 checks before
    ("cluster_create_timeout: 1.0e300", "from 1 to 86400, found 1e+300"),  # YAML 1.1 reads it as a string
    ("command_timeout: '0.5'", "from 1 to 86400, found 0.5"),
    ("command_timeout: .nan", "found nan"),
    ("cluster_create_timeout: -5", "found -5.0"),
    ("command_timeout: 0", "found 0.0"),
    ("command_timeout: [1]", "expected a number, found [1]"),
    ("min_helm: three", "expected a version such as '3.10', found 'three'"),
    ("min_docker: 24.0.x", "expected a version"),
    ("min_driver: [535]", "expected a string"),
    ("cluster_name: Workshop_DRA", "not a valid kind cluster name"),
    ("cluster_name: -workshop", "not a valid kind cluster name"),
    ("cluster_name: " + "a" * 50, "not a valid kind cluster name"),
    ("state_dir: /", "'/' is a shared folder"),
    ("state_dir: /etc", "'/etc' is /etc, a system folder"),
    ("state_dir: /etc/ssh", "'/etc/ssh' is under /etc, a system folder"),
    ("state_dir: /tmp/", "'/tmp/' (/tmp) is a shared folder"),
    ("state_dir: '~'", "is a shared folder"),
    ("state_dir: ''", "'' is no folder"),
    ("shm_min_bytes: -1", "expected a finite number of bytes from 1048576 to 70368744177664, found -1"),
    ("shm_min_bytes: 1e99", "to 70368744177664, found 1e+99"),
    ("cdi_dirs: {a: 1}", "expected a list of strings"),
    ("mps_pipe_dir: {a: 1}", "expected a string"),
    # every path setting: empty, relative, NUL; every list the checks need: never empty (issue m0-4)
    ("cdi_dirs: []", "expected at least one absolute path, found an empty list"),
    ("cdi_dirs: ['']", "entry '': expected an absolute path, found ''"),
    ("cdi_dirs: [/etc/cdi, cdi]", "entry 'cdi': expected an absolute path (starting with /)"),
    ("busybox_paths: []", "expected at least one absolute path"),
    ("extra_lib_dirs: ['']", "entry '': expected an absolute path"),
    ("extra_bin_dirs: [~/bin]", "entry '~/bin': expected an absolute path"),
    ("cdi_spec_path: ''", "expected an absolute path, found ''"),
    ("cdi_spec_path: nvidia.yaml", "expected an absolute path (starting with /), found 'nvidia.yaml'"),
    ("mps_pipe_dir: ''", "expected an absolute path, found ''"),
    ("mps_log_dir: ''", "expected an absolute path, found ''"),
    ("mps_log_dir: \"/var/log/a\\0b\"", "expected no NUL character"),
    ("docker_daemon_json: ''", "expected an absolute path, found ''"),
    ("docker_daemon_json: daemon.json", "expected an absolute path"),
    ("docker_pidfile: ''", "expected an absolute path, found ''"),
    ("probe_image: ''", "expected a non-empty name"),
    ("node_image: 'kindest/node v1'", "expected a non-empty name without spaces"),
    ("docker_runtime_name: ''", "expected a non-empty name"),
    ("kind_binary: ''", "expected a command name found on PATH (kind) or an absolute path, found ''"),
    ("kind_binary: bin/kind", "found 'bin/kind' (module 1 would run it relative"),
    ("kind_config_path: ''", "expected a path to the kind config file"),
    ("state_dir: \"/srv/\\0x\"", "expected no NUL character"),
    ("docker_host: 'tcp://:abc'", "Port could not be cast to integer"),
    ("docker_host: garbage", "is not a Docker endpoint the suite can use"),
    ("docker_host: 'tcp://h:99999'", "Port out of range"),
    ("docker_host: 'fd://'", "fd protocol is not implemented"),
    ("docker_host: 'npipe://'", "npipe:// is a Windows named pipe"),
])
def test_lab_config_values_the_suite_cannot_use_are_problems_with_their_line(tmp_path, line, words):
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"min_kernel: '5.15'\n{line}\n")
    cfg, problems = config.load(lab)
    assert len(problems) == 1 and problems[0].line == 2 and words in problems[0].message, problems
    key = line.split(":")[0]
    if key != "cluster_name":
        assert getattr(cfg, key) == getattr(config.LabConfig(), key)  # the default stands in
    for t in (cfg.command_timeout, cfg.cluster_create_timeout):
        assert math.isfinite(t) and t > 0


def test_a_state_dir_linked_to_a_system_folder_is_refused(tmp_path):
    (tmp_path / "state").symlink_to("/etc")
    _, problems = config.parse(f"state_dir: {tmp_path / 'state'}\n", "lab.yaml")
    assert "(/etc) is /etc, a system folder" in problems[0].message


@pytest.mark.parametrize("written,expected", [("3.10", "3.10"), ("'3.10'", "3.10"), ("3.11", "3.11"),
                                              ("4", "4"), ("v3.10.0", "v3.10.0")])
def test_version_thresholds_are_read_as_written(written, expected):
    cfg, problems = config.parse(f"min_helm: {written}\nmin_driver: 535\n", "lab.yaml")
    assert problems == [] and cfg.min_helm == expected and cfg.min_driver == "535"


@pytest.mark.parametrize("written,expected", [("3.1", "3.1"), ("3", "3"), ("'3.9'", "3.9")])
def test_a_version_threshold_read_as_written_below_the_workshop_s_is_refused(written, expected):
    """`min_helm: 3.1` is read as "3.1" (not the float 3.1 of "3.10"), and 3.1 is below the workshop's 3.10."""
    cfg, problems = config.parse(f"min_helm: {written}\nmin_driver: 535\n", "lab.yaml")
    assert [p.message for p in problems] == [
        f"min_helm: {expected!r} is below the workshop's minimum '3.10': a lab config may raise a minimum, never "
        "lower it (a host the workshop does not support would pass)"]
    assert cfg.min_helm == "3.10"


def test_unquoted_min_helm_3_10_fails_helm_3_9_in_a_real_run(tmp_path):
    """helm 3.9 against `min_helm: 3.10` (unquoted): before, 3.10 became 3.1 and helm 3.9 passed."""
    helm = tmp_path / "bin" / "helm"
    helm.parent.mkdir()
    helm.write_text("#!/bin/sh\necho v3.9.4\n")  # stands for helm 3.9's `helm version --template {{.Version}}`
    helm.chmod(0o755)
    lab = tmp_path / "lab.yaml"
    lab.write_text("min_helm: 3.10\n")
    out = tmp_path / "r.json"
    env = {**os.environ, "PATH": f"{helm.parent}:{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests_env"), "-m", "module0", "-k", "helm",
                    "--no-provision", f"--lab-config={lab}", f"--results-json={out}", "-p", "no:cacheprovider",
                    "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    rec = [r for r in json.loads(out.read_text())["records"] if "helm" in r["check"]][0]
    assert rec["verdict"] == "fail" and "3.9.4 is older than 3.10" in rec["message"], rec


def test_module1_run_fails_the_lab_config_check_on_a_bad_value(tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text("command_timeout: .inf\n")
    res, recs = _lab_run(tmp_path, lab, module="module1")
    assert recs["lab_config_valid"]["verdict"] == "fail" and recs["lab_config_valid"]["module"] == "module1"
    assert f"{lab}:1: command_timeout" in recs["lab_config_valid"]["message"]


# --- 3. daemon.json field types: what a real dockerd refuses ---------------------------------------------

DOCKERD_REFUSES = [
    ({"runtimes": {"nvidia": "garbage"}}, "runtimes.nvidia: expected an object"),
    ({"runtimes": []}, "runtimes: expected an object of runtimes"),
    ({"runtimes": {"nvidia": {"path": 5}}}, "runtimes.nvidia.path: expected a string"),
    ({"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": "x"}}},
     "runtimes.nvidia.runtimeArgs: expected a list of strings"),
    ({"default-runtime": 5}, "default-runtime: expected a string"),
    ({"features": {"cdi": "yes"}}, "features: expected an object of true/false values"),
]


@pytest.mark.parametrize("doc,words", DOCKERD_REFUSES, ids=[w.split(":")[0] for _, w in DOCKERD_REFUSES])
def test_daemon_json_values_a_real_dockerd_refuses_fail_validation_and_fix_host_never_reloads(tmp_path, doc, words):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(doc, indent=2))
    dj = read_daemon_json(path)
    verdict = docker_v.daemon_json_valid(dj)
    assert verdict.status == "fail" and words in verdict.message and str(path) in verdict.message
    p = dr.plan(dj, [], "nvidia")
    assert p.problem and not p.needs_reload  # --fix-host refuses: a reload/restart would take Docker down
    needs.skip_unless("private_dockerd")  # the real-dockerd half
    with pytest.raises(RuntimeError, match="unable to configure the Docker daemon"):
        private_dockerd.start(doc, wait=10).cleanup()


def test_daemon_json_values_a_real_dockerd_accepts_stay_valid(tmp_path):
    doc = {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}, "other": None},
           "features": {"cdi": True}, "default-runtime": "runc"}
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(doc))
    assert docker_v.daemon_json_valid(read_daemon_json(path)).status == "pass"


@pytest.mark.parametrize("case", ["fifo", "/dev/zero", "oversize"])
def test_daemon_json_that_is_not_a_readable_file_fails_without_hanging(tmp_path, case):
    path = tmp_path / "daemon.json"
    if case == "fifo":
        os.mkfifo(path)
    elif case == "/dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_text(" " * (fsio.MAX_READ_BYTES + 1))
    verdict = docker_v.daemon_json_valid(read_daemon_json(path))
    assert verdict.status == "fail" and str(path) in verdict.message
    assert stat.S_IFMT(os.lstat(path).st_mode) in (stat.S_IFIFO, stat.S_IFLNK, stat.S_IFREG)


# --- 1. user files the suite edits: daemon.json under --fix-host -------------------------------------------

def _runtime_bin(tmp_path: Path) -> str:
    b = tmp_path / "bin" / "nvidia-container-runtime"  # stands for the toolkit's runtime binary (only looked up)
    b.parent.mkdir(exist_ok=True)
    b.write_text("#!/bin/sh\n")
    b.chmod(0o755)
    return str(b)


def test_fix_host_writes_daemon_json_through_its_symlink_and_backs_up_with_the_mode(tmp_path):
    real = tmp_path / "cfgrepo" / "daemon.json"
    real.parent.mkdir()
    real.write_text('{"log-level": "warn"}')
    os.chmod(real, 0o600)
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    p = dr.plan(read_daemon_json(link), [], "nvidia")
    out = dr.apply(p, fix_host=True, pidfile=str(tmp_path / "none.pid"), nvidia_ctk="",
                   runtime_binary=_runtime_bin(tmp_path), prefix=[])
    assert out.action == "changed", out
    assert link.is_symlink() and json.loads(real.read_text())["runtimes"]["nvidia"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out.backup).st_mode) == 0o600 and json.loads(Path(out.backup).read_text()) == {
        "log-level": "warn"}
    assert not [n for d in (tmp_path, real.parent) for n in os.listdir(d) if "tmp" in n]


@pytest.mark.parametrize("case", NOT_REGULAR)
def test_fix_host_never_replaces_a_daemon_json_that_is_not_a_regular_file(tmp_path, case):
    path = plant(tmp_path / "daemon.json", case)
    before = os.lstat(path)
    dj = DaemonJson(str(path), False)  # as if it had read as absent: the writer must refuse on its own
    p = dr.plan(dj, [], "nvidia")
    out = dr.apply(p, fix_host=True, pidfile=str(tmp_path / "none.pid"), nvidia_ctk="",
                   runtime_binary=_runtime_bin(tmp_path), prefix=[])
    assert out.action == "failed" and "not a regular file" in out.message or "does not exist" in out.message, out
    after = os.lstat(path)
    assert (before.st_ino, before.st_mode) == (after.st_ino, after.st_mode)
    assert not [n for n in os.listdir(tmp_path) if "tmp" in n or n.endswith(".bak")]


# --- 6 and 3. CDI as the spec defines it; CDI field types ----------------------------------------------------

def _spec(tmp_path: Path) -> str:
    return materialize(SPEC, tmp_path / "host")


def _cdi_verdicts(facts, gpu):
    return {name: fn(facts, gpu) if name in ("count", "stale") else fn(facts) for name, fn in (
        ("present", cdi_v.spec_present), ("valid", cdi_v.spec_valid), ("count", cdi_v.device_count),
        ("stale", cdi_v.not_stale), ("conflicts", cdi_v.no_conflicts))}


def test_a_tab_indented_json_spec_is_valid(tmp_path):
    etc = tmp_path / "etc" / "cdi"
    etc.mkdir(parents=True)
    doc = yaml.safe_load(_spec(tmp_path))
    (etc / "nvidia.json").write_text(json.dumps(doc, indent="\t"))
    facts = cdi_probe.probe_cdi((str(etc),), None, 10)
    verdicts = _cdi_verdicts(facts, gpu_facts())
    assert verdicts["valid"].status == "pass" and "nvidia.json" in verdicts["valid"].message
    assert verdicts["stale"].status == "pass" and verdicts["count"].status == "pass"


def test_one_folder_reached_through_two_names_is_not_a_conflict(tmp_path):
    """/var/run is a symlink to /run: a lab config listing /run/cdi and /var/run/cdi names one folder twice."""
    run = tmp_path / "run" / "cdi"
    run.mkdir(parents=True)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to(tmp_path / "run")
    (run / "nvidia.yaml").write_text(_spec(tmp_path))
    facts = cdi_probe.probe_cdi((str(tmp_path / "var" / "run" / "cdi"), str(run)), None, 10)
    assert len(facts.files) == 1
    assert cdi_v.no_conflicts(facts).status == "pass"
    # a real second spec with the same devices still is one
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nvidia.yaml").write_text(_spec(tmp_path))
    facts = cdi_probe.probe_cdi((str(tmp_path / "etc"), str(tmp_path / "var" / "run" / "cdi"), str(run)), None, 10)
    assert cdi_v.no_conflicts(facts).status == "fail"


@pytest.mark.parametrize("edit,words", [
    ("hostPath: HOSTROOT/usr/local/nvidia/lib64/libcuda.so.580.159.04",
     "is relative: CDI host paths must be absolute"),
    ("hostPath: /usr/local/../nvidia/lib64/libcuda.so.580.159.04", "contains '..'"),
])
def test_relative_or_dotdot_host_paths_are_invalid(tmp_path, edit, words):
    text = _spec(tmp_path)
    first = next(ln for ln in text.splitlines() if "hostPath:" in ln)
    bad = text.replace(first, "    " + edit, 1)
    spec = cdi.parse_spec(bad, "nvidia.yaml")
    line = bad.splitlines().index("    " + edit)  # the mount entry starts on the line before
    assert any(words in p.message and p.line == line for p in spec.problems), spec.problems


@pytest.mark.parametrize("version,ok", [("0.5.0", True), ("'0.8.0'", True), ("1.0.0", True), ("0.9.0", False),
                                        ("0.5", False), ("2", False), ("[0.5.0]", False)])
def test_unknown_cdi_versions_are_flagged(tmp_path, version, ok):
    spec = cdi.parse_spec(_spec(tmp_path).replace("cdiVersion: 0.5.0", f"cdiVersion: {version}"), "nvidia.yaml")
    problems = [p for p in spec.problems if "cdiVersion" in p.message]
    assert (problems == []) == ok, problems


def test_the_fix_uses_the_configured_spec_path_shell_quoted(tmp_path):
    configured = str(tmp_path / "my cdi; x" / "nvidia.yaml")
    etc = tmp_path / "etc"
    etc.mkdir()
    # the spec's folder first in cdi_dirs: the folder the kind config mounts (the lab config refuses any other)
    facts = cdi_probe.probe_cdi((os.path.dirname(configured), str(etc)), None, 10, spec_path=configured)
    fix = cdi_v.spec_present(facts).remediation
    assert shlex.split(fix) == [*(["sudo"] if SUDO else []), "nvidia-ctk", "cdi", "generate", f"--output={configured}"]
    (etc / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: []\n")
    fix = cdi_v.spec_valid(cdi_probe.probe_cdi((str(etc),), None, 10, spec_path=configured)).remediation
    assert f"--output={configured}" in shlex.split(fix.split("&&")[1]) and "/etc/cdi/nvidia.yaml" not in fix
    assert CdiSpec(None, configured).generate_command == cdi.generate_command(configured, this_host())


@pytest.mark.parametrize("case,words", [("fifo", "a FIFO"), ("binary", "is not UTF-8 text"),
                                        ("null device", "a character device")])
def test_a_spec_file_that_cannot_be_read_is_named_and_never_blocks(tmp_path, case, words):
    etc = tmp_path / "cdi"
    etc.mkdir()
    (etc / "nvidia.yaml").write_text(_spec(tmp_path))
    other = etc / "vendor.yaml"  # not named nvidia*: nobody can tell whose it is, so it is named anyway
    if case == "fifo":
        os.mkfifo(other)
    elif case == "binary":
        other.write_bytes(b"\xff\xfe\x00garbage")
    else:
        other.symlink_to(null_device(tmp_path))
    t0 = time.monotonic()
    facts = cdi_probe.probe_cdi((str(etc),), None, 10)
    verdict = cdi_v.spec_valid(facts)
    assert time.monotonic() - t0 < 5
    assert verdict.status == "fail" and str(other) in verdict.message and words in verdict.message, verdict


BAD_EDITS = [
    ("containerEdits: [x]", "containerEdits: expected a mapping"),
    ("containerEdits:\n  mounts: 5", "containerEdits.mounts: expected a list, found a number"),
    ("containerEdits:\n  deviceNodes: nvidia0", "containerEdits.deviceNodes: expected a list, found a string"),
    ("containerEdits:\n  mounts: [5]", "mounts[0]: expected a mapping"),
    ("containerEdits:\n  mounts:\n  - hostPath: [a]\n    containerPath: /x",
     "mounts[0].hostPath: expected a string, found a list"),
    ("containerEdits:\n  hooks:\n  - hookName: createContainer\n    path: /usr/bin/true\n    args: 7",
     "hooks[0].args: expected a list of strings, found a number"),
    ("containerEdits:\n  hooks:\n  - hookName: whenever\n    path: /usr/bin/true", "hooks[0].hookName: expected one"),
    ("containerEdits:\n  hooks: [x]", "hooks[0]: expected a mapping"),
    # sigs.k8s.io/yaml makes the number 1 bound for a string the string "1", which ValidateEnv then refuses
    ("containerEdits:\n  env: [1]", "env[0]: '1' is not KEY=VALUE"),
]


@pytest.mark.parametrize("edits,words", BAD_EDITS, ids=[w.split(":")[0] for _, w in BAD_EDITS])
def test_cdi_fields_of_the_wrong_type_fail_the_valid_check_with_a_line_and_crash_nothing(tmp_path, edits, words):
    etc = tmp_path / "cdi"
    etc.mkdir()
    dev = tmp_path / "nvidia0"
    dev.touch()
    (etc / "nvidia.yaml").write_text(f"cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n{edits}\ndevices:\n- name: '0'\n"
                                     f"  containerEdits:\n    deviceNodes:\n    - path: {dev}\n")
    facts = cdi_probe.probe_cdi((str(etc),), None, 10)
    verdicts = _cdi_verdicts(facts, gpu_facts())  # every CDI verdict, none raises
    valid = verdicts["valid"]
    assert valid.status == "fail" and words in valid.message + valid.details, valid
    assert re.search(rf"{re.escape(str(etc))}/nvidia.yaml:\d+: ", valid.message)


def test_device_container_edits_of_the_wrong_type(tmp_path):
    spec = cdi.parse_spec("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: '0'\n  containerEdits: 5\n",
                          "s.yaml")
    assert [(p.line, p.message.split(":")[0]) for p in spec.problems] == [(5, "devices[0].containerEdits")]


def test_a_cdi_spec_with_an_alias_bomb_in_hook_args_fails_fast(tmp_path):
    anchors = "".join(f"x{c}: &{c} [" + ", ".join([f"*{p}"] * 9 if p else ["a"] * 9) + "]\n"
                      for c, p in zip("abcdefghi", ["", *"abcdefgh"], strict=True))
    text = (f"cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n{anchors}containerEdits:\n  hooks:\n"
            "  - hookName: createContainer\n    path: /usr/bin/true\n    args: *i\ndevices:\n- name: '0'\n"
            "  containerEdits: {}\n")
    etc = tmp_path / "cdi"
    etc.mkdir()
    (etc / "nvidia.yaml").write_text(text)
    t0 = time.monotonic()
    verdict = cdi_v.spec_valid(cdi_probe.probe_cdi((str(etc),), None, 10))
    assert time.monotonic() - t0 < 3
    assert verdict.status == "fail" and "alias bomb" in verdict.message


def test_module0_cdi_run_over_wrongly_typed_specs_gives_verdicts_not_tracebacks(tmp_path):
    etc = tmp_path / "cdi"
    etc.mkdir()
    (etc / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ncontainerEdits: [x]\ndevices:\n"
                                     "- name: '0'\n  containerEdits:\n    mounts: 5\n    hooks:\n"
                                     "    - {hookName: createContainer, path: /bin/true, args: 7}\n")
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"cdi_dirs: [{json.dumps(str(etc))}]\n")
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests_env"), "-m", "module0", "-k", "cdi", "--no-provision",
         f"--lab-config={lab}", f"--results-json={out}", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    recs = {r["check"]: r for r in json.loads(out.read_text())["records"] if r["check"].startswith("cdi")}
    assert len(recs) == 5 and "raised an error" not in json.dumps(recs) and "Traceback" not in proc.stdout
    assert recs["cdi_spec_valid"]["verdict"] == "fail" and "containerEdits: expected a mapping" in \
        recs["cdi_spec_valid"]["message"]


# --- 5. secrets and control characters, through a whole run -------------------------------------------

def test_docker_host_password_with_slash_and_at_never_reaches_terminal_json_or_html(tmp_path):
    html, out = tmp_path / "r.html", tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["DOCKER_HOST"] = "tcp://admin:pa/ss@w0rd:x@127.0.0.1:9"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests_env"), "-m", "module0", "-k", "docker_engine",
         "--no-provision", f"--results-json={out}", f"--html={html}", "--self-contained-html", "-rA", "-l",
         "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr + out.read_text() + html.read_text()
    for piece in ("pa/ss", "w0rd", "admin"):
        assert piece not in text, piece
    rec = [r for r in json.loads(out.read_text())["records"] if r["check"] == "docker_engine_reachable"][0]
    assert "tcp://***@127.0.0.1:9" in rec["message"]


@pytest.mark.parametrize("url", ["https://u:p@ss/w@rd@host/x", "tcp://tok%2Fen@h:1", "ssh://a@b@c:22 rest"])
def test_any_userinfo_is_removed(url):
    out = redact.scrub(f"see {url}")
    assert "***@" in out and not any(s in out for s in ("u:p", "ss/w", "tok", "a@b")), out


def test_ansi_escapes_in_tool_output_are_escaped_in_terminal_json_and_html(tmp_path):
    helm = tmp_path / "bin" / "helm"  # stands for a helm that fails with a coloured, terminal-rewriting error
    helm.parent.mkdir()
    helm.write_text("#!/bin/sh\nprintf '\\033[2J\\033]0;pwned\\007\\033[31mError: boom\\033[0m\\n' >&2\nexit 1\n")
    helm.chmod(0o755)
    html, out = tmp_path / "r.html", tmp_path / "r.json"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
           "PATH": f"{helm.parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests_env"), "-m", "module0", "-k", "helm", "--no-provision",
         f"--results-json={out}", f"--html={html}", "--self-contained-html", "-rA", "-p", "no:cacheprovider",
         "--color=no"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    for text in (proc.stdout, out.read_text(), html.read_text()):
        assert "\x1b" not in text and "\x07" not in text
    rec = [r for r in json.loads(out.read_text())["records"] if "helm" in r["check"]][0]
    assert rec["verdict"] == "fail" and "\\x1b[31mError: boom" in rec["message"], rec


def test_carriage_returns_bidi_overrides_and_c1_controls_are_escaped_but_newlines_and_tabs_kept():
    out = redact.scrub("a\rb\u202ec\x9bd\x00e\x7ff\ng\th")
    assert out == "a\\x0db\\u202ec\\x9bd\\x00e\\x7ff\ng\th"


# --- 7. tool output -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,output,version", [
    ("kind", "go1.24.6 linux/amd64 kind v0.20.0", "0.20.0"),
    ("kind", "kind v0.30.0 go1.24.6 linux/amd64", "0.30.0"),
    ("kind", "built with go1.24.6", ""),
    ("helm", "v3.16.2", "3.16.2"),
    ("helm", 'version.BuildInfo{Version:"v3.9.4", GitCommit:"dbc6d8e", GoVersion:"go1.22.7"}', "3.9.4"),
    ("helm", "go1.22.7", ""),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: 2.3.4", "1.17.8"),
    ("nvidia-ctk", "commit: 1.2.3", ""),
])
def test_a_tool_version_is_read_from_its_version_field(tmp_path, monkeypatch, name, output, version):
    executable(tmp_path / name, f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\n")  # stands for the tool's answer
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    facts = tools_probe.probe_tool(name, timeout=10)
    assert facts.version == version
    verdict = tools_v.tool_version(facts, "0.1")
    assert verdict.status == ("pass" if version else "fail")
    if not version:
        assert "cannot read a version" in verdict.message


def test_docker_cli_version_is_read_from_its_version_field(tmp_path, monkeypatch):
    executable(tmp_path / "docker", "#!/bin/sh\necho 'go1.24.6 api version 1.41 Docker version 24.0.7, build x'\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert docker_probe.probe_cli(config.LabConfig(command_timeout=10)).version == "24.0.7"


def test_kind_printing_go_first_fails_the_kind_check_with_its_own_version(tmp_path, monkeypatch):
    executable(tmp_path / "kind", "#!/bin/sh\necho 'go1.24.6 linux/amd64 kind v0.20.0'\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    verdict = tools_v.tool_version(tools_probe.probe_tool("kind", timeout=10), "0.24.0")
    assert verdict.status == "fail" and "Kind 0.20.0 is older than 0.24.0" in verdict.message


@pytest.mark.parametrize("output", ["", "\n\n", "garbage\x1b[31m here\n", "0, GPU-x, H100, 9.0\n",
                                    "0, GPU-x, NVIDIA H100, not-a-driver, 9.0, Default, 81559\n"])
def test_nvidia_smi_exiting_0_with_empty_or_garbage_output_is_one_verdict_naming_it(tmp_path, output):
    smi = executable(tmp_path / "nvidia-smi", f"#!/bin/sh\nprintf '%s' '{output}'\nexit 0\n")  # stands for a
    facts = gpu_probe.probe_gpus((str(tmp_path),), 10, use_nvml=False,  # broken driver's nvidia-smi
                                 proc_version=tmp_path / "none")
    assert facts.smi.path == str(smi) and facts.smi.error
    driver = gpu_v.driver(facts, "535")
    assert driver.status == "fail" and "nvidia-smi" in driver.message, driver
    assert not facts.answered and not facts.gpus
    present = gpu_v.gpus_present(facts)
    assert present.status in ("skip", "fail") and "driver" in present.message  # points at the same cause


# --- 9. usage ---------------------------------------------------------------------------------------------------

def _pytest(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, **(env or {})}
    return subprocess.run([sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def test_a_marker_that_selects_nothing_still_prints_the_summary(tmp_path):
    out = tmp_path / "r.json"
    proc = _pytest("tests_env", "-m", "modul0", "--no-provision", f"--results-json={out}")
    assert f"{results.summarize([]).line}: -m 'modul0' selected no lab check" in proc.stdout  # "... no check ran"
    assert proc.returncode == pytest.ExitCode.NO_TESTS_COLLECTED
    assert json.loads(out.read_text())["summary"]["total"] == 0


def test_empty_hosts_is_a_usage_error():
    proc = _pytest("tests_env", "--hosts=", "--no-provision")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR and "--hosts= needs an inventory file" in proc.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "0", "soon"])
def test_progress_interval_rejects_non_finite_and_non_positive_values(value):
    proc = _pytest("tests_env", "-m", "module0", "-k", "lab_config", "--no-provision",
                   env={"LABCHECK_PROGRESS_INTERVAL": value})
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"LABCHECK_PROGRESS_INTERVAL='{value}': expected a finite number of seconds > 0" in proc.stderr


def test_pid_files_that_are_fifos_or_garbage_read_as_no_pid_without_blocking(tmp_path):
    """The MPS pipe folder lives in world-writable /tmp: anyone can plant a FIFO where the daemon's pid file goes."""
    pipe = tmp_path / "nvidia-mps"
    pipe.mkdir()
    os.mkfifo(pipe / "nvidia-cuda-mps-control.pid")
    t0 = time.monotonic()
    assert mps_probe.probe_pipe_dir(str(pipe)).pid_file_pid is None
    found = docker_probe.probe_dockerd("", str(pipe / "nvidia-cuda-mps-control.pid"), 5)
    assert found.pid is None and "is a FIFO (named pipe), not a regular file" in found.problem, found
    assert time.monotonic() - t0 < 5
    (tmp_path / "pid").write_text("12ab\n")
    assert fsio.read_pid(tmp_path / "pid") is None
    (tmp_path / "pid").write_text(f"{os.getpid()}\n")
    assert fsio.read_pid(tmp_path / "pid") == os.getpid()
