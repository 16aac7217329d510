"""Verdicts of module 1's new node checks (issue 9 items 5 and 6, issue 10 item 3), on outputs of the real tools:
docker exec's own error text, busybox ``ps aux`` from the kind double's node, module 0's CDI parser."""

from __future__ import annotations

from labcheck.cmd import CmdResult
from labcheck.probes import kube
from labcheck.probes.cdi import CdiFacts, SpecFile
from labcheck.probes.driver_files import HostFile
from labcheck.probes.node import NodeFile, NodeState
from labcheck.verdicts import node as v

CLUSTER = "lab one"  # a configured name that needs quoting: every fix must quote it
NODE = "lab one-control-plane"
CFG = "/work/my manifests/kind-config.yaml"
NOT_ON_PATH = ('OCI runtime exec failed: exec failed: unable to start container process: exec: "nvidia-smi": '
               "executable file not found in $PATH: unknown")
# busybox `ps aux` in the kind double's node (seen in tests/test_module1_docker.py runs)
PS_AUX_BOTH = ("PID   USER     COMMAND\n    1 root     /bin/sh -c trap\n   61 root     nvidia-cuda-mps-control -d\n"
               "  121 root     nvidia-cuda-mps-server\n  130 root     ps aux\n")


def run(rc, out="", err="", argv=("docker", "exec")) -> CmdResult:
    return CmdResult(tuple(argv), rc, out, err)


def test_workshop_nvidia_smi_passes_on_0_and_14_and_fails_with_the_fix_otherwise():
    assert v.workshop_nvidia_smi(run(0, "NVIDIA-SMI 580.159.04"), NODE, CLUSTER, CFG).status == "pass"
    assert v.workshop_nvidia_smi(run(14, "", "WARNING: infoROM is corrupted"), NODE, CLUSTER, CFG).status == "pass"
    off_path = v.workshop_nvidia_smi(run(126, "", NOT_ON_PATH), NODE, CLUSTER, CFG, ours=True)
    assert off_path.status == "fail" and "not on the node's default PATH" in off_path.message
    assert off_path.remediation.startswith("kind delete cluster --name 'lab one' && python3 -m pytest tests_env "
                                           "-m module1")
    assert "'/work/my manifests/kind-config.yaml'" in off_path.remediation
    no_lib = v.workshop_nvidia_smi(run(9, "NVIDIA-SMI couldn't find libnvidia-ml.so library"), NODE, CLUSTER, CFG)
    assert no_lib.status == "fail" and "ls -la /dev/nvidiactl" in no_lib.remediation


def test_mps_control_must_be_on_the_default_path():
    assert v.mps_control_on_path(run(0, "/usr/bin/nvidia-cuda-mps-control\n"), NODE, CLUSTER, CFG).status == "pass"
    off = v.mps_control_on_path(run(127), NODE, CLUSTER, CFG)
    assert off.status == "fail" and "seed's setup command" in off.message and "'lab one'" in off.remediation


def test_seed_ps_aux_needs_both_the_daemon_and_the_server():
    start = "docker exec 'lab one-control-plane' nvidia-cuda-mps-control -d"
    assert v.seed_ps_aux(run(0, PS_AUX_BOTH), NODE, start).status == "pass"
    no_server = v.seed_ps_aux(run(0, PS_AUX_BOTH.replace("  121 root     nvidia-cuda-mps-server\n", "")), NODE, start)
    assert no_server.status == "fail" and "nvidia-cuda-mps-server" in no_server.message
    assert "control.log" in no_server.remediation
    nothing = v.seed_ps_aux(run(0, "PID   USER     COMMAND\n    1 root     sh\n"), NODE, start)
    assert nothing.status == "fail" and nothing.remediation == start


def _files(**kinds: tuple[str, str]) -> dict[str, NodeFile]:
    return {p: NodeFile(p, real, kind == "file", kind) for p, (kind, real) in kinds.items()}


def test_dra_library_lookup_takes_the_first_present_and_it_must_be_a_file():
    ok = {"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1": NodeFile(
        "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.159.04",
        True, "file")}
    assert v.dra_library(ok, run(0), NODE, CLUSTER, CFG).status == "pass"
    # Docker made an empty directory for a missing mount source EARLIER in the driver's order (issue #1272)
    shadow = {**ok, "/usr/lib64/libnvidia-ml.so.1": NodeFile("/usr/lib64/libnvidia-ml.so.1",
                                                             "/usr/lib64/libnvidia-ml.so.1", False, "dir")}
    verdict = v.dra_library(shadow, run(0), NODE, CLUSTER, CFG)
    assert verdict.status == "fail" and "/usr/lib64/libnvidia-ml.so.1" in verdict.message
    assert "a directory" in verdict.message
    elsewhere = v.dra_library({}, run(0), NODE, CLUSTER, CFG)
    assert elsewhere.status == "fail" and "it looks only in /usr/lib64" in elsewhere.message
    assert v.dra_library({}, run(None), NODE, CLUSTER, CFG).status == "fail"


