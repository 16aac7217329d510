"""Module 1 verdicts on outputs captured in the node container on the GPU host (tests/data/h100-docker)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labcheck import cmd, mps
from labcheck.cmd import CmdResult
from labcheck.config import LabConfig
from labcheck.kindconfig import NodePaths
from labcheck.node import cuda_client
from labcheck.probes import kube
from labcheck.probes import node as nodeprobe
from labcheck.probes.gpu import Gpu
from labcheck.probes.mps import ClientRun
from labcheck.probes.node import NodeFile, NodeState, parse_df_k, parse_loader_list
from labcheck.remedy import Shell
from labcheck.verdicts import node as v
from setup_actions import node_mps
from tests import needs
from tests.captures import blocks, first
from tests.module1_calls import verdict_calls_without
from tests.shell_fix import HOSTILE_NAMES, marked_words, parses, words

NODE = "workshop-dra-control-plane"
CLUSTER = "lab-b"  # not the workshop default: fixes must use the configured name
CAPS = blocks("h100-docker/node-captures.txt")
PS_RUNNING, DF, SMI, _READLINK, SERVER_LIST, CLIENT, _START_NO_ENV, PS_KILLED, LIST_KILLED = CAPS
START = "docker exec ... nvidia-cuda-mps-control -d"


def res(cap, argv=("docker", "exec")) -> CmdResult:
    return CmdResult(tuple(argv), cap.rc, cap.output)


def test_captures_are_the_expected_commands():
    assert "ps -o" in PS_RUNNING.command and "df -k" in DF.command and "nvidia-smi" in SMI.command
    assert "python3" in CLIENT.command and "ps -o" in PS_KILLED.command and LIST_KILLED.rc == 1


def test_mps_control_and_server_pass_on_the_node_with_daemon_and_server():
    procs = mps.parse_ps(PS_RUNNING.output)
    control = v.mps_control(procs, res(PS_RUNNING), NODE, START)
    assert control.status == "pass" and "PID 61" in control.message
    pids = mps.parse_server_list(SERVER_LIST.output)
    assert pids == [121]
    server = v.mps_server(procs, pids, "", NODE, START, daemon_running=True)
    assert server.status == "pass" and "PID 121" in server.message and "get_server_list: 121" in server.message


def test_killed_daemon_fails_both_checks_with_the_start_command():
    procs = mps.parse_ps(PS_KILLED.output)
    assert mps.control_daemons(procs) == [] and mps.servers(procs) == []  # the server is a zombie now
    control = v.mps_control(procs, res(PS_KILLED), NODE, START)
    assert control.status == "fail" and control.remediation == START
    assert mps.NO_DAEMON in LIST_KILLED.output and mps.parse_server_list(LIST_KILLED.output) == []
    server = v.mps_server(procs, [], "", NODE, START, daemon_running=False)
    assert server.status == "fail" and "no MPS control daemon" in server.message


def test_orphaned_server_without_daemon_is_named():
    procs = [p for p in mps.parse_ps(PS_RUNNING.output) if "control" not in p.args]
    verdict = v.mps_server(procs, [], "", NODE, START, daemon_running=False)
    assert verdict.status == "fail" and "orphaned server, PID 121" in verdict.message


def test_daemon_without_server_fails_when_no_client_could_run_or_the_client_failed():
    """Issue 9 item 7: with a running node, 'no client could run' is not a skip (it was: READY carried it)."""
    procs = mps.parse_ps(first("h100-host/mps-ps-daemon-only.txt").output)
    assert v.mps_control(procs, CmdResult(("ps",), 0), NODE, START).status == "pass"
    verdict = v.mps_server(procs, [], cuda_client.host_reach(""), NODE, START, daemon_running=True)
    assert verdict.status == "fail" and "no python3" in verdict.message
    out = "cuInit 304\n"  # the real failure of a client joined to the node's namespaces (h200-module1/proof.log)
    failed_client = ClientRun("/tmp/nvidia-mps", True, (), tuple(mps.parse_client_steps(out)), 900, False, 3,
                              output=out, gpu=Gpu(0, "GPU-0", "NVIDIA H100", (9, 0), "Default"))
    verdict = v.mps_server(procs, [], "", NODE, START, True, clients=(failed_client,))
    assert verdict.status == "fail" and "cuInit returned 304" in verdict.message and "server.log" in verdict.remediation


def test_client_capture_from_the_node_is_a_success():
    steps = mps.parse_client_steps(CLIENT.output)
    assert mps.first_failed_step(steps) is None
    assert [ln.split()[0] for ln in CLIENT.output.splitlines() if ln.startswith("cu")][-5:] == [
        "cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuCtxCreate_v2", "cuCtxDestroy_v2"]


def test_shm_from_df_in_the_node():
    size = parse_df_k(DF.output)
    assert size == 134217728 * 1024
    assert v.shm(size, 8 * 1024**3, res(DF), NODE).status == "pass"
    small = v.shm(64 * 1024**2, 8 * 1024**3, res(DF), NODE)
    assert small.status == "fail" and "0.06 GiB" in small.message and "/dev/shm" in small.remediation
    assert parse_df_k(first("h100-host/df-shm.txt").output) == 134217728 * 1024


def test_nvidia_smi_in_the_node():
    ok = v.nvidia_smi(res(SMI), NODE, "/usr/local/nvidia/bin/nvidia-smi")
    assert ok.status == "pass" and "580.159.04" in ok.message
    inforom = CmdResult(("nvidia-smi",), 14, SMI.output, "WARNING: infoROM is corrupted at gpu 0000:00:06.0")
    assert v.nvidia_smi(inforom, NODE, "nvidia-smi").status == "pass"  # the workshop counts exit 14 as working
    broken = CmdResult(("nvidia-smi",), 127, "", "error while loading shared libraries: libnvidia-ml.so.1")
    verdict = v.nvidia_smi(broken, NODE, "/usr/local/nvidia/bin/nvidia-smi")
    assert verdict.status == "fail" and "libnvidia-ml.so.1" in verdict.message


def test_node_file_verdicts():
    ok = {"/l/libcuda.so.1": NodeFile("/l/libcuda.so.1", "/l/libcuda.so.580", True)}
    assert v.node_file("libcuda.so.1", ["/l/libcuda.so.1"], ok, CmdResult(("x",), 0), NODE, "c", "k.yaml"
                       ).status == "pass"
    bad = {"/l/libcuda.so.1": NodeFile("/l/libcuda.so.1", "/l/libcuda.so.580", False)}
    verdict = v.node_file("libcuda.so.1", ["/l/libcuda.so.1"], bad, CmdResult(("x",), 0), NODE, "c", "k.yaml")
    assert verdict.status == "fail" and "kind delete cluster --name c" in verdict.remediation
    none = v.node_file("libcuda.so.1", [], {}, CmdResult(("x",), 0), NODE, "c", "k.yaml")
    assert none.status == "fail" and "mounts no libcuda.so.1" in none.message


def test_node_running_verdicts():
    assert v.node_running(NodeState(NODE, True, True, "running"), "c", "k").status == "pass"
    stopped = v.node_running(NodeState(NODE, True, False, "exited"), "c", "k")
    assert stopped.status == "fail" and stopped.remediation == f"docker start {NODE}"
    missing = v.node_running(NodeState(NODE, False), "workshop-dra", "manifests/kind-config.yaml")
    assert missing.remediation == "kind create cluster --name workshop-dra --config manifests/kind-config.yaml"


def test_shared_pipe_dir_conflict():
    assert v.shared_pipe_conflict([], "/tmp/nvidia-mps", NODE).status == "pass"
    verdict = v.shared_pipe_conflict([3793], "/tmp/nvidia-mps", NODE)
    assert verdict.status == "fail" and "3793" in verdict.message and "quit" in verdict.remediation


def test_shared_pipe_dir_check_does_not_pass_when_host_ps_failed():
    """No daemon read from a ``ps`` that did not run is no evidence: it must not pass "no host daemon"."""
    ps = cmd.run(["/nonexistent/ps-vacuous", "-ww", "-eo", "pid,ppid,stat,comm,args"], timeout=5)  # a real failure
    verdict = v.shared_pipe_conflict([], "/tmp/nvidia-mps", NODE, ps)
    assert verdict.status == "fail" and "cannot list host processes" in verdict.message
    assert "ps -eo pid,args" in verdict.remediation
    ok = cmd.run(["true"], timeout=5)
    assert v.shared_pipe_conflict([], "/tmp/nvidia-mps", NODE, ok).status == "pass"


def test_host_daemon_scan_returns_the_ps_it_read():
    """Probe on this machine's real ``ps``: the result travels with the (here empty) daemon list."""
    needs.skip_unless("ps")
    daemons, res = nodeprobe.host_daemon_scan("/nonexistent/vacuous-pipe", "no-such-container", 10)
    assert res.ok and res.stdout.strip(), res.describe()
    assert daemons == []


