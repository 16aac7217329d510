"""CDI spec parsing, verdicts and the generate action, on real files in real folders.

The spec is tests/data/cdi/h100-nvidia.yaml (hand-made in nvidia-ctk's layout with the H100 host's
values; see its header). ``materialize`` writes it into temporary /etc/cdi-like folders and, for a
"fresh" spec, creates every file it mounts under a temporary host root.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from labcheck import cdi, cmd
from labcheck.probes.cdi import probe_cdi
from labcheck.probes.gpu import Gpu, GpuFacts, NvmlFacts, SmiQuery
from labcheck.probes.tools import ToolFacts
from labcheck.remedy import Shell, this_host
from labcheck.verdicts import cdi as v
from labcheck.verdicts import docker as docker_v
from setup_actions.cdi_spec import CdiSpec
from tests.captures import DATA
from tests.shell_text import commands, parses

SUDO = "" if this_host().root else "sudo "  # fixes shown to root carry no sudo (labcheck.remedy)

SPEC = (DATA / "cdi" / "h100-nvidia.yaml").read_text()
H100 = Gpu(0, "GPU-683e20a0-8269-a95e-460e-0a9073519f0d", "NVIDIA H100 80GB HBM3", (9, 0), "Default", 81559)


def gpu_facts(*gpus: Gpu, driver: str = "580.159.04") -> GpuFacts:
    return GpuFacts(SmiQuery("nvidia-smi", None, gpus or (H100,), driver), NvmlFacts())


def materialize(text: str, root: Path, create: bool = True) -> str:
    """The spec with every host path under ``root``; with ``create``, those files exist."""
    text = text.replace("HOSTROOT", str(root)).replace("path: /dev/", f"path: {root}/dev/") \
        .replace("path: /usr/bin/nvidia-cdi-hook", f"path: {root}/usr/bin/nvidia-cdi-hook")
    if create:
        spec = cdi.parse_spec(text, "x.yaml")
        for p in spec.host_paths:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
            Path(p).touch()
    return text


@pytest.fixture
def lab(tmp_path):
    etc, run = tmp_path / "etc" / "cdi", tmp_path / "run" / "cdi"
    etc.mkdir(parents=True)
    run.mkdir(parents=True)
    return tmp_path, etc, run


def probe(etc, run, ctk=None):
    """The lab's folders with the configured spec path in ``etc`` (the folder the kind config mounts)."""
    return probe_cdi((str(etc), str(run)), ctk, timeout=10, spec_path=str(etc / "nvidia.yaml"))


# --- parsing -------------------------------------------------------------------------------------

def test_spec_parses_into_devices_paths_and_driver_versions():
    spec = cdi.parse_spec(SPEC.replace("HOSTROOT", ""), "nvidia.yaml")  # the host's own (absolute) paths
    assert spec.kind == cdi.NVIDIA_KIND and not spec.problems
    assert spec.device_names == ("0", H100.uuid, "all")
    assert spec.gpu_indices == ("0",) and spec.gpu_uuids == (H100.uuid,)
    # egl-wayland's own 1.1.13 is not a driver version; the firmware folder and the compat hook are
    assert spec.driver_versions == ("580.159.04",)
    assert "/dev/nvidia0" in spec.host_paths and "/usr/bin/nvidia-cdi-hook" in spec.host_paths


def test_cdi_list_output_is_counted_not_trusted():
    out = ("INFO[0000] Found 9 CDI devices                          \nnvidia.com/gpu=0\nnvidia.com/gpu=1\n"
           "nvidia.com/gpu=GPU-0-FAKE-UUID\nnvidia.com/gpu=all\n")
    listed = cdi.parse_cdi_list(out)
    assert listed.count == 9 and "nvidia.com/gpu=GPU-0-FAKE-UUID" in listed.names
    assert cdi.parse_cdi_list("INFO[0000] Found 0 CDI devices\n").count == 0


