"""Verdicts over facts about the Kind node (pure: no I/O, unit-tested on captured outputs)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from labcheck import mps
from labcheck.cmd import CmdResult
from labcheck.config import ConfigProblem
from labcheck.probes.node import NodeFile, NodeState
from labcheck.verdict import Verdict, failed, passed, skipped, warned

GiB = 1024**3
REGENERATE = "pytest tests_env -m module1   # regenerates manifests/kind-config.yaml and re-creates nothing else"


def _q(s: str) -> str:
    return shlex.quote(s)


def recreate_cluster(cluster: str, config_path: str) -> str:
    return (f"kind delete cluster --name {_q(cluster)} && "
            f"kind create cluster --name {_q(cluster)} --config {_q(config_path)}")


def kind_config(problems: Sequence[ConfigProblem], path: str) -> Verdict:
    if not problems:
        return passed(f"{path} is a valid kind config")
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return failed(f"kind config {first}{more}", first.fix, details="\n".join(str(p) for p in problems))


def node_running(state: NodeState, cluster: str, config_path: str) -> Verdict:
    if state.error:
        return failed(f"cannot inspect node container {state.name}: {state.error}",
                      f"docker inspect {_q(state.name)}   # is the Docker engine up?")
    if not state.exists:
        return failed(f"node container {state.name} does not exist (expected the Kind cluster {cluster!r})",
                      f"kind create cluster --name {_q(cluster)} --config {_q(config_path)}")
    if not state.running:
        return failed(f"node container {state.name} exists but is {state.status or 'not running'}",
                      f"docker start {_q(state.name)}")
    return passed(f"node container {state.name} is running (image {state.image})")


def node_file(name: str, node_paths: Sequence[str], found: dict[str, NodeFile], res: CmdResult,
              node: str, cluster: str, config_path: str) -> Verdict:
    """``name`` (a library or binary) must exist in the node and resolve to a real file."""
    if not node_paths:
        return failed(f"{config_path} mounts no {name} into the node (host inspection found none?)",
                      REGENERATE)
    if res.timed_out or (res.rc is not None and res.rc != 0 and not found) or res.rc is None:
        return failed(f"could not look for {name} in {node}: {res.describe()}", f"docker start {_q(node)}")
    good = [found[p] for p in node_paths if p in found and found[p].ok]
    if good:
        f = good[0]
        return passed(f"{name} in the node: {f.path} -> {f.real}")
    bad = ", ".join(f"{p} -> {found[p].real or 'nothing'}" if p in found else f"{p}: not checked"
                    for p in node_paths)
    return failed(f"{name} is mounted by the config but does not resolve to a file in {node}: {bad} "
                  "(the link was mounted without its target, or the host file changed after the cluster was created)",
                  recreate_cluster(cluster, config_path))


def cdi_visible(specs: dict[str, str | None], dirs: Sequence[str], res: CmdResult, node: str) -> Verdict:
    """``specs``: path in node => problem ("" when it is a CDI spec with devices, None unread)."""
    if res.rc is None or (res.rc != 0 and not specs):
        return failed(f"could not list CDI specs in {node}: {res.describe()}", f"docker start {_q(node)}")
    if not specs:
        return failed(f"no CDI spec in the node ({', '.join(dirs)} empty or not mounted)",
                      "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml   # /etc/cdi is mounted into the "
                      "node; re-create the cluster if it was created before /etc/cdi existed")
    good = [p for p, problem in specs.items() if not problem]
    if good:
        return passed(f"CDI spec visible in the node: {', '.join(good)}")
    return failed("CDI specs in the node are not usable: " + "; ".join(f"{p}: {e}" for p, e in specs.items()),
                  "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml")


def cdi_spec_problem(text: str) -> str:
    """'' when ``text`` is a CDI spec with at least one device, else why not."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return f"not valid YAML/JSON (line {mark.line + 1})" if mark else "not valid YAML/JSON"
    if not isinstance(doc, dict) or "cdiVersion" not in doc or "kind" not in doc:
        return "not a CDI spec (no cdiVersion/kind)"
    if not doc.get("devices"):
        return "CDI spec lists no devices"
    return ""


