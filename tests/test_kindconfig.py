"""Kind config generation, rewrite/diff/backup, and reading a (malformed) config back with file+line."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labcheck import fsio
from labcheck import kindconfig as kc
from labcheck.config import LabConfig
from labcheck.probes.driver_files import BINARIES, LIBRARIES, HostFile, Inspection, inspect_host
from labcheck.remedy import this_host
from labcheck.verdicts import kindconfig as kv
from setup_actions import kind_config as kind_config_action
from setup_actions.privilege import sudo_invoker
from tests.captures import DATA, first
from tests.test_driver_files import make_lib

OLD_LAYOUT_YAML = DATA / "h100-docker/kind-config.gpu-host.yaml"  # made on the GPU host before issue 9
GPU_YAML = DATA / "kindconfig/gpu-host-uniform.yaml"  # the same host's inspection, uniform node layout


def gpu_host_inspection() -> Inspection:
    """The inspection the GPU host printed (tests/data/h100-docker/host-inspection.txt), as values."""
    libs, bins, devs = [], [], []
    for line in (DATA / "h100-docker/host-inspection.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0] in ("library", "binary", "device"):
            f = HostFile(parts[1], parts[0], parts[2], parts[4])
            {"library": libs, "binary": bins, "device": devs}[parts[0]].append(f)
    return Inspection(tuple(libs), tuple(bins), tuple(devs))


def gpu_cfg(**kw) -> LabConfig:
    base = dict(cluster_name="workshop-dra", node_image="labcheck-kind-double/node:v1.34.0",
                mps_pipe_dir="/tmp/m1-nvidia-mps", cdi_dirs=("/etc/cdi",))
    return LabConfig(**{**base, **kw})


def test_generation_from_the_gpu_host_inspection_gives_the_uniform_layout():
    assert kc.render(kc.build(gpu_host_inspection(), gpu_cfg(), machine="x86_64")) == GPU_YAML.read_text()


def test_gpu_host_config_mounts_links_and_targets_devices_cdi_pipe_and_shm():
    parsed = kc.load(GPU_YAML)
    assert parsed.problems == () and kc.layout_problems(parsed) == []
    by_node = {m.container_path: m for m in parsed.mounts}
    for lib in ("libcuda.so.1", "libcuda.so.580.159.04", "libnvidia-ml.so.1", "libnvidia-ml.so.580.159.04",
                "libnvidia-ptxjitcompiler.so.1", "libnvidia-ptxjitcompiler.so.580.159.04"):
        m = by_node[f"/usr/lib/x86_64-linux-gnu/{lib}"]
        assert m.read_only and m.host_path == f"/usr/local/nvidia/lib64/{lib}"
    for tool in ("nvidia-smi", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"):
        assert by_node[f"/usr/bin/{tool}"].host_path == f"/usr/local/nvidia/bin/{tool}"
    for dev in ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidia-caps"):
        assert dev in by_node
    assert by_node["/etc/cdi"].read_only
    assert not any(m.host_path.endswith("run/cdi") or m.container_path.endswith("run/cdi") for m in parsed.mounts)
    assert not by_node["/dev/shm"].read_only and not by_node["/tmp/m1-nvidia-mps"].read_only
    assert dict(parsed.labels) == {"nvidia.com/gpu.present": "true"}
    paths = kc.node_paths(parsed, "/tmp/m1-nvidia-mps")
    assert paths.lib_dirs == ("/usr/lib/x86_64-linux-gnu",) and paths.bin_dirs == ("/usr/bin",)
    assert paths.first("nvidia-cuda-mps-control") == "/usr/bin/nvidia-cuda-mps-control"
    assert paths.files["libcuda.so.1"] == ["/usr/lib/x86_64-linux-gnu/libcuda.so.1"]
    assert paths.pipe_dir_host == "/tmp/m1-nvidia-mps"


def test_containerd_patch_states_config_version_2_and_turns_cdi_on():
    """kind >= v0.31 applies a patch only when its config version matches the node's (version = 2 on
    kindest/node:v1.34.0, containerd 2.1); kind v0.30 merges it as it is."""
    import tomllib

    patch = tomllib.loads(yaml.safe_load(GPU_YAML.read_text())["containerdConfigPatches"][0])
    assert patch["version"] == 2
    assert patch["plugins"]["io.containerd.grpc.v1.cri"]["enable_cdi"] is True


def test_old_layout_config_from_the_gpu_host_is_not_valid_any_more():
    parsed = kc.load(OLD_LAYOUT_YAML)
    assert parsed.problems == ()  # kind would take it...
    found = [str(p) for p in kc.layout_problems(parsed)]
    assert any("libnvidia-ml.so.1 is mounted at /usr/local/nvidia/lib64/libnvidia-ml.so.1, outside" in p for p in found)
    assert any("nvidia-smi is mounted at /usr/local/nvidia/bin/nvidia-smi" in p for p in found)
    assert any("nvidia.com/gpu.present" in p for p in found)


# --- one generator, every host layout (fake roots: real links, real files) ---------------------------------

VERSION = "580.159.04"
GPU_DEVICES = tuple(HostFile(n, "device", f"/dev/{n}", f"/dev/{n}") for n in ("nvidiactl", "nvidia0"))


def _bins(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in BINARIES:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)


def _libs(folder: Path, real_folder: Path | None = None) -> None:
    """Each library as <name>.so.1 -> real file; the real file in ``real_folder`` (absolute link) if given."""
    if real_folder is None:
        for name in LIBRARIES:
            make_lib(folder, name, VERSION)
        return
    folder.mkdir(parents=True, exist_ok=True)
    real_folder.mkdir(parents=True, exist_ok=True)
    for name in LIBRARIES:
        real = real_folder / name.replace(".so.1", f".so.{VERSION}")
        real.write_bytes(b"\x7fELF fake")
        (folder / name).symlink_to(real)


def _cache(*entries: tuple[str, Path], arch: str = "libc6,x86-64") -> str:
    return "".join(f"\t{name} ({arch}) => {path}\n" for name, path in entries)


def layout(root: Path, kind: str) -> tuple[list[str], list[str], str]:
    """Build one host layout under ``root``: (extra lib dirs, extra bin dirs, ldconfig -p text)."""
    if kind == "debian":
        lib, bindir = root / "usr/lib/x86_64-linux-gnu", root / "usr/bin"
        _libs(lib)
        _bins(bindir)
        return [], [str(bindir)], _cache(*((n, lib / n) for n in LIBRARIES))
    if kind in ("cloud", "duplicate-cache"):
        lib, bindir = root / "usr/local/nvidia/lib64", root / "usr/local/nvidia/bin"
        _libs(lib)
        _bins(bindir)
        # the GPU host's real ldconfig -p, moved under root: each library listed twice (lib64 first, then /lib)
        text = first("h100-host/ldconfig-p.txt").output.replace("/usr/local/nvidia/", f"{root}/usr/local/nvidia/")
        text = text.replace("=> /lib/", f"=> {root}/lib/")
        if kind == "duplicate-cache":  # the second entry is another, real driver copy: it must not be mounted
            _libs(root / "lib")
            for name in LIBRARIES:
                (root / "lib" / name).unlink()
                (root / "lib" / name).symlink_to(name.replace(".so.1", ".so.470.1"))
                (root / "lib" / name.replace(".so.1", ".so.470.1")).write_bytes(b"\x7fELF old")
        return [str(lib)], [str(bindir)], text
    if kind == "rhel":
        lib, bindir = root / "usr/lib64", root / "usr/bin"
        _libs(lib)
        _bins(bindir)
        return [str(lib)], [str(bindir)], ""  # ldconfig cache empty: found by the folder search
    if kind == "runfile":  # nvidia-installer --opengl-prefix=/opt/nvidia: links in lib64, real files elsewhere
        lib = root / "opt/nvidia/lib64"
        _libs(lib, root / f"opt/nvidia/{VERSION}")
        _bins(root / "opt/nvidia/bin")
        return [str(lib)], [str(root / "opt/nvidia/bin")], ""
    if kind == "arm":
        lib, bindir = root / "usr/lib/aarch64-linux-gnu", root / "usr/bin"
        _libs(lib)
        _bins(bindir)
        return [], [str(bindir)], _cache(*((n, lib / n) for n in LIBRARIES), arch="libc6,AArch64")
    raise ValueError(kind)


def generate(tmp_path: Path, kind: str, machine: str = "x86_64", **cfg) -> tuple[kc.ParsedConfig, Inspection]:
    root = tmp_path / "root"
    libs, bins, cache = layout(root, kind)
    ins = inspect_host(libs, bins, ldconfig_text=cache, device_patterns=(), standard_dirs=False, machine=machine)
    ins = dataclasses.replace(ins, devices=GPU_DEVICES)
    text = kc.render(kc.build(ins, gpu_cfg(**cfg), machine=machine))
    return kc.parse(text, "kind-config.yaml"), ins


@pytest.mark.parametrize(("kind", "machine", "triplet"), [
    ("debian", "x86_64", "x86_64-linux-gnu"), ("cloud", "x86_64", "x86_64-linux-gnu"),
    ("rhel", "x86_64", "x86_64-linux-gnu"), ("runfile", "x86_64", "x86_64-linux-gnu"),
    ("duplicate-cache", "x86_64", "x86_64-linux-gnu"), ("arm", "aarch64", "aarch64-linux-gnu")])
def test_every_host_layout_gives_the_same_node_layout(tmp_path, kind, machine, triplet):
    parsed, ins = generate(tmp_path, kind, machine)
    assert parsed.problems == () and kc.layout_problems(parsed) == [], kc.layout_problems(parsed)
    by_node = {m.container_path: m for m in parsed.mounts}
    for name in LIBRARIES:
        link = by_node[f"/usr/lib/{triplet}/{name}"]
        real = by_node[f"/usr/lib/{triplet}/{name.replace('.so.1', f'.so.{VERSION}')}"]
        assert link.read_only and real.read_only
        assert os.path.islink(link.host_path) and os.path.realpath(link.host_path) == real.host_path
        assert os.path.isfile(real.host_path) and not os.path.islink(real.host_path)
    for name in BINARIES:
        assert os.path.isfile(by_node[f"/usr/bin/{name}"].host_path)
    assert len(parsed.mounts) == len(by_node)  # one mount per node path
    for m in parsed.mounts:  # never a mount whose source is missing (Docker would make it an empty folder)
        assert m.host_path.startswith("/dev/") or m.host_path in ("/etc/cdi", "/tmp/m1-nvidia-mps") \
            or os.path.isfile(m.host_path), m
    assert not any(".so.470" in m.host_path for m in parsed.mounts)  # the second cache entry never wins
    paths = kc.node_paths(parsed, "/tmp/m1-nvidia-mps")
    assert paths.lib_dirs == (f"/usr/lib/{triplet}",) and paths.first("nvidia-smi") == "/usr/bin/nvidia-smi"


def test_duplicate_cache_entry_falls_back_when_the_first_is_dangling(tmp_path):
    root = tmp_path / "root"
    _libs(root / "good")
    (root / "bad").mkdir()
    for name in LIBRARIES:
        (root / "bad" / name).symlink_to("gone.so")
    cache = _cache(*((n, root / "bad" / n) for n in LIBRARIES), *((n, root / "good" / n) for n in LIBRARIES))
    ins = inspect_host([], [], ldconfig_text=cache, device_patterns=(), standard_dirs=False, machine="x86_64")
    mounts = kc.mounts(ins, gpu_cfg(), machine="x86_64")
    hosts = [m["hostPath"] for m in mounts]
    assert all(h.startswith(str(root / "good")) for h in hosts if "lib" in os.path.basename(h))
    assert not any("/bad/" in h for h in hosts)


def test_missing_or_broken_library_is_never_mounted_and_the_config_says_so(tmp_path):
    root = tmp_path / "root"
    lib = root / "usr/lib64"
    make_lib(lib, "libcuda.so.1", VERSION)
    (lib / "libnvidia-ptxjitcompiler.so.1").symlink_to("libnvidia-ptxjitcompiler.so.999")  # dangling
    _bins(root / "usr/bin")  # libnvidia-ml.so.1: absent
    ins = inspect_host([str(lib)], [str(root / "usr/bin")], ldconfig_text="", device_patterns=(),
                       standard_dirs=False, machine="x86_64")
    ins = dataclasses.replace(ins, devices=GPU_DEVICES)
    doc = kc.build(ins, gpu_cfg(), machine="x86_64")
    dests = [m["containerPath"] for m in doc["nodes"][0]["extraMounts"]]
    assert not any("nvidia-ml" in d or "ptxjit" in d for d in dests)
    assert "/usr/lib/x86_64-linux-gnu/libcuda.so.1" in dests
    parsed = kc.parse(kc.render(doc), "k.yaml")
    messages = [p.message for p in kc.layout_problems(parsed)]
    assert "mounts no libnvidia-ml.so.1 into the node" in messages
    assert "mounts no libnvidia-ptxjitcompiler.so.1 into the node" in messages


def test_cdi_folders_etc_read_only_and_never_the_hosts_var_run_cdi(tmp_path):
    parsed, _ = generate(tmp_path, "debian", cdi_dirs=("/etc/cdi", "/var/run/cdi", "/run/cdi"))
    by_node = {m.container_path: m for m in parsed.mounts}
    assert by_node["/etc/cdi"].read_only and by_node["/etc/cdi"].host_path == "/etc/cdi"
    assert not any("run/cdi" in m.host_path or "run/cdi" in m.container_path for m in parsed.mounts)
    parsed, _ = generate(tmp_path / "1", "debian", cdi_dirs=("/var/run/cdi", "/etc/cdi"))  # listed first: still not
    assert {m.container_path: m.host_path for m in parsed.mounts}["/etc/cdi"] == "/etc/cdi"
    spec_dir = tmp_path / "my cdi"
    spec_dir.mkdir()
    parsed, _ = generate(tmp_path / "2", "debian", cdi_dirs=(str(spec_dir),))
    assert {m.container_path: m.host_path for m in parsed.mounts}["/etc/cdi"] == str(spec_dir)


def test_gpu_node_is_labelled_gpu_present(tmp_path):
    parsed, _ = generate(tmp_path, "cloud")
    assert parsed.doc["nodes"][0]["labels"] == {"nvidia.com/gpu.present": "true"}


def test_config_without_a_gpu_device_node_is_not_valid(tmp_path):
    root = tmp_path / "root"
    libs, bins, cache = layout(root, "debian")
    ins = inspect_host(libs, bins, ldconfig_text=cache, device_patterns=(), standard_dirs=False, machine="x86_64")
    parsed = kc.parse(kc.render(kc.build(ins, gpu_cfg(), machine="x86_64")), "k.yaml")
    found = [p.message for p in kc.layout_problems(parsed)]
    assert any(m.startswith("mounts no GPU device node") for m in found)
    assert any("/dev/nvidiactl" in m for m in found)
    fix = next(p.fix for p in kc.layout_problems(parsed) if p.message.startswith("mounts no GPU device node"))
    assert f"({this_host().sudo('modprobe nvidia')} && nvidia-smi)" in fix  # no sudo shown to root
    assert ("sudo" in fix) == (not this_host().root)


@pytest.mark.parametrize(("image", "gates", "runtime", "served"), [
    ("kindest/node:v1.32.2", {"DynamicResourceAllocation": True}, {"resource.k8s.io/v1beta1": "true"}, "v1beta1"),
    ("kindest/node:v1.33.1", {"DynamicResourceAllocation": True},
     {"resource.k8s.io/v1beta1": "true", "resource.k8s.io/v1beta2": "true"}, "v1beta2"),
    ("kindest/node:v1.34.0", {}, {}, "v1"),
    ("kindest/node:v1.35.0@sha256:" + "a" * 64, {}, {}, "v1"),
])
def test_dra_settings_follow_the_kubernetes_version(image, gates, runtime, served):
    doc = kc.build(gpu_host_inspection(), gpu_cfg(node_image=image))
    assert doc.get("featureGates", {}) == gates
    assert doc.get("runtimeConfig", {}) == runtime
    assert kc.served_api_version(kc.k8s_version(image)) == served
    assert doc["nodes"][0]["image"] == image


def test_too_old_kubernetes_is_refused():
    with pytest.raises(ValueError, match="too old"):
        kc.dra_settings((1, 31))


@pytest.mark.parametrize(("image", "ok"), [("kindest/node:v1.34.0", True), ("kindest/node", False),
                                            ("kindest/node:latest", False), ("kindest/node:stable", False),
                                            ("kindest/node@sha256:" + "b" * 64, True)])
def test_image_must_be_pinned(image, ok):
    assert (kc.image_problem(image) == "") is ok


def test_rewrite_unchanged_changes_nothing_changed_shows_diff_and_backs_up(tmp_path):
    lib = tmp_path / "drv lib"
    make_lib(lib)
    cfg = gpu_cfg(kind_config_path=str(tmp_path / "manifests/kind-config.yaml"))
    ins = Inspection((HostFile("libcuda.so.1", "library", str(lib / "libcuda.so.1"),
                               str(lib / "libcuda.so.580.159.04")),), (), ())
    text = kc.render(kc.build(ins, cfg))
    first = kind_config_action.write(cfg.kind_config_path, text)
    assert first.ok and first.action == "create" and first.changed
    mtime = os.stat(cfg.kind_config_path).st_mtime_ns
    again = kind_config_action.write(cfg.kind_config_path, text)
    assert again.action == "none" and not again.changed and again.details == "" and again.backup == ""
    assert os.stat(cfg.kind_config_path).st_mtime_ns == mtime
    assert oct(os.stat(cfg.kind_config_path).st_mode & 0o777) == oct(0o644)
    user_edit = text + "# my note\n"
    Path(cfg.kind_config_path).write_text(user_edit)
    plan = kind_config_action.plan_write(cfg.kind_config_path, text)
    assert plan.action == "update" and not plan.changed and "-# my note" in plan.details
    assert Path(cfg.kind_config_path).read_text() == user_edit  # plan writes nothing
    done = kind_config_action.write(cfg.kind_config_path, text)
    assert done.changed and Path(done.backup).read_text() == user_edit and done.backup in done.message
    assert Path(cfg.kind_config_path).read_text() == text
    assert [p.name for p in Path(cfg.kind_config_path).parent.iterdir() if p.name.startswith(".")] == []
    # a second edit rewritten within the same second keeps its own backup: the first (the user's edit) survives
    Path(cfg.kind_config_path).write_text(text + "# another note\n")
    second = kind_config_action.write(cfg.kind_config_path, text)
    assert second.backup != done.backup
    assert Path(done.backup).read_text() == user_edit and Path(second.backup).read_text().endswith("# another note\n")


BAD_CONFIGS = [
    ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n"
     "  - hostPath: /a\n    containerPath: [unclosed\n", 8, "not valid YAML"),
    ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n\t- role: x\n", 4, "not valid YAML"),
    ("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n", 1, "kind: expected 'Cluster'"),
    ("kind: Cluster\napiVersion: v1\nnodes:\n- role: control-plane\n", 2, "apiVersion"),
    ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n"
     "  - hostPath: /dev/shm\n    containerPath: /dev/shm\n  - hostPath: /x\n", 8, "needs hostPath and containerPath"),
    ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n"
     "  - hostPath: /x\n    containerPath: /x\n    readOnly: yes please\n", 8, "readOnly"),
    ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: {}\n", 3, "nodes: expected a list"),
    ("- just\n- a list\n", 1, "expected a kind Cluster mapping"),
]


@pytest.mark.parametrize(("text", "line", "what"), BAD_CONFIGS)
def test_malformed_kind_config_is_a_problem_with_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "kind-config.yaml"
    path.write_text(text)
    parsed = kc.load(path)
    assert parsed.problems, "expected a problem"
    p = parsed.problems[0]
    assert (p.path, p.line) == (str(path), line)
    assert what in p.message
    assert str(p).startswith(f"{path}:{line}: ")
    v = kv.config_valid(parsed)
    assert v.status == "fail" and f"{path}:{line}" in v.message and v.remediation


HEAD = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
CP = HEAD + "nodes:\n- role: control-plane\n"
WRONG_TYPES = [
    (CP + "  extraMounts: 5\n", 5, "extraMounts: expected a list, found a number"),
    (HEAD + "nodes: [x]\n", 3, "nodes[0]: expected a mapping"),
    (CP + "  labels: [1]\n", 5, "labels: expected a mapping, found a list"),
    (CP + "  labels:\n    nvidia.com/gpu.present: true\n", 6, 'quote it: "true"'),
    (CP + "  labels:\n    1: x\n", 6, "labels: expected 1: a string"),
    (CP + "  image: [a]\n", 5, "image: expected a string, found a list"),
    (HEAD + "nodes:\n- role: 5\n", 4, "role: expected a string"),
    (CP + "  extraMounts:\n  - hostPath: 5\n    containerPath: /x\n", 6, "hostPath: expected a string, found a number"),
    (CP + "  extraMounts:\n  - hostPath: /x\n    containerPath: {a: 1}\n", 7, "containerPath: expected a string"),
    (CP + "  extraMounts:\n  - 7\n", 6, "extraMount needs hostPath and containerPath"),
    (CP + "  extraMounts:\n  - hostPath: /x\n    containerPath: /x\n    propagation: [1]\n", 8, "propagation"),
    (HEAD + "containerdConfigPatches:\n- 1\nnodes:\n- role: control-plane\n", 4, "containerdConfigPatches[0]"),
    (HEAD + "containerdConfigPatches: x\nnodes:\n- role: control-plane\n", 3, "containerdConfigPatches: expected"),
    (HEAD + "featureGates:\n  DynamicResourceAllocation: yes please\n" + CP[len(HEAD):], 4, "featureGates"),
    (HEAD + "runtimeConfig: 3\n" + CP[len(HEAD):], 3, "runtimeConfig: expected a mapping"),
    (HEAD + "name: [x]\n" + CP[len(HEAD):], 3, "name: expected a string"),
]


@pytest.mark.parametrize(("text", "line", "what"), WRONG_TYPES)
def test_every_field_is_type_checked_with_file_and_line_never_a_crash(tmp_path, text, line, what):
    path = tmp_path / "kind-config.yaml"
    path.write_text(text)
    parsed = kc.load(path)
    assert any(p.line == line and what in p.message for p in parsed.problems), parsed.problems
    v = kv.config_valid(parsed)
    assert v.status == "fail" and v.remediation and f"{path}:" in v.message
    kc.node_paths(parsed, "/tmp/nvidia-mps")  # the node checks' view of it does not crash either
    kc.missing_host_paths(parsed)


def test_user_file_the_suite_did_not_write_is_backed_up_and_said_so(tmp_path):
    path = tmp_path / "kind-config.yaml"
    mine = HEAD + "# my own cluster\nnodes:\n- role: control-plane\n"
    path.write_text(mine)
    text = kc.render(kc.build(gpu_host_inspection(), gpu_cfg()))
    plan = kind_config_action.plan_write(path, text)
    assert plan.action == "replace" and path.read_text() == mine
    v = kv.config_generated(plan, [], True, str(path))
    assert v.status == "fail" and "not written by this suite" in v.message
    done = kind_config_action.write(path, text)
    assert done.action == "replace" and Path(done.backup).read_text() == mine and path.read_text() == text
    v = kv.config_generated(done, [], False, str(path))
    assert v.status == "warn" and done.backup in v.message and "not written by this suite" in v.message
    assert done.backup in v.remediation
    # the generated file, edited by the user, is still ours: backed up and replaced without the warning
    path.write_text(text + "# edit\n")
    again = kind_config_action.write(path, text)
    assert again.changed and again.action == "update"
    assert kv.config_generated(again, [], False, str(path)).status == "pass"


def test_unreadable_kind_config_is_a_problem(tmp_path):
    parsed = kc.load(tmp_path / "absent.yaml")
    assert parsed.problems and "cannot read" in parsed.problems[0].message


def test_missing_host_paths_split_driver_files_from_folders(tmp_path):
    text = ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n"
            f"  - hostPath: {tmp_path}/libcuda.so.580.1\n    containerPath: /l\n"
            f"  - hostPath: {tmp_path}/cdi\n    containerPath: /etc/cdi\n"
            f"  - hostPath: {tmp_path}\n    containerPath: /ok\n")
    files, dirs = kc.missing_host_paths(kc.parse(text, "k.yaml"))
    assert [(p.line, "libcuda" in p.message) for p in files] == [(6, True)]
    assert [p.line for p in dirs] == [8] and "mkdir" in dirs[0].fix


def test_a_missing_folder_docker_creates_passes_with_a_note_and_no_sudo_under_tmp(tmp_path):
    """A fresh ready host has no MPS pipe folder before the first `kind create` (Docker makes it): that is a pass
    with a note, never a warning (NOT VERIFIED); a missing driver file still fails. The note's fix for a folder
    under /tmp never says sudo: a root-owned pipe folder stops a non-root user's MPS daemon."""
    pipe = tmp_path / "nvidia-mps"
    text = ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n"
            f"  - hostPath: {pipe}\n    containerPath: /tmp/nvidia-mps\n")
    verdict = kv.host_paths_exist(kc.parse(text, "k.yaml"))
    assert verdict.status == "pass" and f"k.yaml:6: hostPath {pipe} does not exist" in verdict.message, verdict
    assert f"mkdir -p -- {pipe}" in verdict.message and "sudo" not in verdict.message
    assert kc.create_folder_command("/opt/x y").endswith("mkdir -p -- '/opt/x y'")
    gone = text + f"  - hostPath: {tmp_path}/libcuda.so.580.1\n    containerPath: /l\n"
    assert kv.host_paths_exist(kc.parse(gone, "k.yaml")).status == "fail"


