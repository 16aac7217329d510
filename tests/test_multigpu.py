"""Issue 14, a host with 2+ GPUs, without one: verdicts on 2- and 8-GPU inputs DERIVED from the real single-GPU
captures (tests/data/multigpu-derived/README.md says how), the per-GPU CUDA clients as real processes (a
stand-in client that records its environment), and hostile nvidia-smi output."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from fixtures.mps import _client_runs
from labcheck import cmd, mps
from labcheck import kindconfig as kc
from labcheck.config import LabConfig
from labcheck.probes import mps as probe
from labcheck.probes.driver_files import HostFile, Inspection
from labcheck.probes.gpu import GpuFacts, NvmlFacts, SmiQuery, parse_query_csv
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import gpu as gpu_v
from labcheck.verdicts import mps as mps_v
from labcheck.verdicts import node as node_v
from tests.captures import DATA, blocks, first
from tests.standins import executable
from tests.test_cdi import SPEC, materialize
from tests.test_cdi import probe as cdi_probe
from tests.test_kindconfig import gpu_cfg, gpu_host_inspection

DERIVED = DATA / "multigpu-derived"
PIPE, LOG = "/tmp/nvidia-mps", "/var/log/nvidia-mps"


def derived_facts(name: str) -> GpuFacts:
    text = (DERIVED / name).read_text()
    gpus, driver = parse_query_csv(text)
    return GpuFacts(SmiQuery("nvidia-smi", cmd.CmdResult(("nvidia-smi",), 0, text), tuple(gpus), driver),
                    NvmlFacts())


def h100_real() -> GpuFacts:
    text = first("h100-host/nvidia-smi-query-csv-noheader.txt").output
    gpus, driver = parse_query_csv(text)
    return GpuFacts(SmiQuery("nvidia-smi", cmd.CmdResult(("nvidia-smi",), 0, text), tuple(gpus), driver), NvmlFacts())


# --- module 0: GPUs, compute capability, CDI ---------------------------------------------------------------

def test_gpus_present_and_compute_capability_name_every_gpu_by_uuid():
    for facts, n in ((h100_real(), 1), (derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt"), 2),
                     (derived_facts("nvidia-smi-query-csv-noheader-8gpu.txt"), 8)):
        assert len(facts.gpus) == n
        present = gpu_v.gpus_present(facts)
        assert present.status == "pass", present
        assert all(f"GPU {g.index}: NVIDIA H100 80GB HBM3 ({g.uuid})" in present.message for g in facts.gpus)
        cc = gpu_v.compute_capability(facts, "6.0")
        assert cc.status == "pass" and all(f"GPU {i} 9.0" in cc.message for i in range(n))


def test_hostile_nvidia_smi_output_fails_clearly_never_crashes():
    dup = gpu_v.gpus_present(derived_facts("nvidia-smi-query-csv-noheader-duplicate-uuid.txt"))
    assert dup.status == "fail" and "2 GPUs report the same UUID GPU-683e20a0-8269-a95e-460e-0a9073519f0d" \
        in dup.message and "nvidia-smi -L" in dup.remediation
    garbage = derived_facts("nvidia-smi-query-csv-noheader-garbage.txt")
    bad = gpu_v.gpus_present(garbage)
    assert bad.status == "fail" and "GPU 1 has UUID 'not-a-uuid'" in bad.message
    # the MPS check does not pin clients to such a list: it says why (a skip naming the failing GPU check)
    mps_facts = probe.MpsFacts("/bin/true", "/bin/true", cmd.CmdResult(("ps",), 0), (),
                               probe.PipeDir(PIPE, True, True, True, False, True), None)
    reason = _client_runs(LabConfig(), garbage, mps_facts)
    assert isinstance(reason, str) and "not usable" in reason and "not-a-uuid" in reason


def _two_gpu_spec(root: Path) -> str:
    one = derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt").gpus[1]
    extra = (f"- containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia1\n  name: \"1\"\n"
             f"- containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia1\n  name: {one.uuid}\n")
    return materialize(SPEC.replace("- containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n  name: all",
                                    extra + "- containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n"
                                    "  name: all"), root)


def test_cdi_spec_naming_every_gpu_by_index_and_uuid_passes_and_one_missing_fails(tmp_path):
    etc, run = tmp_path / "etc" / "cdi", tmp_path / "run" / "cdi"
    etc.mkdir(parents=True)
    run.mkdir(parents=True)
    two = derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt")
    (etc / "nvidia.yaml").write_text(_two_gpu_spec(tmp_path))
    ok = cdi_v.device_count(cdi_probe(etc, run), two)
    assert ok.status == "pass" and all(g.uuid in ok.message for g in two.gpus), ok
    (etc / "nvidia.yaml").write_text(materialize(SPEC, tmp_path))  # the real 1-GPU spec on the 2-GPU host
    missing = cdi_v.device_count(cdi_probe(etc, run), two)
    assert missing.status == "fail" and "describes 1 GPU" in missing.message and "this host has 2" in missing.message


def test_kind_config_mounts_every_dev_nvidia_n_of_an_8_gpu_host():
    base = gpu_host_inspection()
    zero = next(d for d in base.devices if d.path == "/dev/nvidia0")
    listed = [ln.split()[-1] for ln in (DERIVED / "ls-dev-nvidia-8gpu.txt").read_text().splitlines()
              if kc.GPU_DEVICE.match(ln.split()[-1] if ln.split() else "")]
    assert listed == [f"/dev/nvidia{i}" for i in range(8)]
    devices = tuple(d for d in base.devices if d.path != "/dev/nvidia0") + tuple(
        HostFile(p.rsplit("/", 1)[-1], zero.kind, p, p) for p in listed)
    parsed = kc.parse(kc.render(kc.build(Inspection(base.libraries, base.binaries, devices), gpu_cfg(),
                                         machine="x86_64")), "kind-config.yaml")
    mounted = {m.container_path for m in parsed.mounts}
    assert all(p in mounted for p in listed), sorted(mounted)


# --- module 0: one MPS client per GPU -----------------------------------------------------------------------

def _served(gpus, *, not_listed=(), no_context=(), wrong_uuid=()) -> tuple[probe.ClientRun, ...]:
    """One client per GPU as run_cuda_clients returns them: the real client lines of the h100 run plus the
    cuDeviceGetUuid line our client prints, server 705 listing each pid unless told otherwise."""
    pids = {g.index: 700 + g.index for g in gpus}
    listed = tuple(pids[g.index] for g in gpus if g.index not in not_listed)
    runs = []
    for g in gpus:
        uuid = "GPU-00000000-0000-0000-0000-000000000000" if g.index in wrong_uuid else g.uuid
        out = f"cuInit 0\ncuDeviceGetCount 0 1\ncuDeviceGet 0\ncuDeviceGetUuid 0 {uuid}\n"
        out += "cuCtxCreate_v2 805\n" if g.index in no_context else f"cuCtxCreate_v2 0\nHOLDING {pids[g.index]}\n"
        held = g.index not in no_context
        runs.append(probe.ClientRun(PIPE, True, (), tuple(mps.parse_client_steps(out)), pids[g.index], held,
                                    0 if held else 3, output=out, servers_during=(705,),
                                    client_lists={705: listed}, gpu=g))
    return tuple(runs)


def test_every_gpus_client_served_passes_naming_each_gpu():
    for name in ("nvidia-smi-query-csv-noheader-2gpu.txt", "nvidia-smi-query-csv-noheader-8gpu.txt"):
        gpus = derived_facts(name).gpus
        verdict = mps_v.functional(_served(gpus), LOG)
        assert verdict.status == "pass", verdict
        assert f"each of the {len(gpus)} GPUs" in verdict.message
        assert all(f"GPU {g.index} ({g.uuid}): pid {700 + g.index}" in verdict.message for g in gpus)


def test_one_gpus_client_not_listed_by_mps_fails_naming_that_gpu():
    gpus = derived_facts("nvidia-smi-query-csv-noheader-8gpu.txt").gpus
    verdict = mps_v.functional(_served(gpus, not_listed=(5,)), LOG)
    assert verdict.status == "fail" and verdict.message.startswith("1 of 8 GPUs not served by MPS")
    assert f"GPU 5 ({gpus[5].uuid}) not served" in verdict.message and "MPS does not list it" in verdict.message
    assert "GPU 4 (" not in verdict.message.split("(served:")[0]
    assert "nvidia-cuda-mps-control -d" in verdict.remediation


def test_one_gpus_client_without_a_context_or_on_the_wrong_gpu_fails_naming_it():
    gpus = derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt").gpus
    ctx = mps_v.functional(_served(gpus, no_context=(1,)), LOG)
    assert ctx.status == "fail" and f"GPU 1 ({gpus[1].uuid}) not served" in ctx.message
    assert "cuCtxCreate_v2 returned 805" in ctx.message and "server.log" in ctx.remediation
    wrong = mps_v.functional(_served(gpus, wrong_uuid=(0,)), LOG)
    assert wrong.status == "fail" and "CUDA_VISIBLE_DEVICES did not pin it to GPU 0" in wrong.message


def test_a_single_gpu_client_keeps_the_single_gpu_evidence():
    """The 1-GPU host (real H100 UUID): a pinned client listed by get_client_list passes as before."""
    gpus = h100_real().gpus
    verdict = mps_v.functional(_served(gpus), LOG)
    assert verdict.status == "pass" and "GPU 0: CUDA_VISIBLE_DEVICES=" + gpus[0].uuid in verdict.message
    assert "get_client_list of MPS server 705 lists it" in verdict.message


def test_nvidia_smi_m_plus_c_rows_carry_the_gpu_index():
    real = blocks("h100-host/mps-ps-with-client.txt")[2].output  # the nvidia-smi while the client held
    assert mps.smi_mps_clients(real) == [(0, 447)]
    row = next(ln for ln in real.splitlines() if "M+C" in ln)
    derived = row + "\n" + row.replace("|    0 ", "|    1 ").replace(" 447 ", " 448 ")
    assert mps.smi_mps_clients(derived) == [(0, 447), (1, 448)]


def test_client_commands_pin_each_gpu_by_uuid_on_device_0():
    gpus = derived_facts("nvidia-smi-query-csv-noheader-8gpu.txt").gpus
    specs = probe.client_specs(PIPE, gpus, 30, ("/usr/local/nvidia/lib64",), base_env={"PATH": "/bin"})
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in specs] == [g.uuid for g in gpus]
    assert all(s.env["CUDA_MPS_PIPE_DIRECTORY"] == PIPE and s.argv[s.argv.index("--device") + 1] == "0"
               for s in specs)
    unpinned = probe.client_specs(PIPE, (), 30, base_env={"PATH": "/bin"})
    assert len(unpinned) == 1 and "CUDA_VISIBLE_DEVICES" not in unpinned[0].env


STANDIN_CLIENT = r"""import json, os, sys, time
# Stand-in for labcheck/cuda_client.py: prints the same lines (cuDeviceGetUuid reports the GPU that
# CUDA_VISIBLE_DEVICES names, as the driver does for a UUID), records its environment and when it held
# its context, then holds until a line arrives on stdin.
rec = os.environ["STANDIN_RECORD"]
uuid = os.environ.get("CUDA_VISIBLE_DEVICES", "")
print("cuInit 0\ncuDeviceGetCount 0 1\ncuDeviceGet 0\ncuDeviceGetUuid 0 " + uuid + "\ncuCtxCreate_v2 0", flush=True)
with open(os.path.join(rec, str(os.getpid())), "w") as f:
    json.dump({"env": {k: v for k, v in os.environ.items() if k.startswith("CUDA")}, "argv": sys.argv[1:],
               "held": time.time()}, f)