def test_kubernetes_verdicts_fail_when_the_node_runs_without_an_api_and_judge_with_one():
    """These checks only run once the node container runs: no API then is a broken cluster, not a skip."""
    down = kube.ApiFacts("https://127.0.0.1:9", False, "no API server answers at 127.0.0.1:9 (Connection refused)")
    ready = v.k8s_node_ready(down, NODE, CLUSTER)
    assert ready.status == "fail" and "its Kubernetes API does not answer" in ready.message
    assert "no API server answers at 127.0.0.1:9" in ready.message and "docker logs" in ready.remediation
    assert v.resource_api(down, "v1", NODE, CLUSTER, "k.yaml").status == "fail"
    no_kubeconfig = v.k8s_node_ready(kube.ApiFacts(kubeconfig_error="could not locate any control plane"), NODE,
                                     CLUSTER)
    assert no_kubeconfig.status == "fail" and "kind gives no kubeconfig" in no_kubeconfig.message
    assert no_kubeconfig.remediation.startswith(f"(kc=$(mktemp) && trap 'rm -f -- \"$kc\"' EXIT && kind get "
                                                f"kubeconfig --name {CLUSTER} >")
    up = kube.ApiFacts("https://127.0.0.1:6443", True, "", True, False, "KubeletNotReady: cni plugin not initialized",
                       ("v1beta1",))
    assert "cni plugin" in v.k8s_node_ready(up, NODE, CLUSTER).message
    verdict = v.resource_api(up, "v1", NODE, CLUSTER, "my dir/kind.yaml", ours=True)
    assert verdict.status == "fail" and "v1beta1" in verdict.message
    # G: the fix names the configured cluster and config, shell-quoted (it used to say workshop-dra always)
    assert f"kind delete cluster --name {CLUSTER}" in verdict.remediation
    assert "'my dir/kind.yaml'" in verdict.remediation


