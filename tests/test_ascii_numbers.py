"""Numbers read from outside the program are ASCII digits only (labcheck.versions.ascii_int), at every place.

WHY: ``str.isdigit()`` is True for "²" (``int`` then raises ValueError: a traceback of a check or of the run) and
for "١٢" (Arabic-Indic), which ``int`` reads as 12 (a wrong reading); ``int`` of more than 4300 digits raises
too. Each test feeds one place the real input (tests/data captures, the real spec, real processes, a real
private Docker engine) with hostile words added, and fails with the ``isdigit``/``isdecimal`` reading back.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from labcheck import cdi, cmd, mps, versions
from labcheck.cmd import CmdResult
from labcheck.config import LabConfig
from labcheck.inventory import InventoryError
from labcheck.inventory import load as load_inventory
from labcheck.probes import docker as docker_probe
from labcheck.probes.docker import ProbeOutput, RuntimeProbe
from labcheck.probes.driver_files import HostFile
from labcheck.probes.gpu import parse_query_csv
from labcheck.probes.node import parse_df_k
from labcheck.verdicts import docker as docker_v
from labcheck.verdicts import node as node_v
from labcheck.verdicts.cdi import device_count
from reports.html_parts import facts_in_order
from setup_actions.mps_daemon import MpsDaemon
from tests.captures import blocks, first
from tests.m1_cluster import unique
from tests.mps_client import run_one
from tests.standins import executable
from tests.test_cdi import SPEC, gpu_facts, lab, materialize, probe  # noqa: F401 - lab: the spec folders fixture
from tests.test_docker_integration import dockerd  # noqa: F401 - the private-engine fixture
from tests.test_docker_verdicts import engine_from_capture
from tests.test_mps_probe import control, dirs  # noqa: F401 - the MPS control double and its pipe dir

ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
LONG = "9" * 5000  # int() raises past 4300 digits (sys.get_int_max_str_digits)
# Words str.isdigit() (or isdecimal) lets through that are no ASCII number; each broke one place below.
HOSTILE = ("²", "١٢", LONG)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def test_ascii_int_reads_ascii_digits_and_nothing_else():
    assert [versions.ascii_int(t) for t in ("0", "12", "007", "9" * 18)] == [0, 12, 7, int("9" * 18)]
    for text in (*HOSTILE, "٣", "12 34", "", " 1", "1\n", "-1", "+1", "1_000", "9" * 19, "１２"):
        assert versions.ascii_int(text) is None, text
    # signed: one leading minus, then the same rule (a CUresult, a sysctl such as -1)
    assert [versions.ascii_int(t, signed=True) for t in ("-1", "0", "-0", "12")] == [-1, 0, 0, 12]
    for text in ("--1", "-", "+1", "- 1", "-١٢", "-" + "9" * 19, "1-"):
        assert versions.ascii_int(text, signed=True) is None, text
    assert versions.parse("v0.24.0") == (0, 24, 0) and versions.parse("20.10.24+dfsg1") == (20, 10, 24)
    assert versions.parse("١٢.٣") is None and versions.parse("v" + LONG) is None  # was (12, 3) / a ValueError


# --- tool output ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["²", "١٣٤٢١٧٧٢٨", LONG, "12,34"])
def test_df_size_in_hostile_digits_is_no_size_and_fails_the_shm_check(size):
    """The real df -k of the node with its 1K-blocks column replaced: no size (the check fails saying what
    it read), never a ValueError (²), 134217728 KiB read from Arabic-Indic digits, or the Used column's 0."""
    real = next(b for b in blocks("h100-docker/node-captures.txt") if b.command.endswith("df -k /dev/shm"))
    assert real.command.endswith("df -k /dev/shm") and parse_df_k(real.output) == 134217728 * 1024
    hostile = real.output.replace("tmpfs                134217728", f"tmpfs                {size}")
    assert parse_df_k(hostile) is None
    verdict = node_v.shm(None, 1024, CmdResult(("df", "-k", "/dev/shm"), 0, hostile), "node")
    assert verdict.status == "fail" and "expected a number of 1K blocks" in verdict.message


@pytest.mark.parametrize("name", ["²", "١٢", "7"])
def test_df_filesystem_named_like_a_number_is_not_the_size(name):
    """A mount source named "²" was int()'s ValueError, "١٢" or "7" was read as the size (12 / 7 KiB)."""
    real = first("h100-host/df-shm.txt").output
    assert parse_df_k(real.replace("tmpfs   ", f"{name}   ")) == 134217728 * 1024
    assert parse_df_k(real.replace("tmpfs   ", f"{name}\n   ")) == 134217728 * 1024  # wrapped after the name


