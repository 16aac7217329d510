"""Hardening (issue 4): hostile names, no root, unsearchable folders and a dead MPS pipe, on real things.

Every case here runs real code paths on real files and real processes. Stand-ins are used only for
tools that cannot exist on this machine (sudo, nvidia-ctk, nvidia-cuda-mps-control); each says
what real behaviour it stands for. The table of all hardening cases, with the test that covers
each, is docs/hardening.md.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labcheck import cmd, mps, remedy
from labcheck.probes import cdi as cdi_probe
from labcheck.probes import mps as mps_probe
from labcheck.probes.docker import DaemonJson, read_daemon_json
from labcheck.remedy import Shell
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import docker as docker_v
from labcheck.verdicts import mps as mps_v
from setup_actions import docker_runtime as dr
from setup_actions.cdi_spec import CdiSpec
from setup_actions.mps_daemon import MpsDaemon, _alive
from tests.child_signals import default_signals
from tests.mps_client import run_one
from tests.other_user import run_as_nobody
from tests.standins import executable
from tests.test_cdi import SPEC, _generator, gpu_facts, materialize
from tests.test_mps_probe import FAKE_CONTROL

REPO = Path(__file__).resolve().parent.parent
# A folder name with a space, both quotes, a ';' and a command substitution: a shell that sees it
# unquoted would split it and run `touch PWNED`.
EVIL = "lab dir; touch PWNED 'q\" $(touch PWNED2)"

SUDO_STANDIN = """#!/bin/sh
# Stand-in for sudo with a password-less sudoers rule (sudo -n CMD runs CMD as root; we already are).
# Real sudo execs its arguments as given, with no shell in between, which is what this does.
[ "$1" = "-n" ] || { echo "sudo: a terminal is required to read the password" >&2; exit 1; }
shift
exec "$@"
"""


SUDO_TYPED = """#!/bin/sh
# Stand-in for sudo as an attendee types it (credentials cached): runs its arguments as given, no shell.
[ "$1" = "-n" ] && shift
exec "$@"
"""


def _script(path: Path, body: str) -> str:
    return str(executable(path, body))


@pytest.fixture
def evil(tmp_path) -> Path:
    d = tmp_path / EVIL
    d.mkdir()
    return d


def no_injection(*roots: Path) -> None:
    """Nothing ran what followed the ';' or inside $(...): no PWNED file anywhere we could have made one."""
    for root in {*roots, Path.cwd(), REPO}:
        assert not list(Path(root).rglob("PWNED*")), f"injected command ran under {root}"


# --- remediations are pasted into a shell: every user value in them is quoted -----------------------

def test_remediation_with_a_hostile_pipe_dir_runs_as_one_path_in_a_real_shell(tmp_path, evil):
    """The MPS start command a verdict prints, run by bash as an attendee would paste it: it starts the
    daemon on exactly that pipe dir and creates exactly that log dir (sudo and the control binary are
    stand-ins, the shell, `install` and the paths are real)."""
    bindir = tmp_path / "bin"
    _script(bindir / "sudo", SUDO_TYPED)
    control = _script(evil / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    pipe, log = str(evil / "pipe"), str(evil / "log")
    facts = mps_probe.probe_mps(pipe, (), 5)
    facts = mps_probe.MpsFacts(control, control, facts.ps, (), facts.pipe, None, {}, facts.server_list)
    verdict = mps_v.daemon(facts, pipe, log, provisioning=False)
    assert verdict.status == "warn", verdict
    try:
        res = subprocess.run(["bash", "-c", verdict.remediation], cwd=tmp_path, capture_output=True, text=True,
                             timeout=30, env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
        assert res.returncode == 0, res.stderr
        assert os.path.isdir(log)
        assert mps_probe.control_query(control, "get_server_list", pipe, 5).ok
    finally:
        mps_probe.control_query(control, "quit", pipe, 5)
    no_injection(tmp_path)


@pytest.mark.parametrize("make", [
    lambda p: mps_v.start_command(p, p + "/log", p + "/bin/nvidia-cuda-mps-control"),
    lambda p: mps_v.restart_command(p, p + "/log"),
    lambda p: CdiSpec(None, p + "/nvidia.yaml").generate_command,
    lambda p: cdi_v._backup_then_generate(cdi_probe.CdiFacts((), (), spec_path=p + "/nvidia.yaml"), p + "/x.yaml"),
    lambda p: docker_v.daemon_json_valid(DaemonJson(p + "/daemon.json", True, error="x", line=2, column=3))
    .remediation.partition("   #")[0],
])
def test_every_path_in_a_remediation_is_one_shell_word(make):
    p = f"/srv/{EVIL}"
    words = shlex.split(make(p))
    assert any(p in w for w in words)
    for w in words:  # never split: each word holding part of the path holds all of it
        if w in (remedy.NOT_WRITABLE, remedy.NOT_A_FOLDER):  # Shell.user_folder's messages, after the path
            continue
        if "lab" in w or "PWNED" in w:
            assert p in w, words


def test_mps_setup_remediations_quote_the_pipe_dir(tmp_path, evil):
    """The hung-control remediation removes the dead daemon's entries IN the pipe folder, each one word (never
    `.../lab` and `dir;`), and never the folder itself (it was `sudo rm -rf PIPE`)."""
    ctl = _script(tmp_path / "bin" / "hang", "#!/bin/sh\nsleep 30\n")
    pipe = str(evil / "pipe")
    out = MpsDaemon(ctl, pipe, str(evil / "log"), 0.5, state_root=tmp_path / "s", shell=Shell()).apply()  # sudo user
    assert not out.ok and "hung" in out.message
    rm = out.remediation.split(" && { ", 1)[1].split(" && ")[0]
    assert shlex.split(rm) == ["sudo", "rm", "-f", "--", *(f"{pipe}/{e}" for e in mps.PIPE_ENTRIES)]


# --- hostile names through the real setup code paths (argv lists, no shell) -------------------------

def test_cdi_generate_into_a_hostile_path_through_sudo(tmp_path, evil):
    """Not root, password-less sudo (stand-in): mkdir, cp (backup), nvidia-ctk (stand-in) and mv all get
    the path as one argument; the stale spec is kept as a backup next to it."""
    sudo = _script(tmp_path / "bin" / "sudo", SUDO_STANDIN)
    fresh = materialize(SPEC, tmp_path)
    old = materialize(SPEC.replace("580.159.04", "570.86.15"), tmp_path)
    target = evil / "nvidia.yaml"
    target.write_text(old)
    action = CdiSpec(_generator(tmp_path, fresh), str(target), timeout=10, euid=1000, sudo_path=sudo)
    out = action.apply(cdi_probe.probe_cdi((str(evil),), None, 10, spec_path=str(target)), gpu_facts())
    assert out.ok and out.changed, out
    assert target.read_text() == fresh
    (backup,) = evil.glob("nvidia.yaml.labcheck-*.bak")
    assert backup.read_text() == old
    assert sorted(p.name for p in evil.iterdir()) == sorted(["nvidia.yaml", backup.name])
    again = action.apply(cdi_probe.probe_cdi((str(evil),), None, 10, spec_path=str(target)), gpu_facts())
    assert again.ok and not again.changed
    no_injection(tmp_path)


def test_docker_runtime_merge_into_a_hostile_path_through_sudo(tmp_path, evil):
    """Not root, password-less sudo (stand-in): backup (cp -p), staged write (install) and rename (mv)
    of daemon.json in a hostile folder; every key kept; the second run changes nothing."""
    sudo = _script(tmp_path / "bin" / "sudo", SUDO_STANDIN)
    runtime = _script(tmp_path / "bin" / "nvidia-container-runtime", "#!/bin/sh\nexec runc \"$@\"\n")
    path = evil / "daemon.json"
    path.write_text('{"log-level": "warn", "data-root": "/srv/docker"}')
    path.chmod(0o640)
    before, inode = path.read_bytes(), path.stat().st_ino
    plan = dr.plan(read_daemon_json(path), None)
    out = dr.apply(plan, fix_host=True, pidfile=str(tmp_path / "no.pid"), timeout=10, nvidia_ctk="",
                   runtime_binary=runtime, prefix=[sudo, "-n"])
    assert out.action == "changed", out
    data = json.loads(path.read_text())
    assert data["log-level"] == "warn" and data["data-root"] == "/srv/docker" and "nvidia" in data["runtimes"]
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.stat().st_ino != inode  # replaced by a rename (atomic), never rewritten in place
    assert Path(out.backup).read_bytes() == before and Path(out.backup).parent == evil
    assert sorted(p.name for p in evil.iterdir()) == sorted(["daemon.json", Path(out.backup).name])
    again = dr.plan(read_daemon_json(path), None)
    assert again.nothing_to_do
    no_injection(tmp_path)


def test_nvidia_ctk_gets_the_hostile_config_path_as_one_argument(tmp_path, evil):
    """Stand-in for `nvidia-ctk runtime configure --config=PATH`: records its argv, then merges the runtime
    in as the real one does (keeping the other keys)."""
    argv_log = tmp_path / "argv.json"
    ctk = _script(tmp_path / "bin" / "nvidia-ctk", f"""#!{sys.executable}
