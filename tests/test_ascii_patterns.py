"""Numbers that regular expressions find in outside text are ASCII digits only: ``[0-9]``, never ``\\d``.

WHY: in a str pattern ``\\d`` matches any Unicode decimal digit, so "١٢" (Arabic-Indic) or "１２" (full-width)
matched and ``int`` read them as 12 (a wrong reading: a pid, a GPU device node, a version), and a 5000-digit match
made ``int`` raise (a traceback of a probe or check). Each test feeds one place its real input (tests/data captures,
the real CDI spec and kind config, real processes) with hostile words added, and fails with the ``\\d`` / ``int``
reading back. The last test scans the product's regex literals, so ``\\d`` cannot come back unseen.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from labcheck import cdi, cmd, config, fsio, mps
from labcheck import kindconfig as kc
from labcheck.cmd import CmdResult
from labcheck.probes import docker as probe_docker
from labcheck.probes import sysctl
from labcheck.probes.gpu import parse_proc_version, parse_query_csv, query_smi
from labcheck.probes.tools import ToolFacts, version_field
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import kindconfig as kc_v
from labcheck.verdicts.tools import tool_version
from reports.results import module_of
from setup_actions.mps_daemon import MpsDaemon
from tests.captures import first
from tests.standins import executable
from tests.test_cdi import SPEC, gpu_facts, lab, materialize, probe  # noqa: F401 - lab: the spec folders fixture
from tests.test_kindconfig import GPU_YAML

ROOT = Path(__file__).resolve().parent.parent
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
WIDE = str.maketrans("0123456789", "０１２３４５６７８９")
LONG = "9" * 5000  # int() raises past 4300 digits (sys.get_int_max_str_digits)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


# --- tool output -------------------------------------------------------------------------------------

def test_ps_lines_with_pids_in_hostile_digits_are_no_processes():
    """The real ps of the H100 host plus a control daemon whose pid is "١٢" / "１２" / 5000 digits: ps prints
    ASCII pids, so those lines are no process (pid 12 was a second daemon; 5000 digits a ValueError)."""
    real = first("h100-host/mps-ps-daemon-only.txt").output
    procs = mps.parse_ps(real)
    assert [p.pid for p in mps.control_daemons(procs)] == [425]
    daemon = next(ln for ln in real.splitlines() if ln.endswith("nvidia-cuda-mps-control -d"))
    for pid in ("12".translate(ARABIC), "12".translate(WIDE), LONG, "²"):
        hostile = real + "\n" + daemon.replace("425", pid, 1) + "\n" + daemon.replace("    1 ", f" {pid} ", 1)
        assert mps.parse_ps(hostile) == procs, pid


def test_client_step_with_an_rc_in_hostile_digits_is_no_step():
    """The real CUDA client's output with steps whose rc is "١٢" (read as CUresult 12), 5000 digits (a
    ValueError) or empty: no step; an ASCII rc (a negative one too) still is one."""
    real = first("h100-host/cuprobe-client.txt").output
    steps = mps.parse_client_steps(real)
    assert [(s.call, s.rc) for s in steps] == [("cuInit", 0), ("cuDeviceGetCount", 0), ("cuCtxCreate_v2", 0),
                                               ("cuCtxDestroy_v2", 0)]
    extra = "".join(f"cuCtxCreate_v2 {w}\n" for w in ("12".translate(ARABIC), "12".translate(WIDE), LONG, "", "1٢"))
    assert mps.parse_client_steps(real + "\n" + extra) == steps
    assert mps.parse_client_steps("cuInit -1\ncuCtxCreate_v2 805 x\n") == [mps.ClientStep("cuInit", -1),
                                                                           mps.ClientStep("cuCtxCreate_v2", 805, "x")]


def test_nvidia_smi_compute_capability_and_memory_in_hostile_digits_are_unknown():
    """The real H100 --query-gpu row with compute_cap / memory.total replaced: the GPU is still read, its
    capability or memory unknown; "١٢.٠" was 12.0 (passing any minimum) and 5000 digits lost every GPU to a
    ValueError out of the probe."""
    query = first("h100-host/nvidia-smi-query-csv-noheader.txt").output
    (gpu,), driver = parse_query_csv(query)
    assert (gpu.compute_cap, gpu.memory_mib, driver) == ((9, 0), 81559, "580.159.04")
    for cc in ("12.0".translate(ARABIC), "12.0".translate(WIDE), f"{LONG}.0", f"9.{LONG}", "9.0٥"):
        (bad,), _ = parse_query_csv(query.replace(", 9.0,", f", {cc},"))
        assert bad.compute_cap is None and bad.memory_mib == 81559, cc
    for mem in ("81559".translate(ARABIC), "81559".translate(WIDE), LONG, "81559٥"):
        (bad,), _ = parse_query_csv(query.replace(", 81559", f", {mem}"))
        assert bad.memory_mib is None and bad.compute_cap == (9, 0), mem


@pytest.mark.parametrize("driver", ["580.159.04".translate(ARABIC), "580.159.04".translate(WIDE), "580.159.0٤",
                                    f"580.{LONG}"])
def test_nvidia_smi_driver_in_hostile_digits_is_no_driver_version(driver, tmp_path):
    """A real nvidia-smi stand-in printing the H100 row with its driver version in other digits: the query
    fails saying what it found (it was a driver version no comparison could read)."""
    row = first("h100-host/nvidia-smi-query-csv-noheader.txt").output.replace("580.159.04", driver)
    smi = executable(tmp_path / "nvidia-smi", f"#!/bin/sh\nprintf '%s\\n' '{row}'\n")
    q = query_smi(str(smi), 10)
    assert not q.gpus and "without a driver version" in q.error and "expected e.g. 580.159.04" in q.error


def test_proc_kernel_module_version_in_hostile_digits_is_no_version():
    """/proc/driver/nvidia/version as the H100 host prints it, its version rewritten: no kernel module version
    ("580.159.0٤" was read as 580.159.0, a mismatch with the library that is not there)."""
    real = first("h100-host/proc-driver-version.txt").output
    assert parse_proc_version(real) == "580.159.04"
    for v in ("580.159.04".translate(ARABIC), "580.159.04".translate(WIDE), "580.159.0٤", "٥80.159.04",
              f"580.159.{LONG}"):
        assert parse_proc_version(real.replace("580.159.04", v)) == "", v


@pytest.mark.parametrize(("name", "printed"), [
    ("kind", "kind v0.24.0 go1.22.6 linux/amd64"),
    ("helm", "v3.16.2"),
    ("nvidia-ctk", "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d"),
])
def test_tool_version_in_hostile_digits_cannot_be_read(name, printed):
    """Each tool's real answer (tests/test_tools.py) with its version in other digits: "cannot read a version",
    not "kind ٠.٢٤.٠ is older than 0.24.0" (a version field no comparison can read)."""
    assert version_field(name, printed) in ("0.24.0", "3.16.2", "1.17.8")
    version = version_field(name, printed)
    for hostile in (version.translate(ARABIC), version.translate(WIDE), version + LONG):
        text = printed.replace(version, hostile)
        assert version_field(name, text) == "", hostile
        facts = ToolFacts(name, f"/usr/bin/{name}", CmdResult((name, "version"), 0, text))
        verdict = tool_version(facts, "0.1")
        assert verdict.status == "fail" and "cannot read a version" in verdict.message


def test_cdi_list_count_in_hostile_digits_is_no_count():
    """nvidia-ctk cdi list's "Found N CDI devices": "١٢" was 12 devices, 5000 digits a ValueError out of the
    CDI probe; now no count (the names it lists still decide)."""
    names = "nvidia.com/gpu=0\nnvidia.com/gpu=all\n"
    assert cdi.parse_cdi_list(f"INFO[0000] Found 2 CDI devices\n{names}").count == 2
    for n in ("12".translate(ARABIC), "12".translate(WIDE), LONG):
        listed = cdi.parse_cdi_list(f"INFO[0000] Found {n} CDI devices\n{names}")
        assert listed.count is None and listed.names == ("nvidia.com/gpu=0", "nvidia.com/gpu=all"), n[:5]


# --- files: CDI spec, kind config, lab config, pid and state files ---------------------------------------

def test_cdi_spec_library_in_hostile_digits_names_no_driver_version(lab):  # noqa: F811
    """The real spec plus a library, a firmware folder and a compat hook argument whose version is in Arabic-Indic
    digits: the spec still names driver 580.159.04 only and is current ("٥٨٠.١٥٩.٠٤" was a driver version:
    "stale, generated for driver ٥٨٠.١٥٩.٠٤")."""
    root, etc, run = lab
    arabic = "580.159.04".translate(ARABIC)
    extra = (f"  - containerPath: /usr/local/nvidia/lib64/libnvidia-x.so.{arabic}\n"
             f"    hostPath: HOSTROOT/usr/local/nvidia/lib64/libnvidia-x.so.{arabic}\n    options: [ro]\n"
             f"  - containerPath: /lib/firmware/nvidia/{arabic}/gsp.bin\n"
             f"    hostPath: HOSTROOT/lib/firmware/nvidia/{arabic}/gsp.bin\n    options: [ro]\n")
    assert "  mounts:\n" in SPEC and "    - --host-driver-version=580.159.04\n" in SPEC
    text = SPEC.replace("  mounts:\n", "  mounts:\n" + extra, 1).replace(
        "    - --host-driver-version=580.159.04\n",
        f"    - --host-driver-version=580.159.04\n    - --host-driver-version={arabic}\n", 1)
    assert cdi.parse_spec(text.replace("HOSTROOT", ""), "x.yaml").driver_versions == ("580.159.04",)
    (etc / "nvidia.yaml").write_text(materialize(text, root))
    verdict = cdi_v.not_stale(probe(etc, run), gpu_facts())
    assert verdict.status == "pass" and "and driver 580.159.04" in verdict.message, verdict


@pytest.mark.parametrize("node", ["nvidia١", "nvidia１", "nvidia²", "nvidia٠", "nvidia"])
def test_kind_config_mounting_nvidia_in_hostile_digits_mounts_no_gpu_device_node(node, tmp_path):
    """The real uniform kind config of the GPU host with its /dev/nvidia0 mount renamed: no GPU device node
    (/dev/nvidia١ counted as one, so the node would have been passed without a GPU)."""
    real = GPU_YAML.read_text()
    assert not [p for p in kc.layout_problems(kc.parse(real, "k.yaml")) if "GPU device node" in p.message]
    parsed = kc.parse(real.replace("containerPath: /dev/nvidia0\n", f"containerPath: /dev/{node}\n"), "k.yaml")
    found = [p.message for p in kc.layout_problems(parsed)]
    assert any(m.startswith("mounts no GPU device node") for m in found), found


@pytest.mark.parametrize("tag", ["v1.34.0".translate(ARABIC), "v1.34.0".translate(WIDE), "v1.٣٤.0", f"v1.{LONG}.0",
                                 f"v1.34.{LONG}"])
def test_node_image_tag_in_hostile_digits_has_no_kubernetes_version(tag):
    """The seed's node image with its tag in other digits: no Kubernetes version (v1.٣٤.0 was 1.34.0, which
    passed the DRA advisory; 5000 digits raised out of the config generation and the checks)."""
    real = config.LabConfig().node_image
    assert kc.k8s_release(real) == (1, 34, 0) and kc.k8s_release("kindest/node:v1.34") == (1, 34, 0)
    image = real.replace("v1.34.0", tag)
    assert kc.k8s_release(image) is None and kc.k8s_version(image) is None
    assert "has no vMAJOR.MINOR tag" in kc.image_problem(image.split("@")[0])
    assert kc_v.image_kubernetes_for_dra(image).status == "skip"


@pytest.mark.parametrize("value", ["0.24.0".translate(ARABIC), "0.24.0".translate(WIDE), "0.٢٤.0", f"0.{LONG}", ""])
def test_lab_config_version_in_hostile_digits_is_a_problem_and_the_default_is_used(value):
    """min_kind in lab.yaml: "0.٢٤.0" was accepted and compared as version 0 (any kind passed); a 5000-digit part
    was accepted and read as no version. Now a problem with its line, and the documented default."""
    cfg, problems = config.parse(f'min_kind: "{value}"\n', "lab.yaml")
    assert cfg.min_kind == "0.24.0"
    assert [p.line for p in problems] == [1] and "expected a version such as '0.24.0'" in problems[0].message


def test_pid_file_in_hostile_digits_is_no_pid(tmp_path):
    """A pid file (the MPS daemon's, dockerd's): "١٢" was read as pid 12 by int()."""
    f = tmp_path / "x.pid"
    for text, want in (("425\n", 425), ("12".translate(ARABIC), None), ("12".translate(WIDE), None), ("²", None),
                       (LONG[:60], None), ("", None), ("+12", None)):
        f.write_text(text)
        assert fsio.read_pid(f) == want, text


@pytest.mark.parametrize("pid", ["²", "12".translate(ARABIC), "dead-arabic", LONG, True, "425", 2**40, -5])
def test_mps_state_pid_that_is_no_pid_is_never_a_crash_nor_another_process(pid, tmp_path):
    """The suite's MPS state file with a pid that apply never writes: started_pid is None and stop() leaves the
    daemon running with a failed outcome that says why (int("²") raised out of the check and the teardown;
    "١٢" was pid 12 and true pid 1, init, which is alive, so the quit went out)."""
    if pid == "dead-arabic":
        pid = str(_dead_pid()).translate(ARABIC)
    action = MpsDaemon(None, str(tmp_path / "pipe"), str(tmp_path / "log"), 5, state_root=tmp_path / "s")
    action.state_file.parent.mkdir(parents=True)
    record = json.dumps({"phase": "started", "pid": pid, "users": []})
    action.state_file.write_text(record)
    assert action.started_pid is None
    out = action.stop()
    assert not out.ok and not out.changed and "expected a process id" in out.message and "left running" in out.message
    assert "echo quit | CUDA_MPS_PIPE_DIRECTORY=" in out.remediation and str(action.state_file) in out.remediation
    assert action.state_file.read_text() == record  # the only trace of what the suite started is kept
    dead = _dead_pid()
    action.state_file.write_text(json.dumps({"phase": "started", "pid": dead, "boot_id": cmd.boot_id(), "users": []}))
    assert action.started_pid == dead and action.stop().message.endswith(f"(pid {dead}) is already gone")


def test_module_keyword_in_hostile_digits_is_no_module():
    """A report's keywords name its module mark (module0, module1): "module١" is none."""
    assert module_of(SimpleNamespace(keywords={"test_x": 1, "module1": 1})) == "module1"
    assert module_of(SimpleNamespace(keywords={"test_x": 1, "module١": 1, "module１": 1})) is None


