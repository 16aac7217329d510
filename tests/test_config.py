"""Lab config: defaults, overrides, and bad files turned into problems with a line number."""

import dataclasses
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labcheck import config, versions
from labcheck.clis import Clis
from labcheck.probes.cdi import CdiFacts
from labcheck.probes.gpu import Gpu, GpuFacts, NvmlFacts, SmiQuery
from labcheck.rerun import Rerun
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import gpu as gpu_v
from labcheck.verdicts import host
from labcheck.verdicts import kindconfig as kind_v
from tests import shell_fix
from tests.shell_text import sed_delete


def test_defaults_are_the_documented_thresholds():
    cfg, problems = config.load(None)
    assert problems == []
    assert (cfg.min_kernel, cfg.min_docker, cfg.min_kind, cfg.min_helm) == ("5.15", "24.0", "0.24.0", "3.10")
    assert (cfg.min_driver, cfg.min_compute_capability, cfg.min_ctk) == ("535", "6.0", "1.14")
    assert cfg.node_name == "workshop-dra-control-plane"


def test_override_and_number_coercion():
    cfg, problems = config.parse("min_docker: 25.0\ncdi_dirs: /etc/cdi\ncommand_timeout: 5\n")
    assert problems == []
    assert cfg.min_docker == "25.0" and cfg.cdi_dirs == ("/etc/cdi",) and cfg.command_timeout == 5.0


def test_bad_yaml_reports_file_and_line():
    cfg, problems = config.parse("min_docker: 24.0\nmin_kind: [0.24\n", "lab.yaml")
    assert cfg == config.LabConfig()
    assert len(problems) == 1 and problems[0].line is not None
    assert str(problems[0]).startswith("lab.yaml:")
    assert "not valid YAML" in problems[0].message


def test_unknown_key_and_wrong_type_are_problems_with_lines():
    _, problems = config.parse("min_docker: '24.0'\nmin_dockr: 1\nshm_min_bytes: lots\n", "lab.yaml")
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (2, "unknown setting 'min_dockr'"),
        (3, "shm_min_bytes"),
    ]


