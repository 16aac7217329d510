"""The Docker runtime setup action on real files: backup, merge, atomic write, idempotence, refusals.

No engine here: the pidfile points nowhere, so ``apply`` says it found no dockerd to reload (the live
reload is covered in test_docker_integration.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from labcheck.probes.docker import Dockerd, parse_daemon_json, probe_dockerd, read_daemon_json
from labcheck.remedy import Shell, this_host
from setup_actions import docker_runtime as dr
from tests.other_user import run_as_nobody

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def runtime_binary(tmp_path) -> str:
    p = tmp_path / "bin" / "nvidia-container-runtime"
    p.parent.mkdir()
    p.write_text("#!/bin/sh\nexec runc \"$@\"\n")
    p.chmod(0o755)
    return str(p)


def apply(plan, tmp_path, runtime_binary, **kw):
    kw.setdefault("fix_host", True)
    return dr.apply(plan, pidfile=str(tmp_path / "no.pid"), timeout=5, nvidia_ctk="",
                    runtime_binary=runtime_binary, prefix=[], **kw)


def nowhere(tmp_path) -> Dockerd:
    """What apply finds with the pidfile above: no dockerd (so its fixes say so)."""
    found = probe_dockerd("", str(tmp_path / "no.pid"), 5)
    assert found.pid is None
    return found


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.labcheck-*.bak"))


def test_merge_keeps_every_key_backs_up_and_second_run_is_a_no_op(tmp_path, runtime_binary):
    path = tmp_path / "daemon.json"
    original = {"log-level": "warn", "data-root": "/srv/docker", "default-address-pools": [{"base": "10.9.0.0/16",
                "size": 24}], "runtimes": {"crun": {"path": "/usr/bin/crun"}}}
    path.write_text(json.dumps(original, indent=2))
    path.chmod(0o600)
    before = path.read_bytes()

    plan = dr.plan(read_daemon_json(path), None)
    assert plan.needs_write and "backup first, all existing settings kept" in plan.describe()
    assert path.read_bytes() == before  # plan has no side effects

    out = apply(plan, tmp_path, runtime_binary)
    assert out.action == "changed", out
    assert "no running dockerd found" in out.message
    (backup,) = backups(path)
    assert str(backup) == out.backup and backup.read_bytes() == before
    data = json.loads(path.read_text())
    assert {k: data[k] for k in original if k != "runtimes"} == {k: original[k] for k in original if k != "runtimes"}
    assert data["runtimes"] == {"crun": {"path": "/usr/bin/crun"}, "nvidia": {"path": runtime_binary, "args": []}}
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # atomic: no leftovers

    after = path.read_bytes()
    again = dr.plan(read_daemon_json(path), None)
    assert again.nothing_to_do and again.describe().startswith("nothing to do")
    assert apply(again, tmp_path, runtime_binary).action == "nothing to do"
    assert path.read_bytes() == after and len(backups(path)) == 1


def test_creates_a_missing_file_without_backup(tmp_path, runtime_binary):
    path = tmp_path / "etc-docker" / "daemon.json"
    out = apply(dr.plan(read_daemon_json(path), None), tmp_path, runtime_binary)
    assert out.action == "changed" and out.backup == ""
    assert json.loads(path.read_text()) == {"runtimes": {"nvidia": {"path": runtime_binary, "args": []}}}


def test_bare_name_when_the_binary_is_on_path(tmp_path, runtime_binary, monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(runtime_binary).parent}:{os.environ['PATH']}")
    path = tmp_path / "daemon.json"
    apply(dr.plan(read_daemon_json(path), None), tmp_path, runtime_binary)
    assert json.loads(path.read_text())["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"


def test_malformed_file_is_a_clear_failure_and_left_untouched(tmp_path, runtime_binary):
    path = tmp_path / "daemon.json"
    path.write_text('{\n  "log-level": "warn",\n  "runtimes": {\n}\n')
    before = path.read_bytes()
    plan = dr.plan(read_daemon_json(path), None)
    assert plan.problem and f"{path}, line 5, column 1" in plan.problem
    out = apply(plan, tmp_path, runtime_binary, shell=Shell(root=True))
    assert out.action == "failed" and f"{path}, line 5, column 1: not valid JSON" in out.message
    # one runnable line (it was the prose "fix PATH by hand, then ..."): json.tool stops it until the file is mended
    assert out.remediation.startswith(f"python3 -m json.tool {path} >/dev/null && nvidia-ctk runtime configure")
    assert "# first fix the JSON by hand: the suite never overwrites a file it cannot parse" in out.remediation
    bindir = tmp_path / "stand-ins"
    bindir.mkdir()
    for tool in ("nvidia-ctk", "systemctl", "kill"):  # stand-ins: what runs after json.tool leaves a mark
        (bindir / tool).write_text(f"#!/bin/sh\ntouch {tmp_path}/ran-{tool}\n")
        (bindir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    pasted = subprocess.run(["bash", "-c", out.remediation], env=env, capture_output=True, text=True, timeout=30)
    assert pasted.returncode != 0 and "line 5" in pasted.stderr and not list(tmp_path.glob("ran-*")), pasted
    assert path.read_bytes() == before and backups(path) == []
    path.write_text('{"log-level": "warn"}')  # mended: now the rest of the line runs
    pasted = subprocess.run(["bash", "-c", out.remediation], env=env, capture_output=True, text=True, timeout=30)
    assert pasted.returncode == 0 and (tmp_path / "ran-nvidia-ctk").exists(), pasted


def test_without_fix_host_or_with_no_provision_nothing_changes(tmp_path, runtime_binary):
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    plan = dr.plan(read_daemon_json(path), None)
    for kw in ({"fix_host": False}, {"fix_host": True, "no_provision": True}):
        out = apply(plan, tmp_path, runtime_binary, **kw)
        assert out.action == "not run" and "would: add runtimes.nvidia" in out.message
        assert out.remediation == dr.configure_command(this_host(), "nvidia", str(path), nowhere(tmp_path))
    assert path.read_text() == "{}" and backups(path) == []


def test_without_the_toolkit_nothing_is_registered(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    out = apply(dr.plan(read_daemon_json(path), None), tmp_path, "")
    assert out.action == "failed" and "NVIDIA Container Toolkit is not installed" in out.message
    assert out.remediation == dr.install_and_configure_command(this_host(), "nvidia", str(path), nowhere(tmp_path))
    assert path.read_text() == "{}" and backups(path) == []


def test_fixes_shown_to_root_carry_no_sudo(tmp_path):
    """--fix-host runs as root: its notes must be pasteable in a root shell, which may have no sudo."""
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    plan = dr.plan(read_daemon_json(path), None)
    root, user = Shell(root=True), Shell(root=False)
    assert dr.configure_command(root).startswith(
        "nvidia-ctk runtime configure --runtime=docker && systemctl reload docker   # ")
    assert dr.configure_command(user).startswith(
        "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl reload docker   # ")
    install = dr.install_and_configure_command(root)
    assert install.startswith("curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg ") and \
        "&& apt-get install -y nvidia-container-toolkit && nvidia-ctk runtime configure" in install, install
    assert "sudo" not in dr.install_and_configure_command(Shell(root=True, distro="fedora"))
    for out in (dr.apply(plan, fix_host=False, shell=root),
                dr.apply(plan, fix_host=True, nvidia_ctk="", runtime_binary="", prefix=[], shell=root)):
        assert out.remediation and "sudo" not in out.remediation, out


def test_runtime_in_file_but_not_in_engine_plans_a_reload_only():
    dj = parse_daemon_json('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}', "/d.json")
    plan = dr.plan(dj, ["runc"])
    assert plan.needs_reload and not plan.needs_write
    assert dr.plan(dj, ["runc", "nvidia"]).nothing_to_do


def test_verify_catches_a_lost_or_changed_key():
    before = {"log-level": "warn", "runtimes": {"crun": {"path": "/usr/bin/crun"}}}
    lost = parse_daemon_json('{"runtimes": {"nvidia": {"path": "x"}}}', "/d.json")
    assert "lost or changed existing settings: log-level, runtimes.crun" in dr.verify(before, lost, "nvidia")
    kept = parse_daemon_json(json.dumps({**before, "runtimes": {**before["runtimes"], "nvidia": {}}}), "/d.json")
    assert dr.verify(before, kept, "nvidia") == ""


def test_merged_keeps_everything():
    data = {"a": 1, "runtimes": {"x": {"path": "y"}}}
    assert dr.merged(data, "nvidia", "p") == {"a": 1, "runtimes": {"x": {"path": "y"}, "nvidia": {"path": "p",
                                                                                                   "args": []}}}
    assert data == {"a": 1, "runtimes": {"x": {"path": "y"}}}  # input not modified


APPLY_AS_USER = """
import sys
from labcheck.probes.docker import read_daemon_json
from setup_actions import docker_runtime as dr
path, binary = sys.argv[1], sys.argv[2]
out = dr.apply(dr.plan(read_daemon_json(path), None), fix_host=True, pidfile="/nonexistent", timeout=5,
               nvidia_ctk="", runtime_binary=binary)