# --- the class cannot come back ------------------------------------------------------------------------

PRODUCT = ("labcheck", "fixtures", "setup_actions", "reports", "tests_env", "conftest.py")
RE_CALLS = {"compile", "match", "fullmatch", "search", "finditer", "findall", "sub", "subn", "split"}


def _pattern_literals(tree: ast.AST):
    """(line, text) of each string literal that is the pattern of a ``re.<call>(...)`` (f-string parts too)."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RE_CALLS
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args):
            for part in ast.walk(node.args[0]):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    yield node.lineno, part.value


def _product_files() -> list[Path]:
    out = []
    for name in PRODUCT:
        p = ROOT / name
        out += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return out


def test_no_product_regex_uses_unicode_digits():
    r"""Every regex literal of the product spells digits ``[0-9]``: ``\d`` would match "١٢" again."""
    files = _product_files()
    assert len(files) > 50 and ROOT / "labcheck/mps.py" in files
    found = [f"{p.relative_to(ROOT)}:{line}: {text!r}" for p in files
             for line, text in _pattern_literals(ast.parse(p.read_text(), str(p))) if "\\d" in text]
    assert not found, "use [0-9] (ASCII digits), not \\d (any Unicode digit):\n" + "\n".join(found)
    # the scan sees the patterns it guards (a change that hid them from it would pass silently)
    seen = [text for line, text in _pattern_literals(ast.parse((ROOT / "labcheck/mps.py").read_text()))]
    assert any("[0-9]" in t for t in seen)


@pytest.mark.parametrize("word", ["١٢", "１２", "²", "9" * 5000, "", "12 34"])
def test_probe_container_smi_exit_status_in_hostile_digits_is_no_status(word):
    """The runtime probe container's nvidia-smi exit status ($?, 0-255 in ASCII): any other word is no status
    (int() read '١٢' as 12 and failed on 5000 digits' worth of output)."""
    good = probe_docker.parse_probe_output("LABCHECK_DEV /dev/nvidia0\nLABCHECK_SMI_RC 0\nLABCHECK_DONE\n")
    assert good.smi_rc == 0 and good.devices == ("/dev/nvidia0",)
    bad = probe_docker.parse_probe_output(f"LABCHECK_DEV /dev/nvidia0\nLABCHECK_SMI_RC {word}\nLABCHECK_DONE\n")
    assert bad.smi_rc is None


def test_a_sysctl_value_that_is_no_integer_is_shown_bounded_and_escaped(tmp_path):
    """What the file holds enters the message through fsio.shown: cut with its length (it used to be cut at 60
    with no mark), a control character escaped."""
    (tmp_path / "fs" / "inotify").mkdir(parents=True)
    setting = tmp_path / "fs" / "inotify" / "max_user_instances"
    setting.write_text("7" * 100 + "x\n")
    assert sysctl.read("fs.inotify.max_user_instances", str(tmp_path)) == (
        None, f"{setting} holds '{'7' * 44}... (101 characters), not an integer")
    setting.write_text("1\x1b[2J2\n")
    assert sysctl.read("fs.inotify.max_user_instances", str(tmp_path)) == (
        None, f"{setting} holds '1\\x1b[2J2', not an integer")


@pytest.mark.parametrize("text", ["1_000", "+5", "١٢", "１２", "9" * 5000, "", "12 34", "0x10"])
def test_sysctl_value_that_the_kernel_would_not_print_is_no_integer(tmp_path, text):
    """/proc/sys values as the kernel writes them (ASCII digits, maybe a minus): int() took '1_000' and '+5'
    and read the Arabic-Indic '١٢' as 12 (bytes outside ASCII are replaced on decode, so that one fails too)."""
    (tmp_path / "fs" / "inotify").mkdir(parents=True)
    setting = tmp_path / "fs" / "inotify" / "max_user_instances"
    setting.write_text("128\n")
    assert sysctl.read("fs.inotify.max_user_instances", str(tmp_path)) == (128, "")
    setting.write_text("-1\n")
    assert sysctl.read("fs.inotify.max_user_instances", str(tmp_path)) == (-1, "")
    setting.write_text(f"{text}\n", encoding="utf-8")
    value, why = sysctl.read("fs.inotify.max_user_instances", str(tmp_path))
    # a value longer than any the kernel prints is refused unread (labcheck.fsio's bound), the rest unparsed
    assert value is None and ("more than the 4096 bytes" if len(text) > 4096 else "not an integer") in why, why