def test_not_a_mapping(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text("- a\n- b\n")
    _, problems = config.load(f)
    assert "expected a mapping" in problems[0].message


def test_missing_file():
    _, problems = config.load("/nonexistent/lab.yaml")
    assert problems[0].message == "lab config file not found"


def test_example_file_lists_every_setting_with_its_default():
    """lab.example.yaml is the user's reference: it must load cleanly and match the defaults, key for key."""
    example = Path(__file__).resolve().parent.parent / "lab.example.yaml"
    cfg, problems = config.load(example)
    assert problems == [] and cfg == config.LabConfig()
    assert set(yaml.safe_load(example.read_text())) == {f.name for f in dataclasses.fields(config.LabConfig)}


def test_lab_config_check_skips_when_no_file_was_read_and_passes_only_a_read_one(tmp_path):
    """No lab config at all is not "valid": nothing was read, so the check skips (the defaults apply)."""
    cfg, problems = config.load(None)
    verdict = host.lab_config(problems, None)
    assert verdict.status == "skip" and "nothing to validate" in verdict.message
    lab = tmp_path / "lab.yaml"
    lab.write_text("min_docker: 25.0\n")
    verdict = host.lab_config(config.load(lab)[1], str(lab))
    assert verdict.status == "pass" and str(lab) in verdict.message
    missing = tmp_path / "nope.yaml"
    verdict = host.lab_config(config.load(missing)[1], str(missing))
    assert verdict.status == "fail" and "not found" in verdict.message


def test_lab_config_check_says_what_happens_to_each_problem(tmp_path):
    """An invalid cluster_name is kept as written (the default would be another cluster), a bad value gets its
    default, an unknown key is ignored: the message says which, never "kept" and "defaults instead" at once."""
    lab = tmp_path / "lab.yaml"
    lab.write_text("cluster_name: Bad_Name\nmin_docker: x\nfoo: 1\n")
    verdict = host.lab_config(config.load(lab)[1], str(lab))
    assert verdict.status == "fail"
    assert verdict.message.startswith(f"{lab}:1: cluster_name: 'Bad_Name' is not a valid kind cluster name")
    assert verdict.message.endswith("; kept as written (a default would point the suite at another cluster): "
                                    "docker and kind refuse it (+2 more)"), verdict.message
    assert "default" not in verdict.message.split("; kept as written")[0]
    assert verdict.details.splitlines()[1:] == [
        f"{lab}:2: min_docker: expected a version such as '24.0', found 'x'; the documented default '24.0' is used "
        "instead", f"{lab}:3: unknown setting 'foo'; ignored"]
    lab.write_text("- not a mapping\n")
    verdict = host.lab_config(config.load(lab)[1], str(lab))
    assert verdict.message.endswith("; the file is not used: the documented defaults apply"), verdict.message


def test_a_key_written_twice_is_a_problem_on_its_second_line():
    """YAML keeps the last of two equal keys silently: a weakened threshold below the real one passed (m0-5)."""
    cfg, problems = config.parse("min_kind: 0.24.0\ncommand_timeout: 5\nmin_kind: 0.30.0\n", "lab.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (3, "min_kind is set twice (line 1 and line 3): YAML keeps only the last")]
    lab = shlex.quote(os.path.realpath("lab.yaml"))  # the first one (what YAML ignores) goes: nothing else changes
    assert problems[0].fix.startswith(f"cp -p {lab} ")
    assert f" && {sed_delete(1, 'min_kind', lab)}   # keeps a copy" in problems[0].fix
    assert "so the one on line 3, used now, is the only one" in problems[0].fix and cfg.min_kind == "0.30.0"
    cfg, problems = config.parse("min_kind: 0.24.0\ncommand_timeout: 5\nmin_kind: 0.1.0\n", "lab.yaml")
    assert [p.line for p in problems] == [3, 3] and "is below the workshop's minimum" in problems[1].message
    assert cfg.min_kind == "0.24.0"  # the weakened last one is not used


def test_numbers_yaml_reads_as_strings_are_numbers():
    """YAML 1.1 reads 1e2 or 8.5e9 (no dot or no '+' in the exponent) as strings; they are numbers here."""
    cfg, problems = config.parse("command_timeout: 1e2\nshm_min_bytes: 9.5e9\ncluster_create_timeout: '900'\n")
    assert problems == []
    assert (cfg.command_timeout, cfg.shm_min_bytes, cfg.cluster_create_timeout) == (100.0, 9_500_000_000, 900.0)
    _, problems = config.parse("shm_min_bytes: 8.5e0\n")
    assert "expected a whole number, found '8.5e0'" in problems[0].message


def test_a_cdi_spec_path_outside_cdi_dirs_is_a_problem():
    """The spec --fix-host writes must land in a folder the CDI probe searches, as a file CDI reads (m0-4)."""
    _, problems = config.parse("cdi_dirs: [/opt/cdi]\ncdi_spec_path: /etc/cdi/nvidia.yaml\n", "lab.yaml")
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(2, "cdi_spec_path")]
    assert "'/etc/cdi', which cdi_dirs ('/opt/cdi') does not list" in problems[0].message
    assert problems[0].fix == config.edit_fix("lab.yaml", 2, "set cdi_spec_path: '/opt/cdi/nvidia.yaml', or set "
                                              "cdi_dirs: ['/etc/cdi', '/opt/cdi'] (the first is the one mounted)")
    _, problems = config.parse("cdi_dirs: [/etc/cdi/]\ncdi_spec_path: /etc/cdi/nvidia.yml\n")
    assert problems == []  # a trailing '/' is the same folder
    _, problems = config.parse("cdi_spec_path: /etc/cdi/nvidia\n")
    assert "does not end in .yaml, .yml, .json" in problems[0].message
    assert problems[0].fix == config.edit_fix("lab.yaml", 1, "set cdi_spec_path: /etc/cdi/nvidia.yaml")


def test_a_cdi_spec_path_in_a_cdi_dir_by_another_name_is_no_problem(tmp_path):
    """/run/cdi/nvidia.yaml with cdi_dirs [/var/run/cdi]: one folder (/var/run links to /run), as the CDI probe
    compares them; only a folder that really is another one is the problem above."""
    (tmp_path / "run" / "cdi").mkdir(parents=True)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to(tmp_path / "run")
    _, problems = config.parse(f"cdi_dirs: [{tmp_path}/var/run/cdi]\ncdi_spec_path: {tmp_path}/run/cdi/nvidia.yaml\n")
    assert problems == []
    _, problems = config.parse(f"cdi_dirs: [{tmp_path}/var/cdi]\ncdi_spec_path: {tmp_path}/run/cdi/nvidia.yaml\n")
    assert [p.message.split(":")[0] for p in problems] == ["cdi_spec_path"]


def test_a_docker_host_the_sdk_can_use_is_accepted():
    for url in ("unix:///run/user/1000/docker.sock", "tcp://127.0.0.1:2375", "ssh://me@host", "tcp://[::1]:2376"):
        assert config.parse(f"docker_host: '{url}'\n")[1] == [], url


def test_a_dangling_lab_yaml_link_in_the_run_folder_is_named_not_ignored(tmp_path):
    """./lab.yaml -> a file that is gone: before, the run said "no lab config given ... defaults apply" and the
    user's settings were silently dropped; now lab_config_valid fails naming the broken link (real run)."""
    root = Path(__file__).resolve().parents[1]
    run = tmp_path / "run"
    run.mkdir()
    (run / "lab.yaml").symlink_to(tmp_path / "gone.yaml")
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "pytest", str(root / "tests_env"), "-m", "module0", "-k", "lab_config",
                    "--no-provision", f"--results-json={out}", "-p", "no:cacheprovider", f"--rootdir={root}",
                    "-q"], cwd=run, capture_output=True, text=True, timeout=120)
    rec = [r for r in json.loads(out.read_text())["records"] if r["check"] == "lab_config_valid"][0]
    assert rec["verdict"] == "fail", rec
    assert f"lab.yaml is a symbolic link to {tmp_path / 'gone.yaml'}, which does not exist" in rec["message"]


