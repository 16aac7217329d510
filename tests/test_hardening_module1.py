"""Module 1 hardening (issue 4): ``pytest tests_env -m module1`` interrupted in the middle of
``kind create cluster``, and a state folder that cannot be used.

``kind`` is module 1's test double (tests/doubles/kind: creates the node container on the real
Docker engine, no Kubernetes; KIND_DOUBLE_HANG_AFTER_CREATE=1 makes it hang after creating the
container, like a ``kind create`` stuck waiting for the control plane). Containers get this helper's
label (labcheck.test=harden) and a cluster name starting with ``harden-``; only those are removed.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from labcheck import state
from labcheck.probes import node as nodeprobe
from tests import m1_cluster as m1
from tests.test_hardening import _pids_running
from tests.test_hardening_interrupt import end_session, finish, interrupt, start_run

pytestmark = pytest.mark.docker
LABEL = "harden"
IMAGE = "labcheck-kind-double/node-harden:v1.34.0"


def _remove(name: str) -> None:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}",
                          "--filter", f"label=labcheck.test={LABEL}"], capture_output=True, text=True, timeout=60)
    for cid in out.stdout.split():
        subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True, timeout=60)


@pytest.fixture
def cluster(tmp_path, request):
    m1.docker_or_skip()
    name = f"harden-{uuid.uuid4().hex[:8]}"
    request.addfinalizer(lambda: _remove(name))
    libdir, bindir = m1.fake_driver(tmp_path)
    cfg = m1.lab_config(tmp_path, name, node_image=IMAGE, extra_lib_dirs=(str(libdir),),
                        extra_bin_dirs=(str(bindir),))
    lab = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    return name, cfg, lab


def _run(tmp_path, lab, env_extra=None, name="r", *args):
    env = {**m1.double_env(), "KIND_DOUBLE_LABEL": LABEL, **(env_extra or {})}
    return start_run(tmp_path, lab, "-k", "cluster_provisioned or node_container_running", *args, env=env,
                     name=name, module="module1")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_kind_create_interrupted_is_repaired_by_the_next_run(tmp_path, cluster, sig):
    name, cfg, lab = cluster
    proc, out = _run(tmp_path, lab, {"KIND_DOUBLE_HANG_AFTER_CREATE": "1"})
    deadline = time.monotonic() + 90
    while not nodeprobe.inspect(cfg.node_name, 10).running:  # kind made and started the node, then hangs
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "kind never created the node container"
        time.sleep(0.2)
    time.sleep(0.5)  # past `docker run` (the double may retry it unprivileged), into the hang
    half = nodeprobe.inspect(cfg.node_name, 10)
    interrupt(proc, sig)
    rc, _, text = finish(proc, out, timeout=60)
    kind_left = _pids_running(f"--name {name}")
    if sig == signal.SIGINT:
        assert rc == 2, text
        assert kind_left == [], "the interrupted `kind create cluster` went on after the run ended"
    else:
        for pid in kind_left:  # kill -9 cannot reach kind: it would hang on (an hour, in the double)
            end_session(pid)
    rec = state.read(state.state_dir(cfg.state_dir), name)
    assert rec is not None and rec.phase == "creating"  # the next run knows the half-made cluster is its own

    rc, recs, text = finish(*_run(tmp_path, lab, name="r2"))
    prov = recs["cluster_provisioned"]
    assert prov["verdict"] == "pass" and "created cluster" in prov["message"], text
    assert "half-made by an interrupted run" in prov["message"]
    assert recs["node_container_running"]["verdict"] == "pass"
    assert nodeprobe.inspect(cfg.node_name, 10).id != half.id
    assert state.read(state.state_dir(cfg.state_dir), name).phase == "created"

    rc, recs, text = finish(*_run(tmp_path, lab, name="r3"))
    assert "exists and matches" in recs["cluster_provisioned"]["message"], recs["cluster_provisioned"]


def test_unusable_state_folder_gives_verdicts_not_tracebacks(tmp_path, cluster):
    """state_dir under a regular file: the kind config, cluster and node checks fail or skip with a reason."""
    name, cfg, lab = cluster
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    lab["state_dir"] = str(blocker / "state")
    rc, recs, text = finish(*start_run(tmp_path, lab, env={**m1.double_env(), "KIND_DOUBLE_LABEL": LABEL},
                                       module="module1"))
    assert rc == 1, text
    assert recs and all("raised an error" not in r["message"] for r in recs.values()), text
    prov = recs["cluster_provisioned"]
    assert prov["verdict"] == "fail" and f"cannot use the state folder {blocker / 'state'}" in prov["message"]
    assert prov["remediation"]
    assert not nodeprobe.inspect(cfg.node_name, 10).exists
    assert not Path(lab["state_dir"]).exists()
