"""Verdicts over facts about the Kind node (pure: no I/O, unit-tested on captured outputs)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from labcheck import containerd, mps, versions
from labcheck.clis import DEFAULT as DEFAULT_CLIS
from labcheck.clis import Clis
from labcheck.cmd import CmdResult
from labcheck.config import ConfigProblem, LabConfig
from labcheck.docker_endpoint import remote_host
from labcheck.probes.cdi import CdiFacts
from labcheck.probes.driver_files import HostFile
from labcheck.probes.gpu import Gpu, parse_query_csv, smi_exit
from labcheck.probes.kube import ApiFacts
from labcheck.probes.mps import ClientRun
from labcheck.probes.node import DRA_BIN_DIRS, DRA_LIB_DIRS, NodeFile, NodeState
from labcheck.remedy import DEFAULT as DEFAULT_SHELL
from labcheck.remedy import Shell, with_note
from labcheck.verdict import Verdict, failed, passed
from labcheck.verdicts import cdi as cdi_verdicts
from labcheck.verdicts import mps as mps_verdicts
from labcheck.verdicts.docker import engine_elsewhere

GiB = 1024**3
MPS_LOG_DIR = LabConfig.mps_log_dir  # the node's daemon logs where lab.yaml's mps_log_dir says (node_mps.node_env)


def regenerate(config_path: str, *, cli: Clis = DEFAULT_CLIS) -> str:
    """Let the suite rewrite the configured kind config (lab.yaml's kind_config_path), touching no cluster."""
    return with_note(cli.rerun.provision(), f"regenerates {_q(config_path)} and re-creates nothing else")


def _q(s: str) -> str:
    return shlex.quote(s)


NOT_OURS = ("NOT created by this suite (no ownership record of the suite names its node), so the suite never "
            "deletes it")
LOST = "everything that runs in it is lost"


def replace_cluster(cluster: str, then: str, *notes: str, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> str:
    """Delete ``cluster``, then ``then`` (shell text that creates it again), with ``notes`` on what that does.

    ``ours``: the suite created it (labcheck.state's record names its node). WHY the difference: the suite reuses
    a matching cluster it did not create and never deletes one (setup_actions.cluster), so a fix must not lead
    with a runnable delete of it either: it leads with a look at the cluster's containers, and names the two
    choices after ``#``: another cluster_name (the user's cluster stays), or the delete, as the user's own choice.
    """
    delete = f"{cli.kind} delete cluster --name {_q(cluster)} && {then}"
    if ours:
        return with_note(delete, *notes)
    return with_note(f"{cli.docker} ps -a --filter {_q('label=io.x-k8s.kind.cluster=' + cluster)}",
                     f"cluster {cluster} was {NOT_OURS}: keep it, and set another cluster_name in {_lab_config(cli)}, "
                     f"then run: {cli.rerun.provision()}",
                     f"or, if it is yours to lose ({LOST}), replace it: {delete}", *notes)


def _lab_config(cli: Clis) -> str:
    """Where the user sets cluster_name for the run the fix reruns: the lab config it read, or a new ./lab.yaml
    (the rerun's ``cd`` folder: labcheck.plugin.config_path reads lab.yaml there when no --lab-config is given)."""
    r = cli.rerun
    if r.lab_config is not None:
        return r.lab_config
    return f"lab.yaml in {r.cwd}" if r.cwd else "lab.yaml in the folder you run the suite from"


def recreate_cluster(cluster: str, config_path: str, *notes: str, cli: Clis = DEFAULT_CLIS, ours: bool = False
                     ) -> str:
    """Delete the cluster and create it again from the kind config. ``ours``: the suite created it."""
    return replace_cluster(cluster, f"{cli.kind} create cluster --name {_q(cluster)} --config {_q(config_path)}",
                           *notes, cli=cli, ours=ours)


def rebuild(cluster: str, config_path: str, *notes: str, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> str:
    """Delete the cluster, then let the suite regenerate the config and create the cluster from it (labcheck.rerun)."""
    return replace_cluster(cluster, cli.rerun.provision(), f"the suite regenerates {_q(config_path)} and creates the "
                           "cluster from it", *notes, cli=cli, ours=ours)


def kind_config(problems: Sequence[ConfigProblem], path: str) -> Verdict:
    if not problems:
        return passed(f"{path} is a valid kind config")
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return failed(f"kind config {first}{more}", first.fix, details="\n".join(str(p) for p in problems))


def node_running(state: NodeState, cluster: str, config_path: str, *, cli: Clis = DEFAULT_CLIS,
                 docker_host: str = "") -> Verdict:
    """``docker_host``: the lab config's (where the fix for an engine on another machine points)."""
    if state.remote:
        return engine_elsewhere(state.remote, remote_host(state.remote), docker_host, cli.rerun)
    if state.error:
        return failed(f"cannot inspect node container {state.name}: {state.error}",
                      with_note(f"{cli.docker} inspect {_q(state.name)}", "is the Docker engine up?"))
    if not state.exists:
        return failed(f"node container {state.name} does not exist (expected the Kind cluster {cluster!r})",
                      f"{cli.kind} create cluster --name {_q(cluster)} --config {_q(config_path)}")
    if not state.running:
        return failed(f"node container {state.name} exists but is {state.status or 'not running'}",
                      f"{cli.docker} start {_q(state.name)}")
    return passed(f"node container {state.name} is running (image {state.image})")


def node_file(name: str, node_paths: Sequence[str], found: dict[str, NodeFile], res: CmdResult,
              node: str, cluster: str, config_path: str, *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """``name`` (a library or binary) must exist in the node and resolve to a real file."""
    if not node_paths:
        return failed(f"{config_path} mounts no {name} into the node (host inspection found none?)",
                      regenerate(config_path, cli=cli))
    if res.timed_out or (res.rc is not None and res.rc != 0 and not found) or res.rc is None:
        return failed(f"could not look for {name} in {node}: {res.describe()}", f"{cli.docker} start {_q(node)}")
    good = [found[p] for p in node_paths if p in found and found[p].ok]
    if good:
        f = good[0]
        return passed(f"{name} in the node: {f.path} -> {f.real}")
    bad = ", ".join(f"{p} -> {found[p].real or 'nothing'}" if p in found else f"{p}: not checked"
                    for p in node_paths)
    return failed(f"{name} is mounted by the config but does not resolve to a file in {node}: {bad} "
                  "(the link was mounted without its target, or the host file changed after the cluster was created)",
                  recreate_cluster(cluster, config_path, cli=cli, ours=ours))


def cdi_in_node(facts: CdiFacts, res: CmdResult, node: str, *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    """The node's CDI specs judged by module 0's CDI verdicts (labcheck.verdicts.cdi): the same parser and rules
    (kind nvidia.com/gpu, devices, valid fields), so a spec module 0 refuses is refused in the node too."""
    if res.rc is None or (res.rc != 0 and not facts.files):
        return failed(f"could not list CDI specs in {node}: {res.describe()}", f"{cli.docker} start {_q(node)}")
    present = cdi_verdicts.spec_present(facts, rerun=cli.rerun)  # its fix opens this run's lab config
    if present.status != "pass":
        return failed(f"in the node {node}: {present.message}", with_note(
            present.remediation, "/etc/cdi is mounted into the node; re-create the cluster if it was created before "
            "/etc/cdi existed"))
    valid = cdi_verdicts.spec_valid(facts)
    if valid.status == "fail":
        return failed(f"in the node {node}: {valid.message}", valid.remediation, details=valid.details)
    return passed(f"in the node {node}: {present.message}")


def nvidia_smi(res: CmdResult, node: str, smi_path: str, config_path: str = "the kind config",
               *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    if not smi_path:
        return failed(f"{config_path} mounts no nvidia-smi into the node", regenerate(config_path, cli=cli))
    ended = smi_exit(res)
    if res.ok:
        first = next((ln for ln in res.stdout.splitlines() if "NVIDIA-SMI" in ln or "GPU" in ln), "")
        return passed(f"nvidia-smi works in the node ({first.strip(' |') or 'exit 0'})")
    if ended.works:  # the workshop counts 0 or 14 as working (FIELD-NOTES): a pass, with the board's warning said
        return passed(f"nvidia-smi works in the node ({ended.how}: {res.describe()})")
    return failed(f"nvidia-smi does not work in {node}: {res.describe()}",
                  with_note(f"{cli.docker} exec {_q(node)} {_q(smi_path)}",
                            "libraries or device nodes missing in the node?"))


def gpus_in_node(res: CmdResult, host_gpus: Sequence[Gpu], node: str, cluster: str, config_path: str,
                 *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """nvidia-smi in the node (``--query-gpu``) must list every GPU the host lists, by UUID: the generated config
    mounts each /dev/nvidiaN, and a node created while a GPU was missing (or from a config that skips one) sees
    fewer -- the DRA driver would then publish fewer devices than the host has."""
    if not host_gpus:
        return failed("the host lists no GPU (see module 0's GPU check), so the node's GPUs cannot be compared",
                      "nvidia-smi -L")
    if not smi_exit(res).works:
        return failed(f"nvidia-smi in {node} cannot list GPUs: {res.describe()}",
                      with_note(f"{cli.docker} exec {_q(node)} nvidia-smi -L", "see the nvidia-smi in the node check"))
    listed, _driver = parse_query_csv(res.stdout)
    have, host_uuids = {g.uuid.lower() for g in listed}, {h.uuid.lower() for h in host_gpus}
    missing = [g for g in host_gpus if g.uuid.lower() not in have]
    extra = [g for g in listed if g.uuid.lower() not in host_uuids]
    shown = ", ".join(f"GPU {g.index} ({g.uuid})" for g in listed) or "none"
    if missing or extra or len(listed) != len(host_gpus):
        what = "; ".join(filter(None, [
            "missing " + ", ".join(f"GPU {g.index} ({g.uuid})" for g in missing) if missing else "",
            "not on the host: " + ", ".join(f"{g.uuid}" for g in extra) if extra else "",
            f"{len(listed)} lines for {len(host_gpus)} host GPUs" if not missing and not extra else ""]))
        return failed(f"nvidia-smi in {node} lists {len(listed)} GPU(s), the host {len(host_gpus)}: {what} "
                      f"(node lists: {shown})",
                      with_note(f"{cli.docker} exec {_q(node)} ls -la /dev/ | grep nvidia",
                                "each host /dev/nvidiaN must be there; then: "
                                + rebuild(cluster, config_path, cli=cli, ours=ours)), details=res.stdout[-2000:])
    return passed(f"nvidia-smi in {node} lists all {len(listed)} host GPU(s): {shown}")


def workshop_nvidia_smi(res: CmdResult, node: str, cluster: str, config_path: str,
                        *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """The workshop's literal ``docker exec NODE nvidia-smi`` (no PATH or LD_LIBRARY_PATH help): exit 0 or 14
    (an infoROM warning) passes, as the workshop counts it (labcheck.probes.gpu.smi_exit, as on the host); anything
    else fails with the fix for that case."""
    ended = smi_exit(res)
    if ended.works:
        return passed(f"`docker exec {node} nvidia-smi` works ({ended.how})")
    if res.rc in (126, 127) or "executable file not found" in res.output:
        return failed(f"`docker exec {node} nvidia-smi` cannot run nvidia-smi ({res.describe()}): it is not on "
                      "the node's default PATH; the DRA driver and the workshop expect it in /usr/bin",
                      rebuild(cluster, config_path, cli=cli, ours=ours))
    if res.rc is None:
        return failed(f"`docker exec {node} nvidia-smi` did not finish: {res.describe()}",
                      f"{cli.docker} start {_q(node)}")
    return failed(f"`docker exec {node} nvidia-smi` fails ({res.describe()}): the binary runs but the driver "
                  "libraries or device nodes it needs are missing in the node",
                  with_note(f"{cli.docker} exec {_q(node)} ls -la /dev/nvidiactl "
                            "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
                            "then: " + recreate_cluster(cluster, config_path, cli=cli, ours=ours)))


def mps_control_on_path(res: CmdResult, node: str, cluster: str, config_path: str,
                        *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """The seed's ``docker exec NODE nvidia-cuda-mps-control -d`` needs the binary on the node's default PATH."""
    found = res.stdout.strip().splitlines()[-1:] if res.ok else []
    if found and found[0].startswith("/"):
        return passed(f"nvidia-cuda-mps-control is on {node}'s default PATH: {found[0]}")
    if res.rc is None:
        return failed(f"could not look for nvidia-cuda-mps-control in {node}: {res.describe()}",
                      f"{cli.docker} start {_q(node)}")
    return failed(f"`docker exec {node} nvidia-cuda-mps-control -d` (the seed's setup command) cannot work: "
                  "nvidia-cuda-mps-control is not on the node's default PATH",
                  rebuild(cluster, config_path, cli=cli, ours=ours))


def seed_ps_aux(res: CmdResult, node: str, start_cmd: str, *, cli: Clis = DEFAULT_CLIS,
                log_dir: str = MPS_LOG_DIR) -> Verdict:
    """The seed's verification, ``docker exec NODE ps aux``: both the daemon and the server must be listed.
    ``log_dir``: the node daemon's CUDA_MPS_LOG_DIRECTORY (lab.yaml's mps_log_dir)."""
    if not res.ok:
        return failed(f"`docker exec {node} ps aux` failed: {res.describe()}", f"{cli.docker} start {_q(node)}")
    lines = res.stdout.splitlines()
    daemon = [ln for ln in lines if "nvidia-cuda-mps-control -d" in ln]
    server = [ln for ln in lines if "nvidia-cuda-mps-server" in ln and " Z " not in f" {ln} "]
    if daemon and server:
        return passed(f"`docker exec {node} ps aux` shows `nvidia-cuda-mps-control -d` and nvidia-cuda-mps-server",
                      details="\n".join(daemon + server))
    missing = " and ".join(w for w, got in (("`nvidia-cuda-mps-control -d`", daemon),
                                             ("nvidia-cuda-mps-server", server)) if not got)
    fix = start_cmd if not daemon else with_note(
        f"{cli.docker} exec {_q(node)} cat {mps_verdicts.log_files(log_dir, 'control')}",
        "why the daemon started no server")
    return failed(f"`docker exec {node} ps aux` does not show {missing} (the seed's success output lists both)",
                  fix, details=res.stdout[-2000:])


def _first_present(found: dict[str, NodeFile], order: Sequence[str]) -> NodeFile | None:
    return next((found[p] for p in order if p in found and found[p].kind != "missing"), None)


def dra_library(found: dict[str, NodeFile], res: CmdResult, node: str, cluster: str, config_path: str,
                library: str = "libnvidia-ml.so.1", *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """NVIDIA's DRA kubelet plugin takes the FIRST ``library`` it finds in its fixed folders: that one must be a
    regular file (an empty directory there, made by Docker for a missing mount source, is ERROR_LIBRARY_NOT_FOUND)."""
    order = [f"{d}/{library}" for d in DRA_LIB_DIRS]
    return _dra_path(found, res, order, library, "library", node, cluster, config_path, cli=cli, ours=ours)


def dra_binary(found: dict[str, NodeFile], res: CmdResult, node: str, cluster: str, config_path: str,
               binary: str = "nvidia-smi", *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    order = [f"{d}/{binary}" for d in DRA_BIN_DIRS]
    return _dra_path(found, res, order, binary, "binary", node, cluster, config_path, cli=cli, ours=ours)


def _dra_path(found, res, order, name, what, node, cluster, config_path, *, cli: Clis = DEFAULT_CLIS,
              ours: bool = False) -> Verdict:
    if res.rc is None or (res.rc != 0 and not found):
        return failed(f"could not look for {name} in {node}: {res.describe()}", f"{cli.docker} start {_q(node)}")
    fix = rebuild(cluster, config_path, cli=cli, ours=ours)
    first = _first_present(found, order)
    folders = ", ".join(p.rsplit("/", 1)[0] for p in order)
    if first is None:
        return failed(f"NVIDIA's DRA driver will not find {name} in {node}: it looks only in {folders}, and none "
                      "has it (its kubelet plugin then waits forever in Init)", fix)
    if first.kind == "file":
        return passed(f"the DRA driver's {what} lookup finds {first.path} -> {first.real} (a regular file)")
    what_is = "a directory (Docker creates one for a missing bind-mount source)" if first.kind == "dir" \
        else "a dangling link or not a regular file"
    return failed(f"the DRA driver's {what} lookup stops at {first.path} in {node}, which is {what_is}", fix)


def cdi_dir_writable(res: CmdResult, state: NodeState, node: str, cluster: str, config_path: str,
                     *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """The DRA kubelet plugin writes one CDI spec per claim into the node's /var/run/cdi: it must be writable
    there, and be the node's own folder (the host's /var/run/cdi mounted in would leak claim specs to the host)."""
    shared = [src for src, dst, _rw in state.mounts if dst.rstrip("/") in ("/var/run/cdi", "/run/cdi")
              and src.rstrip("/") in ("/var/run/cdi", "/run/cdi")]
    if shared:
        return failed(f"{node}'s /var/run/cdi is the host's {shared[0]}: the DRA driver's per-claim CDI specs "
                      "would land on the host", rebuild(cluster, config_path, cli=cli, ours=ours))
    if res.ok:
        return passed(f"/var/run/cdi is writable in {node} (a test file was created and removed)")
    if res.rc is None:
        return failed(f"could not test /var/run/cdi in {node}: {res.describe()}", f"{cli.docker} start {_q(node)}")
    return failed(f"/var/run/cdi is not writable in {node} ({res.describe()}): the DRA driver cannot write its "
                  "per-claim CDI specs", rebuild(cluster, config_path, cli=cli, ours=ours))


GPU_LABEL = ("nvidia.com/gpu.present", "true")


def gpu_present_label(facts: ApiFacts, node: str, cluster: str, config_path: str,
                      *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """The label is a fact of the Kubernetes Node (kind passes nodes[].labels to the kubelet, not to Docker), and
    the DRA driver's DaemonSet schedules on it: read from the API, so without an API it cannot pass."""
    key, value = GPU_LABEL
    down = _api_unusable(facts, f"the label {key}={value} cannot be read", node, cluster, cli=cli, ours=ours)
    if down:
        return down
    if not facts.node_found:
        return failed(f"the API server ({facts.server}) lists no node {node}, so it has no {key} label",
                      with_note(cli.kubectl(cluster, "get nodes -o wide"), "the control-plane node did not register"))
    got = facts.node_labels.get(key)
    if got == value:
        return passed(f"Kubernetes node {node} has {key}={value} (the DRA driver's kubelet plugin schedules there)")
    found = f"{key}={got}" if got is not None else f"no {key} label"
    return failed(f"Kubernetes node {node} has {found}; NVIDIA's DRA kubelet plugin only runs on nodes labelled "
                  f"{key}={value}",
                  with_note(cli.kubectl(cluster, f"label node {_q(node)} {_q(key + '=' + value)} --overwrite"),
                            "to keep it across re-creation: " + rebuild(cluster, config_path, cli=cli, ours=ours)))


_REQUIRED_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm")


def host_devices(devices: Sequence[HostFile], shell: Shell = DEFAULT_SHELL) -> Verdict:
    """Before the cluster is created: the GPU device nodes the config mounts must exist on the host."""
    paths = [d.path for d in devices if d.ok]
    missing = [p for p in _REQUIRED_DEVICES if p not in paths]
    gpus = [p for p in paths if versions.ascii_int(p.rsplit("/", 1)[-1].removeprefix("nvidia")) is not None]
    if not gpus:
        missing.append("/dev/nvidia[0-9]*")
    if missing:
        found = ", ".join(paths) or "none"
        return failed(f"GPU device nodes missing on the host: {', '.join(missing)} (found: {found}); a node "
                      "created now gets no GPU",
                      with_note(f"{shell.sudo('nvidia-modprobe -u -c=0')} || "
                                f"{shell.sudo('modprobe nvidia nvidia-uvm')}", "loads the driver and creates the "
                                "device nodes; nvidia-smi must work on the host first"))
    return passed(f"GPU device nodes on the host: {', '.join(paths)}")


def node_devices(kinds: dict[str, str], res: CmdResult, wanted: Sequence[str], node: str, cluster: str,
                 config_path: str, *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """After: each device node the config mounts is a character device in the node (/dev/nvidia-caps a folder)."""
    if not wanted:
        return failed(f"{config_path} mounts no GPU device node into {node}",
                      rebuild(cluster, config_path, cli=cli, ours=ours))
    if res.rc is None or (res.rc != 0 and not kinds):
        return failed(f"could not look at device nodes in {node}: {res.describe()}", f"{cli.docker} start {_q(node)}")
    bad = [f"{p} ({kinds.get(p, 'NONE').lower()})" for p in wanted
           if kinds.get(p) != ("DIR" if p.rstrip("/").endswith("nvidia-caps") else "CHR")]
    if bad:
        return failed(f"GPU device nodes missing or wrong in {node}: {', '.join(bad)} (the node was created before "
                      "they existed on the host, or the config does not mount them)",
                      recreate_cluster(cluster, config_path, cli=cli, ours=ours))
    return passed(f"GPU device nodes in {node}: {', '.join(wanted)}")


def setup_locked(message: str, state_dir: str, *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    """A node setup step that could not take its lock (another run holds it) or use the state folder: the node
    was left as it was, so what the check would report is not this run's result -- a failure, not a warning."""
    return failed(f"node setup blocked: {message}",
                  with_note(f"ls -ld -- {_q(state_dir)}", "must be a writable folder; if another labcheck run holds "
                            f"the lock, wait for it to end, then: {cli.rerun.provision()}"))


def node_loader(resolved: dict[str, str], errors: dict[str, str], setup_ok: bool, setup_message: str,
                libraries: Sequence[str], node: str, cluster: str, config_path: str,
                *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """The node's own loader (``LD_PRELOAD=LIB ld.so --list``) must resolve each driver library to a path, with
    no LD_LIBRARY_PATH: that is how nvidia-smi, the MPS daemon and the DRA driver load them in the node.

    ``resolved``: library => path the loader found ('' when not found); ``errors``: why it could not be asked;
    ``setup_ok``/``setup_message``: the node_libs setup step (ldconfig in the node), named when it failed.
    """
    if not libraries:
        return failed(f"{config_path} mounts no NVIDIA driver library into the node, so the node's loader "
                      "has none to find", regenerate(config_path, cli=cli))
    missing = [lib for lib in libraries if not resolved.get(lib)]
    setup = "" if setup_ok else f"; setup: {setup_message}"
    if not missing:
        return passed(f"the node's loader resolves {', '.join(f'{k} -> {v}' for k, v in resolved.items())}{setup}")
    why = "; ".join(f"{lib}: {errors.get(lib) or 'not found'}" for lib in missing)
    return failed(f"the node's loader in {node} does not find {', '.join(missing)} ({why}){setup}",
                  rebuild(cluster, config_path, "the generated config puts the libraries in /usr/lib/<triplet>, "
                          "where the loader looks without ldconfig", cli=cli, ours=ours))


def mps_control(procs: list[mps.Proc], ps_res: CmdResult, node: str, start_cmd: str, setup_failure: str = "",
                *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    if not ps_res.ok:
        return failed(f"cannot list processes in {node}: {ps_res.describe()}", f"{cli.docker} start {_q(node)}")
    daemons = mps.control_daemons(procs)
    if daemons:
        return passed(f"nvidia-cuda-mps-control running in the node: PID {daemons[0].pid} `{daemons[0].args}`")
    setup = f"; setup: {setup_failure}" if setup_failure else ""
    return failed(f"no `nvidia-cuda-mps-control -d` process in {node} (matched on the full command line){setup}",
                  start_cmd)


def mps_server(procs: list[mps.Proc], server_pids: list[int], client_reason: str, node: str,
               start_cmd: str, daemon_running: bool, client_where: str = "",
               *, cli: Clis = DEFAULT_CLIS, clients: Sequence[ClientRun] = (), gpus: Sequence[Gpu] = (),
               log_dir: str = MPS_LOG_DIR) -> Verdict:
    """The server must run under a live control daemon, after the suite's client connected.

    ``client_reason``: why no CUDA client could be run at all (no python3 in the node AND no way to reach the
    node's daemon from the host, or --no-provision): a failure, since with a running node "the server was never
    seen" is not a verified criterion (issue 9 item 7).
    ``clients``: the suite's clients, one per host GPU in ``gpus`` (pinned by UUID): each must have created its
    context on its own GPU through the node's daemon while that daemon listed a server (issue 14).
    ``log_dir``: the node daemon's CUDA_MPS_LOG_DIRECTORY (lab.yaml's mps_log_dir), where the fixes look.
    """
    servers = mps.servers(procs)
    if not daemon_running:
        orphan = f" (an orphaned server, PID {servers[0].pid}, still runs: clients cannot reach it)" if servers else ""
        return failed(f"no MPS control daemon in {node}, so no client can get an MPS server{orphan}", start_cmd)
    logs = with_note(f"{cli.docker} exec {_q(node)} tail -20 {mps_verdicts.log_files(log_dir, 'control', 'server')}",
                     "the daemon's and server's reasons; device nodes and /dev/shm must be mounted")
    if clients:
        bad = [(r, why) for r in clients if (why := _node_client_problem(r, len(clients) == 1))]
        if bad:
            shown = "; ".join(f"{_gpu(r)} not served: {why}" for r, why in bad)
            return failed(f"{len(bad)} of {len(clients)} GPUs not served by the MPS daemon in {node} (the suite's "
                          f"CUDA clients, run {client_where}): {shown}", logs,
                          details="\n\n".join(f"{_gpu(r)}:\n{r.output}" for r, _ in bad))
        missing = [g for g in gpus if g.uuid not in {r.gpu.uuid for r in clients if r.gpu is not None}]
        if missing:
            return failed(f"no CUDA client ran on {', '.join(f'GPU {g.index} ({g.uuid})' for g in missing)} of the "
                          f"host, so the node's MPS service there is unproven", logs)
    elif len(gpus) > 1 and servers:
        return failed(f"an MPS server runs in {node}, but no CUDA client was run on each of the host's {len(gpus)} "
                      f"GPUs ({client_reason or 'none ran'}), so MPS service on every GPU is unproven",
                      with_note(cli.rerun.provision(), "without --no-provision the suite runs one client per GPU"))
    if servers:
        listed = f", get_server_list: {' '.join(map(str, server_pids))}" if server_pids else ""
        how = f" (started for the suite's CUDA client, run {client_where})" if client_where else ""
        per_gpu = ("; served: " + ", ".join(f"{_gpu(r)} (client pid {r.pid}, context on {r.device_uuid})"
                                            for r in clients)) if clients else ""
        return passed(f"nvidia-cuda-mps-server running in the node: PID {servers[0].pid} `{servers[0].args}`"
                      f"{listed}{how}{per_gpu}")
    if client_reason:
        return failed(f"no MPS server in {node}, and the suite started no CUDA client to make the daemon start one: "
                      f"{client_reason}", with_note(cli.rerun.provision(), "without --no-provision the suite runs "
                                                    "its CUDA client against the node's daemon"))
    return failed(f"no nvidia-cuda-mps-server in {node} after the suite's CUDA client connected (get_server_list: "
                  f"{' '.join(map(str, server_pids)) or 'empty'}): the daemon could not start a server",
                  with_note(f"{cli.docker} exec {_q(node)} cat {mps_verdicts.log_files(log_dir, 'control')}",
                            "the daemon's reason"))


def _gpu(run: ClientRun) -> str:
    return mps_verdicts.gpu_name(run) or "the unpinned client"


def _node_client_problem(run: ClientRun, alone: bool) -> str:
    """Why this client does not prove its GPU served by the node's daemon ("" when it does): it must reach the
    daemon, hold a context on the GPU it was pinned to, and be named as served (module 0's evidence: its pid in
    get_client_list or an M+C row; a server that started for it when it was the only client)."""
    if not run.daemon_answered:
        return f"the node's daemon did not answer ({run.before.describe() if run.before else 'not asked'})"
    if run.timed_out_at:
        return f"its client hung while {run.timed_out_at}"
    bad = mps.first_failed_step(list(run.steps))
    if bad is not None and bad.call != "cuCtxDestroy_v2":
        return f"{bad.call} returned {bad.rc} ({bad.error_name})"
    if not run.held:
        last = run.output.strip().splitlines()[-1] if run.output.strip() else "no output"
        return f"its client exited {run.rc} before creating a CUDA context: {last}"
    if run.gpu is not None and run.device_uuid.lower() != run.gpu.uuid.lower():
        return f"CUDA_VISIBLE_DEVICES={run.gpu.uuid} gave the client device {run.device_uuid or 'unknown'}"
    if not run.servers_during:
        return "the node's daemon listed no MPS server while the client held its context"
    if not mps_verdicts.served_evidence(run, alone):
        # a client that cannot reach MPS runs on the GPU without it: a server that merely runs proves nothing
        return (f"not served by MPS: while it held its context neither get_client_list of the node's server(s) "
                f"{', '.join(map(str, run.servers_during))} nor nvidia-smi's M+C rows named its pid {run.pid}")
    return ""


def shm(size: int | None, minimum: int, res: CmdResult, node: str, shell: Shell = DEFAULT_SHELL,
        *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    if size is None:
        expected = " (expected a number of 1K blocks after the filesystem name)" if res.ok else ""
        return failed(f"cannot read /dev/shm size in {node}: {res.describe()}{expected}",
                      f"{cli.docker} start {_q(node)}")
    if size >= minimum:
        return passed(f"/dev/shm in the node is {size / GiB:.1f} GiB (at least {minimum / GiB:.1f} GiB)")
    return failed(f"/dev/shm in the node is {size / GiB:.2f} GiB, expected at least {minimum / GiB:.1f} GiB",
                  with_note(shell.sudo(f"mount -o remount,size={-(-minimum // GiB)}G /dev/shm"),
                            "the node mounts host /dev/shm (see kind-config.yaml)"))


def shared_pipe_conflict(host_pids: Sequence[int], pipe_dir: str, node: str,
                         ps_res: CmdResult | None = None, config_path: str = "the kind config",
                         node_pipe_dir: str = "", shell: Shell = DEFAULT_SHELL, *, cli: Clis = DEFAULT_CLIS,
                         start_cmd: str = "") -> Verdict:
    """``ps_res``: the host ``ps`` the pids were read from; when it failed, "no daemon" is not known.
    ``pipe_dir`` '' means the config mounts no host folder as the node's pipe dir ``node_pipe_dir``.
    ``start_cmd``: how the node's daemon starts (setup_actions.node_mps.start_command: with the ``-e`` pipe folder
    a non-default one needs). The host daemon is stopped by its pid, not by a quit through the shared folder, which
    reaches whichever daemon answers there."""
    if not pipe_dir:
        return failed(f"{config_path} does not mount the MPS pipe directory {node_pipe_dir} into the node",
                      regenerate(config_path, cli=cli))
    if not host_pids and ps_res is not None and not ps_res.ok:
        return failed(f"cannot list host processes to look for an MPS daemon on the node's pipe directory "
                      f"{pipe_dir}: {ps_res.describe()}",
                      with_note("ps -eo pid,args | grep nvidia-cuda-mps-control",
                                "a host daemon on the node's pipe folder conflicts with the node's"))
    if not host_pids:
        return passed(f"no host MPS daemon uses the node's pipe directory {pipe_dir}")
    return failed(f"a host MPS control daemon (PID {', '.join(map(str, host_pids))}) and the node's daemon share "
                  f"the pipe directory {pipe_dir}: only one of them can own it, and clients reach whichever answers",
                  with_note(f"{shell.sudo('kill ' + ' '.join(map(str, host_pids)))} && "
                            f"{start_cmd or f'{cli.docker} exec {_q(node)} nvidia-cuda-mps-control -d'}",
                            "stop the host daemon by its pid (a quit through the shared folder may reach the "
                            "node's), then start the node's"))


def _api_broken(facts: ApiFacts, what: str, node: str, cluster: str, *, cli: Clis = DEFAULT_CLIS,
                ours: bool = False) -> Verdict:
    """The API server's port answered but its requests failed: a failure, not a skip (the cluster is broken)."""
    return failed(f"the Kubernetes API at {facts.server} accepts connections but its requests fail, so {what}: "
                  f"{facts.error}",
                  with_note(cli.kubectl(cluster, "get --raw /readyz"), f"then: {cli.docker} logs {_q(node)} 2>&1 | "
                            "tail", "if the API server does not recover: " + _recreate(cluster, cli, ours)))


def _recreate(cluster: str, cli: Clis, ours: bool) -> str:
    """The last resort for a broken API server: the cluster again from this suite (labcheck.rerun)."""
    return replace_cluster(cluster, cli.rerun.provision(), "the suite re-creates it", cli=cli, ours=ours)


def _api_down(node: str, what: str, why: str, cluster: str, *, cli: Clis = DEFAULT_CLIS, ours: bool = False
             ) -> Verdict:
    """The node container runs (the checks require it) but Kubernetes does not answer: the cluster is broken.

    WHY not a skip: a running node with no API server is exactly the state a readiness report must not call
    READY. (The kind test double has no Kubernetes, so these checks fail against it, as they should.)
    """
    return failed(f"node container {node} runs but {what}: {why}",
                  with_note(cli.kubectl(cluster, "cluster-info"), f"then: {cli.docker} logs {_q(node)} 2>&1 | tail -50",
                            "if the API server does not come up: " + _recreate(cluster, cli, ours)))


def _api_unusable(facts: ApiFacts, what: str, node: str, cluster: str, *, cli: Clis = DEFAULT_CLIS,
                  ours: bool = False) -> Verdict | None:
    if facts.kubeconfig_error:
        return _api_down(node, f"kind gives no kubeconfig for it, so {what}", facts.kubeconfig_error, cluster, cli=cli,
                         ours=ours)
    if facts.kubeconfig_unusable:
        return failed(f"node container {node} runs but the kubeconfig kind gives for it is not usable, so {what}: "
                      f"{facts.kubeconfig_unusable}",
                      with_note(f"{cli.kind} get kubeconfig --name {_q(cluster)} | grep 'server:'",
                                "kind should print https://127.0.0.1:<port> (the node's API port); if not: "
                                + _recreate(cluster, cli, ours)))
    if not facts.reachable and facts.api_error:
        return _api_broken(facts, what, node, cluster, cli=cli, ours=ours)
    if not facts.reachable:
        return _api_down(node, f"its Kubernetes API does not answer, so {what}", facts.error, cluster, cli=cli,
                         ours=ours)
    return None


def k8s_node_ready(facts: ApiFacts, node: str, cluster: str, *, cli: Clis = DEFAULT_CLIS, ours: bool = False
                   ) -> Verdict:
    down = _api_unusable(facts, "node Ready cannot be checked", node, cluster, cli=cli, ours=ours)
    if down:
        return down
    if not facts.node_found:
        return failed(f"the API server ({facts.server}) lists no node {node}",
                      with_note(cli.kubectl(cluster, "get nodes -o wide"), "the control-plane node did not register"))
    if facts.node_ready:
        return passed(f"Kubernetes node {node} is Ready")
    return failed(f"Kubernetes node {node} is not Ready ({facts.ready_message})",
                  with_note(cli.kubectl(cluster, f"describe node {_q(node)}"),
                            "see Conditions; often the CNI or kubelet"))


def resource_api(facts: ApiFacts, wanted: str, node: str, cluster: str, config_path: str,
                 *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    down = _api_unusable(facts, f"resource.k8s.io/{wanted} cannot be checked", node, cluster, cli=cli, ours=ours)
    if down:
        return down
    if wanted in facts.resource_versions:
        return passed(f"resource.k8s.io/{wanted} is served (versions: {', '.join(facts.resource_versions)})")
    found = ", ".join(facts.resource_versions) or "none"
    return failed(f"resource.k8s.io/{wanted} is not served (served versions: {found})",
                  rebuild(cluster, config_path, "the generated config sets the DRA feature gate and runtimeConfig for "
                          "the node image's Kubernetes version", cli=cli, ours=ours))


def containerd_cdi(cri: containerd.CriCdi | None, res: CmdResult, node: str, cluster: str, config_path: str,
                   *, cli: Clis = DEFAULT_CLIS, ours: bool = False) -> Verdict:
    """CDI must be on in the node's containerd, reading /etc/cdi and /var/run/cdi: NVIDIA's DRA driver hands the
    kubelet CDI device names (one spec per claim in the node's /var/run/cdi) that only a CDI-enabled containerd
    resolves ("Having CDI enabled is a prerequisite for DRA", driver issue #426). ``cri``: what the node's
    ``containerd config dump`` says (labcheck.probes.node.containerd_cdi), None when ``res`` failed. The fix
    re-creates the cluster from the generated config, whose containerdConfigPatches turn CDI on (``ours``: the
    suite created the cluster; otherwise the fix says what deleting it loses)."""
    dump = f"{cli.docker} exec {_q(node)} containerd config dump"
    fix = rebuild(cluster, config_path, cli=cli, ours=ours)
    if res.rc is None:
        return failed(f"could not ask {node}'s containerd for its config: {res.describe()}",
                      f"{cli.docker} start {_q(node)}")
    if res.rc in (126, 127) or "executable file not found" in res.output:
        return failed(f"{node} has no containerd on its default PATH ({res.describe()}): every kindest/node image has "
                      "one, so the node was not made from a kind node image",
                      rebuild(cluster, config_path, "first set node_image in the lab config to a kindest/node image "
                              "built for your kind release", cli=cli, ours=ours))
    if cri is None:
        return failed(f"`{dump}` fails ({res.describe()}): the node's containerd cannot read its config "
                      "(/etc/containerd/config.toml, with kind's containerdConfigPatches merged in)", fix,
                      details=res.output[-3000:])
    if cri.problem or cri.layout is None:
        return failed(f"cannot tell whether CDI is on in {node}'s containerd: `{dump}` printed text that "
                      f"{cri.problem or 'names no known config version'} (what it printed: details)", fix,
                      details=res.stdout[-3000:] or "(no output)")
    if not cri.enabled:
        return failed(f"CDI is off in {node}'s containerd ({cri.where}): the CDI devices of NVIDIA's DRA driver "
                      "cannot be resolved there (the generated kind config's containerdConfigPatches set "
                      "enable_cdi = true; this node was made without them)", fix)
    listed = ", ".join(containerd.shown(d) for d in cri.spec_dirs) or "no folder"
    if cri.missing_dirs:
        return failed(f"{node}'s containerd reads CDI specs only from {listed} (cdi_spec_dirs in {cri.layout.shown}); "
                      f"missing {', '.join(cri.missing_dirs)}: /etc/cdi holds the host's specs (mounted read-only) "
                      "and /var/run/cdi the DRA driver's per-claim ones", fix)
    dirs = " (containerd's default)" if "cdi_spec_dirs" in cri.defaulted else ""
    return passed(f"CDI is on in {node}'s containerd: {cri.where}; spec dirs {listed}{dirs}")