import json, sys
json.dump(sys.argv[1:], open({str(argv_log)!r}, "w"))
cfg = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")][0]
data = json.load(open(cfg))
data.setdefault("runtimes", {{}})["nvidia"] = {{"path": "nvidia-container-runtime", "args": []}}
json.dump(data, open(cfg, "w"))
""")
    path = evil / "daemon.json"
    path.write_text('{"log-level": "warn"}')
    out = dr.apply(dr.plan(read_daemon_json(path), None), fix_host=True, pidfile=str(tmp_path / "no.pid"),
                   timeout=10, nvidia_ctk=ctk, prefix=[])
    assert out.action == "changed", out
    assert json.loads(argv_log.read_text()) == ["runtime", "configure", "--runtime=docker", f"--config={path}"]
    no_injection(tmp_path)


def test_mps_daemon_on_hostile_pipe_and_log_dirs(tmp_path, evil):
    control = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", FAKE_CONTROL)
    pipe, log = str(evil / "pipe"), str(evil / "log")
    action = MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "state")
    try:
        first = action.apply()
        assert first.ok and first.changed, first
        facts = mps_probe.probe_mps(pipe, (str(tmp_path / "bin"),), 10)
        assert facts.answers and mps_v.daemon(facts, pipe, log, True).status == "pass"
        assert action.stop().changed
    finally:
        mps_probe.control_query(control, "quit", pipe, 5)
    no_injection(tmp_path)


def test_lab_config_with_hostile_values_loads_them_verbatim(tmp_path):
    from labcheck import config

    text = (f"cluster_name: {json.dumps('workshop; rm -rf / ' + EVIL)}\n"
            f"mps_pipe_dir: {json.dumps('/tmp/' + EVIL)}\n"
            f"kind_config_path: {json.dumps(str(tmp_path / EVIL / 'kind.yaml'))}\n")
    cfg, problems = config.parse(text, str(tmp_path / "lab.yaml"))
    # issue 11: not a kind name, so the lab config check fails; the value is kept (never swapped for the default
    # cluster) and reaches no shell
    assert [p.message.split(":")[0] for p in problems] == ["cluster_name"]
    assert cfg.cluster_name == "workshop; rm -rf / " + EVIL
    assert cfg.node_name == cfg.cluster_name + "-control-plane"
    assert cfg.mps_pipe_dir == "/tmp/" + EVIL


def test_no_shell_anywhere_in_the_product():
    """The rule behind the cases above: no shell=True, os.system, os.popen or string-built argv."""
    offenders = []
    for folder in ("labcheck", "setup_actions", "fixtures", "reports"):
        for f in (REPO / folder).rglob("*.py"):
            text = f.read_text()
            for pat in (r"shell\s*=\s*True", r"os\.system\(", r"os\.popen\(", r"\bsh\.Command\(",
                        r"subprocess\.\w+\(\s*f[\"']", r"cmd\.run\(\s*f[\"']", r"\.split\(\)\s*,\s*timeout"):
                if re.search(pat, text):
                    offenders.append(f"{f.relative_to(REPO)}: {pat}")
    assert offenders == []


# --- without root, and under folders this user cannot search -----------------------------------------

@pytest.fixture
def world_dir(request) -> Path:
    """A folder an unprivileged user can enter (pytest's tmp_path is root-only)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="lcharden-", dir="/tmp"))
    d.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


GENERATE_AS_USER = """
import sys
from labcheck.probes.cdi import probe_cdi
from labcheck.probes.gpu import Gpu, GpuFacts, NvmlFacts, SmiQuery
from setup_actions.cdi_spec import CdiSpec
target, ctk = sys.argv[1], sys.argv[2]
h100 = Gpu(0, "GPU-683e20a0-8269-a95e-460e-0a9073519f0d", "NVIDIA H100 80GB HBM3", (9, 0), "Default", 81559)
gpus = GpuFacts(SmiQuery("nvidia-smi", None, (h100,), "580.159.04"), NvmlFacts())
action = CdiSpec(ctk, target, timeout=10)  # the real euid and the real `sudo` lookup on PATH
out = action.apply(probe_cdi((target.rsplit("/", 1)[0],), None, 10, spec_path=target), gpus)
print(out.ok); print(out.message); print(out.remediation)
"""


@pytest.mark.parametrize("sudo", ["absent", "asks for a password"])
def test_cdi_generate_without_root_says_what_needs_root_and_never_prompts(world_dir, sudo):
    """A real unprivileged process. 'asks for a password': a stand-in sudo that, like the real one, refuses
    -n without cached credentials and would otherwise read a password from the terminal (and hang)."""
    etc = world_dir / "cdi"
    etc.mkdir()
    target = etc / "nvidia.yaml"
    target.write_text("kind: broken: [")
    target.chmod(0o644)
    ctk = _script(world_dir / "bin" / "nvidia-ctk", "#!/bin/sh\necho should-not-run >&2\nexit 3\n")
    bindir = world_dir / "sbin"
    bindir.mkdir()
    if sudo != "absent":
        _script(bindir / "sudo", '#!/bin/sh\n[ "$1" = "-n" ] && { echo "sudo: a password is required" >&2; exit 1; }\n'
                                 "read pw\n")
    start = time.monotonic()
    res = run_as_nobody(GENERATE_AS_USER, str(target), ctk, path=f"{bindir}:/usr/bin:/bin")
    assert time.monotonic() - start < 30
    ok, message, remediation = res.stdout.splitlines()[:3]
    assert ok == "False", res.stdout + res.stderr
    assert "needs root" in message and "sudo -n" in message
    assert remediation == f"sudo {ctk} cdi generate --output={target}"  # the nvidia-ctk it has, by its path
    assert target.read_text() == "kind: broken: [" and sorted(p.name for p in etc.iterdir()) == ["nvidia.yaml"]


PROBE_AS_USER = """
import sys
from labcheck.probes.cdi import probe_cdi
from labcheck.probes.mps import probe_pipe_dir
from labcheck.verdicts import cdi as v
from labcheck.verdicts.mps import pipe_dir
from labcheck.probes.mps import MpsFacts
from labcheck import cmd
locked = sys.argv[1]
facts = probe_cdi((locked + "/cdi",), None, 5)
print(v.spec_present(facts).message)
p = probe_pipe_dir(locked + "/mps")
mf = MpsFacts(None, None, cmd.CmdResult(("ps",), 0), (), p, None)
print(pipe_dir(mf, "/tmp/nvidia-mps", "/var/log/nvidia-mps").status)
print(p.exists, p.is_dir, p.accessible, p.creatable)
"""


def test_folders_this_user_cannot_search_give_verdicts_not_tracebacks(world_dir):
    """/etc/cdi or the MPS pipe dir under a folder only root may enter: Path.exists() would raise there."""
    locked = world_dir / "locked"
    (locked / "cdi").mkdir(parents=True)
    (locked / "mps").mkdir()
    locked.chmod(0o700)
    res = run_as_nobody(PROBE_AS_USER, str(locked))
    assert res.returncode == 0, res.stderr
    spec_msg, _, states = res.stdout.splitlines()[:3]
    assert f"cannot list {locked}/cdi" in spec_msg
    assert states == "False False False False"


# --- a hung nvidia-cuda-mps-control: a client blocked on a dead daemon's pipe ---------------------------

DEAD_PIPE_CONTROL = """#!/bin/sh
# Stand-in for the nvidia-cuda-mps-control client: it hands its command to the daemon through the
# pipe dir. Here the daemon is dead and left its pipe behind, so nobody reads it and the open()
# blocks in the kernel forever (a real FIFO, real blocking) - what a stale /tmp/nvidia-mps does.
P="${CUDA_MPS_PIPE_DIRECTORY:-/tmp/nvidia-mps}"
[ "$1" = "-d" ] && { echo "An instance of this daemon is already running"; exit 1; }
read cmd
echo "$cmd" > "$P/control"
"""


def test_control_blocked_on_a_dead_pipe_times_out_names_the_command_and_leaves_no_process(tmp_path):
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    os.mkfifo(pipe / "control")
    (pipe / "nvidia-cuda-mps-control.pid").write_text("999999\n")
    ctl = _script(tmp_path / "bin" / "nvidia-cuda-mps-control", DEAD_PIPE_CONTROL)
    start = time.monotonic()
    out = MpsDaemon(ctl, str(pipe), str(tmp_path / "log"), 1.0, state_root=tmp_path / "s", shell=Shell()).apply()
    facts = mps_probe.probe_mps(str(pipe), (str(tmp_path / "bin"),), 1.0)
    run = run_one(str(pipe), ctl, None, 1.0)
    assert time.monotonic() - start < 20
    assert not out.ok and "hung" in out.message
    assert out.remediation == mps_v.stale_pipe_fix(str(pipe), str(tmp_path / "log"), ctl, Shell())
    assert sorted(os.listdir(pipe)) == ["control", "nvidia-cuda-mps-control.pid"]  # the setup step removed nothing
    daemon = mps_v.daemon(facts, str(pipe), str(tmp_path / "log"), True, out.message, out.remediation)
    assert daemon.status == "fail" and f"`{ctl}` hung: no answer within 1s" in daemon.message
    functional = mps_v.functional(run, str(tmp_path / "log"))
    assert functional.status == "fail" and "hung" in functional.message and ctl in functional.message
    time.sleep(0.2)
    left = [pid for pid in _pids_running(ctl)]
    assert left == [], f"blocked control clients left running: {left}"


def _pids_running(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and _alive(int(entry)):
            found.append(int(entry))
    return found


# --- Ctrl-C reaches the command a step waits on ---------------------------------------------------------

def test_ctrl_c_during_a_command_stops_it_and_its_children(tmp_path):
    """KeyboardInterrupt inside cmd.run (as Ctrl-C delivers it): the child runs in its own session, so only
    cmd.run can stop it; it must not go on (e.g. a half-done `kind create cluster`) after the run ends."""
    import signal
    import threading

    marker = tmp_path / "child.pid"
    script = _script(tmp_path / "slow", f"#!/bin/sh\nsleep 60 &\necho $! > {shlex.quote(str(marker))}\nwait\n")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # what Ctrl-C does in a plain run
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            cmd.run([script], timeout=30)
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


# --- CDI generate: a second run changes nothing, two runs never share a backup ---------------------------

def test_regenerating_the_same_spec_changes_nothing_and_keeps_no_new_backup(tmp_path):
    """When the spec is unusable for a reason generating does not fix (here: nvidia-ctk's listing), each run
    used to replace the file with an identical one and pile up a backup: now it says so and changes nothing."""
    fresh = materialize(SPEC, tmp_path)
    etc = tmp_path / "cdi"
    etc.mkdir()
    target = etc / "nvidia.yaml"
    target.write_text(fresh)
    lister = _script(tmp_path / "bin" / "nvidia-ctk-list", "#!/bin/sh\necho 'Found 0 CDI devices'\n")
    facts = cdi_probe.probe_cdi((str(etc),), lister, 10, spec_path=str(target))
    action = CdiSpec(_generator(tmp_path, fresh), str(target), timeout=10, euid=0)
    before = target.stat()
    out = action.apply(facts, gpu_facts())
    assert not out.ok and not out.changed and "generated the same spec" in out.message, out
    assert "cdi list" in out.message and out.remediation
    assert sorted(p.name for p in etc.iterdir()) == ["nvidia.yaml"]
    assert target.stat().st_mtime_ns == before.st_mtime_ns and target.stat().st_ino == before.st_ino


def test_two_backups_in_the_same_second_do_not_overwrite_each_other(tmp_path):
    from labcheck.state import backup_name  # shared by the CDI, Docker runtime and kind config steps

    target = tmp_path / "nvidia.yaml"
    first = backup_name(target)
    Path(first).write_text("the user's original")
    second = backup_name(target)
    assert second != first and not os.path.exists(second)


# --- a whole run: malformed lab config at a hostile path, secrets in the environment ---------------------

KUBECONFIG_TEXT = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: S3CR3TCADATA
    server: https://127.0.0.1:6443
  name: kind-workshop-dra
kind: Config
users:
- name: kind-workshop-dra
  user:
    client-key-data: S3CR3TKEYDATA
    token: S3CR3TTOKEN
"""
SECRETS = {"AWS_SECRET_ACCESS_KEY": "wJalrS3CR3TAWSKEY", "GITHUB_TOKEN": "ghp_S3CR3TGITHUB",
           "HF_TOKEN": "hf_S3CR3THF", "DOCKER_HOST": "tcp://admin:S3CR3TDOCKERPW@127.0.0.1:9"}


def test_module0_run_with_a_malformed_lab_config_and_secrets_around(tmp_path, evil):
    """`pytest tests_env -m module0` as an attendee runs it: the lab config is bad YAML in a folder with a
    hostile name, the environment holds tokens, a kubeconfig and a DOCKER_HOST with a password. The run
    goes on with the defaults, the lab-config check names file and line, and neither the HTML nor the JSON
    nor the terminal shows a secret."""
    from labcheck import config

    lab = evil / "lab.yaml"
    lab.write_text('min_docker: "24.0"\ncluster_name: workshop-dra\nmps_pipe_dir: [unclosed\nmin_kind: "0.24"\n')
    (_, (problem,)) = config.load(lab)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG_TEXT)
    html, js = tmp_path / "report.html", tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(SECRETS, KUBECONFIG=str(kubeconfig))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "--no-provision", f"--lab-config={lab}",
         f"--results-json={js}", f"--html={html}", "--self-contained-html", "-p", "no:cacheprovider", "-rA", "-l"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # checks failed; not 2/3/4 (interrupted, internal error, usage)
    doc = json.loads(js.read_text())
    recs = {r["check"]: r for r in doc["records"]}
    cfg_rec = recs["lab_config_valid"]
    assert cfg_rec["verdict"] == "fail" and f"{lab}:{problem.line}" in cfg_rec["message"], cfg_rec
    assert "not valid YAML" in cfg_rec["message"] and cfg_rec["remediation"]
    assert len(recs) > 20 and "raised an error" not in json.dumps(doc)  # the run went on, check by check
    assert recs["docker_engine_reachable"]["verdict"] == "fail"
    assert "tcp://***@127.0.0.1:9" in recs["docker_engine_reachable"]["message"]
    text = html.read_text() + js.read_text() + out
    for name, value in [*SECRETS.items(), ("kubeconfig", "S3CR3T")]:
        secret = value.split(":")[2].split("@")[0] if name == "DOCKER_HOST" else value
        assert secret not in text, f"{name}'s secret reached the report"
    no_injection(tmp_path)


@pytest.mark.parametrize(("content", "expect"), [
    (b"", "not valid JSON"),  # `touch /etc/docker/daemon.json`
    (b"\xff\xfe{ binary", "is not UTF-8 text"),  # not UTF-8
    (None, "is a folder, not a regular file"),  # a folder where the file should be
    (b'{"runtimes": {"nvidia": {"path": "x"}},}', "not valid JSON"),  # trailing comma
    (b"[]", "expected a JSON object"),
])
def test_bad_daemon_json_is_a_failing_check_and_never_overwritten(tmp_path, content, expect):
    path = tmp_path / "daemon.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    dj = read_daemon_json(path)
    verdict = docker_v.daemon_json_valid(dj)
    assert verdict.status == "fail" and expect in verdict.message and str(path) in verdict.message
    assert verdict.remediation
    out = dr.apply(dr.plan(dj, None), fix_host=True, pidfile=str(tmp_path / "no.pid"), timeout=5, nvidia_ctk="",
                   runtime_binary="/bin/true", prefix=[])
    assert out.action == "failed" and "never overwrites a file it cannot parse" in out.message
    assert (path.is_dir() if content is None else path.read_bytes() == content)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]


def test_module0_cdi_checks_on_malformed_specs_name_file_and_line_and_go_on(tmp_path):
    """A whole `-k cdi` run over a folder with bad YAML, a wrong kind, no devices and duplicate names."""
    etc = tmp_path / "cdi"
    etc.mkdir()
    (etc / "nvidia.yaml").write_text('cdiVersion: "0.5.0"\nkind: nvidia.com/gpu\ndevices:\n- name: "0"\n  x: [\n')
    (etc / "nvidia-other.yaml").write_text('cdiVersion: "0.5.0"\nkind: example.com/nic\ndevices:\n- name: a\n'
                                          '  containerEdits: {env: [A=1]}\n')  # valid but for its kind
    (etc / "nvidia-empty.yaml").write_text('cdiVersion: "0.5.0"\nkind: nvidia.com/gpu\ndevices: []\n')
    (etc / "nvidia-dup.yaml").write_text('cdiVersion: "0.5.0"\nkind: nvidia.com/gpu\ndevices:\n- name: "0"\n'
                                        '  containerEdits: {}\n- name: "0"\n  containerEdits: {}\n')
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"cdi_dirs: [{json.dumps(str(etc))}]\ncdi_spec_path: {json.dumps(str(etc / 'nvidia.yaml'))}\n")
    js = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "-k", "cdi", "--no-provision",
         f"--lab-config={lab}", f"--results-json={js}", "-p", "no:cacheprovider", "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    recs = {r["check"]: r for r in json.loads(js.read_text())["records"]}
    assert proc.returncode == 1 and "raised an error" not in json.dumps(recs), proc.stdout
    assert {"cdi_spec_present", "cdi_spec_valid", "cdi_spec_lists_this_hosts_gpus", "cdi_spec_not_stale",
            "cdi_specs_do_not_conflict"} <= set(recs)
    valid = recs["cdi_spec_valid"]
    assert valid["verdict"] == "fail" and valid["remediation"], valid
    text = valid["message"] + valid["details"]
    for where in (f"{etc}/nvidia.yaml:", f"{etc}/nvidia-other.yaml:2", f"{etc}/nvidia-empty.yaml:3",
                  f"{etc}/nvidia-dup.yaml:6"):
        assert where in text, (where, text)


# --- fleet: commands that ssh hands to the remote shell -------------------------------------------------

def _remote_shell(line: str, cwd: Path) -> subprocess.CompletedProcess:
    """What sshd does with the command ssh sends: the login shell runs it with -c (here bash, locally)."""
    return subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=30)


def test_fleet_remote_commands_keep_a_hostile_workdir_in_one_piece(tmp_path):
    """The command that stops a host's worker (a real sleeping process standing for the worker) and the
    remediation that creates the remote folder, run through a real shell as the remote side runs them."""
    from labcheck import inventory

    host = inventory.Host(name="gpu-01", ssh="lab@gpu-01", workdir=EVIL)
    folder = tmp_path / host.remote_dir
    folder.mkdir(parents=True)
    worker = subprocess.Popen(["sleep", "60"], preexec_fn=default_signals)  # noqa: PLW1509 - it gets SIGTERM
    try:
        (folder / inventory.WORKER_PIDFILE).write_text(f"{worker.pid}\n")
        argv = host.stop_worker_command()
        assert argv[0] == "ssh" and argv[-2] == "lab@gpu-01"
        res = _remote_shell(argv[-1], tmp_path)
        assert res.returncode == 0, res.stderr
        assert worker.wait(timeout=10) == -15  # SIGTERM reached exactly that worker
        assert not (folder / inventory.WORKER_PIDFILE).exists()
        # A link planted at the pid file's name (to a file naming some other process) is not followed.
        other = subprocess.Popen(["sleep", "60"], preexec_fn=default_signals)  # noqa: PLW1509
        try:
            (tmp_path / "their.pid").write_text(f"{other.pid}\n")
            (folder / inventory.WORKER_PIDFILE).symlink_to(tmp_path / "their.pid")
            _remote_shell(argv[-1], tmp_path)
            assert other.poll() is None, "the stop followed a planted link and signalled another process"
        finally:
            other.kill()
            other.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    fix = host.manual_ssh("mkdir -p " + shlex.quote(host.remote_dir + "/sub"))
    words = shlex.split(fix)  # what the person's own shell makes of the pasted line
    assert words[:2] == ["ssh", "lab@gpu-01"] and len(words) == 3
    assert _remote_shell(words[2], tmp_path).returncode == 0
    assert (folder / "sub").is_dir()
    no_injection(tmp_path)