def test_kubeconfig_secrets_are_redacted_and_server_read():
    kc = ("clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n"
          "    certificate-authority-data: QUJDREVGR0hJSktMTU5PUA==\n"
          "users:\n- user:\n    client-key-data: S0VZS0VZS0VZS0VZS0VZS0VZ\n")
    assert kube.server_of(kc) == ("https://127.0.0.1:6443", "")
    msg = kube.redact("bad key S0VZS0VZS0VZS0VZS0VZS0VZ near https://127.0.0.1:6443", kc)
    assert "S0VZ" not in msg and "https://127.0.0.1:6443" in msg
    assert kube.tcp_answers("127.0.0.1", 9, 2.0).startswith("no API server answers")


KUBECONFIG = ("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {server}\n  name: c\n"
              "contexts:\n- context:\n    cluster: c\n    user: u\n  name: x\ncurrent-context: x\n{users}")


@pytest.mark.parametrize("server, why", [
    ("'https://127.0.0.1:99999'", "Port out of range"),
    ("'https://[::1'", "Invalid IPv6 URL"),
    ("'https://host:abc'", "Port could not be cast"),
    ("'https://" + "x" * 300 + "'", "label too long"),  # idna: the resolver would raise UnicodeError
    ("'https://" + "\u00e9" * 70 + ".example'", "idna"),
    ("'ftp://127.0.0.1'", "not an http(s) URL"),
    ("'https://:6443'", "names no host"),
    ("6443", "no clusters[0].cluster.server"),  # wrong YAML types: a number, a list where a URL string belongs
    ("[https://127.0.0.1:6443]", "no clusters[0].cluster.server"),
])
def test_a_kubeconfig_whose_server_url_is_unusable_fails_the_api_checks_with_a_fix(server, why):
    """audit-m1 item 7: what `kind get kubeconfig` prints is tool output: a server URL no connection can be made to
    (urllib's ValueError, idna's UnicodeError) is a failing check that says so, never an error in setup."""
    facts = kube.api_facts(KUBECONFIG.format(server=server, users=""), NODE, timeout=2)
    assert not facts.reachable and not facts.api_error and why in facts.kubeconfig_unusable, facts
    cluster = "lab; x"
    for verdict in (v.k8s_node_ready(facts, NODE, cluster), v.resource_api(facts, "v1", NODE, cluster, "k.yaml"),
                    v.gpu_present_label(facts, NODE, cluster, "k.yaml")):
        assert verdict.status == "fail" and "kubeconfig kind gives for it is not usable" in verdict.message
        assert why in verdict.message
        assert verdict.remediation.startswith("kind get kubeconfig --name 'lab; x' | grep 'server:'"), verdict