# --- verdicts over real folders ----------------------------------------------------------------------

def test_fresh_spec_passes_every_check(lab):
    root, etc, run = lab
    (etc / "nvidia.yaml").write_text(materialize(SPEC, root))
    facts = probe(etc, run)
    for verdict in (v.spec_present(facts), v.spec_valid(facts), v.device_count(facts, gpu_facts()),
                    v.not_stale(facts, gpu_facts()), v.no_conflicts(facts)):
        assert verdict.status == "pass", verdict


def test_no_spec_fails_with_generate_command(lab):
    _, etc, run = lab
    (etc / "other-vendor.yaml").write_text("cdiVersion: 0.6.0\nkind: vendor.com/fpga\ndevices:\n- name: a\n"
                                           "  containerEdits: {}\n")
    facts = probe(etc, run)
    verdict = v.spec_present(facts)
    assert verdict.status == "fail" and "other-vendor.yaml" in verdict.message
    assert verdict.remediation == f"{SUDO}nvidia-ctk cdi generate --output={etc / 'nvidia.yaml'}"  # no sudo: root
    assert v.spec_valid(facts).status == "skip" and v.not_stale(facts, gpu_facts()).status == "skip"


def test_missing_folders_are_not_a_crash(tmp_path):
    facts = probe_cdi((str(tmp_path / "nope"), str(tmp_path / "nada")))
    assert v.spec_present(facts).status == "fail" and v.spec_valid(facts).status == "skip"


def _valid_problem(etc, run, name: str, text: str):
    (etc / name).write_text(text)
    verdict = v.spec_valid(probe(etc, run))
    assert verdict.status == "fail"
    assert str(etc / name) in verdict.message and "nvidia-ctk cdi generate" in verdict.remediation
    return verdict


def test_bad_yaml_names_file_and_line(lab):
    _, etc, run = lab
    broken = SPEC.replace("  env:\n  - NVIDIA_VISIBLE_DEVICES=void", "  env:\n  - NVIDIA_VISIBLE_DEVICES=void\n"
                                                                    "   bad: [unclosed")
    verdict = _valid_problem(etc, run, "nvidia.yaml", broken)
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if "bad: [unclosed" in t)
    assert "not valid YAML" in verdict.message
    assert re.search(rf"nvidia.yaml:({line}|{line + 1}|{line - 1}):", verdict.message), verdict.message
    # the copy goes to a name no file has (labcheck.fsio.backup_name): a second fix keeps the first one's copy
    assert re.match(rf"{SUDO}cp -p {etc}/nvidia.yaml {etc}/nvidia\.yaml\.labcheck-[0-9]{{14}}(-[0-9]+)?\.bak && ",
                    verdict.remediation), verdict.remediation


def test_wrong_kind_names_the_kind_line(lab):
    root, etc, run = lab
    text = materialize(SPEC.replace("kind: nvidia.com/gpu", "kind: nvidia.com/gpus"), root, create=False)
    verdict = _valid_problem(etc, run, "nvidia.yaml", text)
    line = text.splitlines().index("kind: nvidia.com/gpus") + 1
    assert f"nvidia.yaml:{line}: wrong kind 'nvidia.com/gpus'" in verdict.message


def test_malformed_kind_is_reported(lab):
    _, etc, run = lab
    verdict = _valid_problem(etc, run, "nvidia.yaml", SPEC.replace("kind: nvidia.com/gpu", "kind: gpu"))
    assert "not of the form vendor.com/class" in verdict.message


def test_no_devices(lab):
    _, etc, run = lab
    text = SPEC.split("devices:\n- containerEdits")[0] + "devices: []\nkind: nvidia.com/gpu\n"
    verdict = _valid_problem(etc, run, "nvidia.yaml", text)
    assert "no devices" in verdict.message