print("HOLDING %d" % os.getpid(), flush=True)
sys.stdin.readline()
with open(os.path.join(rec, str(os.getpid())), "a") as f:
    f.write("\n%f" % time.time())
print("cuCtxDestroy_v2 0", flush=True)
"""


def test_real_processes_one_per_gpu_started_together_each_with_its_uuid(tmp_path):
    gpus = derived_facts("nvidia-smi-query-csv-noheader-8gpu.txt").gpus
    record = tmp_path / "rec"
    record.mkdir()
    script = executable(tmp_path / "client.py", STANDIN_CLIENT)
    asked = []

    def ask(query: str) -> cmd.CmdResult:  # stands for the daemon: it serves every client that recorded itself
        asked.append(query)
        if query == "get_server_list":
            return cmd.CmdResult(("ctl",), 0, "705\n")
        return cmd.CmdResult(("ctl",), 0, "\n".join(os.listdir(record)) + "\n")

    specs = probe.client_specs(PIPE, gpus, 20, script=script, base_env={**os.environ, "STANDIN_RECORD": str(record)})
    start = time.monotonic()
    runs = probe.run_cuda_clients(PIPE, specs, ask, None, 20)
    assert time.monotonic() - start < 15
    assert asked == ["get_server_list", "get_server_list", "get_client_list 705"]  # one round for all 8
    seen = {}
    for path in record.iterdir():
        head, released = path.read_text().rsplit("\n", 1)
        data = json.loads(head)
        seen[int(path.name)] = (data, float(released))
    assert sorted(r.pid for r in runs) == sorted(seen)
    for run in runs:
        env = seen[run.pid][0]["env"]
        assert env["CUDA_VISIBLE_DEVICES"] == run.gpu.uuid and env["CUDA_MPS_PIPE_DIRECTORY"] == PIPE
        assert run.device_uuid == run.gpu.uuid and run.held and run.rc == 0
    # together: every client held its context before any was released
    assert max(d["held"] for d, _ in seen.values()) < min(r for _, r in seen.values())
    verdict = mps_v.functional(runs, LOG)
    assert verdict.status == "pass" and "each of the 8 GPUs" in verdict.message, verdict


# --- module 1: the node ---------------------------------------------------------------------------------

NODE, CLUSTER, CONFIG = "workshop-dra-control-plane", "workshop-dra", "/tmp/kind-config.yaml"
PS = ("  61     1 Ssl  nvidia-cuda-mps nvidia-cuda-mps-control -d\n"
      " 121    61 Sl   nvidia-cuda-mps nvidia-cuda-mps-server\n")


def test_node_serves_a_client_on_each_gpu_or_names_the_one_it_did_not():
    gpus = derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt").gpus
    procs = mps.parse_ps(PS)
    ok = node_v.mps_server(procs, [121], "", NODE, "start", True, client_where="from the host",
                           clients=_served(gpus), gpus=gpus)
    assert ok.status == "pass" and all(f"GPU {g.index} ({g.uuid}) (client pid" in ok.message for g in gpus), ok
    bad = node_v.mps_server(procs, [121], "", NODE, "start", True, client_where="from the host",
                            clients=_served(gpus, no_context=(1,)), gpus=gpus)
    assert bad.status == "fail" and f"GPU 1 ({gpus[1].uuid}) not served" in bad.message
    assert "server.log" in bad.remediation
    one_short = node_v.mps_server(procs, [121], "", NODE, "start", True, clients=_served(gpus[:1]), gpus=gpus)
    assert one_short.status == "fail" and f"GPU 1 ({gpus[1].uuid})" in one_short.message
    unproven = node_v.mps_server(procs, [121], "--no-provision: the suite starts no CUDA client", NODE, "start",
                                 True, gpus=gpus)
    assert unproven.status == "fail" and "unproven" in unproven.message


def test_nvidia_smi_in_the_node_lists_every_host_gpu():
    eight = derived_facts("nvidia-smi-query-csv-noheader-8gpu.txt")
    text = (DERIVED / "nvidia-smi-query-csv-noheader-8gpu.txt").read_text()
    res = cmd.CmdResult(("docker", "exec"), 0, text)
    ok = node_v.gpus_in_node(res, eight.gpus, NODE, CLUSTER, CONFIG)
    assert ok.status == "pass" and "all 8 host GPU(s)" in ok.message
    seven = cmd.CmdResult(("docker", "exec"), 0, "\n".join(text.splitlines()[:7]))
    short = node_v.gpus_in_node(seven, eight.gpus, NODE, CLUSTER, CONFIG)
    assert short.status == "fail" and f"missing GPU 7 ({eight.gpus[7].uuid})" in short.message
    assert "kind delete cluster" in short.remediation and "/dev/" in short.remediation
    garbage = cmd.CmdResult(("docker", "exec"), 0, (DERIVED / "nvidia-smi-query-csv-noheader-garbage.txt").read_text())
    assert node_v.gpus_in_node(garbage, eight.gpus, NODE, CLUSTER, CONFIG).status == "fail"
    broken = node_v.gpus_in_node(cmd.CmdResult(("docker",), 9, "", "Failed to initialize NVML"), eight.gpus, NODE,
                                 CLUSTER, CONFIG)
    assert broken.status == "fail" and "cannot list GPUs" in broken.message


# --- review fixes: one hung GPU does not hide the others; the pid the daemon sees; node evidence -------------

def test_a_hung_client_does_not_make_the_clients_waited_on_after_it_look_hung(tmp_path):
    """Clients are waited on in turn with one deadline: GPU 0's client hanging in cuCtxCreate used to leave
    GPU 1's (which printed HOLDING at once) unread past the deadline and judged hung too."""
    gpus = derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt").gpus
    record = tmp_path / "rec"
    record.mkdir()
    hang_first = STANDIN_CLIENT.replace(
        'uuid = os.environ.get("CUDA_VISIBLE_DEVICES", "")',
        'uuid = os.environ.get("CUDA_VISIBLE_DEVICES", "")\n'
        f'if uuid == {gpus[0].uuid!r}:\n    print("cuInit 0", flush=True); time.sleep(60)')
    script = executable(tmp_path / "client.py", hang_first)

    def ask(query: str) -> cmd.CmdResult:
        if query == "get_server_list":
            return cmd.CmdResult(("ctl",), 0, "705\n")
        return cmd.CmdResult(("ctl",), 0, "\n".join(os.listdir(record)) + "\n")

    specs = probe.client_specs(PIPE, gpus, 2, script=script, base_env={**os.environ, "STANDIN_RECORD": str(record)})
    first, second = probe.run_cuda_clients(PIPE, specs, ask, None, 2)
    assert first.timed_out_at.startswith("creating its CUDA context") and not first.held
    assert second.held and not second.timed_out_at, second
    verdict = mps_v.functional((first, second), LOG)
    assert verdict.status == "fail" and "1 of 2" in verdict.message and f"GPU 0 ({gpus[0].uuid})" in verdict.message