def nvidia_smi(res: CmdResult, node: str, smi_path: str) -> Verdict:
    if res.ok:
        first = next((ln for ln in res.stdout.splitlines() if "NVIDIA-SMI" in ln or "GPU" in ln), "")
        return passed(f"nvidia-smi works in the node ({first.strip(' |') or 'exit 0'})")
    if res.rc == 14 and "inforom" in res.output.lower():
        return warned(f"nvidia-smi in the node exited 14 with an infoROM warning (counted as working): "
                      f"{res.describe()}", "sudo nvidia-smi -q | grep -i inforom   # check the board's infoROM")
    return failed(f"nvidia-smi does not work in {node}: {res.describe()}",
                  f"docker exec {_q(node)} {_q(smi_path)}   # libraries or device nodes missing in the node?")


def node_loader(ok: bool, action: str, message: str, lib_dirs: Sequence[str], node: str, config_path: str
                ) -> Verdict:
    """The setup_actions.node_libs outcome (ok, action, message) as a verdict.

    WHY ``lib_dirs``: with no driver library mounted, "the loader searches their folders" is true of nothing;
    that is a config that mounts no library (a failure), not a loader that finds them."""
    if not lib_dirs:
        return failed(f"{config_path} mounts no NVIDIA driver library into the node, so the node's loader "
                      "has none to find", REGENERATE)
    if ok:
        return passed(message)
    if action == "blocked":
        return warned(message, f"docker exec {_q(node)} ldconfig   # on a node image that has it")
    return failed(message, f"docker exec {_q(node)} ldconfig")


def mps_control(procs: list[mps.Proc], ps_res: CmdResult, node: str, start_cmd: str) -> Verdict:
    if not ps_res.ok:
        return failed(f"cannot list processes in {node}: {ps_res.describe()}", f"docker start {_q(node)}")
    daemons = mps.control_daemons(procs)
    if daemons:
        return passed(f"nvidia-cuda-mps-control running in the node: PID {daemons[0].pid} `{daemons[0].args}`")
    return failed(f"no `nvidia-cuda-mps-control -d` process in {node} (matched on the full command line)",
                  start_cmd)


def mps_server(procs: list[mps.Proc], server_pids: list[int], client_reason: str, node: str,
               start_cmd: str, daemon_running: bool, client_failure: str = "") -> Verdict:
    """The server must run under a live control daemon, after the suite's client connected.

    ``client_reason`` says why the suite's CUDA client could not be run at all (no python3 in the node:
    a skip, with the reason); ``client_failure`` says how a client that ran failed (a real failure).
    """
    servers = mps.servers(procs)
    if not daemon_running:
        orphan = f" (an orphaned server, PID {servers[0].pid}, still runs: clients cannot reach it)" if servers else ""
        return failed(f"no MPS control daemon in {node}, so no client can get an MPS server{orphan}", start_cmd)
    if servers:
        listed = f", get_server_list: {' '.join(map(str, server_pids))}" if server_pids else ""
        return passed(f"nvidia-cuda-mps-server running in the node: PID {servers[0].pid} `{servers[0].args}`{listed}")
    if client_failure:
        return failed(f"no MPS server in {node}: the suite's CUDA client failed there ({client_failure}), so the "
                      "daemon was never asked for a server",
                      f"docker exec {_q(node)} ls -la /dev/nvidia0 /dev/nvidiactl /dev/nvidia-uvm /proc/driver/nvidia  "
                      "# device nodes and driver files the client needs; see kind-config.yaml extraMounts")
    if client_reason:
        return skipped(f"no MPS server in {node} yet, and the suite could not start a CUDA client there to "
                       f"make the daemon start one: {client_reason}")
    return failed(f"no nvidia-cuda-mps-server in {node} after the suite's CUDA client connected (get_server_list: "
                  f"{' '.join(map(str, server_pids)) or 'empty'}): the daemon could not start a server",
                  f"docker exec {_q(node)} cat /var/log/nvidia-mps/control.log   # the daemon's reason")


def shm(size: int | None, minimum: int, res: CmdResult, node: str) -> Verdict:
    if size is None:
        return failed(f"cannot read /dev/shm size in {node}: {res.describe()}", f"docker start {_q(node)}")
    if size >= minimum:
        return passed(f"/dev/shm in the node is {size / GiB:.1f} GiB (at least {minimum / GiB:.1f} GiB)")
    return failed(f"/dev/shm in the node is {size / GiB:.2f} GiB, expected at least {minimum / GiB:.1f} GiB",
                  "sudo mount -o remount,size=8G /dev/shm   # the node mounts host /dev/shm (see kind-config.yaml)")