def test_provisioning_creates_the_pipe_folder_as_the_invoking_user(tmp_path):
    """setup_actions.kind_config.apply makes the MPS pipe folder itself, so Docker never creates it root-owned (under
    sudo it goes to the user who ran sudo: tests/test_kind_config_pipe_folder.py)."""
    pipe = tmp_path / "nvidia-mps"
    cfg = gpu_cfg(mps_pipe_dir=str(pipe), kind_config_path=str(tmp_path / "kind-config.yaml"))
    assert kind_config_action.apply(cfg, gpu_host_inspection()).ok
    invoker = sudo_invoker() if os.geteuid() == 0 else None
    assert pipe.is_dir() and pipe.stat().st_uid == (invoker[0] if invoker else os.geteuid())
    assert kind_config_action.apply(cfg, gpu_host_inspection()).changed is False  # idempotent


def test_fifo_at_the_kind_config_path_is_refused_never_read_or_replaced(tmp_path):
    fifo = tmp_path / "kind-config.yaml"
    os.mkfifo(fifo)
    parsed = kc.load(fifo)  # would block forever in open() without fsio's checks
    assert parsed.problems and "FIFO" in parsed.problems[0].message
    with pytest.raises(fsio.FileProblem):
        kind_config_action.write(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_alias_bomb_in_a_kind_config_is_a_problem_not_a_hang(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nkind: Cluster\n")
    parsed = kc.load(path)
    assert parsed.problems and parsed.doc is None and kv.config_valid(parsed).status == "fail"


UNKNOWN_KEYS_YAML = """kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
shmSize: 8g
networking:
  podSubnet: 10.0.0.0/16
  bogus: 1
nodes:
- role: control-plane
  shm-size: 8g
  extraPortMappings:
  - containerPort: 80
    hostport: 8080
  extraMounts:
  - hostPath: /dev/shm
    containerPath: /dev/shm
    readonly: true
"""


def test_keys_kind_does_not_know_are_failing_problems_with_their_lines(tmp_path):
    """kind decodes v1alpha4 strictly: `shmSize: 8g` (the seed's shm-size="8g" invites it) fails `kind create`."""
    path = tmp_path / "kind-config.yaml"
    path.write_text(UNKNOWN_KEYS_YAML)
    parsed = kc.load(path)
    found = {(p.line, p.message.split(":")[0]) for p in parsed.problems}
    assert found == {(3, "shmSize"), (6, "networking.bogus"), (9, "nodes[0].shm-size"),
                     (12, "nodes[0].extraPortMappings[0].hostport"), (16, "nodes[0].extraMounts[0].readonly")}
    assert all("unknown key" in p.message for p in parsed.problems)
    assert any("did you mean readOnly?" in p.message for p in parsed.problems)
    verdict = kv.config_valid(parsed)
    assert verdict.status == "fail" and f"{path}:3" in verdict.message + (verdict.details or "")
    # every key the generator writes is one kind knows
    assert kc.load(GPU_YAML).problems == ()


def test_the_kind_double_rejects_unknown_keys_like_kind(tmp_path):
    path = tmp_path / "kind-config.yaml"
    path.write_text(UNKNOWN_KEYS_YAML)
    double = Path(__file__).parent / "doubles" / "kind"
    proc = subprocess.run([sys.executable, str(double), "create", "cluster", "--name", "labcheck-unknown-key",
                           "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and 'json: unknown field "shmSize"' in proc.stderr, proc.stderr


def test_a_missing_pipe_folder_outside_tmp_is_made_for_the_user_and_other_folders_for_root():
    """`sudo mkdir -p /run/mps` made a root-owned folder where the user's MPS daemon cannot create its pipes: the
    pipe folder's fix (its containerPath is lab.yaml's mps_pipe_dir) is `sudo install -d -o "$(id -un)"`, as the
    module 0 pipe-dir fix; a CDI folder stays root's."""
    text = ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n"
            "  - hostPath: /srv/no such/gone/pipe\n    containerPath: /run/lab mps/\n"
            "  - hostPath: /srv/no such/gone/cdi\n    containerPath: /etc/cdi\n")
    parsed = kc.parse(text, "k.yaml")
    _, dirs = kc.missing_host_paths(parsed, "/run/lab mps")
    assert [d.fix for d in dirs] == [this_host().user_folder("/srv/no such/gone/pipe"),
                                     this_host().sudo("mkdir -p -- '/srv/no such/gone/cdi'")]
    assert dirs[0].fix.endswith('install -d -o "$(id -un)" -- \'/srv/no such/gone/pipe\'; fi')
    assert kc.missing_host_paths(parsed)[1][0].fix == this_host().sudo("mkdir -p -- '/srv/no such/gone/pipe'")
    verdict = kv.host_paths_exist(parsed, "/run/lab mps")
    assert verdict.status == "pass" and dirs[0].fix in verdict.message