def test_duplicate_device_names_with_both_lines(lab):
    _, etc, run = lab
    text = SPEC.replace("  name: all", '  name: "0"')
    verdict = _valid_problem(etc, run, "nvidia.yaml", text)
    lines = [i for i, t in enumerate(text.splitlines(), 1) if t == '  name: "0"']
    assert f"nvidia.yaml:{lines[1]}: duplicate device name '0' (first at line {lines[0]})" in verdict.message


def test_bad_json_spec_names_the_line(lab):
    _, etc, run = lab
    text = '{\n  "cdiVersion": "0.5.0",\n  "kind": "nvidia.com/gpu",\n  "devices": [\n    {"name": "0",}\n  ]\n}\n'
    verdict = _valid_problem(etc, run, "nvidia.json", text)
    assert "nvidia.json:5: not valid JSON" in verdict.message


def test_empty_and_non_mapping_files(lab):
    _, etc, run = lab
    assert "empty file" in _valid_problem(etc, run, "nvidia.yaml", "").message
    (etc / "nvidia.yaml").unlink()
    assert "expected a mapping" in _valid_problem(etc, run, "nvidia.yaml", "- just\n- a list\n").message


def test_stale_spec_names_the_missing_library(lab):
    root, etc, run = lab
    text = materialize(SPEC, root)
    os.unlink(root / "usr/local/nvidia/lib64/libcuda.so.580.159.04")
    (etc / "nvidia.yaml").write_text(text)
    verdict = v.not_stale(probe(etc, run), gpu_facts())
    assert verdict.status == "fail" and "libcuda.so.580.159.04" in verdict.message
    assert "stale" in verdict.message and "nvidia-ctk cdi generate" in verdict.remediation


def test_spec_for_another_driver_is_stale(lab):
    root, etc, run = lab
    (etc / "nvidia.yaml").write_text(materialize(SPEC.replace("580.159.04", "570.86.15"), root))
    verdict = v.not_stale(probe(etc, run), gpu_facts())
    assert verdict.status == "fail" and "generated for driver 570.86.15" in verdict.message
    assert "580.159.04" in verdict.message


def test_spec_for_other_gpus_fails_device_count(lab):
    root, etc, run = lab
    (etc / "nvidia.yaml").write_text(materialize(SPEC, root))
    second = Gpu(1, "GPU-11111111-2222-3333-4444-555555555555", "NVIDIA H100 80GB HBM3", (9, 0), "Default")
    verdict = v.device_count(probe(etc, run), gpu_facts(H100, second))
    assert verdict.status == "fail" and "describes 1 GPU" in verdict.message and "this host has 2" in verdict.message
    assert v.device_count(probe(etc, run), GpuFacts(SmiQuery(None, None), NvmlFacts())).status == "skip"