def test_dra_binary_lookup():
    ok = {"/usr/bin/nvidia-smi": NodeFile("/usr/bin/nvidia-smi", "/usr/bin/nvidia-smi", True, "file")}
    assert v.dra_binary(ok, run(0), NODE, CLUSTER, CFG).status == "pass"
    gone = v.dra_binary({"/usr/bin/nvidia-smi": NodeFile("/usr/bin/nvidia-smi", "", False, "missing")}, run(0),
                        NODE, CLUSTER, CFG)
    assert gone.status == "fail" and "/usr/bin, /usr/sbin, /bin, /sbin" in gone.message


def test_cdi_dir_must_be_writable_and_the_nodes_own():
    node = NodeState(NODE, True, True, "running")
    assert v.cdi_dir_writable(run(0), node, NODE, CLUSTER, CFG).status == "pass"
    ro = v.cdi_dir_writable(run(1, "", "sh: can't create /var/run/cdi/.labcheck: Read-only file system"), node,
                            NODE, CLUSTER, CFG)
    assert ro.status == "fail" and "Read-only" in ro.message
    shared = NodeState(NODE, True, True, "running", mounts=(("/var/run/cdi", "/var/run/cdi", True),))
    leak = v.cdi_dir_writable(run(0), shared, NODE, CLUSTER, CFG)
    assert leak.status == "fail" and "the host's /var/run/cdi" in leak.message


def test_gpu_present_label_is_read_from_the_kubernetes_node():
    up = kube.ApiFacts("https://127.0.0.1:6443", True, "", True, True, "", ("v1",),
                       node_labels={"nvidia.com/gpu.present": "true"})
    assert v.gpu_present_label(up, NODE, CLUSTER, CFG).status == "pass"
    unlabelled = kube.ApiFacts("https://127.0.0.1:6443", True, "", True, True, "", ("v1",), node_labels={})
    verdict = v.gpu_present_label(unlabelled, NODE, CLUSTER, CFG)
    assert verdict.status == "fail" and "no nvidia.com/gpu.present label" in verdict.message
    assert verdict.remediation.startswith("(kc=$(mktemp) && trap 'rm -f -- \"$kc\"' EXIT && kind get kubeconfig "
                                          "--name 'lab one' >\"$kc\" && kubectl --kubeconfig \"$kc\" label node "
                                          "'lab one-control-plane' nvidia.com/gpu.present=true --overwrite)   # ")
    down = kube.ApiFacts("https://127.0.0.1:9", False, "no API server answers at 127.0.0.1:9")
    assert v.gpu_present_label(down, NODE, CLUSTER, CFG).status == "fail"  # no API: not verified, never a pass


def test_device_nodes_on_the_host_and_in_the_node():
    host = [HostFile("nvidiactl", "device", "/dev/nvidiactl", "/dev/nvidiactl"),
            HostFile("nvidia-uvm", "device", "/dev/nvidia-uvm", "/dev/nvidia-uvm"),
            HostFile("nvidia0", "device", "/dev/nvidia0", "/dev/nvidia0")]
    assert v.host_devices(host).status == "pass"
    no_gpu = v.host_devices(host[:2])
    assert no_gpu.status == "fail" and "/dev/nvidia[0-9]*" in no_gpu.message and "modprobe" in no_gpu.remediation
    wanted = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-caps")
    good = {"/dev/nvidiactl": "CHR", "/dev/nvidia0": "CHR", "/dev/nvidia-caps": "DIR"}
    assert v.node_devices(good, run(0), wanted, NODE, CLUSTER, CFG).status == "pass"
    bad = v.node_devices({**good, "/dev/nvidia0": "NONE"}, run(0), wanted, NODE, CLUSTER, CFG)
    assert bad.status == "fail" and "/dev/nvidia0 (none)" in bad.message and "'lab one'" in bad.remediation
    assert v.node_devices({}, run(0), (), NODE, CLUSTER, CFG).status == "fail"


def test_node_cdi_reuses_module_0s_parser_and_verdicts():
    """Issue 10: the node's CDI check was a weaker second validator (kind example.com/not-a-gpu passed)."""
    from labcheck import cdi

    def facts(text: str, path: str = "/etc/cdi/nvidia.yaml") -> CdiFacts:
        parsed = cdi.parse_spec(text, path)
        f = SpecFile(path, None, parsed) if isinstance(parsed, cdi.Problem) else SpecFile(path, parsed, None)
        return CdiFacts(("/etc/cdi", "/var/run/cdi"), (f,))

    good = ("cdiVersion: 0.6.0\nkind: nvidia.com/gpu\ndevices:\n- name: '0'\n  containerEdits:\n"
            "    deviceNodes:\n    - path: /dev/nvidia0\n")
    assert v.cdi_in_node(facts(good), run(0), NODE).status == "pass"
    other = v.cdi_in_node(facts(good.replace("nvidia.com/gpu", "example.com/not-a-gpu"), "/etc/cdi/other.yaml"),
                          run(0), NODE)
    assert other.status == "fail" and "nvidia.com/gpu" in other.message
    assert v.cdi_in_node(CdiFacts(("/etc/cdi",), ()), run(0), NODE).status == "fail"
    assert v.cdi_in_node(CdiFacts(("/etc/cdi",), ()), run(None), NODE).status == "fail"