def test_the_pid_judged_is_the_one_the_client_reports_holding(tmp_path):
    """In the node the client runs under docker exec (and timeout): the daemon there lists the pid the client
    prints ("HOLDING <pid>", its own namespace's), not the docker exec process's pid on the host."""
    gpus = derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt").gpus[:1]
    script = executable(tmp_path / "client.py", STANDIN_CLIENT.replace('"HOLDING %d" % os.getpid()', '"HOLDING 4242"'))
    record = tmp_path / "rec"
    record.mkdir()

    def ask(query: str) -> cmd.CmdResult:
        return cmd.CmdResult(("ctl",), 0, "705\n" if query == "get_server_list" else "4242\n")

    specs = probe.client_specs(PIPE, gpus, 10, script=script, base_env={**os.environ, "STANDIN_RECORD": str(record)})
    (run,) = probe.run_cuda_clients(PIPE, specs, ask, None, 10)
    assert run.pid == 4242 and run.client_lists == {705: (4242,)}
    assert mps_v.functional((run,), LOG).status == "pass"


def test_a_node_client_that_no_server_lists_is_not_served_even_while_a_server_runs():
    """A client that cannot reach the node's daemon runs on the GPU without MPS: a server running meanwhile (an
    earlier client's, the DRA driver's) must not count as serving it when several GPUs' clients ran."""
    gpus = derived_facts("nvidia-smi-query-csv-noheader-2gpu.txt").gpus
    procs = mps.parse_ps(PS)
    runs = tuple(dataclasses.replace(r, servers_before=(705,)) for r in _served(gpus, not_listed=(1,)))
    bad = node_v.mps_server(procs, [705], "", NODE, "start", True, client_where="in the node", clients=runs, gpus=gpus)
    assert bad.status == "fail" and f"GPU 1 ({gpus[1].uuid}) not served" in bad.message, bad
    assert "not served by MPS" in bad.message and f"pid {runs[1].pid}" in bad.message
    # a single client for which the daemon started its server is served (the H200 run: the node had none before)
    (alone,) = _served(gpus[:1], not_listed=(0,))
    fresh = dataclasses.replace(alone, servers_before=(), servers_during=(705,))
    assert node_v.mps_server(procs, [705], "", NODE, "start", True, clients=(fresh,), gpus=gpus[:1]).status == "pass"
    stale = dataclasses.replace(alone, servers_before=(705,), servers_during=(705,))
    assert node_v.mps_server(procs, [705], "", NODE, "start", True, clients=(stale,), gpus=gpus[:1]).status == "fail"