def _fake_ctk(folder: Path, body: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "nvidia-ctk"
    f.write_text("#!/bin/sh\n" + body)
    f.chmod(0o755)
    return str(f)


def test_cdi_list_with_zero_devices_fails_despite_exit_0(lab):
    """Test double of `nvidia-ctk cdi list` on a host whose runtime sees no spec: exit 0, zero devices."""
    root, etc, run = lab
    (etc / "nvidia.yaml").write_text(materialize(SPEC, root))
    ctk = _fake_ctk(root / "bin", 'echo "INFO[0000] Found 0 CDI devices" >&2\nexit 0\n')
    verdict = v.device_count(probe(etc, run, ctk), gpu_facts())
    assert verdict.status == "fail" and "finds 0 CDI devices" in verdict.message and "exit code is 0" in verdict.message


def test_cdi_list_agreeing_passes(lab):
    root, etc, run = lab
    (etc / "nvidia.yaml").write_text(materialize(SPEC, root))
    ctk = _fake_ctk(root / "bin", f'echo "INFO[0000] Found 3 CDI devices" >&2\necho nvidia.com/gpu=0\n'
                                  f'echo nvidia.com/gpu={H100.uuid}\necho nvidia.com/gpu=all\n')
    verdict = v.device_count(probe(etc, run, ctk), gpu_facts())
    assert verdict.status == "pass" and "finds 3 devices" in verdict.message


def test_two_specs_for_the_same_devices_conflict(lab):
    """The fix keeps the configured folder's spec (the one the kind node mounts) and moves /var/run/cdi's aside."""
    root, etc, run = lab
    text = materialize(SPEC, root)
    (etc / "nvidia.yaml").write_text(text)
    (run / "nvidia.yaml").write_text(text)
    verdict = v.no_conflicts(probe(etc, run))
    assert verdict.status == "fail"
    assert str(etc / "nvidia.yaml") in verdict.message and str(run / "nvidia.yaml") in verdict.message
    command = verdict.remediation.split("   #")[0]
    *sudo, mv, no_clobber, end, moved, aside = shlex.split(command)
    assert [*sudo, mv, no_clobber, end, moved] == [*(["sudo"] if SUDO else []), "mv", "-n", "--",
                                                   str(run / "nvidia.yaml")]
    assert re.fullmatch(rf"{run}/nvidia\.yaml\.labcheck-[0-9]{{14}}(-[0-9]+)?\.bak", aside), aside
    assert f"{SUDO}systemctl disable --now nvidia-cdi-refresh.path nvidia-cdi-refresh.service" in verdict.remediation


def test_spec_only_in_var_run_cdi_is_not_present(lab):
    """Toolkit >= 1.18 writes /var/run/cdi/nvidia.yaml by itself; the kind config never mounts the host's
    /var/run/cdi, so that spec is invisible in the node: module 0 must fail and generate into the mounted folder."""
    root, etc, run = lab
    (run / "nvidia.yaml").write_text(materialize(SPEC, root))
    verdict = v.spec_present(probe(etc, run))
    assert verdict.status == "fail", verdict
    assert str(run / "nvidia.yaml") in verdict.message and str(etc) in verdict.message
    assert verdict.remediation == cdi.generate_command(str(etc / "nvidia.yaml"), this_host())
    (etc / "nvidia.yaml").write_text(materialize(SPEC, root))
    verdict = v.spec_present(probe(etc, run))
    assert verdict.status == "pass" and str(etc / "nvidia.yaml") in verdict.message


# --- the generate action (only with --fix-host) ------------------------------------------------------

def _generator(root: Path, text: str) -> str:
    """Test double of `nvidia-ctk cdi generate --format=yaml --output=F`: writes the H100 spec to F."""
    src = root / "generated.yaml"
    src.write_text(text)
    return _fake_ctk(root / "bin", 'for a in "$@"; do case "$a" in --output=*) out="${a#--output=}";; esac; done\n'
                                   f'[ "$1 $2" = "cdi generate" ] || exit 2\ncp "{src}" "$out"\n')


def test_generate_backs_up_replaces_atomically_and_is_idempotent(lab):
    root, etc, run = lab
    fresh = materialize(SPEC, root)
    old = materialize(SPEC.replace("580.159.04", "570.86.15"), root)
    target = etc / "nvidia.yaml"
    target.write_text(old)
    action = CdiSpec(_generator(root, fresh), str(target), timeout=10, euid=0)
    plan = action.plan(probe(etc, run), gpu_facts())
    assert plan and "copy" in plan[0] and "generated for driver 570.86.15" in plan[-1]
    outcome = action.apply(probe(etc, run), gpu_facts())
    assert outcome.ok and outcome.changed, outcome
    backups = list(etc.glob("nvidia.yaml.labcheck-*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == old
    assert target.read_text() == fresh and not list(etc.glob(".nvidia.yaml.labcheck-tmp"))
    assert action.plan(probe(etc, run), gpu_facts()) == []
    again = action.apply(probe(etc, run), gpu_facts())
    assert again.ok and not again.changed and len(list(etc.glob("*.bak"))) == 1


def test_generate_without_root_says_what_needs_root_and_never_prompts(lab):
    """Test double of sudo refusing -n (no cached credentials): the real message and exit 1."""
    root, etc, run = lab
    sudo = root / "sudo"
    sudo.write_text('#!/bin/sh\n[ "$1" = "-n" ] && { echo "sudo: a password is required" >&2; exit 1; }\n'
                    "read pw\n")  # would hang on a prompt if -n were not passed
    sudo.chmod(0o755)
    ctk = _generator(root, "x")
    action = CdiSpec(ctk, str(etc / "nvidia.yaml"), timeout=10, euid=1000, sudo_path=str(sudo),
                     shell=Shell(root=False))
    outcome = action.apply(probe(etc, run), gpu_facts())
    assert not outcome.ok and "needs root" in outcome.message
    # the nvidia-ctk found, by its path (not on sudo's PATH), as the user who runs it
    assert outcome.remediation == f"sudo {ctk} cdi generate --output={etc / 'nvidia.yaml'}"
    assert not (etc / "nvidia.yaml").exists()


def test_generate_needs_nvidia_ctk_and_a_gpu(lab):
    _, etc, run = lab
    no_ctk = CdiSpec(None, str(etc / "nvidia.yaml"), euid=0).apply(probe(etc, run), gpu_facts())
    assert not no_ctk.ok and "nvidia-ctk is not installed" in no_ctk.message
    no_gpu = GpuFacts(SmiQuery(None, None), NvmlFacts())
    outcome = CdiSpec(cmd.which("true"), str(etc / "nvidia.yaml"), euid=0).apply(probe(etc, run), no_gpu)
    assert not outcome.ok and "no GPU" in outcome.message


def test_failed_generate_leaves_the_old_spec(lab):
    root, etc, run = lab
    target = etc / "nvidia.yaml"
    target.write_text("kind: broken: [")
    ctk = _fake_ctk(root / "bin", 'echo "ERRO[0000] failed to initialize NVML: ERROR_LIBRARY_NOT_FOUND" >&2; exit 1\n')
    outcome = CdiSpec(ctk, str(target), timeout=10, euid=0).apply(probe(etc, run), gpu_facts())
    assert not outcome.ok and "ERROR_LIBRARY_NOT_FOUND" in outcome.message
    assert target.read_text() == "kind: broken: [" and not list(etc.glob(".nvidia.yaml.labcheck-tmp"))




def test_fix_host_outcome_is_reported_in_the_presence_check(lab):
    from setup_actions.outcome import Outcome

    _, etc, run = lab
    missing = v.spec_present(probe(etc, run))
    could_not = v.with_generation(missing, Outcome(False, "failed", "nvidia-ctk is not installed", "install it"))
    assert could_not.status == "fail" and "--fix-host could not generate it: nvidia-ctk is not installed" \
        in could_not.message and could_not.remediation == "install it"
    assert v.with_generation(missing, None) == missing


def test_spec_that_injects_nothing_is_not_current(lab):
    """No device node, library or hook in a spec: "every mounted file exists" would be true of nothing. (Each device
    keeps an env entry: a device with no edits at all is refused by CDI, see test_device_without_edits_...)"""
    import yaml

    root, etc, run = lab
    doc = yaml.safe_load(materialize(SPEC, root))
    doc.pop("containerEdits", None)
    for d in doc["devices"]:
        d["containerEdits"] = {"env": [f"NVIDIA_VISIBLE_DEVICES={d['name']}"]}
    (etc / "nvidia.yaml").write_text(yaml.safe_dump(doc))
    facts = probe(etc, run)
    assert facts.nvidia_specs and not facts.nvidia_specs[0].spec.host_paths
    verdict = v.not_stale(facts, gpu_facts())
    assert verdict.status == "fail" and "names no device node" in verdict.message
    assert "nvidia-ctk cdi generate" in verdict.remediation


def test_spec_naming_no_driver_version_passes_without_claiming_the_driver_matched(lab):
    import yaml

    root, etc, run = lab
    doc = yaml.safe_load(materialize(SPEC, root))
    doc["containerEdits"] = {"deviceNodes": doc["containerEdits"]["deviceNodes"]}  # no libraries, no hooks
    (etc / "nvidia.yaml").write_text(yaml.safe_dump(doc))
    facts = probe(etc, run)
    assert facts.nvidia_specs[0].spec.host_paths and not facts.nvidia_specs[0].spec.driver_versions
    verdict = v.not_stale(facts, gpu_facts())
    assert verdict.status == "pass" and "names no driver version" in verdict.message
    assert "and driver 580.159.04" not in verdict.message
    full = v.not_stale(probe_and_write(etc, run, materialize(SPEC, root)), gpu_facts())
    assert full.status == "pass" and "and driver 580.159.04" in full.message


def probe_and_write(etc, run, text):
    (etc / "nvidia.yaml").write_text(text)
    return probe(etc, run)


# --- the generate fix: the nvidia-ctk found, this host's user, one backup name per copy (audit: fixes-2) ---------

HOSTILE_DIRS = ("nv bin $x", "q'uote;`id`", 'dq"$(id) y')


@pytest.mark.parametrize("folder", HOSTILE_DIRS)
def test_the_generate_fix_runs_the_nvidia_ctk_found_as_the_runtime_fix_does(lab, folder):
    """The toolkit only in extra_bin_dirs (a hostile but valid folder): the CDI fix said a bare `nvidia-ctk`
    (command not found), while the runtime fix of the same run gave its path. Both name it one way now."""
    root, etc, run = lab
    ctk = _fake_ctk(root / folder, 'echo "NVIDIA Container Toolkit CLI version 1.17.8"\n')
    spec = str(root / folder / "my spec.yaml")
    # the spec's folder first in cdi_dirs: the folder the kind config mounts (the lab config refuses any other)
    facts = probe_cdi((str(root / folder), str(etc), str(run)), ctk, timeout=10, spec_path=spec)
    fix = v.spec_present(facts).remediation
    sudo = [] if this_host().root else ["sudo"]
    assert parses(fix) and commands(fix) == [[*sudo, ctk, "cdi", "generate", f"--output={spec}"]], fix
    runtime = docker_v.configure_runtime(this_host(), ToolFacts("nvidia-ctk", ctk, None))
    assert commands(runtime)[0][:len(sudo) + 2] == [*sudo, ctk, "runtime"]  # the same word for the same binary
    on_path = probe_cdi((str(etc),), "/usr/bin/nvidia-ctk", timeout=10, spec_path=spec).generate_command
    assert commands(on_path)[0][len(sudo)] == "nvidia-ctk"  # on sudo's secure_path: NVIDIA's line, by name


def test_the_setup_steps_fixes_are_commands_for_this_hosts_user(lab):
    """--fix-host as root on a host without sudo printed `sudo nvidia-ctk ...`, and the not-installed fix was prose
    ("install the NVIDIA Container Toolkit (see the nvidia-ctk check), then sudo ...")."""
    root, etc, run = lab
    spec = etc / "nvidia.yaml"
    no_ctk = CdiSpec(None, str(spec), euid=0, shell=Shell(root=True)).apply(probe(etc, run), gpu_facts())
    fix = no_ctk.remediation
    assert not no_ctk.ok and parses(fix) and "sudo" not in fix and "then" not in fix, fix
    assert commands(fix)[-2:] == [["apt-get", "install", "-y", "nvidia-container-toolkit"],
                                  ["nvidia-ctk", "cdi", "generate", f"--output={spec}"]], fix
    generate = ["sudo", "nvidia-ctk", "cdi", "generate", f"--output={spec}"]
    fedora = CdiSpec(None, str(spec), euid=0, shell=Shell(root=False, distro="fedora")).apply(probe(etc, run),
                                                                                             gpu_facts())
    assert parses(fedora.remediation) and commands(fedora.remediation)[-2:] == [
        ["sudo", "dnf", "install", "-y", "nvidia-container-toolkit"], generate], fedora.remediation
    for guide in (Shell(False, "debian", (), ()), Shell(False, "arch")):  # no package manager NVIDIA has a recipe for
        fix = CdiSpec(None, str(spec), euid=0, shell=guide).apply(probe(etc, run), gpu_facts()).remediation
        assert parses(fix) and commands(fix) == [generate], fix
        assert f"# first install the NVIDIA Container Toolkit for {guide.distro} as its guide says: https://" in fix
    ctk = _fake_ctk(root / "nv bin", "exit 0\n")
    no_gpu = CdiSpec(ctk, str(spec), euid=0, shell=Shell(root=True)).apply(
        probe(etc, run), GpuFacts(SmiQuery(None, None), NvmlFacts()))
    assert parses(no_gpu.remediation) and commands(no_gpu.remediation) == [
        ["nvidia-smi", "-L"], [ctk, "cdi", "generate", f"--output={spec}"]], no_gpu.remediation
    assert CdiSpec(ctk, str(spec)).shell == this_host()  # by default: the Shell every other fix uses


def test_the_cdi_and_runtime_fixes_install_the_toolkit_alike():
    """Both fixes of a missing nvidia-ctk install it the one way (labcheck.verdicts.tools.toolkit_recipe, by package
    manager) before their own step, or say to follow the guide (a note) where there is no recipe: the CDI one
    chose by distribution, so Debian with no apt-get found became `# install ... && sudo nvidia-ctk cdi generate`
    (the whole line a comment), and Fedora got only the note."""
    missing = ToolFacts("nvidia-ctk", None, None)
    for shell in (Shell(), Shell(root=True), Shell(False, "debian", (), ()), Shell(False, "fedora"),
                  Shell(False, "opensuse-leap", ("suse",)), Shell(False, "arch"), Shell(False, "alpine", (), ("apk",))):
        cdi_fix = CdiSpec(None, "/etc/cdi/nvidia.yaml", shell=shell)._after_install()
        runtime = docker_v.configure_runtime(shell, missing)
        assert parses(cdi_fix) and commands(cdi_fix)[-1][-3:] == ["cdi", "generate", "--output=/etc/cdi/nvidia.yaml"]
        install = commands(runtime)[:-2]  # before nvidia-ctk runtime configure && the reload
        assert commands(cdi_fix)[:-1] == install, (shell, cdi_fix, runtime)
        guide = f"first install the NVIDIA Container Toolkit for {shell.distro} as its guide says"
        assert (guide in cdi_fix) == (guide in runtime) == (not install), (cdi_fix, runtime)


def test_a_second_fix_never_overwrites_the_first_fixs_backup(lab):
    """The backup name is the project's one (labcheck.fsio.backup_name), chosen when probed: after the first
    fix made its copy, the next run's fix names another file (a fixed .bak overwrote the user's original)."""
    root, etc, run = lab
    (etc / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: []\n")
    first = v.spec_valid(probe(etc, run)).remediation
    copy = commands(first)[0]
    assert parses(first) and copy[-4:-1] == ["cp", "-p", str(etc / "nvidia.yaml")], first
    backup = copy[-1]
    assert backup.startswith(f"{etc}/nvidia.yaml.labcheck-") and backup.endswith(".bak")
    Path(backup).write_text("the user's original")  # what running the first fix leaves
    second = commands(v.spec_valid(probe(etc, run)).remediation)[0][-1]
    assert second != backup and not os.path.lexists(second)
    (etc / "nvidia.yaml").write_text(materialize(SPEC, root))
    (run / "nvidia.yaml").write_text(materialize(SPEC, root))
    aside = commands(v.no_conflicts(probe(etc, run)).remediation)[0][-1]
    assert aside.startswith(f"{run}/nvidia.yaml.labcheck-") and aside.endswith(".bak")
