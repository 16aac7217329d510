"""Lab config: defaults, overrides, and bad files turned into problems with a line number."""

from labcheck import config


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
    import dataclasses
    from pathlib import Path

    import yaml

    example = Path(__file__).resolve().parent.parent / "lab.example.yaml"
    cfg, problems = config.load(example)
    assert problems == [] and cfg == config.LabConfig()
    assert set(yaml.safe_load(example.read_text())) == {f.name for f in dataclasses.fields(config.LabConfig)}


def test_lab_config_check_skips_when_no_file_was_read_and_passes_only_a_read_one(tmp_path):
    """No lab config at all is not "valid": nothing was read, so the check skips (the defaults apply)."""
    from labcheck.verdicts import host

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
    from labcheck.verdicts import host

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
