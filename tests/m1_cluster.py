"""Helpers for module 1's Docker tests: a unique cluster per test, made by the kind test double.

The double (tests/doubles/kind) stands for kind's node-container behaviour only (see its docstring):
a real container on the real Docker engine, no Kubernetes.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from labcheck.config import LabConfig

DOUBLES = Path(__file__).parent / "doubles"
KIND_DOUBLE = str(DOUBLES / "kind")
LABEL = "module1"
# the tag names the double's rootfs recipe: branches with another recipe on a shared engine would re-import the
# same tag under a running test (seen: a glibc node replaced by a busybox-only one mid-run)
IMAGE = "labcheck-kind-double/node-module1-r5:v1.34.0"


def kind_wrapper(folder: Path) -> str:
    """A ``kind`` executable in ``folder`` that runs the double with THIS interpreter.

    WHY: the double needs PyYAML; the ``python3`` found through its shebang may be a system Python
    without it (CI runs the tests from a virtualenv that is not on PATH).
    """
    import shlex
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kind"
    path.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(KIND_DOUBLE)} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def unique(prefix: str = "m1t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def double_env() -> dict[str, str]:
    return {**os.environ, "KIND_DOUBLE_LABEL": LABEL}


def kind(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, KIND_DOUBLE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or double_env())


def remove_cluster(name: str) -> None:
    """Remove only containers of this test's cluster (label io.x-k8s.kind.cluster=name, made by the double)."""
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}",
                          "--filter", f"label=labcheck.test={LABEL}"], capture_output=True, text=True, timeout=60)
    for cid in out.stdout.split():
        subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True, timeout=60)


def lab_config(tmp_path: Path, name: str, **kw) -> LabConfig:
    cdi = tmp_path / "cdi"
    cdi.mkdir(exist_ok=True)
    base = dict(cluster_name=name, node_image=IMAGE, kind_config_path=str(tmp_path / "manifests/kind-config.yaml"),
                state_dir=str(tmp_path / "state"), kind_binary=kind_wrapper(tmp_path / "kind-bin"),
                mps_pipe_dir=str(tmp_path / "mps"),
                cdi_dirs=(str(cdi),), extra_lib_dirs=(), extra_bin_dirs=(), command_timeout=30.0,
                cluster_create_timeout=120.0, shm_min_bytes=1024**2)
    return LabConfig(**{**base, **kw})


def write_lab_yaml(path: Path, cfg: LabConfig) -> Path:
    import dataclasses

    import yaml

    data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    path.write_text(yaml.safe_dump(data))
    return path


def fake_driver(root: Path) -> tuple[Path, Path]:
    """A driver tree in an awkward folder: libraries as link + versioned file, tools as shell scripts.

    Each library's file is a copy of this host's libdl.so.2 (a real, harmless shared object), so the node's
    loader can load it: the loader check asks the node's ld.so, which refuses a file that is not ELF."""
    import glob
    import shutil

    from tests.test_driver_files import make_lib

    libdir, bindir = root / "nvidia drv; 'x'/lib64", root / "nvidia drv; 'x'/bin"
    loadable = (glob.glob("/lib/*-linux-gnu/libdl.so.2") or glob.glob("/usr/lib/*-linux-gnu/libdl.so.2"))[:1]
    for name in ("libnvidia-ml.so.1", "libcuda.so.1", "libnvidia-ptxjitcompiler.so.1"):
        real = make_lib(libdir, name)
        if loadable:
            shutil.copyfile(loadable[0], real)
    bindir.mkdir(parents=True)
    scripts = {"nvidia-smi": "#!/bin/sh\necho 'NVIDIA-SMI 580.159.04 (test stand-in: a shell script)'\n",
               "nvidia-cuda-mps-control": "#!/bin/sh\necho 'stand-in: cannot start a daemon' >&2\nexit 1\n",
               "nvidia-cuda-mps-server": "#!/bin/sh\nexit 1\n"}
    for name, text in scripts.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    return libdir, bindir