@pytest.mark.parametrize("name", ["mps_pipe_dir", "mps_log_dir"])
@pytest.mark.parametrize("value", ["/", "/tmp", "/home", "/var/run", "/etc", "/tmp/", "//etc/.", "/var/log",
                                   "/dev/shm", "HOME"])
def test_an_mps_folder_that_is_a_system_or_shared_one_is_refused(tmp_path, name, value):
    """The MPS fixes create these folders for the user and the stale-pipe fix removes the daemon's entries (control,
    log, ...) in the pipe folder: `mps_pipe_dir: /tmp` once printed `rm -rf /tmp`. The state_dir guard (one guard,
    labcheck.config.OWN_FOLDERS) refuses them for both MPS folders, saying why and what to set."""
    value = os.path.expanduser("~") if value == "HOME" else value
    cfg, problems = config.parse(f"{name}: {json.dumps(value)}\n", "lab.yaml")
    assert len(problems) == 1 and problems[0].line == 1, problems
    p = problems[0]
    assert p.message.startswith(f"{name}: {value!r} "), p.message
    assert ", a system folder: " in p.message or " is a shared folder " in p.message, p.message
    assert "expected a folder of its own" in p.message
    assert p.fix == config.edit_fix("lab.yaml", 1, f"set {name}: {getattr(config.LabConfig(), name)}")
    assert getattr(cfg, name) == getattr(config.LabConfig(), name)  # the default stands in


SYSTEM_PLACES = ["/etc/ssh", "/etc/docker", "/usr/local/bin", "/usr/share/x", "/bin/x", "/sbin/x", "/lib/x",
                 "/lib64/x", "/boot/efi", "/proc/1", "/sys/fs/x", "/dev/shm/mps", "/dev/x", "/var/lib/docker",
                 "/var/lib/kubelet/mps", "/var/cache/apt", "/var/spool/cron", "/run/docker", "/var/run/nvidia-mps",
                 "/run/systemd/x", "/tmp/../etc/ssh", "/etc/../usr/bin", "/home/alice", "/root"]


@pytest.mark.parametrize("name", ["mps_pipe_dir", "mps_log_dir", "state_dir"])
@pytest.mark.parametrize("value", SYSTEM_PLACES)
def test_a_folder_of_its_own_under_a_system_folder_is_refused_as_a_class(name, value):
    """An exact list of system folders let /etc/ssh, /usr/local/bin and /var/lib/docker through (review): the
    system's trees are refused with everything under them, by any spelling, as a failing lab_config_valid (a
    problem with its line and the default standing in), never a crash."""
    cfg, problems = config.parse(f"{name}: {json.dumps(value)}\n", "lab.yaml")
    assert len(problems) == 1 and problems[0].line == 1, problems
    assert "a system folder" in problems[0].message or "a shared folder" in problems[0].message, problems[0].message
    assert problems[0].fix == config.edit_fix("lab.yaml", 1, f"set {name}: {getattr(config.LabConfig(), name)}")
    assert getattr(cfg, name) == getattr(config.LabConfig(), name)


def test_a_system_folder_behind_a_link_is_refused(tmp_path):
    (tmp_path / "ssh").symlink_to("/etc/ssh")
    _, problems = config.parse(f"mps_log_dir: {tmp_path / 'ssh' / 'mps'}\n", "lab.yaml")
    assert "(/etc/ssh/mps) is under /etc, a system folder" in problems[0].message, problems


@pytest.mark.parametrize("value", ["/tmp/nvidia-mps", "/tmp/lab mps", "/var/tmp/mps", "/var/log/nvidia-mps",
                                   "/run/user/1000/mps", "/var/run/user/1000/mps", "/opt/lab/mps", "/srv/lab/mps",
                                   "/home/alice/mps", "/scratch/mps", "~/mps"])
def test_the_places_a_user_configures_stay_allowed(value):
    """/tmp/..., /var/tmp/..., the home folder, /run/user/UID/... (XDG_RUNTIME_DIR), /var/log/... and the default
    pipe folder /tmp/nvidia-mps are where a user legitimately puts the MPS folders and the state."""
    for name in ("mps_pipe_dir", "mps_log_dir", "state_dir"):
        if name != "state_dir" and value.startswith("~"):
            continue  # the MPS folders are absolute paths (labcheck.config._path_problem)
        cfg, problems = config.parse(f"{name}: {json.dumps(value)}\n", "lab.yaml")
        assert problems == [] and getattr(cfg, name) == value, problems