def test_an_unusable_server_url_is_shown_on_one_line_and_bounded():
    """The URL is kind's output: fsio.shown quotes it, cuts a long one saying its length, escapes a control
    character (urlparse keeps an escape sequence; it used to be cut at 120 with no mark, then quoted)."""
    url = "ftp://" + "h." * 150
    assert kube.address_of(url) == ("", 0, f"its server URL '{url[:104]}... (306 characters) is not an http(s) URL")
    host, port, why = kube.address_of("ftp://a/\x1b[2J\nb")
    assert why == "its server URL 'ftp://a/\\x1b[2J\\nb' is not an http(s) URL" and why.isprintable()


@pytest.mark.parametrize("text, why", [
    ("clusters: [", "not valid YAML (line 1)"),
    ("[1, 2]", "no clusters[0].cluster.server"),
    ("clusters: {a: 1}", "no clusters[0].cluster.server"),
    ("clusters:\n- cluster: https://127.0.0.1:6443\n", "no clusters[0].cluster.server"),
])
def test_a_kubeconfig_of_the_wrong_shape_names_no_server(text, why):
    server, problem = kube.server_of(text)
    assert server == "" and why in problem


@pytest.mark.parametrize("users", ["users: 5\n", "users:\n- name: u\n  user: 5\n",
                                   "users:\n- name: u\n  user:\n    client-key-data: 7\n"])
def test_a_kubeconfig_the_client_cannot_load_is_unusable_not_a_broken_api(users):
    """Wrong YAML types where the kubernetes client reads credentials: the client raises TypeError while loading.
    That is the kubeconfig's fault, not an API server's that "accepts connections but its requests fail"."""
    listener = socket.create_server(("127.0.0.1", 0))  # something accepts TCP at the server's port
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        facts = kube.api_facts(KUBECONFIG.format(server=url, users=users), NODE, timeout=2)
    finally:
        listener.close()
    assert not facts.api_error and "the kubernetes client cannot load it: TypeError" in facts.kubeconfig_unusable
    assert v.k8s_node_ready(facts, NODE, CLUSTER).status == "fail"