@pytest.mark.parametrize("word", [*HOSTILE, "12 34"])
def test_holding_line_with_a_hostile_pid_is_no_pid(word, control, dirs, tmp_path):  # noqa: F811
    """The client's "HOLDING <pid>" line says the pid the daemon sees; one that is no ASCII pid must not become
    pid 12 (١٢, "12 34") or a ValueError (5000 digits): the started process's own pid stands in."""
    mine = tmp_path / "pid"
    script = executable(tmp_path / "client.py", f"""import os, sys
open({str(mine)!r}, "w").write(str(os.getpid()))
print("cuInit 0\\ncuDeviceGetCount 0 1\\ncuDeviceGet 0\\ncuCtxCreate_v2 0\\nHOLDING " + {word!r}, flush=True)
sys.stdin.readline()
print("cuCtxDestroy_v2 0")
""")
    pipe, log = dirs
    MpsDaemon(control, pipe, log, 10, state_root=tmp_path / "s").apply()
    run = run_one(pipe, control, None, 20, script=script)
    assert run.held and run.rc == 0
    assert run.pid == int(mine.read_text())


def test_gpu_index_server_list_and_smi_rows_in_hostile_digits_are_left_out():
    """The real H100 query, get_server_list and nvidia-smi answers with rows whose numbers are hostile added:
    those rows are no GPU / pid (a 5000-digit index or pid was a ValueError even with [0-9]+)."""
    query = first("h100-host/nvidia-smi-query-csv-noheader.txt").output
    gpus, driver = parse_query_csv(query)
    row = query.splitlines()[0]
    for word in HOSTILE:
        assert parse_query_csv(query + "\n" + word + row[1:]) == (gpus, driver)
    assert mps.parse_server_list("447\n" + "\n".join(HOSTILE) + "\n12 34\n") == [447]
    smi = blocks("h100-host/mps-ps-with-client.txt")[2].output  # the real nvidia-smi while client 447 held
    real = mps.smi_mps_clients(smi)
    line = next(ln for ln in smi.splitlines() if "M+C" in ln)
    pid = str(real[0][1])
    hostile = [line.replace(pid, LONG[:len(pid)] + LONG, 1), line.replace("|    0", "|    " + LONG, 1)]
    assert mps.smi_mps_clients(smi + "\n" + "\n".join(hostile)) == real


def test_probe_container_without_a_gpu_node_in_ascii_digits_gives_no_gpu():
    """The runtime probe's /dev listing (LABCHECK_DEV lines) with only hostile nvidia names: no GPU inside."""
    engine = engine_from_capture()
    for name in ("/dev/nvidia²", "/dev/nvidia١", "/dev/nvidia" + LONG, "/dev/nvidia"):
        out = ProbeOutput(("/dev/nvidiactl", "/dev/nvidia-uvm", name), 0, ("GPU 0: H100",), True)
        verdict = docker_v.runtime_usable(engine, RuntimeProbe("nvidia", True, image="i", exit_code=0, output=out), 1)
        assert verdict.status == "fail" and "gives them no GPU" in verdict.message, name
    out = ProbeOutput(("/dev/nvidiactl", "/dev/nvidia0"), 0, ("GPU 0: H100",), True)
    assert docker_v.runtime_usable(engine, RuntimeProbe("nvidia", True, image="i", exit_code=0, output=out),
                                   1).status == "pass"


# --- files: kind config mounts, CDI spec, MPS state, inventory -------------------------------------------

def test_host_device_named_nvidia_in_hostile_digits_is_no_gpu_node():
    base = [HostFile("nvidiactl", "device", "/dev/nvidiactl", "/dev/nvidiactl"),
            HostFile("nvidia-uvm", "device", "/dev/nvidia-uvm", "/dev/nvidia-uvm")]
    for name in ("nvidia²", "nvidia١", "nvidia" + LONG):
        verdict = node_v.host_devices([*base, HostFile(name, "device", f"/dev/{name}", f"/dev/{name}")])
        assert verdict.status == "fail" and "/dev/nvidia[0-9]*" in verdict.message, name
    assert node_v.host_devices([*base, HostFile("nvidia0", "device", "/dev/nvidia0", "/dev/nvidia0")]).status == "pass"


def test_cdi_device_named_in_hostile_digits_is_no_gpu(lab):  # noqa: F811
    """The real spec plus devices named "²", "١" and 5000 digits: still one GPU by index, the host's one. (CDI refuses
    the non-ASCII names, pkg/parser ValidateDeviceName, so only the 5000-digit one is left in the spec counted.)"""
    root, etc, _run = lab

    def spec_with(names) -> str:
        device = '- containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n  name: "{}"\n'
        extra = "".join(device.format(n) for n in names)
        return SPEC.replace("devices:\n", "devices:\n" + extra, 1)

    spec = cdi.parse_spec(spec_with(HOSTILE), "x.yaml")
    assert spec.gpu_indices == ("0",) and sum("device name" in p.message for p in spec.problems) == 2
    (etc / "nvidia.yaml").write_text(materialize(spec_with([LONG]), root))
    verdict = device_count(probe(etc, _run), gpu_facts())
    assert verdict.status == "pass", verdict


