"""The host CDI folder the node sees: one answer (labcheck.cdi.mounted_dir) for the kind config's mounts, the lab
config's cross-check and module 0's "CDI spec found".

WHY: the kind config mounts the FIRST of cdi_dirs that is not the node's own /var/run/cdi at the node's /etc/cdi;
the lab config only asked cdi_spec_path to be somewhere in cdi_dirs, and "CDI spec found" took cdi_spec_path's
folder for the mounted one. With cdi_dirs [/opt/cdi, /etc/cdi] the config raised nothing and the node got /opt/cdi;
with cdi_spec_path /var/run/cdi/nvidia.yaml the CDI check passed, saying the node would see a spec it never does.
"""

from __future__ import annotations

import shlex

import pytest

from labcheck import cdi, config, kindconfig
from labcheck.config import LabConfig
from labcheck.probes.cdi import CdiFacts, SpecFile
from labcheck.probes.driver_files import Inspection
from labcheck.remedy import Shell
from labcheck.verdicts import cdi as cdi_v
from tests.captures import DATA

SPEC = (DATA / "cdi" / "h100-nvidia.yaml").read_text().replace("HOSTROOT", "")  # the GPU host's own paths


def node_etc_cdi(dirs: tuple[str, ...]) -> str:
    """The host folder the generated kind config mounts at the node's /etc/cdi ('' none)."""
    cfg = LabConfig(cdi_dirs=dirs)
    return next((m["hostPath"] for m in kindconfig.mounts(Inspection((), (), ()), cfg)
                 if m["containerPath"] == "/etc/cdi"), "")


@pytest.mark.parametrize("dirs, mounted", [
    (("/etc/cdi", "/var/run/cdi"), "/etc/cdi"),
    (("/opt/cdi", "/etc/cdi"), "/opt/cdi"),
    (("/var/run/cdi", "/opt/cdi"), "/opt/cdi"),
    (("/run/cdi/", "/var/run/../run/cdi", "/srv/cdi"), "/srv/cdi"),
    (("/var/run/cdi",), ""),
])
def test_the_config_generator_and_the_cdi_checks_agree_on_the_mounted_folder(dirs, mounted):
    assert cdi.mounted_dir(dirs) == mounted == node_etc_cdi(dirs)


def problems(text: str) -> list[config.ConfigProblem]:
    return [p for p in config.parse(text, "lab.yaml")[1] if "cdi" in p.message]


def test_a_spec_path_in_a_listed_folder_the_node_never_gets_is_a_config_problem():
    """Reproduction 1: cdi_dirs [/opt/cdi, /etc/cdi] with the default /etc/cdi/nvidia.yaml."""
    found = problems("cdi_dirs: [/opt/cdi, /etc/cdi]\n")
    assert len(found) == 1, found
    assert "the kind config mounts only '/opt/cdi'" in found[0].message and "never reaches the node" in found[0].message
    assert found[0].line == 1
    assert found[0].fix == config.edit_fix("lab.yaml", 1, "set cdi_spec_path: '/opt/cdi/nvidia.yaml', or set "
                                           "cdi_dirs: ['/etc/cdi', '/opt/cdi'] (the first is the one mounted)")
    assert problems("cdi_dirs: [/etc/cdi, /opt/cdi]\n") == []  # the folder given first is the mounted one


def test_a_spec_path_in_the_nodes_own_var_run_cdi_is_a_config_problem():
    """Reproduction 2: cdi_spec_path /var/run/cdi/nvidia.yaml (the folder toolkit 1.18's refresh writes)."""
    found = problems("cdi_spec_path: /var/run/cdi/nvidia.yaml\n")
    assert len(found) == 1 and found[0].line == 1, found
    assert "'/var/run/cdi/nvidia.yaml'" in found[0].message and "mounts only '/etc/cdi'" in found[0].message
    # /var/run/cdi can never be the mounted one
    assert found[0].fix == config.edit_fix("lab.yaml", 1, "set cdi_spec_path: '/etc/cdi/nvidia.yaml'")
    only_own = problems("cdi_dirs: [/var/run/cdi]\ncdi_spec_path: /var/run/cdi/nvidia.yaml\n")
    assert len(only_own) == 1 and "lists only the node's own CDI folders" in only_own[0].message
    assert only_own[0].fix == config.edit_fix("lab.yaml", 1, "set cdi_dirs: ['/etc/cdi', '/var/run/cdi']")


def test_hostile_folder_names_stay_one_line_in_the_message_and_fix():
    found = problems('cdi_dirs: ["/opt/a\\nrm -rf ~", /etc/cdi]\n')
    assert len(found) == 1 and "\n" not in found[0].message + found[0].fix, found


def facts(dirs: tuple[str, ...], spec_path: str, at: str) -> CdiFacts:
    """A usable NVIDIA spec (the GPU host's) read at ``at``, the lab config's dirs and spec path."""
    parsed = cdi.parse_spec(SPEC, at)
    assert not isinstance(parsed, cdi.Problem)
    return CdiFacts(dirs, (SpecFile(at, parsed, None),), spec_path=spec_path, shell=Shell(root=True))


def test_spec_present_looks_in_the_mounted_folder_not_in_the_spec_paths_folder():
    ok = cdi_v.spec_present(facts(("/etc/cdi", "/var/run/cdi"), "/etc/cdi/nvidia.yaml", "/etc/cdi/nvidia.yaml"))
    assert ok.status == "pass" and "in /etc/cdi, the folder the kind config mounts" in ok.message
    # reproduction 2: the spec (and cdi_spec_path) in /var/run/cdi passed, "mounted into the node"
    run = cdi_v.spec_present(facts(("/etc/cdi", "/var/run/cdi"), "/var/run/cdi/nvidia.yaml",
                                   "/var/run/cdi/nvidia.yaml"))
    assert run.status == "fail" and "found one only in /var/run/cdi/nvidia.yaml, which the node never sees" in \
        run.message
    cmd, _, note = run.remediation.partition("   # ")
    assert shlex.split(cmd)[-1] == "--output=/etc/cdi/nvidia.yaml" and "set cdi_spec_path: /etc/cdi/nvidia.yaml" in note
    # reproduction 1: the node gets /opt/cdi, so a spec only in /etc/cdi is not seen there
    opt = cdi_v.spec_present(facts(("/opt/cdi", "/etc/cdi"), "/etc/cdi/nvidia.yaml", "/etc/cdi/nvidia.yaml"))
    assert opt.status == "fail" and "in /opt/cdi" in opt.message and "--output=/opt/cdi/nvidia.yaml" in opt.remediation
    none = cdi_v.spec_present(facts(("/var/run/cdi",), "/var/run/cdi/nvidia.yaml", "/var/run/cdi/nvidia.yaml"))
    assert none.status == "fail" and "lists only the node's own CDI folders" in none.message


def test_the_generate_fix_for_a_hostile_mounted_folder_keeps_the_note_on_one_line():
    hostile = "/opt/a\nrm -rf ~"
    got = cdi_v.spec_present(facts((hostile, "/etc/cdi"), "/etc/cdi/nvidia.yaml", "/etc/cdi/nvidia.yaml"))
    cmd, _, note = got.remediation.partition("   # ")
    assert got.status == "fail" and note and "\n" not in note  # a newline would end the comment and run the rest
    assert shlex.split(cmd)[-1] == f"--output={hostile}/nvidia.yaml"  # one quoted word
