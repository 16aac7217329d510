"""Kind config generation, rewrite/diff/backup, and reading a (malformed) config back with file+line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from labcheck import kindconfig as kc
from labcheck.config import LabConfig
from labcheck.probes.driver_files import HostFile, Inspection
from tests.captures import DATA
from tests.test_driver_files import make_lib

GPU_YAML = DATA / "h100-docker/kind-config.gpu-host.yaml"


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


def test_generation_reproduces_the_config_made_on_the_gpu_host():
    assert kc.render(kc.build(gpu_host_inspection(), gpu_cfg())) == GPU_YAML.read_text()


def test_gpu_host_config_mounts_links_and_targets_devices_cdi_pipe_and_shm():
    parsed = kc.load(GPU_YAML)
    assert parsed.problems == ()
    by_node = {m.container_path: m for m in parsed.mounts}
    for lib in ("libcuda.so.1", "libcuda.so.580.159.04", "libnvidia-ml.so.1", "libnvidia-ml.so.580.159.04",
                "libnvidia-ptxjitcompiler.so.1", "libnvidia-ptxjitcompiler.so.580.159.04"):
        m = by_node[f"/usr/local/nvidia/lib64/{lib}"]
        assert m.read_only and m.host_path == m.container_path
    for dev in ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidia-caps"):
        assert dev in by_node
    assert by_node["/etc/cdi"].read_only
    assert not by_node["/dev/shm"].read_only and not by_node["/tmp/m1-nvidia-mps"].read_only
    paths = kc.node_paths(parsed, "/tmp/m1-nvidia-mps")
    assert paths.lib_dirs == ("/usr/local/nvidia/lib64",)
    assert paths.first("nvidia-cuda-mps-control") == "/usr/local/nvidia/bin/nvidia-cuda-mps-control"
    assert paths.pipe_dir_host == "/tmp/m1-nvidia-mps"
    doc = yaml.safe_load(GPU_YAML.read_text())
    assert 'enable_cdi = true' in doc["containerdConfigPatches"][0]


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
    first = kc.write(cfg.kind_config_path, text)
    assert first.created and first.changed
    mtime = os.stat(cfg.kind_config_path).st_mtime_ns
    again = kc.write(cfg.kind_config_path, text)
    assert not again.changed and again.diff == "" and again.backup == ""
    assert os.stat(cfg.kind_config_path).st_mtime_ns == mtime
    assert oct(os.stat(cfg.kind_config_path).st_mode & 0o777) == oct(0o644)
    user_edit = text + "# my note\n"
    Path(cfg.kind_config_path).write_text(user_edit)
    plan = kc.plan_write(cfg.kind_config_path, text)
    assert plan.changed and "-# my note" in plan.diff
    assert Path(cfg.kind_config_path).read_text() == user_edit  # plan writes nothing
    done = kc.write(cfg.kind_config_path, text)
    assert done.changed and Path(done.backup).read_text() == user_edit
    assert Path(cfg.kind_config_path).read_text() == text
    assert [p.name for p in Path(cfg.kind_config_path).parent.iterdir() if p.name.startswith(".")] == []
    # a second edit rewritten within the same second keeps its own backup: the first (the user's edit) survives
    Path(cfg.kind_config_path).write_text(text + "# another note\n")
    second = kc.write(cfg.kind_config_path, text)
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
    from labcheck.verdicts.node import kind_config

    v = kind_config(list(parsed.problems), str(path))
    assert v.status == "fail" and f"{path}:{line}" in v.message and v.remediation


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