@pytest.mark.parametrize("home", ["/var/lib/jenkins", "/usr/local/builder", "/run/user/0/home"])
def test_below_a_home_under_a_system_tree_the_documented_defaults_stay_allowed(monkeypatch, home):
    """A service account's home under /var/lib (jenkins, gitlab-runner): lab.example.yaml's state_dir
    ~/.local/state/dra-labcheck was refused as "under /var/lib", with a fix naming the same value and the same path
    standing in: a lab config check that could never pass (review). Below the home is the user's own; the rest of
    the tree is still refused."""
    monkeypatch.setenv("HOME", home)
    for text in ("state_dir: ~/.local/state/dra-labcheck\n", f"mps_log_dir: {home}/mps-log\n",
                 f"kind_config_path: {home}/lab/kind.yaml\n"):
        assert config.parse(text, "lab.yaml")[1] == [], text
    tree = next(t for t in config.SYSTEM_TREES if home.startswith(t + "/"))
    _, problems = config.parse(f"mps_log_dir: {tree}/other\n", "lab.yaml")
    assert len(problems) == 1 and "a system folder" in problems[0].message, problems


@pytest.mark.parametrize("home", ["/", "/etc", "/var", "/usr"])
def test_a_home_at_or_above_a_system_tree_admits_nothing_below_it(monkeypatch, home):
    """HOME=/ or /var (daemon users): "below the home" would be the whole system."""
    monkeypatch.setenv("HOME", home)
    for value in ("/var/lib/docker", "/etc/ssh", "/usr/local/bin"):
        assert config.parse(f"state_dir: {value}\n", "lab.yaml")[1], (home, value)


@pytest.mark.parametrize("value", ["/etc/ssh/ssh_config", "/usr/local/bin/kind-config.yaml", "/var/lib/docker/k.yaml"])
def test_a_kind_config_path_in_a_system_folder_is_refused(value):
    """The suite writes the kind config (and backups next to it): never into /etc/ssh and the like; /tmp/k.yaml and
    the project's own manifests/ stay allowed."""
    cfg, problems = config.parse(f"kind_config_path: {value}\n", "lab.yaml")
    assert len(problems) == 1 and "a system folder" in problems[0].message, problems
    assert cfg.kind_config_path == config.LabConfig().kind_config_path
    for ok in ("/tmp/k.yaml", "manifests/kind-config.yaml", "/home/alice/lab/kind.yaml"):
        assert config.parse(f"kind_config_path: {ok}\n", "lab.yaml")[1] == []


def test_an_mps_folder_linked_to_a_system_folder_is_refused_and_a_folder_of_its_own_is_kept(tmp_path):
    (tmp_path / "mps").symlink_to("/tmp")
    _, problems = config.parse(f"mps_pipe_dir: {tmp_path / 'mps'}\n", "lab.yaml")
    assert "(/tmp) is a shared folder" in problems[0].message
    cfg, problems = config.parse("mps_pipe_dir: /tmp/lab mps\nmps_log_dir: /var/log/lab-mps\n", "lab.yaml")
    assert problems == [] and (cfg.mps_pipe_dir, cfg.mps_log_dir) == ("/tmp/lab mps", "/var/log/lab-mps")


# --- the workshop's minimums: a lab config may raise them, never lower them -------------------------------------

GIB = 1024**3
LOWERED = [  # (setting, as written, as the message shows it, the workshop's minimum as shown)
    ("min_docker", '"20.10"', "'20.10'", "'24.0'"),  # Debian's engine then passed and the run said READY
    ("min_docker", '"v23.0.99"', "'v23.0.99'", "'24.0'"),
    ("min_kernel", '"2.6"', "'2.6'", "'5.15'"),
    ("min_kind", "0.23.9", "'0.23.9'", "'0.24.0'"),
    ("min_helm", "3.9", "'3.9'", "'3.10'"),
    ("min_driver", '"1"', "'1'", "'535'"),
    ("min_driver", "534.99", "'534.99'", "'535'"),
    ("min_compute_capability", '"0.0"', "'0.0'", "'6.0'"),
    ("min_ctk", '"1.13.5"', "'1.13.5'", "'1.14'"),
    ("shm_min_bytes", "1048576", "1048576 (1 MiB)", f"{8 * GIB} (8 GiB)"),
    ("shm_min_bytes", str(8 * GIB - 1), f"{8 * GIB - 1} ({8 * GIB - 1} bytes)", f"{8 * GIB} (8 GiB)"),
]


