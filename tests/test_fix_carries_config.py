"""Real module-0 runs (``pytest tests_env -m module0``) against this machine's real Docker engine: the printed
fixes carry the lab config's docker_host and the nvidia-ctk the suite found, shell-quoted, and parse.

The engine is reached through a hostile but valid second spelling of its socket (a folder with a space, quotes,
``$``, ``;`` and backticks, linked to the socket's folder), so a fix that fell back to plain ``docker`` or to the
default socket cannot pass. nvidia-ctk cannot be installed here: a stand-in in an extra_bin_dirs folder answers
``--version`` and ``cdi list`` as the real one does. The engine is only read: the one image made (a busybox whose
entrypoint exits 1, so the runtime probe fails as a broken runtime does) is this test's, removed at the end.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from labcheck import docker_endpoint
from labcheck.config import LabConfig
from labcheck.probes import docker as docker_probe
from labcheck.remedy import this_host
from tests.shell_text import commands, parses
from tests.standins import executable

pytestmark = [pytest.mark.docker, pytest.mark.needs("docker_engine")]
REPO = Path(__file__).resolve().parents[1]

CTK = """#!/bin/sh
# Stand-in for nvidia-ctk: the real one's answers to --version and `cdi list` on a host without a spec.
case "$1 $2" in
  --version*) echo "NVIDIA Container Toolkit CLI version 1.17.8"; echo "commit: f202b80a9b9d0db00d9b1d73c01";;
  "cdi list") echo 'level=info msg="Found 0 CDI devices"' >&2;;
  *) echo "stand-in: not run here: $*" >&2; exit 3;;
esac
"""


@pytest.fixture
def lab(tmp_path):
    """A lab config naming this engine through a hostile spelling of its socket, and nvidia-ctk only in an
    extra_bin_dirs folder with a hostile name; (config dict, the docker_host, the nvidia-ctk path)."""
    sock = docker_endpoint.unix_socket(docker_probe.endpoint(LabConfig()))
    if not sock:
        pytest.skip("this engine is not on a unix socket")
    spelled = tmp_path / "s '$x;`y`"  # short: a unix socket path has at most 107 bytes
    spelled.symlink_to(os.path.dirname(sock))
    host = f"unix://{spelled}/{os.path.basename(sock)}"
    ctk = str(executable(tmp_path / "nv bin $x" / "nvidia-ctk", CTK))
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    return ({"docker_host": host, "extra_bin_dirs": [os.path.dirname(ctk)], "cdi_dirs": [str(cdi)],
             "cdi_spec_path": str(cdi / "nvidia.yaml"), "command_timeout": 30}, host, ctk)


def _run(tmp_path: Path, config: dict, select: str, *args: str, name: str = "r") -> dict:
    """One real module-0 run restricted to ``select``; its records by check name."""
    lab_yaml, out = tmp_path / f"{name}.yaml", tmp_path / f"{name}.json"
    lab_yaml.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in config.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "DOCKER_HOST"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "-k", select,
                           "-p", "no:cacheprovider", f"--lab-config={lab_yaml}", f"--results-json={out}", "-q",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL)
    assert out.exists(), proc.stdout + proc.stderr
    return {r["check"]: r for r in json.loads(out.read_text())["records"]}


def test_the_cdi_and_runtime_fixes_of_one_run_name_the_nvidia_ctk_it_found(tmp_path, lab):
    """The toolkit only in extra_bin_dirs: the CDI fix said a bare `nvidia-ctk` (command not found) while the
    runtime fix of the same run used its path. Both now run the one that was found, quoted; both parse."""
    config, host, ctk = lab
    recs = _run(tmp_path, {**config, "docker_runtime_name": "labcheck-absent"}, "cdi or nvidia_runtime_registered",
                "--no-provision")
    sudo = [] if this_host().root else ["sudo"]
    cdi_fix = recs["cdi_spec_present"]["remediation"]
    assert recs["cdi_spec_present"]["verdict"] == "fail" and parses(cdi_fix), recs["cdi_spec_present"]
    assert commands(cdi_fix) == [[*sudo, ctk, "cdi", "generate", f"--output={config['cdi_spec_path']}"]], cdi_fix
    runtime_fix = recs["nvidia_runtime_registered"]["remediation"]
    assert recs["nvidia_runtime_registered"]["verdict"] == "fail" and parses(runtime_fix), runtime_fix
    assert commands(runtime_fix)[0] == [*sudo, ctk, "runtime", "configure", "--runtime=docker",
                                        "--nvidia-runtime-name=labcheck-absent"], runtime_fix


def test_with_fix_host_the_cdi_fix_is_this_hosts_users(tmp_path, lab):
    """--fix-host: the generate step's own fix (here: no GPU, so nothing is generated) had `sudo` for root on a
    host without sudo; it is worded for whoever runs the suite, with the nvidia-ctk found."""
    config, host, ctk = lab
    recs = _run(tmp_path, config, "cdi_spec_present", "--fix-host", name="fix")
    rec = recs["cdi_spec_present"]
    fix = rec["remediation"]
    assert rec["verdict"] == "fail" and parses(fix), rec
    assert [ctk, "cdi", "generate", f"--output={config['cdi_spec_path']}"] in [c[-4:] for c in commands(fix)], fix
    assert ("sudo" in fix.split()) == (not this_host().root), fix
    assert not os.listdir(config["cdi_dirs"][0])  # nothing was written


@pytest.fixture
def failing_image():
    """An image of this test's own whose entrypoint exits 1 (busybox false): the runtime probe's container
    starts and exits 1, as with a runtime that breaks the container. Removed at the end (only this image)."""
    busybox = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if docker_probe.static_busybox([p])), None)
    if busybox is None:
        pytest.skip("no static busybox to build the image from")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
    name = f"labcheck-fixes-test/exit1:{uuid.uuid4().hex[:12]}"
    subprocess.run(["docker", "-H", docker_probe.endpoint(LabConfig()), "import", "-c",
                    'ENTRYPOINT ["/bin/busybox", "false"]', "-", name], input=buf.getvalue(), check=True,
                   capture_output=True, timeout=60)
    yield name
    subprocess.run(["docker", "-H", docker_probe.endpoint(LabConfig()), "rmi", "-f", name], capture_output=True,
                   timeout=60)


def test_the_runtime_probe_fix_runs_docker_on_the_configured_engine(tmp_path, lab, failing_image):
    """docker_host under another spelling: the `docker run` of the fix went to the default engine. It carries
    DOCKER_HOST, quoted as one word, and that word reaches this very engine."""
    config, host, ctk = lab
    recs = _run(tmp_path, {**config, "docker_runtime_name": "runc", "probe_image": failing_image},
                "nvidia_runtime_usable", "--no-provision", name="usable")
    rec = recs["nvidia_runtime_usable"]
    fix = rec["remediation"]
    assert rec["verdict"] == "fail" and "probe exited 1" in rec["message"] and parses(fix), rec
    first = commands(fix)[0]
    assert first == [f"DOCKER_HOST={host}", "docker", "run", "--rm", "--runtime=runc", "-e",
                     "NVIDIA_VISIBLE_DEVICES=all", failing_image, "/bin/sh", "-c", "ls /dev"], fix
    env = {**os.environ, "DOCKER_HOST": first[0].partition("=")[2]}
    assert subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=env, capture_output=True,
                          timeout=30).returncode == 0  # the printed address is this engine's