# --- real captures from the GPU host (tests/data/h200-module1: node without python3, uniform layout) -------------

def _caps():
    from tests.captures import blocks

    out = {}
    for c in blocks("h200-module1/node-captures.txt"):
        out.setdefault(c.command, c)  # the first of a repeated command (ps aux is taken again after the quit)
    return out


H200_NODE = "workshop-dra-control-plane"


def test_h200_node_has_no_python3_and_the_workshop_commands_pass_on_it():
    caps = _caps()
    py = caps[f"docker exec {H200_NODE} python3 -c 1"]
    assert py.rc == 126 and "executable file not found" in py.output  # like kindest/node
    smi = caps[f"docker exec {H200_NODE} nvidia-smi"]
    verdict = v.workshop_nvidia_smi(CmdResult(("docker", "exec"), smi.rc, smi.output), H200_NODE, "workshop-dra",
                                    "manifests/kind-config.yaml")
    assert verdict.status == "pass"
    ps = caps[f"docker exec {H200_NODE} ps aux"]
    start = f"docker exec {H200_NODE} nvidia-cuda-mps-control -d"
    assert v.seed_ps_aux(CmdResult(("docker", "exec"), ps.rc, ps.output), H200_NODE, start).status == "pass"
    after_quit = [c for c in _caps_list() if c.command == f"docker exec {H200_NODE} ps aux"][-1]
    failed = v.seed_ps_aux(CmdResult(("docker", "exec"), after_quit.rc, after_quit.output), H200_NODE, start)
    assert failed.status == "fail" and failed.remediation == start


def _caps_list():
    from tests.captures import blocks

    return blocks("h200-module1/node-captures.txt")


def test_h200_loader_listing_resolves_nvml_in_the_uniform_folder():
    from labcheck.probes.node import parse_loader_list

    listing = next(c for c in _caps_list() if "--list /usr/bin/nvidia-smi" in c.command)
    assert parse_loader_list(listing.output, "libnvidia-ml.so.1") == "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"


def test_h200_proof_runs_verdicts():
    """Run 1 (provision) passes every node, driver-path and MPS check; run 2 (--no-provision after the node's
    daemon quit) fails mps-control, mps-server and the seed's ps aux with the seed's start command as the fix."""
    import json

    from tests.captures import DATA

    def recs(name):
        data = json.loads((DATA / "h200-module1" / name).read_text())
        return {r["nodeid"].split("::")[-1]: r for r in data["records"]}

    one, two = recs("run1.json"), recs("run2.json")
    for check in ("test_workshop_nvidia_smi_command_works", "test_nvidia_smi_works_in_node",
                  "test_mps_control_on_node_default_path", "test_mps_control_running_in_node",
                  "test_mps_server_running_in_node", "test_seed_ps_aux_shows_daemon_and_server",
                  "test_dra_driver_finds_nvml_in_node", "test_dra_driver_finds_nvidia_smi_in_node",
                  "test_cdi_dir_writable_in_node", "test_node_loader_finds_driver_libraries",
                  "test_gpu_device_nodes_on_host", "test_gpu_device_nodes_in_node"):
        assert one[check]["verdict"] == "pass", (check, one[check]["message"])
    assert "from the host through the shared pipe directory" in one["test_mps_server_running_in_node"]["message"]
    start = f"docker exec {H200_NODE} nvidia-cuda-mps-control -d"
    for check in ("test_mps_control_running_in_node", "test_mps_server_running_in_node",
                  "test_seed_ps_aux_shows_daemon_and_server"):
        assert two[check]["verdict"] == "fail" and two[check]["remediation"] == start, (check, two[check])


def test_no_python3_and_no_reachable_pipe_dir_is_a_failure_with_the_reason():
    from labcheck.node import cuda_client

    assert "mounts no host folder" in cuda_client.host_reach("")
    remote = cuda_client.host_reach("/tmp/nvidia-mps", docker_host="tcp://user:secret@10.0.0.5:2376")
    assert "not on this host" in remote and "secret" not in remote
    assert cuda_client.host_reach("/tmp/nvidia-mps", docker_host="unix:///var/run/docker.sock") == ""
    verdict = v.mps_server([], [], remote, NODE, "start", daemon_running=True)
    assert verdict.status == "fail"