@pytest.mark.parametrize(("key", "written", "shown", "minimum"), LOWERED)
def test_a_minimum_below_the_workshop_s_is_a_problem_naming_key_value_minimum_and_fix(tmp_path, key, written, shown,
                                                                                     minimum):
    """config.parse('min_docker: "20.10"\\nshm_min_bytes: 1048576\\n') reported nothing, and engine 20.10 passed."""
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"cluster_name: lab-a\n{key}: {written}\n")
    cfg, problems = config.load(lab)
    assert [(p.line, p.message) for p in problems] == [(2, (
        f"{key}: {shown} is below the workshop's minimum {minimum}: a lab config may raise a minimum, never lower it "
        "(a host the workshop does not support would pass)"))]
    assert getattr(cfg, key) == getattr(config.LabConfig(), key) and cfg.cluster_name == "lab-a"
    assert problems[0].outcome == f"the workshop's minimum {minimum} is used instead"
    assert sed_delete(None, key, lab) in problems[0].fix and shell_fix.parses(problems[0].fix) == ""
    verdict = host.lab_config(problems, str(lab))
    assert verdict.status == "fail" and verdict.message.startswith(f"{lab}:2: {key}: {shown} is below")
    assert verdict.remediation == problems[0].fix


@pytest.mark.parametrize(("key", "written", "expected"), [
    ("min_docker", '"24.0"', "24.0"), ("min_docker", "25.0", "25.0"), ("min_docker", '"24"', "24"),
    ("min_kernel", "'6.1'", "6.1"), ("min_kind", "v0.30.0", "v0.30.0"), ("min_helm", "3.10", "3.10"),
    ("min_helm", "'3.16'", "3.16"), ("min_driver", "580", "580"), ("min_compute_capability", "'7.0'", "7.0"),
    ("min_ctk", "'1.17.8'", "1.17.8"), ("shm_min_bytes", str(8 * GIB), 8 * GIB), ("shm_min_bytes", "16e9", 16 * 10**9),
])
def test_a_minimum_at_or_above_the_workshop_s_is_kept(key, written, expected):
    cfg, problems = config.parse(f"{key}: {written}\n", "lab.yaml")
    assert problems == [] and getattr(cfg, key) == expected


def test_every_workshop_minimum_is_guarded():
    """Each threshold the checks compare with is one of config.THRESHOLDS (a new min_* would be unguarded)."""
    thresholds = {f.name for f in dataclasses.fields(config.LabConfig) if f.name.startswith(("min_", "shm_min"))}
    assert thresholds == set(config.THRESHOLDS)


HOSTILE_FOLDER = "lab dir; it's $(touch PWNED) \"q\""