def test_node_loader_fails_when_the_config_mounts_no_driver_library():
    """A passing "loader finds the libraries" needs libraries to find: the same verdict over no mounted library
    fails with the regenerate fix, never passes."""
    verdict = v.node_loader({}, {}, True, "", [], NODE, CLUSTER, "kind-config.yaml")
    assert verdict.status == "fail" and "mounts no NVIDIA driver library" in verdict.message
    assert verdict.remediation == v.regenerate("kind-config.yaml")


def test_node_loader_judges_the_node_loaders_answer():
    """Issue 10 item 3: the verdict is over what the node's loader resolved (``LD_PRELOAD=LIB ld.so --list``),
    not over a folder list; the capture's lines are glibc's ``--list`` format."""
    listing = ("\tlinux-vdso.so.1 (0x00007ffd)\n\t/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 (0x7f00)\n"
               "\tlibnvidia-ml.so.1 => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 (0x00007f1c)\n"
               "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1b)\n")
    assert parse_loader_list(listing, "libnvidia-ml.so.1") == "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
    assert parse_loader_list("\tlibcuda.so.1 => not found\n", "libcuda.so.1") == ""
    libs = ["libnvidia-ml.so.1", "libcuda.so.1"]
    ok = v.node_loader({lib: f"/usr/lib/x86_64-linux-gnu/{lib}" for lib in libs}, {}, True, "", libs, NODE,
                       CLUSTER, "k.yaml")
    assert ok.status == "pass" and "libcuda.so.1 -> /usr/lib/x86_64-linux-gnu/libcuda.so.1" in ok.message
    missing = v.node_loader({"libnvidia-ml.so.1": "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "libcuda.so.1": ""},
                            {"libcuda.so.1": "ERROR: ld.so: object 'libcuda.so.1' from LD_PRELOAD cannot be preloaded"},
                            False, "the node has no ldconfig", libs, NODE, CLUSTER, "k.yaml", ours=True)
    assert missing.status == "fail" and "does not find libcuda.so.1" in missing.message
    assert "cannot be preloaded" in missing.message and "setup: the node has no ldconfig" in missing.message
    assert missing.remediation.startswith(f"kind delete cluster --name {CLUSTER} && python3 -m pytest tests_env "
                                          "-m module1")


def test_a_locked_or_unusable_node_setup_step_fails():
    verdict = v.setup_locked("another labcheck run held /s/node-mps.lock for over 120s", "/my state")
    assert verdict.status == "fail" and "node setup blocked" in verdict.message
    assert "ls -ld -- '/my state'" in verdict.remediation


def test_api_server_that_answers_with_errors_fails_the_kubernetes_checks():
    """A real HTTP listener answering 503 to every request stands for an apiserver port whose server is broken
    (a dead kube-apiserver behind kind's port mapping, or one not serving yet): the checks must fail, not skip
    as if no API were there to ask."""
    class Broken(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  (http.server's name)
            self.send_response(503)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"apiserver not ready")

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        kc = (f"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {url}\n  name: c\n"
              "contexts:\n- context:\n    cluster: c\n    user: u\n  name: x\ncurrent-context: x\n"
              "users:\n- name: u\n  user:\n    token: vacuous-token-not-a-secret\n")
        facts = kube.api_facts(kc, NODE, timeout=5)
    finally:
        srv.shutdown()
    assert not facts.reachable and facts.api_error, facts
    ready = v.k8s_node_ready(facts, NODE, CLUSTER)
    assert ready.status == "fail" and "accepts connections but its requests fail" in ready.message
    assert "get --raw /readyz" in ready.remediation and f"kind get kubeconfig --name {CLUSTER} " in ready.remediation
    assert v.resource_api(facts, "v1", NODE, CLUSTER, "k.yaml").status == "fail"
    refused = kube.ApiFacts("https://127.0.0.1:9", False, "no API server answers at 127.0.0.1:9")
    assert v.k8s_node_ready(refused, NODE, CLUSTER).status == "fail"


# --- the node's MPS fixes: the configured folders, the node's start command, the host binary's full path ---------

@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_node_mps_fixes_name_the_configured_log_folder_quoted(name):
    """The node's daemon logs to lab.yaml's mps_log_dir (node_mps.node_env: CUDA_MPS_LOG_DIRECTORY); the fixes
    printed /var/log/nvidia-mps/control.log whatever was configured."""
    log = f"/srv/{name}/log"
    daemon_only = mps.parse_ps(first("h100-host/mps-ps-daemon-only.txt").output)
    out = "cuInit 304\n"
    failed_client = ClientRun("/tmp/nvidia-mps", True, (), tuple(mps.parse_client_steps(out)), 900, False, 3,
                              output=out, gpu=Gpu(0, "GPU-0", "NVIDIA H100", (9, 0), "Default"))
    ps = CmdResult(("docker", "exec"), 0, "  61 root  nvidia-cuda-mps-control -d\n")
    fixes = {
        "ps aux": v.seed_ps_aux(ps, NODE, START, log_dir=log),
        "no server": v.mps_server(daemon_only, [], "", NODE, START, True, log_dir=log),
        "client failed": v.mps_server(daemon_only, [], "", NODE, START, True, clients=(failed_client,), log_dir=log),
    }
    for what, verdict in fixes.items():
        assert verdict.status == "fail", (what, verdict)
        fix = verdict.remediation
        assert not parses(fix) and "/var/log/nvidia-mps" not in fix, (what, fix)
        assert f"{log}/control.log" in words(fix), (what, fix)
        assert set(marked_words(fix)) <= {f"{log}/control.log", f"{log}/server.log"}, (what, fix)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_shared_pipe_fix_stops_the_host_daemon_by_pid_and_starts_the_node_one_on_its_pipe_folder(name):
    """It printed `sudo ... nvidia-cuda-mps-control` (a bare name: /usr/local/nvidia/bin is not on sudo's
    secure_path) and `then: docker exec NODE nvidia-cuda-mps-control -d` without the -e CUDA_MPS_PIPE_DIRECTORY a
    non-default pipe folder needs: the node's daemon came up on the wrong pipe. Now node_mps.start_command, and the
    host daemon stopped by its pid (no control binary, so no sudo path problem): `echo quit` through the shared
    folder reaches whichever daemon answers there, maybe the node's (review)."""
    pipe = f"/srv/{name}/pipe"
    cfg = LabConfig(mps_pipe_dir=pipe, cluster_name=CLUSTER)
    paths = NodePaths({"nvidia-cuda-mps-control": ["/usr/bin/nvidia-cuda-mps-control"]}, (), ("/usr/bin",), pipe)
    start = node_mps.start_command(cfg, paths)
    for shell in (Shell(), Shell(root=True)):
        verdict = v.shared_pipe_conflict([3793], pipe, cfg.node_name, CmdResult(("ps",), 0), "k.yaml", pipe, shell,
                                         start_cmd=start)
        fix = verdict.remediation
        assert verdict.status == "fail" and not parses(fix), fix
        sudo = [] if shell.root else ["sudo"]
        stop = [*sudo, "kill", "3793", "&&"]  # by pid: a quit through the shared folder may reach the node's daemon
        assert words(fix)[:len(stop)] == stop, fix
        assert fix.split(" && ", 1)[1].startswith(start), fix
        assert f"CUDA_MPS_PIPE_DIRECTORY={pipe}" in words(start[start.index(" -e "):])
        assert set(marked_words(fix)) == {f"CUDA_MPS_PIPE_DIRECTORY={pipe}"}, fix


def test_module1_passes_the_configured_mps_settings_to_every_verdict_that_takes_them():
    """tests_env/test_module1.py: a node MPS verdict called without log_dir, start_cmd or control would fall back to
    the defaults (the bug: /var/log/nvidia-mps, the seed's start command, a bare binary name)."""
    assert not verdict_calls_without(("log_dir", "start_cmd", "control"))
