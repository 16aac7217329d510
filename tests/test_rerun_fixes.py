"""Every "run the suite again" fix is this run again (labcheck.rerun), kubectl fixes name the cluster's context,
and a fix that deletes a cluster the suite did not create says so.

WHY: the fixes said ``kind delete cluster --name lab-2 && pytest tests_env -m module1``: the second half ran
whatever ``pytest`` was on PATH, found no tests_env from another folder, and without the run's --lab-config
built the default cluster (workshop-dra, manifests/kind-config.yaml) right after deleting lab-2. Names and paths
here are hostile on purpose (spaces, quotes, ``$``, ``;``): each fix must still be one shell command line that
bash parses and that carries them as single words.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from labcheck import fleet_plugin, kindconfig, mps, rerun
from labcheck.clis import Clis
from labcheck.cmd import CmdResult
from labcheck.config import LabConfig
from labcheck.inventory import Host
from labcheck.probes import fleet as fleet_probe
from labcheck.probes.gpu import Gpu
from labcheck.probes.kube import ApiFacts
from labcheck.probes.node import NodeFile, NodeState
from labcheck.remedy import Shell, install_with_any
from labcheck.rerun import Rerun
from labcheck.verdicts import kindconfig as kv
from labcheck.verdicts import node as v
from reports import results
from setup_actions import cluster as cluster_action
from setup_actions.outcome import Outcome
from tests import shell_text

ROOT = Path(__file__).resolve().parents[1]
NASTY = "it's $HOME; x"  # a quote, a parameter expansion and a command separator, with spaces
RERUN = Rerun(cwd=f"/tmp/run dir {NASTY}", python=f"/opt/py thon {NASTY}/bin/python3", root=f"/srv/dra {NASTY}",
              lab_config=f"/tmp/x/bin dir/lab {NASTY}.yaml", fix_host=True, no_provision=True, teardown=True)
CFG = LabConfig(cluster_name=f"lab two {NASTY}", kind_binary=f"/tmp/x/bin dir/kind {NASTY}",
                kind_config_path=f"/tmp/x/kc dir/kind {NASTY}.yaml", docker_host="unix:///run/user/1000/docker.sock")
CLI = Clis.of(CFG, RERUN)
CLUSTER, NODE, KC = CFG.cluster_name, CFG.node_name, CFG.kind_config_path
SUITE = RERUN.provision()


def parses(fix: str) -> bool:
    return subprocess.run(["bash", "-n"], input=fix, capture_output=True, text=True, timeout=30).returncode == 0


def fake_config(start: Path, options: dict, markexpr: str = "") -> SimpleNamespace:
    """What labcheck.rerun.of and fleet_plugin.rerun_command read of pytest's Config."""
    return SimpleNamespace(invocation_params=SimpleNamespace(dir=start), rootpath=ROOT, stash={},
                           option=SimpleNamespace(markexpr=markexpr),
                           getoption=lambda name, default=None: options.get(name, default))


# --- the command itself -------------------------------------------------------------------------------------------

STUB = "#!/bin/sh\nexec {python} -c 'import json, os, sys; print(json.dumps([os.getcwd(), sys.argv[1:]]))' \"$@\"\n"


def _stub_rerun(tmp_path: Path, **options) -> Rerun:
    """A Rerun whose folder and interpreter are real hostile paths; the interpreter is a stub printing its argv."""
    start = tmp_path / f"start {NASTY}"
    start.mkdir()
    python = tmp_path / f"py {NASTY}" / "python3"
    python.parent.mkdir()
    python.write_text(STUB.format(python=shlex.quote(sys.executable)))
    python.chmod(0o755)
    return Rerun(cwd=str(start), python=str(python), root=f"/srv/dra {NASTY}", lab_config=f"/tmp/l {NASTY}.yaml",
                 **options)


def _run(command: str, cwd: Path) -> tuple[str, list[str]]:
    res = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, (command, res.stderr)
    where, argv = json.loads(res.stdout)
    return where, argv