print(out.action)
print(out.message)
print(out.remediation)
"""


def test_fix_host_without_root_or_sudo_says_what_needs_root_and_never_hangs(request, runtime_binary):
    """A real unprivileged process (nobody): `sudo -n` never prompts, so this ends at once with the command."""
    etc = Path(tempfile.mkdtemp(prefix="lcdk-etc-", dir="/tmp"))  # pytest's tmp_path is root-only (0700)
    etc.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(etc, ignore_errors=True))
    path = etc / "daemon.json"
    path.write_text('{"log-level": "warn"}')
    before = path.read_bytes()
    start = time.monotonic()
    proc = run_as_nobody(APPLY_AS_USER, str(path), runtime_binary)
    assert time.monotonic() - start < 30
    status, message, command = proc.stdout.splitlines()[:3]
    assert status == "failed", proc.stdout + proc.stderr
    assert "needs root" in message and "nothing was changed" in message
    assert command == (f"sudo nvidia-ctk runtime configure --runtime=docker --config={path} && sudo systemctl "
                       "reload docker   # no dockerd pid is known here (pidfile /nonexistent: absent); where systemd "
                       "does not run Docker, send dockerd SIGHUP instead (sudo kill -HUP <pid of dockerd>), or stop "
                       f"it and start it again (sudo dockerd --config-file={path} &)")
    assert path.read_bytes() == before and backups(path) == []


def ctk_double(tmp_path: Path, body: str) -> str:
    """A stand-in for ``nvidia-ctk`` (not installed here) with a given behaviour; see each test."""
    p = tmp_path / "nvidia-ctk"
    p.write_text(f"#!{sys.executable}\nimport json, sys\n{body}\n")
    p.chmod(0o755)
    return str(p)


def test_configure_step_that_loses_settings_is_caught_and_rolled_back(tmp_path):
    """Stands for a configure step that rewrites the file from scratch (what "merge, never overwrite" forbids)."""
    path = tmp_path / "daemon.json"
    path.write_text('{"log-level": "warn", "runtimes": {"crun": {"path": "/usr/bin/crun"}}}')
    before = path.read_bytes()
    ctk = ctk_double(tmp_path, "cfg = [a.split('=', 1)[1] for a in sys.argv if a.startswith('--config=')][0]\n"
                               "open(cfg, 'w').write(json.dumps({'runtimes': {'nvidia': {'path': 'x'}}}))")
    out = dr.apply(dr.plan(read_daemon_json(path), None), fix_host=True, pidfile=str(tmp_path / "no.pid"),
                   timeout=10, nvidia_ctk=ctk, prefix=[])
    assert out.action == "failed"
    assert "lost or changed existing settings: log-level, runtimes.crun" in out.message
    assert f"restored {path} from {out.backup}" in out.message
    assert path.read_bytes() == before


def test_failing_nvidia_ctk_is_reported_with_its_error(tmp_path):
    """Stands for nvidia-ctk refusing to write (e.g. a read-only /etc)."""
    path = tmp_path / "daemon.json"
    path.write_text("{}")
    ctk = ctk_double(tmp_path, "print('unable to flush config: read-only file system', file=sys.stderr)\nsys.exit(1)")
    out = dr.apply(dr.plan(read_daemon_json(path), None), fix_host=True, pidfile=str(tmp_path / "no.pid"),
                   timeout=10, nvidia_ctk=ctk, prefix=[])
    assert out.action == "failed" and "nvidia-ctk failed" in out.message
    assert "read-only file system" in out.message and path.read_text() == "{}"


# Stands for `nvidia-ctk runtime configure --runtime=docker --config=PATH --nvidia-runtime-name=NAME` (NVIDIA's
# cmd/nvidia-ctk/runtime/configure: the runtime is written under NAME, default "nvidia", into PATH, default
# /etc/docker/daemon.json; every other key kept). It refuses flags it does not know, as the real CLI does.
CTK_STANDIN = """#!{python}
import json, sys
args = sys.argv[1:]
known = ("--runtime=", "--config=", "--nvidia-runtime-name=")
if args[:2] != ["runtime", "configure"] or any(not a.startswith(known) for a in args[2:]):
    sys.exit("Incorrect Usage: flag provided but not defined")