def test_mps_users_with_hostile_pids_are_kept_and_never_crash(tmp_path):
    """The daemon's users ("host:pid", a state file) of this host: only an ASCII pid that is gone is dropped;
    "host:²" was a ValueError of every register/teardown, "host:<١٢ of a dead pid>" was dropped as that pid."""
    host, dead = socket.gethostname(), _dead_pid()
    me = f"{host}:{os.getpid()}"
    action = MpsDaemon(None, str(tmp_path / "pipe"), str(tmp_path / "log"), 5, state_root=tmp_path / "s")
    kept = [f"{host}:{w}" for w in ("²", str(dead).translate(ARABIC), LONG, "", "12 34")] + ["other-host:1"]
    action.state_file.parent.mkdir(parents=True)
    action.state_file.write_text(json.dumps({"phase": "started", "pid": None, "boot_id": cmd.boot_id(),
                                             "users": [*kept, f"{host}:{dead}"]}))
    assert sorted(action.other_users(me)) == sorted(kept)


@pytest.mark.parametrize("port", ["²", "١٢", LONG, "", "0", "65536", "22a"])
def test_inventory_port_that_is_no_ascii_tcp_port_is_a_clear_error(port, tmp_path):
    """`user@host:PORT` in a hosts file: an InventoryError naming line and port, never int('²')'s traceback
    or port 12 read from "١٢" (port 0 meant "no port": ssh's 22)."""
    inv = tmp_path / "hosts"
    inv.write_text(f"ubuntu@10.0.0.11:2222\nubuntu@10.0.0.12:{port}\n")
    with pytest.raises(InventoryError, match=r"hosts:2: port .* is no TCP port; expected 1-65535 in ASCII digits"):
        load_inventory(inv)
    inv.write_text("ubuntu@10.0.0.11:2222\n[::1]\nubuntu@10.0.0.12\n")
    assert [h.port for h in load_inventory(inv)] == [2222, None, None]


# --- labels and facts from other runs / hosts -----------------------------------------------------------

def test_fact_named_gpu_in_hostile_digits_sorts_last_without_a_crash():
    facts = {"Something new": "x", f"GPU {LONG}": "a", "GPU ²": "b", "GPU ١٢": "c", "GPU 10": "d", "GPU 2": "e",
             "GPUs": "2", "OS": "Ubuntu"}
    assert list(facts_in_order(facts)) == ["OS", "GPUs", "GPU 2", "GPU 10", "Something new", f"GPU {LONG}",
                                           "GPU ²", "GPU ١٢"]


@pytest.mark.docker
def test_leftover_probe_with_a_hostile_owner_pid_is_kept(dockerd, tmp_path):  # noqa: F811
    """Probe containers on a private engine, with our labels and this host, their owner pid label hostile: only
    the one whose ASCII pid is gone is removed; "²" was a ValueError out of the runtime probe, the Arabic-Indic
    spelling of a dead pid removed a container whose label this suite never wrote."""
    d = dockerd({})
    cfg = LabConfig(docker_host=d.host, command_timeout=20)
    client = docker_probe.probe_engine(cfg).client
    image, _note, error = docker_probe.ensure_probe_image(client, cfg)
    assert not error, error
    dead = str(_dead_pid())
    names = {}
    for pid in ("²", dead.translate(ARABIC), LONG, "", "12 34", dead):
        name = unique(docker_probe.PROBE_PREFIX)
        client.containers.create(image, ["true"], name=name, labels={
            docker_probe.OWNED_LABEL: "1", docker_probe.OWNER_HOST_LABEL: socket.gethostname(),
            docker_probe.OWNER_PID_LABEL: pid})
        names[pid] = name
    assert docker_probe.remove_leftover_probes(client) == (names[dead],)
    left = {c.name for c in client.containers.list(all=True)}
    assert left == set(names.values()) - {names[dead]}


def test_hostile_words_are_what_isdigit_lets_through():
    """The premise: each hostile word passes str.isdigit() and is no ASCII number (so the tests above test it)."""
    assert all(w.isdigit() for w in HOSTILE) and "١٢".isdecimal() and int("١٢") == 12
    with pytest.raises(ValueError):
        int("²")
    with pytest.raises(ValueError):
        int(LONG)