def test_the_rerun_runs_this_interpreter_in_the_runs_folder_with_its_lab_config(tmp_path):
    r = _stub_rerun(tmp_path, fix_host=True, no_provision=True, teardown=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where, argv = _run(r.provision(), elsewhere)
    assert where == r.cwd  # relative paths of the lab config (kind_config_path) resolve as in the run
    assert argv == ["-m", "pytest", f"/srv/dra {NASTY}/tests_env", f"--lab-config=/tmp/l {NASTY}.yaml", "--fix-host",
                    "-m", "module1"]  # provisioning: no --no-provision, no --teardown
    where, argv = _run(r.again("module0 and not gpu", "--hosts=" + shlex.quote(f"/tmp/h {NASTY}.yaml")), elsewhere)
    assert argv == ["-m", "pytest", f"/srv/dra {NASTY}/tests_env", f"--lab-config=/tmp/l {NASTY}.yaml", "--fix-host",
                    "--no-provision", "--teardown", "-m", "module0 and not gpu", f"--hosts=/tmp/h {NASTY}.yaml"]
    _, argv = _run(r.again("", "-p", "no:xdist", paths=("tests_env/test_module1.py::test_x[a b]",)), elsewhere)
    assert argv[2] == f"/srv/dra {NASTY}/tests_env/test_module1.py::test_x[a b]" and argv[-2:] == ["-p", "no:xdist"]


def test_of_takes_the_runs_own_folder_interpreter_and_lab_config(tmp_path):
    start = tmp_path / "start"
    got = rerun.of(fake_config(start, {"--lab-config": "conf/lab.yaml", "--fix-host": True}))
    assert got == Rerun(cwd=str(start), python=sys.executable, root=str(ROOT),
                        lab_config=str(start / "conf/lab.yaml"), fix_host=True)
    assert rerun.of(fake_config(start, {})).lab_config is None  # no --lab-config and no ./lab.yaml there


# --- module 1's fixes ---------------------------------------------------------------------------------------------

API = "https://127.0.0.1:6443"
SERVER_PS = "  121    61 Sl   nvidia-cuda-mps nvidia-cuda-mps-server\n"  # ps -eo pid,ppid,stat,comm,args


def _node_fixes(ours: bool, cfg: LabConfig = CFG, rerun: Rerun = RERUN) -> dict[str, str]:
    """Every module 1 fix that reruns the suite, deletes the cluster, runs kubectl or names a configured value in
    its note, from the names of ``cfg`` (hostile) and this ``rerun``."""
    cli = Clis.of(cfg, rerun)
    cluster, node, kc = cfg.cluster_name, cfg.node_name, cfg.kind_config_path
    kw = {"cli": cli, "ours": ours}
    dangling = {"/usr/lib/x86_64-linux-gnu/libcuda.so.1": NodeFile("/usr/lib/x86_64-linux-gnu/libcuda.so.1", "",
                                                                   False, "missing")}
    dirs = {f"{d}/libnvidia-ml.so.1": NodeFile(f"{d}/libnvidia-ml.so.1", "", False, "dir") for d in v.DRA_LIB_DIRS}
    unlabelled = ApiFacts(API, True, "", True, True, "", ("v1",), node_labels={})
    gpu = Gpu(0, f"GPU-{'1' * 8}-1111-1111-1111-{'1' * 12}", "H100", (9, 0), "Default")
    ok, boom = CmdResult(("docker",), 0), CmdResult(("docker",), 9, "boom")
    replaced = Outcome(True, "replace", "your config was backed up", backup=kc + ".bak")
    fixes = {
        "regenerate": v.regenerate(kc, cli=cli),
        "recreate": v.recreate_cluster(cluster, kc, **kw),
        "rebuild": v.rebuild(cluster, kc, **kw),
        "node inspect": v.node_running(NodeState(node, False, error="boom"), cluster, kc, cli=cli).remediation,
        "node create": v.node_running(NodeState(node, False), cluster, kc, cli=cli).remediation,
        "node file": v.node_file("libcuda.so.1", ["/usr/lib/x86_64-linux-gnu/libcuda.so.1"], dangling, ok, node,
                                 cluster, kc, **kw).remediation,
        "no mount": v.node_file("libcuda.so.1", [], {}, ok, node, cluster, kc, **kw).remediation,
        "smi": v.nvidia_smi(boom, node, "/usr/bin/nvidia-smi", kc, cli=cli).remediation,
        "gpus": v.gpus_in_node(CmdResult(("docker",), 0, ""), [gpu], node, cluster, kc, **kw).remediation,
        "smi off path": v.workshop_nvidia_smi(CmdResult(("docker",), 127, ""), node, cluster, kc, **kw).remediation,
        "smi libs": v.workshop_nvidia_smi(boom, node, cluster, kc, **kw).remediation,
        "mps path": v.mps_control_on_path(CmdResult(("docker",), 1), node, cluster, kc, **kw).remediation,
        "dra lib": v.dra_library(dirs, ok, node, cluster, kc, **kw).remediation,
        "dra bin": v.dra_binary({}, ok, node, cluster, kc, **kw).remediation,
        "cdi dir": v.cdi_dir_writable(CmdResult(("docker",), 1), NodeState(node, True, True), node, cluster, kc,
                                      **kw).remediation,
        "label": v.gpu_present_label(unlabelled, node, cluster, kc, **kw).remediation,
        "no node": v.gpu_present_label(ApiFacts(API, True, "", False), node, cluster, kc, **kw).remediation,
        "devices": v.node_devices({}, ok, [], node, cluster, kc, **kw).remediation,
        "bad devices": v.node_devices({}, ok, ["/dev/nvidia0"], node, cluster, kc, **kw).remediation,
        "loader": v.node_loader({}, {}, True, "", ["libcuda.so.1"], node, cluster, kc, **kw).remediation,
        "ready": v.k8s_node_ready(ApiFacts(API, True, "", True, False, "NotReady"), node, cluster,
                                  **kw).remediation,
        "api broken": v.k8s_node_ready(ApiFacts(API, False, "500", api_error=True), node, cluster,
                                       **kw).remediation,
        "api down": v.k8s_node_ready(ApiFacts(API, False, "refused"), node, cluster, **kw).remediation,
        "no kubeconfig": v.k8s_node_ready(ApiFacts(kubeconfig_error="no control plane"), node, cluster,
                                          **kw).remediation,
        "kubeconfig": v.k8s_node_ready(ApiFacts(API, kubeconfig_unusable="no server"), node, cluster,
                                       **kw).remediation,
        "resource api": v.resource_api(ApiFacts(API, True, "", True, True, "", ()), "v1", node, cluster, kc,
                                       **kw).remediation,
        "locked": v.setup_locked("held", cfg.state_dir, cli=cli).remediation,
        "seed ps": v.seed_ps_aux(CmdResult(("docker",), 0, "1 nvidia-cuda-mps-control -d\n"), node, "x", cli=cli,
                                 log_dir=cfg.mps_log_dir).remediation,
        "server logs": v.mps_server([], [], "", node, "x", True, cli=cli, log_dir=cfg.mps_log_dir).remediation,
        "server clients": v.mps_server([], [], "no python3", node, "x", True, cli=cli).remediation,
        "server per gpu": v.mps_server(mps.parse_ps(SERVER_PS), [], "", node, "x", True, cli=cli,
                                       gpus=[gpu, gpu]).remediation,
        "pipe conflict": v.shared_pipe_conflict([4242], cfg.mps_pipe_dir, node, cli=cli).remediation,
        "generated": kv.config_generated(Outcome(True, "create", "would write"), [], True, kc, cli=cli).remediation,
        "replaced": kv.config_generated(replaced, [], False, kc, cli=cli).remediation,
        "provisioned": kv.cluster_provisioned(False, "failed", "", cli=cli).remediation,
    }
    return fixes


def _kubectl(cluster: str) -> str:
    """What every kubectl of a module 1 fix starts with (CLI's, up to its arguments)."""
    return CLI.kubectl(cluster, "ARGS").split("ARGS")[0]


def _command(fix: str) -> str:
    """The part of ``fix`` before its note (these fixes have no ``#`` in a command word: names are hostile only in
    the hostile tests below)."""
    return fix.split("#", 1)[0]


@pytest.mark.parametrize("ours", [True, False], ids=["ours", "not-ours"])
def test_every_module1_fix_is_one_command_line_with_this_suite_and_the_clusters_kubeconfig(ours):
    for what, fix in _node_fixes(ours).items():
        assert parses(fix), (what, fix)
        rest = fix.replace(SUITE, "")
        assert "pytest" not in rest, f"{what}: a pytest that is not this run's: {fix}"
        assert "kubectl" not in fix.replace(_kubectl(CLUSTER), ""), f"{what}: kubectl not with kind's kubeconfig: {fix}"
        if "delete cluster" in fix and ours:
            assert v.NOT_OURS not in fix, (what, fix)
        elif "delete cluster" in fix:  # not the suite's: only after '#', after what keeps it, as the user's choice
            note = fix.split("#", 1)[1]
            assert "delete" not in _command(fix), (what, fix)
            assert note.index(v.NOT_OURS) < note.index("set another cluster_name") < note.index(v.LOST) \
                < note.index("delete cluster"), (what, fix)
    for what in ("recreate", "rebuild", "smi off path", "loader", "resource api"):  # deleting is the whole fix
        fix = _node_fixes(ours)[what]
        looks = f"{CLI.docker} ps -a --filter {shlex.quote('label=io.x-k8s.kind.cluster=' + CLUSTER)}   # "
        deletes = f"{CLI.kind} delete cluster --name {shlex.quote(CLUSTER)} && "
        assert fix.startswith(deletes if ours else looks), (what, fix)
    reruns = [w for w, f in _node_fixes(False).items() if SUITE in f]
    assert len(reruns) >= 15, reruns


def test_the_gpu_label_fix_labels_the_node_of_the_configured_cluster():
    """The audit's case: `kubectl label node ... --overwrite` went to the current context, whatever cluster that is."""
    fix = _node_fixes(True)["label"]
    assert fix.startswith(f"{_kubectl(CLUSTER)}label node {shlex.quote(NODE)} ")


# A program that exists nowhere: a fix runs it (or hands it over as a word of its own) only if a value got out of
# its quotes or its note. Each value is one a lab.yaml or a run's folder can hold (cluster_name is kept as written
# even when invalid; kind_config_path and state_dir may be any path, relative ones may start with '-').
PWNED = "labcheck-pwned"
HOSTILE = {
    "newline": f"lab\n{PWNED} newline",
    "newline, rest commented": f"lab\n{PWNED} hidden #\n",  # main ran this one: the # shuts the quote left open
    "carriage return": f"lab\r{PWNED} cr",
    "hash": f"lab #{PWNED} hash",
    "leading dash": f"-lab --{PWNED}",
    "quotes": f"it's \"q\" \\ $({PWNED} subst) `{PWNED} tick` ${{HOME}}",
    "separators": f"a; {PWNED} semi && {PWNED} and | {PWNED} pipe & {PWNED} bg",
    "unicode": "d\u00e9j\u00e0 vu\u2028\u202e\x1b[201~\x7f\u00a0",
}
PATH_TOOLS = {"ls", "diff", "mkdir", "rm", "mv", "cat", "tail", "install", "chmod", "cp", "ln"}


def _hostile(value: str) -> tuple[LabConfig, Rerun]:
    """A lab config and a run whose names all hold ``value``. The programs (kind_binary, the rerun's python) are
    named without '/', so that the dry run (tests.shell_text.ran) records them."""
    cfg = LabConfig(cluster_name=value, kind_binary=f"kind {value}", kind_config_path=value + ".yaml",
                    state_dir=value + "-state", mps_pipe_dir=f"/tmp/{value}", mps_log_dir=f"/var/log/{value}")
    return cfg, Rerun(cwd=f"/tmp/{value}", python=f"python3 {value}", root=f"/srv/{value}",
                      lab_config=f"/tmp/{value}/lab.yaml")


def assert_contained(fix: str, value: str, tmp_path: Path, kind: str = "") -> list[list[str]]:
    """``fix``, made from the hostile ``value``, is one line bash parses whose every control character is quoted,
    and bash, walking both sides of each && and ||, runs nothing of the value (labcheck-pwned is never a command nor
    a word of its own); each path tool gets a leading-dash value after ``--``; each kubectl the kubeconfig that
    ``kind`` (the configured binary) printed for the cluster. Returns the commands of the && walk."""
    assert parses(fix), fix
    assert not shell_text.unquoted_controls(fix), (shell_text.unquoted_controls(fix), fix)
    walks = [shell_text.ran(fix, rc, str(tmp_path)) for rc in (0, 1)]
    for records in walks:
        assert records, fix
        for r in records:
            assert not any(w == PWNED or w.startswith(PWNED + " ") for w in r), (r, fix)
            if r[0] in PATH_TOOLS:
                dashed = [i for i, w in enumerate(r) if w.startswith("-") and "lab" in w]
                assert all("--" in r[:i] for i in dashed), (r, fix)
            if r[0] == "kubectl":
                assert "--kubeconfig" in r and [kind, "get", "kubeconfig", "--name", value] in records, (r, fix)
    assert not list(tmp_path.iterdir()), fix  # no output redirection landed in the folder it ran in
    return walks[0]


@pytest.mark.parametrize("ours", [True, False], ids=["ours", "not-ours"])
@pytest.mark.parametrize("what", HOSTILE)
def test_no_hostile_value_gets_out_of_a_module1_fix(what, ours, tmp_path):
    """Every module 1 fix (labcheck.verdicts.node, kindconfig, the cluster step), built from a lab config and a run
    folder that hold the value: the value stays in its quotes or, after '#', escaped (labcheck.remedy.note_text);
    a cluster the suite did not create is never deleted, one it did is deleted by its own name."""
    value = HOSTILE[what]
    cfg, rerun = _hostile(value)
    kind = cfg.kind_binary
    fixes = _node_fixes(ours, cfg, rerun)
    for name, fix in fixes.items():
        records = assert_contained(fix, value, tmp_path, kind)
        deletes = [r for r in records if r[1:3] == ["delete", "cluster"]]
        assert not deletes if not ours else all(r == [kind, "delete", "cluster", "--name", value] for r in deletes), \
            (name, deletes, fix)
    for name in ("recreate", "rebuild"):  # the suite's own cluster: deleted, then made again from the same names
        deleted = [r for r in shell_text.ran(fixes[name]) if r[1:3] == ["delete", "cluster"]]
        assert deleted == ([[kind, "delete", "cluster", "--name", value]] if ours else []), (name, fixes[name])
    rebuilt = shell_text.ran(fixes["rebuild"])
    assert rebuilt[-1][:4] == [rerun.python, "-m", "pytest", f"/srv/{value}/tests_env"] if ours else \
        rebuilt == [["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={value}"]], rebuilt


@pytest.mark.parametrize("what", HOSTILE)
def test_no_hostile_value_gets_out_of_the_cluster_steps_fixes(what, tmp_path, monkeypatch):
    value = HOSTILE[what]
    cfg, rerun = _hostile(value)
    cfg = dataclasses.replace(cfg, state_dir=str(tmp_path / "state"))
    out = tmp_path / "out"
    for action in ("error", "blocked"):
        out.mkdir()
        monkeypatch.setattr(cluster_action, "plan", lambda *a, _act=action: cluster_action.ClusterPlan(
            value, _act, "why"))
        fix = cluster_action.apply(cfg, cfg.kind_config_path, rerun=rerun).remediation
        records = assert_contained(fix, value, out, cfg.kind_binary)
        assert not [r for r in records if "delete" in r], fix
        out.rmdir()


def test_the_kind_config_problems_rerun_this_suite(tmp_path):
    bad = kindconfig.parse("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: 5\n", KC, RERUN)
    missing = kindconfig.load(tmp_path / "none.yaml", RERUN)
    gone = tmp_path / "libcuda.so.1"
    layout = kindconfig.parse(f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
                              f"  extraMounts:\n  - hostPath: {gone}\n    containerPath: /usr/lib/libcuda.so.1\n",
                              KC, RERUN)
    files, _ = kindconfig.missing_host_paths(layout)
    fixes = [p.fix for p in (*bad.problems, *missing.problems, *kindconfig.layout_problems(layout), *files)]
    assert len(fixes) >= 5
    for fix in fixes:
        assert parses(fix) and SUITE in fix and "pytest" not in fix.replace(SUITE, ""), fix


@pytest.mark.parametrize("what", HOSTILE)
def test_no_hostile_value_gets_out_of_the_kind_config_problems(what, tmp_path):
    """labcheck.kindconfig's fixes (a bad or missing config, a layout the workshop cannot use, a hostPath gone)
    from a run whose folder and lab config hold the value, and a config whose hostPaths hold it: the "load the
    driver, then rerun" fix used to put the rerun, the run's folder and all, after '#' raw."""
    value = HOSTILE[what]
    _, rerun = _hostile(value)
    kc = str(tmp_path / "kind.yaml")
    bad = kindconfig.parse("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: 5\n", kc, rerun)
    missing = kindconfig.load(tmp_path / "none.yaml", rerun)
    mounts = "".join(f"  - hostPath: {json.dumps(host)}\n    containerPath: {node}\n" for host, node in (
        (f"/nonexistent/{value}/libcuda.so.1", "/usr/lib/libcuda.so.1"), (f"/nonexistent/{value}/cdi", "/etc/cdi"),
        (f"{value}/pipe", "/tmp/nvidia-mps"), (f"/tmp/{value}/x", "/x"), (f"{value}/y", "/y")))
    layout = kindconfig.parse(f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
                              f"  extraMounts:\n{mounts}", kc, rerun)
    assert not layout.problems, layout.problems
    files, dirs = kindconfig.missing_host_paths(layout, "/tmp/nvidia-mps")
    problems = [*bad.problems, *missing.problems, *kindconfig.layout_problems(layout), *files, *dirs]
    assert len(problems) >= 10 and len(dirs) == 4, problems
    out = tmp_path / "out"
    out.mkdir()
    for problem in problems:
        assert_contained(problem.fix, value, out)


def test_the_cluster_steps_fixes_rerun_this_suite_and_warn_before_deleting_a_cluster_not_ours(tmp_path, monkeypatch):
    cfg = LabConfig(cluster_name=CLUSTER, kind_binary=CFG.kind_binary, state_dir=str(tmp_path / "state"))
    for action, expected in (("error", SUITE), ("blocked", v.NOT_OURS)):
        monkeypatch.setattr(cluster_action, "plan", lambda *a, _act=action: cluster_action.ClusterPlan(
            CLUSTER, _act, "why"))
        out = cluster_action.apply(cfg, KC, rerun=RERUN)
        assert not out.ok and parses(out.remediation) and expected in out.remediation, out
        if action == "blocked":  # never the suite's: a look first, the delete only after '#', as the user's choice
            command, note = out.remediation.split("#", 1)
            assert "delete" not in command and command.startswith(f"{Clis.of(cfg).docker} ps -a "), out
            assert note.index(v.NOT_OURS) < note.index(v.LOST) < note.index("delete cluster"), out
            assert SUITE in note  # keeping it: another cluster_name, then this suite again


def test_module1_checks_pass_the_suite_and_the_ownership_to_every_verdict():
    """tests_env/test_module1.py: a verdict called without ``cli=`` prints ``python3 -m pytest tests_env`` without
    the run's lab config; one without ``ours=`` treats every cluster as not the suite's."""
    source = ROOT / "tests_env" / "test_module1.py"
    modules = {"v": v, "kv": kv}
    missing = []
    for call in ast.walk(ast.parse(source.read_text())):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name) and call.func.value.id in modules):
            continue
        params = inspect.signature(getattr(modules[call.func.value.id], call.func.attr)).parameters
        given = {k.arg: k.value for k in call.keywords}
        for name, fixture in (("cli", "m1_clis"), ("ours", "cluster_owned")):
            if name in params and not (isinstance(given.get(name), ast.Name) and given[name].id == fixture):
                missing.append(f"line {call.lineno}: {call.func.value.id}.{call.func.attr} without {name}={fixture}")
    assert not missing