opts = dict(a[2:].split("=", 1) for a in args[2:])
path = opts.get("config", "/etc/docker/daemon.json")
data = json.load(open(path))
data.setdefault("runtimes", {{}})[opts.get("nvidia-runtime-name", "nvidia")] = {{
    "path": "nvidia-container-runtime", "args": []}}
json.dump(data, open(path, "w"), indent=4)
"""


def test_fix_host_registers_the_configured_runtime_name_in_the_configured_file(tmp_path):
    """docker_runtime_name "nv-cdi", docker_daemon_json in a folder with a space: nvidia-ctk gets both (before,
    it registered "nvidia" in the default file and the result check failed: no runtimes.nv-cdi)."""
    ctk = tmp_path / "bin" / "nvidia-ctk"
    ctk.parent.mkdir()
    ctk.write_text(CTK_STANDIN.format(python=sys.executable))
    ctk.chmod(0o755)
    path = tmp_path / "my docker" / "daemon.json"
    path.parent.mkdir()
    path.write_text('{"log-level": "warn"}')
    plan = dr.plan(read_daemon_json(path), None, "nv-cdi")
    out = dr.apply(plan, fix_host=True, pidfile=str(tmp_path / "no.pid"), timeout=10, nvidia_ctk=str(ctk),
                   prefix=[], shell=Shell(root=True))
    assert out.action == "changed", out
    data = json.loads(path.read_text())
    assert data["log-level"] == "warn" and list(data["runtimes"]) == ["nv-cdi"]
    assert dr.plan(read_daemon_json(path), None, "nv-cdi").nothing_to_do


def test_the_pasted_fix_is_the_command_the_action_runs_with_the_configured_names(tmp_path):
    """The fix names the configured runtime and daemon.json, each one shell word: pasted (run by a real sh, the
    stand-in nvidia-ctk first on PATH), it registers exactly that runtime in exactly that file."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvidia-ctk").write_text(CTK_STANDIN.format(python=sys.executable))
    (tmp_path / "bin" / "nvidia-ctk").chmod(0o755)
    path = tmp_path / "it's $HOME" / "daemon.json"
    path.parent.mkdir()
    path.write_text("{}")
    fix = dr.configure_command(Shell(root=True), "nv$rt", str(path))
    first = fix.split(" && ")[0]
    assert shlex.split(first) == ["nvidia-ctk", "runtime", "configure", "--runtime=docker", f"--config={path}",
                                  "--nvidia-runtime-name=nv$rt"]
    res = subprocess.run(["sh", "-c", first], env={**os.environ, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert list(json.loads(path.read_text())["runtimes"]) == ["nv$rt"]
