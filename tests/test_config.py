"""Lab config: defaults, overrides, and bad files turned into problems with a line number."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labcheck import config
from labcheck.verdicts import host


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
    cfg, problems = config.parse("min_kind: 0.24.0\ncommand_timeout: 5\nmin_kind: 0.1.0\n", "lab.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (3, "min_kind is set twice (line 1 and line 3): YAML keeps only the last")]
    assert problems[0].fix == "keep one min_kind line in lab.yaml" and cfg.min_kind == "0.1.0"


def test_numbers_yaml_reads_as_strings_are_numbers():
    """YAML 1.1 reads 1e2 or 8.5e9 (no dot or no '+' in the exponent) as strings; they are numbers here."""
    cfg, problems = config.parse("command_timeout: 1e2\nshm_min_bytes: 8.5e9\ncluster_create_timeout: '900'\n")
    assert problems == []
    assert (cfg.command_timeout, cfg.shm_min_bytes, cfg.cluster_create_timeout) == (100.0, 8_500_000_000, 900.0)
    _, problems = config.parse("shm_min_bytes: 8.5e0\n")
    assert "expected a whole number, found '8.5e0'" in problems[0].message


def test_a_cdi_spec_path_outside_cdi_dirs_is_a_problem():
    """The spec --fix-host writes must land in a folder the CDI probe searches, as a file CDI reads (m0-4)."""
    _, problems = config.parse("cdi_dirs: [/opt/cdi]\ncdi_spec_path: /etc/cdi/nvidia.yaml\n", "lab.yaml")
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(2, "cdi_spec_path")]
    assert "'/etc/cdi', which cdi_dirs ('/opt/cdi') does not list" in problems[0].message
    assert problems[0].fix == ("set cdi_spec_path: '/opt/cdi/nvidia.yaml', or set cdi_dirs: ['/etc/cdi', '/opt/cdi'] "
                               "(the first is the one mounted)")
    _, problems = config.parse("cdi_dirs: [/etc/cdi/]\ncdi_spec_path: /etc/cdi/nvidia.yml\n")
    assert problems == []  # a trailing '/' is the same folder
    _, problems = config.parse("cdi_spec_path: /etc/cdi/nvidia\n")
    assert "does not end in .yaml, .yml, .json" in problems[0].message
    assert problems[0].fix == "set cdi_spec_path: /etc/cdi/nvidia.yaml"


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
    """The MPS fixes give these folders to the user (install -d -o) and the stale-pipe fix removes the daemon's
    entries (control, log, ...) in the pipe folder: `mps_pipe_dir: /tmp` once printed `rm -rf /tmp`. The state_dir
    guard (one guard, labcheck.config.OWN_FOLDERS) refuses them for both MPS folders, saying why and what to set."""
    value = os.path.expanduser("~") if value == "HOME" else value
    cfg, problems = config.parse(f"{name}: {json.dumps(value)}\n", "lab.yaml")
    assert len(problems) == 1 and problems[0].line == 1, problems
    p = problems[0]
    assert p.message.startswith(f"{name}: {value!r} (") and "is a system or shared folder" in p.message, p.message
    assert "install -d -o" in p.message and "expected a folder of its own" in p.message
    assert p.fix == f"set {name}: {getattr(config.LabConfig(), name)}"
    assert getattr(cfg, name) == getattr(config.LabConfig(), name)  # the default stands in


def test_an_mps_folder_linked_to_a_system_folder_is_refused_and_a_folder_of_its_own_is_kept(tmp_path):
    (tmp_path / "mps").symlink_to("/tmp")
    _, problems = config.parse(f"mps_pipe_dir: {tmp_path / 'mps'}\n", "lab.yaml")
    assert "(/tmp) is a system or shared folder" in problems[0].message
    cfg, problems = config.parse("mps_pipe_dir: /tmp/lab mps\nmps_log_dir: /var/log/lab-mps\n", "lab.yaml")
    assert problems == [] and (cfg.mps_pipe_dir, cfg.mps_log_dir) == ("/tmp/lab mps", "/var/log/lab-mps")