# --- the report's records -----------------------------------------------------------------------------------------

def test_the_records_of_checks_not_run_rerun_this_suite():
    recs = [results.not_run_record("h", "module1", "tests_env/test_module1.py::test_a", RERUN),
            results.not_reached_record("h", "module0", "tests_env/test_module0.py::test_b", "stopped", None, RERUN),
            results.collect_error_record("h", "module1", "tests_env/test_module1.py", "ImportError", RERUN)]
    for rec in recs:
        fix = rec["remediation"]
        assert parses(fix), fix
        assert fix.startswith(f"cd {shlex.quote(RERUN.cwd)} && {shlex.quote(RERUN.python)} -m pytest "), fix
        assert "--lab-config=" + shlex.quote(RERUN.lab_config) in fix
    assert "--no-provision" in recs[0]["remediation"]  # the same run again: its switches kept
    assert shlex.quote(f"/srv/dra {NASTY}/tests_env/test_module1.py") in recs[2]["remediation"]


# --- the fleet ----------------------------------------------------------------------------------------------------

def test_the_fleet_rerun_is_parsed_by_pytest_from_any_folder(tmp_path):
    """`--hosts PATH` (the old fix) is not an option pytest knows from the project folder: a separate value is taken
    for a test path first. The fix writes `--hosts=PATH` and `--fleet-host=NAME` and runs from anywhere."""
    start, elsewhere = tmp_path / f"start {NASTY}", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    inventory = start / f"hosts {NASTY}.yaml"
    inventory.write_text("hosts:\n  - name: h1\n    ssh: root@127.0.0.1\n")
    (start / "lab.yaml").write_text("min_kernel: '6.1'\n")
    config = fake_config(start, {"--lab-config": "lab.yaml"}, markexpr="module0 and not gpu")
    fix = fleet_plugin.for_host(fleet_plugin.rerun_command(config, inventory.name), "h1")
    assert f"--hosts={shlex.quote(str(inventory))}" in fix and fix.endswith("--fleet-host=h1"), fix
    assert f"--lab-config={shlex.quote(str(start / 'lab.yaml'))}" in fix
    env = {**os.environ, "PYTEST_ADDOPTS": "--collect-only -q"}  # parse and collect; run no host
    res = subprocess.run(["bash", "-c", fix], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "tests_env/test_module0.py::test_linux_kernel_version" in res.stdout
    old = subprocess.run([sys.executable, "-m", "pytest", "--hosts", str(inventory), "-m", "module0", "--collect-only"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "unrecognized arguments: --hosts" in old.stderr  # what the old form did, from the project folder itself


HOST = Host(name="h1", ssh="ubuntu@10.0.0.5", port=2222)


def _answer(**info) -> CmdResult:
    doc = {"version": [3, 11, 2], "executable": "/usr/bin/python3", "missing": ["xdist", "execnet"], "error": "",
           "foreign": [], "workdir": "/home/ubuntu/.dra-labcheck-fleet/h1", **info}
    return CmdResult(("ssh",), 0, fleet_probe.MARK + json.dumps(doc) + "\n")


def _remote(fix: str) -> str:
    """The command the fix runs on the host: the last word of the ssh command line."""
    return shlex.split(fix, comments=True)[-1]


@pytest.mark.parametrize("what", ["hash", "quotes", "unicode"])  # the inventory refuses white space in python:
def test_the_venv_fixes_note_the_inventorys_python_without_letting_it_out(what, tmp_path):
    value = HOSTILE[what].replace(" ", "")
    host = Host(name="h1", ssh="ubuntu@10.0.0.5", python=f"python3{value}")
    for info in ({"ensurepip": True}, {"apt": True}, {}):
        answer = _answer(managed=True, pip=False, home="/home/ubuntu", **info)
        fix = fleet_probe.classify(host, answer).remediation
        records = assert_contained(fix, value, tmp_path)
        assert records[0][0] == "ssh" and len(records) == 1, records


def test_missing_packages_on_a_managed_system_python_go_into_a_venv_named_in_the_inventory():
    """Debian 12's python3 refuses `pip install` (externally-managed-environment): a venv, then `python:`."""
    answer = _answer(venv=False, managed=True, pip=True, ensurepip=False, apt=True, root=False, home="/home/ubuntu")
    fix = fleet_probe.classify(HOST, answer).remediation
    assert parses(fix) and fix.startswith("ssh -t -p 2222 ubuntu@10.0.0.5 "), fix  # sudo may ask for a password
    remote = _remote(fix)
    assert parses(remote) and remote.startswith("sudo apt-get install -y python3-venv && python3 -m venv "), remote
    assert "/home/ubuntu/.dra-labcheck-venv/bin/python -m pip install " in remote
    assert set(fleet_probe.REMOTE_MODULES.values()) <= set(remote.split())  # a fresh venv has none of them
    assert "python: /home/ubuntu/.dra-labcheck-venv/bin/python" in fix.split("#", 1)[1]
    as_root = fleet_probe.classify(HOST, _answer(managed=True, ensurepip=False, apt=True, root=True, home="/root"))
    assert _remote(as_root.remediation).startswith("apt-get install -y python3-venv && ")
    assert " -t " not in as_root.remediation
    in_venv = fleet_probe.classify(HOST, _answer(venv=True, managed=True, pip=True, home="/home/ubuntu"))
    assert _remote(in_venv.remediation) == "python3 -m pip install execnet pytest-xdist"


def test_the_ssh_client_and_python_fixes_ask_for_root_the_way_that_works():
    missing = CmdResult(("ssh",), None, missing=True)
    assert fleet_probe.classify(HOST, missing, Shell(root=True, distro="debian")).remediation == \
        "apt-get install -y openssh-client"  # a root controller may have no sudo
    assert fleet_probe.classify(HOST, missing, Shell(root=False)).remediation == \
        "sudo apt-get install -y openssh-client"
    # the host's package manager is picked there, when the line runs (remedy.install_with_any): sudo for a user
    pick = install_with_any(fleet_probe.PYTHON, "Python 3")
    no_python = fleet_probe.classify(HOST, CmdResult(("ssh",), 127, "", "python3: not found")).remediation
    assert shlex.split(no_python.partition("   #")[0]) == ["ssh", "-t", "-p", "2222", "ubuntu@10.0.0.5",
                                                           f"sudo {pick}"], no_python
    root_host = Host(name="r", ssh="root@10.0.0.6")
    root_fix = fleet_probe.classify(root_host, CmdResult(("ssh",), 127, "")).remediation
    assert shlex.split(root_fix.partition("   #")[0]) == ["ssh", "root@10.0.0.6", pick], root_fix


SYSTEM_PYTHON = "/usr/bin/python3"


def _managed_system_python() -> str | None:
    """Why the system Python cannot show PEP 668 here (None when it can)."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"no {SYSTEM_PYTHON}"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip, os, sysconfig; print(os.path.isfile("
                            "os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} has no ensurepip (python3-venv)"
    return None if probe.stdout.strip() == "True" else f"{SYSTEM_PYTHON} is not externally managed (PEP 668)"


@pytest.mark.slow
def test_the_venv_fix_works_on_this_machines_managed_python(tmp_path):
    """Real: the probe script under Debian 12's python3 (EXTERNALLY-MANAGED) in a login folder of its own; the
    command the fix runs on the host, run here (without the ssh transport); then the probe again under the python
    the fix says to put in the inventory: nothing missing."""
    why = _managed_system_python()
    if why:
        pytest.skip(why)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    host = Host(name="h1", ssh="root@127.0.0.1", python=SYSTEM_PYTHON, workdir=str(tmp_path / "work"))

    def probe(python: str) -> fleet_probe.ProbeResult:
        res = subprocess.run([python, "-c", fleet_probe.script(host)], cwd=home, env=env, capture_output=True,
                             text=True, timeout=60)
        return fleet_probe.classify(host, CmdResult((python,), res.returncode, res.stdout, res.stderr))

    first = probe(SYSTEM_PYTHON)
    if first.status == fleet_probe.OK:
        pytest.skip(f"{SYSTEM_PYTHON} already has the suite's packages")
    assert first.status == fleet_probe.MISSING_PACKAGES and " -m venv " in first.remediation, first
    pip = subprocess.run([SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", "execnet"], env=env,
                         capture_output=True, text=True, timeout=120)
    # What the old fix (pip install into the system python) ran into: PEP 668's refusal, or, where python3-pip is
    # not installed (a fresh Debian with python3-venv only), no pip at all.
    assert re.search(r"externally-managed-environment|No module named pip", pip.stderr), pip.stderr
    installed = subprocess.run(["sh", "-c", _remote(first.remediation)], cwd=home, env=env, capture_output=True,
                               text=True, timeout=600)
    if installed.returncode != 0 and re.search(r"No matching distribution|Could not find a version", installed.stderr):
        pytest.skip(f"no package source for pip here: {installed.stderr.strip().splitlines()[-1]}")
    assert installed.returncode == 0, installed.stderr[-2000:]
    python = re.search(r"python: (\S+)", first.remediation.split("#", 1)[1])[1]
    assert python == f"{home}/{fleet_probe.HOST_VENV}/bin/python"
    assert probe(python).status == fleet_probe.OK
    shutil.rmtree(home / fleet_probe.HOST_VENV)


# --- a real run -----------------------------------------------------------------------------------------------------

def test_a_pasted_rerun_fix_runs_the_same_lab_config_from_another_folder(tmp_path):
    """A real run with --lab-config (hostile folder names) whose kind config check fails: its fix, pasted into bash
    in another folder, runs this interpreter on the same lab config, from the run's folder (the kind config is a
    path relative to it), not the default cluster. PYTEST_ADDOPTS narrows the pasted run to two checks and keeps it
    from provisioning, without touching the pasted text."""
    start, elsewhere = tmp_path / f"run {NASTY}", tmp_path / "elsewhere"
    (start / "manifests").mkdir(parents=True)
    elsewhere.mkdir()
    (start / "manifests" / "bad kind.yaml").write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: 5\n")
    lab = tmp_path / f"cfg {NASTY}" / "lab.yaml"
    lab.parent.mkdir()
    lab.write_text(f"cluster_name: lab-2\nkind_config_path: manifests/bad kind.yaml\nstate_dir: {tmp_path}/state\n"
                   "not_a_key: 1\n")

    def records(out: Path) -> dict[str, dict]:
        return {r["check"]: r for r in json.loads(out.read_text())["records"]}

    out1 = tmp_path / "first.json"
    subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests_env"), "-m", "module1", "--no-provision",
                    f"--lab-config={lab}", "-k", "kind_config_valid", f"--results-json={out1}", "-p",
                    "no:cacheprovider"], cwd=start, capture_output=True, text=True, timeout=300)
    first = records(out1)["kind_config_valid"]
    assert first["verdict"] == "fail" and "manifests/bad kind.yaml:3" in first["message"], first
    fix = first["remediation"]
    assert parses(fix) and shlex.quote(sys.executable) in fix and f"--lab-config={shlex.quote(str(lab))}" in fix

    out2 = tmp_path / "pasted.json"
    env = {**os.environ, "PYTEST_ADDOPTS": f"--no-provision -k 'kind_config_valid or lab_config_valid' "
                                           f"--results-json={out2} -p no:cacheprovider"}
    pasted = subprocess.run(["bash", "-c", fix], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert out2.exists(), pasted.stdout + pasted.stderr
    again = records(out2)
    # the same kind config, found from the run's folder through the same lab config
    assert again["kind_config_valid"]["message"] == first["message"]
    assert again["kind_config_valid"]["remediation"] == fix  # the same interpreter, folder, lab config
    lab_check = again["lab_config_valid"]
    assert lab_check["verdict"] == "fail" and str(lab) in lab_check["message"] and "not_a_key" in lab_check["message"]