def test_the_fix_for_a_lowered_minimum_removes_only_that_line_and_keeps_a_copy(tmp_path):
    """Pasted from another folder, through a link to the file, in a folder whose name is a trap for the shell."""
    folder = tmp_path / HOSTILE_FOLDER
    folder.mkdir()
    real = folder / "real lab.yaml"
    text = 'cluster_name: lab-a\nmin_docker: "20.10"   # Debian has 20.10\nmin_kind: 0.30.0\r\n'
    real.write_bytes(text.encode())
    link = folder / "lab.yaml"
    link.symlink_to(real.name)
    _, problems = config.load(link)
    assert [p.line for p in problems] == [2]
    fix = problems[0].fix
    assert fix.startswith(f"cp -p {shlex.quote(str(real))} ")
    assert sed_delete(None, "min_docker", shlex.quote(str(real))) in fix
    res = subprocess.run(["bash", "-c", fix], cwd=tmp_path.parent, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert real.read_bytes() == b"cluster_name: lab-a\nmin_kind: 0.30.0\r\n" and link.is_symlink()
    assert config.load(link) == (config.LabConfig(cluster_name="lab-a", min_kind="0.30.0"), [])
    (backup,) = [p for p in folder.iterdir() if p.name.endswith(".bak")]
    assert backup.name.startswith("real lab.yaml.labcheck-") and backup.read_bytes() == text.encode()
    assert not list(tmp_path.parent.rglob("PWNED"))


@pytest.mark.parametrize("text,line", [
    ('{cluster_name: lab-a, min_docker: "20.10"}\n', 1),  # a flow mapping: the line holds other settings
    ("min_docker: >-\n  20.10\n", 1),  # a value over two lines
    ('cluster_name: lab-a\rmin_docker: "20.10"\n', 2),  # a lone CR: YAML's line 2 is not sed's
])
def test_a_lowered_minimum_sed_cannot_remove_exactly_opens_the_file_at_its_line(tmp_path, text, line):
    folder = tmp_path / HOSTILE_FOLDER
    folder.mkdir()
    lab = folder / "lab.yaml"
    lab.write_bytes(text.encode())
    _, problems = config.load(lab)
    (fix,) = [p.fix for p in problems if "below the workshop's minimum" in p.message]
    assert fix.startswith(f"${{EDITOR:-vi}} +{line} {shlex.quote(str(lab))}   # remove min_docker"), fix
    editor = tmp_path / "editor"
    editor.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$EDITOR_ARGS"\n')
    editor.chmod(0o755)
    env = {**os.environ, "EDITOR": str(editor), "EDITOR_ARGS": str(tmp_path / "args")}
    res = subprocess.run(["bash", "-c", fix], env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "args").read_text() == f"+{line}\n{lab}\n" and lab.read_bytes() == text.encode()


def test_a_lab_config_this_user_may_not_change_gets_the_fix_with_sudo(tmp_path, monkeypatch):
    lab = tmp_path / "lab.yaml"
    lab.write_text('min_docker: "20.10"\n')
    monkeypatch.setattr(config.os, "access", lambda path, mode: False)  # as a user, for root's /etc/lab.yaml
    (p,) = config.load(lab)[1]
    assert p.fix.startswith(f"sudo cp -p {lab} ") and f"&& sudo {sed_delete(None, 'min_docker', lab)}" in p.fix
    lab.write_text('{min_docker: "20.10"}\n')
    (p,) = config.load(lab)[1]
    assert p.fix.startswith(f"sudoedit {lab}   # remove min_docker (line 1)")


def _run_lab_checks(tmp_path, lab_text: str | None, *keywords: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Module 0 in a folder of its own with ``lab_text`` as ./lab.yaml (read without being asked for), or none."""
    root = Path(__file__).resolve().parents[1]
    run = tmp_path / "run"
    run.mkdir(parents=True)
    if lab_text is not None:
        (run / "lab.yaml").write_text(lab_text)
    out = run / "r.json"
    res = subprocess.run([sys.executable, "-m", "pytest", str(root / "tests_env"), "-m", "module0", "-k",
                          " or ".join(keywords), "--no-provision", f"--results-json={out}", "-p", "no:cacheprovider",
                          f"--rootdir={root}", "-q"], cwd=run, capture_output=True, text=True, timeout=120)
    return res, json.loads(out.read_text())


def test_a_lab_config_that_was_read_is_a_criterion_and_a_lowered_minimum_stops_ready(tmp_path):
    """The lab config check was optional: a ./lab.yaml read without being asked for could lower the minimums and
    the run still said READY. Now a file that was read makes it a criterion, and a lowered minimum fails it."""
    res, doc = _run_lab_checks(tmp_path, 'min_docker: "20.10"\nshm_min_bytes: 1048576\n', "lab_config_valid")
    (rec,) = doc["records"]
    assert rec["verdict"] == "fail" and rec["criterion"] is True and rec["optional_reason"] == "", rec
    lab = tmp_path / "run" / "lab.yaml"
    assert rec["message"].startswith("lab.yaml:1: min_docker: '20.10' is below the workshop's minimum '24.0'")
    assert sed_delete(None, "min_docker", lab) in rec["remediation"]
    assert "lab.yaml:2: shm_min_bytes: 1048576 (1 MiB) is below" in rec["details"]
    assert doc["summary"]["state"] == "NOT READY" and res.returncode == 1


def test_a_valid_lab_config_passes_as_a_criterion_and_none_skips_as_optional(tmp_path):
    """A valid lab config passes as a criterion; without a lab config the check skips and stays optional."""
    _, doc = _run_lab_checks(tmp_path, 'min_docker: "25.0"\ncluster_name: lab-a\n', "lab_config_valid")
    (rec,) = doc["records"]
    assert rec["verdict"] == "pass" and rec["criterion"] is True, rec
    _, doc = _run_lab_checks(tmp_path / "none", None, "lab_config_valid")
    (rec,) = doc["records"]
    assert rec["verdict"] == "skip" and rec["criterion"] is False, rec
    assert rec["optional_reason"].startswith("no lab config was read (--lab-config, ./lab.yaml)")
    assert "lab_config_valid" not in [u["check"] for u in doc["summary"]["unverified"]]


def test_the_report_environment_names_the_lab_config_and_its_settings(tmp_path):
    _, doc = _run_lab_checks(tmp_path, 'min_docker: "25.0"\ncluster_name: lab-a\nmin_kind: "0.1"\n'
                             "cdi_dirs: [/etc/cdi, /var/run/cdi]\n", "lab_config_valid")
    (facts,) = doc["environment"].values()
    assert facts["Lab config"] == str(tmp_path / "run" / "lab.yaml")
    lab = {k: v for k, v in facts.items() if k.startswith("Lab config: ")}
    # what differs from the defaults, as the checks used it: the lowered min_kind is not (the minimum stands)
    assert lab == {"Lab config: min_docker": "25.0", "Lab config: cluster_name": "lab-a"}, facts
    _, doc = _run_lab_checks(tmp_path / "none", None, "lab_config_valid")
    assert not [k for facts in doc["environment"].values() for k in facts if k.startswith("Lab config")]


def test_a_changed_setting_in_the_report_environment_is_one_line_and_bounded():
    """The report shows each changed setting as written (a list joined), through fsio.shown: a long one cut with
    its length, one with a control character escaped, never raw (it is a line of the report's environment)."""
    long_path = "/srv/" + "p" * 400
    got = config.changed_settings(config.LabConfig(cdi_dirs=("/etc/cdi", "/srv/cdi"), mps_log_dir=long_path,
                                                   cluster_name="lab\x1b[2J\nb"))
    assert got["cdi_dirs"] == "/etc/cdi, /srv/cdi"
    assert got["mps_log_dir"] == long_path[:config.MAX_SHOWN - 15] + f"... ({len(long_path)} characters)"
    assert got["cluster_name"] == "'lab\\x1b[2J\\nb'"


@pytest.mark.needs("docker_engine")
def test_a_lowered_min_docker_no_longer_passes_an_older_engine(tmp_path):
    """The audit's reproduction: min_docker "20.10" in ./lab.yaml passed this machine's Docker 20.10 engine."""
    from labcheck.probes.docker_client import connect  # lazy: the docker SDK (documented lazy import)

    engine = connect(10.0).client.version().get("Version", "")
    if versions.at_least(engine, "24.0") is not False:
        pytest.skip(f"this engine ({engine}) is not older than the workshop's 24.0")
    _, doc = _run_lab_checks(tmp_path, 'min_docker: "20.10"\n', "lab_config_valid", "docker_engine_version")
    recs = {r["check"]: r for r in doc["records"]}
    assert recs["docker_engine_version"]["verdict"] == "fail", recs
    assert "is older than the required 24.0" in recs["docker_engine_version"]["message"]
    assert recs["lab_config_valid"]["verdict"] == "fail" and doc["summary"]["state"] == "NOT READY"


PROSE_WORDS = {"set", "remove", "keep", "fix", "write", "create", "point", "check"}
EVERY_KIND_OF_PROBLEM = {  # a lab config with one problem of each kind lab_config_valid reports
    "unknown setting": "cluster_name: lab-a\nfoo: 1\n",
    "wrong type": "command_timeout: [1]\n",
    "bad value": 'kind_binary: "rel/kind\\nrm -rf ~"\n',  # the fix names the value: it must stay in the comment
    "set twice": "min_kind: 0.30.0\nmin_kind: 0.31.0\n",
    "bad YAML": "min_kind: [\n",
    "not a mapping": "- min_kind\n",
    "cross": "cdi_spec_path: /etc/cdi/nvidia\n",
    "lowered minimum": 'min_docker: "20.10"\n',
}


@pytest.mark.parametrize("kind", EVERY_KIND_OF_PROBLEM)
def test_every_lab_config_fix_is_a_command_that_runs_not_prose(tmp_path, kind):
    """`set kind_binary: ...`, `remove it; known settings: ...`, `keep one min_kind line in lab.yaml`, `fix the YAML
    at ...`: pasted, bash ran `set` (a builtin: nothing happens), or a command named `remove`/`keep`/`fix`. Each fix
    now opens the lab config in the editor at the line (what to change after '#') or removes the line exactly (a
    copy kept): pasted here with a stand-in editor, it runs that and nothing else."""
    folder = tmp_path / HOSTILE_FOLDER
    folder.mkdir()
    lab = folder / "lab.yaml"
    lab.write_text(EVERY_KIND_OF_PROBLEM[kind])
    problems = config.load(lab)[1]
    assert problems, kind
    fix = problems[0].fix
    assert shell_fix.parses(fix) == "" and fix.split()[0] not in PROSE_WORDS, fix
    assert "\n" not in fix and "rm -rf" not in fix.partition("#")[0], fix
    editor = tmp_path / "editor"
    editor.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$EDITOR_ARGS"\n')
    editor.chmod(0o755)
    env = {**os.environ, "EDITOR": str(editor), "EDITOR_ARGS": str(tmp_path / "args")}
    res = subprocess.run(["bash", "-c", fix], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    if fix.startswith("${EDITOR"):
        line = problems[0].line
        assert (tmp_path / "args").read_text() == (f"+{line}\n" if line else "") + f"{lab}\n"
    else:  # the removal: the line went, a copy of the file stays
        (backup,) = [p for p in folder.iterdir() if p.name.endswith(".bak")]
        assert backup.read_text() == EVERY_KIND_OF_PROBLEM[kind] and len(lab.read_text().splitlines()) == \
            len(backup.read_text().splitlines()) - 1
        assert config.load(lab)[1] == []
    assert not list(tmp_path.rglob("PWNED"))


def test_a_missing_lab_config_opens_the_editor_on_it(tmp_path):
    """`create lab.yaml or drop --lab-config` was prose: the editor makes the file."""
    (p,) = config.load(tmp_path / "lab.yaml")[1]
    assert p.fix == f"${{EDITOR:-vi}} {tmp_path / 'lab.yaml'}   # create it (lab.example.yaml lists every setting), " \
                    "or drop --lab-config"


def test_removal_steps_of_a_setting_read_from_the_file_now(tmp_path):
    """What a verdict uses to undo a setting (docker_host): the line as the file has it when the fix is made."""
    lab = tmp_path / "lab.yaml"
    lab.write_text("cluster_name: lab-a\n# a comment\ndocker_host: tcp://gpu-box:2375\n")
    command, note = config.removal_steps(str(lab), "docker_host", "the default applies")
    assert command.endswith(f" && {sed_delete(None, 'docker_host', lab)}")
    assert note.endswith("deletes line 3 (docker_host) of the lab config, so the default applies")
    for text in ("docker_host: [\n", "- docker_host\n", "cluster_name: lab-a\n"):  # bad YAML, no mapping, not set
        lab.write_text(text)
        assert config.removal_steps(str(lab), "docker_host", "x") == (f"${{EDITOR:-vi}} {lab}",
                                                                      "remove every docker_host line, so x")
    assert config.edit_setting(str(lab), "cluster_name", "set it") == f"${{EDITOR:-vi}} +1 {lab}   # set it"


def test_every_verdict_fix_that_changes_a_setting_opens_the_run_s_lab_config_at_its_line(tmp_path):
    """`set node_image in lab.yaml to ...`, `set cdi_dirs: [...] in the lab config`, `set min_compute_capability in
    lab.yaml ...` were prose at the start of the fix (bash ran its `set` builtin). Each now opens the lab config the
    run read, at the setting's line (config.edit_setting), with what to write after '#'; pasted with a stand-in
    editor, that is all it runs."""
    folder = tmp_path / HOSTILE_FOLDER
    folder.mkdir()
    lab = folder / "lab.yaml"
    lab.write_text("cluster_name: lab-a\nnode_image: kindest/node:latest\ncdi_dirs: [/var/run/cdi]\n"
                   "min_compute_capability: '6.0'\n")
    rerun = Rerun(cwd=str(folder), lab_config=str(lab))
    gpu = Gpu(0, "GPU-1", "NVIDIA H100", (9, 0), "Default", 81559)
    fixes = {  # verdict => (its fix, the line of the setting it changes)
        "image_pinned": (kind_v.image_pinned("kindest/node:latest", cli=Clis(rerun=rerun)), 2),
        "image_kubernetes_for_dra": (kind_v.image_kubernetes_for_dra("kindest/node:v1.33.1", cli=Clis(rerun=rerun)),
                                     2),
        "spec_present": (cdi_v.spec_present(CdiFacts(("/var/run/cdi",), ()), rerun=rerun), 3),
        "compute_capability": (gpu_v.compute_capability(GpuFacts(SmiQuery("/usr/bin/nvidia-smi", None, (gpu,), "580"),
                                                                 NvmlFacts()), "x", rerun=rerun), 4),
    }
    editor = tmp_path / "editor"
    editor.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$EDITOR_ARGS"\n')
    editor.chmod(0o755)
    env = {**os.environ, "EDITOR": str(editor), "EDITOR_ARGS": str(tmp_path / "args")}
    for name, (verdict, line) in fixes.items():
        fix = verdict.remediation
        assert verdict.status in ("fail", "warn") and fix.startswith(f"${{EDITOR:-vi}} +{line} "), (name, fix)
        assert "# set " in fix and shell_fix.parses(fix) == "", (name, fix)
        res = subprocess.run(["bash", "-c", fix], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0 and (tmp_path / "args").read_text() == f"+{line}\n{lab}\n", (name, res.stderr)
    assert not list(tmp_path.rglob("PWNED"))


def test_two_removal_fixes_from_one_file_pasted_one_after_the_other_remove_just_their_settings(tmp_path):
    """The lab config check's fix (an unknown key on line 1) and the engine check's (docker_host on line 2) are
    built from the same file: pasted in report order, `sed -i 2d` then hit min_kind, which had moved up, and both
    copies had one name, so the second cp replaced the user's original with the first fix's result (review)."""
    lab = tmp_path / "lab.yaml"
    original = 'min_dockr: "24.0"\ndocker_host: ssh://other\nmin_kind: "0.24.0"\n'
    lab.write_text(original)
    (unknown,) = [p for p in config.load(lab)[1] if "min_dockr" in p.message]
    command, _ = config.removal_steps(str(lab), "docker_host", "the default applies")
    for fix in (unknown.fix, command):
        res = subprocess.run(["bash", "-c", fix], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
    assert lab.read_text() == 'min_kind: "0.24.0"\n'
    copies = sorted(tmp_path.glob("lab.yaml.labcheck-*.bak"))
    assert len(copies) == 2 and original in [c.read_text() for c in copies]
    lab.write_text(original)  # pasted twice: the second time the lines moved and nothing else goes
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, timeout=30)
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, timeout=30)
    assert lab.read_text() == 'min_dockr: "24.0"\nmin_kind: "0.24.0"\n'


def test_a_setting_that_names_an_anchor_is_edited_not_deleted(tmp_path):
    """`x-common: &t 120` used by `command_timeout: *t`: deleting line 1 made the whole file invalid YAML."""
    lab = tmp_path / "lab.yaml"
    lab.write_text("x-common: &t 120\ncommand_timeout: *t\n")
    (p,) = [p for p in config.load(lab)[1] if "x-common" in p.message]
    assert "sed -i" not in p.fix and p.fix.startswith(config.edit_command(str(lab), 1)), p.fix