def shared_pipe_conflict(host_pids: Sequence[int], pipe_dir: str, node: str,
                         ps_res: CmdResult | None = None) -> Verdict:
    """``ps_res``: the host ``ps`` the pids were read from; when it failed, "no daemon" is not known."""
    if not host_pids and ps_res is not None and not ps_res.ok:
        return failed(f"cannot list host processes to look for an MPS daemon on the node's pipe directory "
                      f"{pipe_dir}: {ps_res.describe()}",
                      f"ps -eo pid,args | grep nvidia-cuda-mps-control   # a host daemon on {_q(pipe_dir)} "
                      "conflicts with the node's")
    if not host_pids:
        return passed(f"no host MPS daemon uses the node's pipe directory {pipe_dir}")
    return failed(f"a host MPS control daemon (PID {', '.join(map(str, host_pids))}) and the node's daemon share "
                  f"the pipe directory {pipe_dir}: only one of them can own it, and clients reach whichever answers",
                  f"echo quit | sudo CUDA_MPS_PIPE_DIRECTORY={_q(pipe_dir)} nvidia-cuda-mps-control   "
                  f"# stop the host daemon, then: docker exec {_q(node)} nvidia-cuda-mps-control -d")


def _api_broken(facts, what: str) -> Verdict:
    """The API server's port answered but its requests failed: a failure, not a skip (the cluster is broken)."""
    return failed(f"the Kubernetes API at {facts.server} accepts connections but its requests fail, so {what}: "
                  f"{facts.error}",
                  "kubectl --context kind-workshop-dra get --raw /readyz   # then: docker logs "
                  "workshop-dra-control-plane | tail; re-create the cluster if the API server does not recover")


def _api_down(node: str, what: str, why: str) -> Verdict:
    """The node container runs (the checks require it) but Kubernetes does not answer: the cluster is broken.

    WHY not a skip: a running node with no API server is exactly the state a readiness report must not call
    READY. (The kind test double has no Kubernetes, so these checks fail against it, as they should.)
    """
    cluster = node.removesuffix("-control-plane")
    return failed(f"node container {node} runs but {what}: {why}",
                  f"kind get kubeconfig --name {_q(cluster)} >/dev/null && kubectl --context kind-{cluster} "
                  f"cluster-info   # then: docker logs {_q(node)} 2>&1 | tail -50; re-create the cluster if the API "
                  "server does not come up")


def k8s_node_ready(facts, node: str, kubeconfig_error: str = "") -> Verdict:
    if kubeconfig_error:
        return _api_down(node, "kind gives no kubeconfig for it, so node Ready cannot be checked", kubeconfig_error)
    if not facts.reachable and getattr(facts, "api_error", False):
        return _api_broken(facts, f"node {node} cannot be seen Ready")
    if not facts.reachable:
        return _api_down(node, "its Kubernetes API does not answer, so node Ready cannot be checked", facts.error)
    if not facts.node_found:
        return failed(f"the API server ({facts.server}) lists no node {node}",
                      "kubectl get nodes -o wide   # the control-plane node did not register")
    if facts.node_ready:
        return passed(f"Kubernetes node {node} is Ready")
    return failed(f"Kubernetes node {node} is not Ready ({facts.ready_message})",
                  f"kubectl describe node {_q(node)}   # see Conditions; often the CNI or kubelet")


def resource_api(facts, wanted: str, kubeconfig_error: str = "", node: str = "workshop-dra-control-plane") -> Verdict:
    if kubeconfig_error:
        return _api_down(node, "kind gives no kubeconfig for it, so resource.k8s.io cannot be checked",
                         kubeconfig_error)
    if not facts.reachable and getattr(facts, "api_error", False):
        return _api_broken(facts, f"resource.k8s.io/{wanted} cannot be seen served")
    if not facts.reachable:
        return _api_down(node, "its Kubernetes API does not answer, so resource.k8s.io cannot be checked",
                         facts.error)
    if wanted in facts.resource_versions:
        return passed(f"resource.k8s.io/{wanted} is served (versions: {', '.join(facts.resource_versions)})")
    found = ", ".join(facts.resource_versions) or "none"
    return failed(f"resource.k8s.io/{wanted} is not served (served versions: {found})",
                  "kind delete cluster --name workshop-dra && pytest tests_env -m module1   # the generated config "
                  "sets the DRA feature gate and runtimeConfig for the node image's Kubernetes version")
