"""Hostile GPU listings: nvidia-smi process rows whose process name imitates an MPS client (M+C evidence must come
from the Type column only), and --query-gpu listings with a GPU missing (an error line in its place, a gap in the
indexes, NVML counting more). Rows are the real ones of tests/data/h100-host and tests/data/multigpu-derived with
only the named fields changed."""

from __future__ import annotations

import os

import pytest

from fixtures.mps import _client_runs
from labcheck import cmd, mps
from labcheck.config import LabConfig
from labcheck.probes import gpu as gpu_probe
from labcheck.probes import mps as probe
from labcheck.probes.gpu import GpuFacts, NvmlFacts
from labcheck.verdicts import gpu as gpu_v
from labcheck.verdicts import mps as mps_v
from tests.captures import DATA, blocks, first
from tests.standins import executable
from tests.test_multigpu import LOG, PIPE, STANDIN_CLIENT

SMI_TABLE = blocks("h100-host/mps-ps-with-client.txt")[2].output  # the real nvidia-smi while client 447 held
REAL_ROW = next(ln for ln in SMI_TABLE.splitlines() if "M+C" in ln)  # |    0   N/A  N/A   447    M+C   python3 ...
EIGHT = (DATA / "multigpu-derived/nvidia-smi-query-csv-noheader-8gpu.txt").read_text()
FALLEN = "Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error"  # a GPU off the bus


def _row(gpu: str = "0", pid: str = "447", kind: str = "M+C", name: str = "python3", mig: str = "N/A  N/A") -> str:
    """REAL_ROW with the named columns replaced, keeping its width (GI and CI left out when ``mig`` is None: the
    layout of drivers before MIG, ``|  GPU       PID   Type   Process name   Usage |``)."""
    cols = f"{gpu:>5}   {mig}   " if mig is not None else f"{gpu:>5}      "
    return f"|{cols}{pid:>13}   {kind:>4}   {name:<38}  516MiB |"


def test_the_column_parser_reads_the_real_row_and_both_real_layouts():
    assert _row().split() == REAL_ROW.split()  # the helper makes the real row
    assert mps.smi_mps_clients(SMI_TABLE) == [(0, 447)]  # the server's own row (type C) is no client
    assert mps.smi_mps_clients(_row(mig=None)) == [(0, 447)]  # no GI/CI columns (pre-MIG drivers)
    assert mps.smi_mps_clients(_row(gpu="3", mig="1    0")) == [(3, 447)]  # MIG: GI and CI are numbers
    assert mps.smi_mps_clients(_row(name="/usr/bin/python3 -c 'x | y'") + "\r\n" + _row("1", "448")) \
        == [(0, 447), (1, 448)]  # a name with spaces and a bar; CRLF


@pytest.mark.parametrize("name", ["python3 650 M+C", "650 M+C", "x 0 650 M+C", "python3 ² M+C", "² M+C",
                                  "python3 \u0663 M+C", "M+C"])
@pytest.mark.parametrize("mig", ["N/A  N/A", None])
def test_a_process_name_that_says_m_plus_c_is_no_mps_client(name, mig):
    """Any local user names a compute process ``python3 650 M+C``: the old parser took the first M+C token and the
    number before it (client pid 650 got nvidia-smi's word for it); ``² M+C`` passed isdigit() and crashed int()."""
    table = SMI_TABLE.replace(REAL_ROW, _row(pid="4242", kind="C", name=name, mig=mig) + "\n" + REAL_ROW)
    assert mps.smi_mps_clients(table) == [(0, 447)]
    assert mps.smi_mps_client_pids(_row(pid="4242", kind="C", name=name, mig=mig)) == []


@pytest.mark.parametrize("row", [_row(gpu="²"), _row(pid="²"), _row(pid="\u0663"), _row(gpu="\u0663"),
                                 _row(pid="-1"), _row(kind="M+CX"), _row(pid="N/A"), REAL_ROW[:30],
                                 REAL_ROW.rstrip("| "), "|", "M+C", "| 0 M+C |", "| 0 N/A N/A 447 M+C|"])
def test_malformed_process_rows_are_ignored_never_a_crash(row):
    assert mps.smi_mps_clients(row + "\n" + REAL_ROW) == [(0, 447)]


def test_a_spoofed_row_gives_the_suites_client_no_evidence_in_a_real_run(tmp_path):
    """End to end through run_cuda_clients: a real client process (the stand-in of tests/test_multigpu.py), MPS not
    listing it, and an nvidia-smi stand-in printing the real table plus another process named after the client's
    pid and "M+C" (what any user on the host can start). The client was not served: the check must fail."""
    record = tmp_path / "rec"
    record.mkdir()
    client = executable(tmp_path / "client.py", STANDIN_CLIENT)
    smi = executable(tmp_path / "nvidia-smi", f"""#!/bin/sh
pid=$(ls '{record}')
cat <<EOF
{SMI_TABLE.replace(REAL_ROW, _row(pid="4242", kind="C", name="python3 $pid M+C"))}
{_row(pid="4243", kind="C", name="python3 ² M+C")}
EOF
""")  # stands for nvidia-smi on a shared host: its process names are whatever each process calls itself

    def ask(query: str) -> cmd.CmdResult:  # stands for a daemon whose server 705 serves no client of ours
        return cmd.CmdResult(("ctl",), 0, "705\n" if query == "get_server_list" else "")

    gpus = gpu_probe.parse_query_csv(EIGHT)[0][:1]
    specs = probe.client_specs(PIPE, gpus, 20, script=client, base_env={**os.environ, "STANDIN_RECORD": str(record)})
    runs = probe.run_cuda_clients(PIPE, specs, ask, str(smi), 20)
    assert runs[0].held and f"python3 {runs[0].pid} M+C" in runs[0].smi.stdout  # the spoof was on screen
    assert runs[0].smi_mps_on == () and runs[0].smi_mps_clients == ()
    verdict = mps_v.functional(runs, LOG)
    assert verdict.status == "fail" and "nvidia-smi shows it as M+C" not in verdict.message, verdict


# --- the --query-gpu listing --------------------------------------------------------------------------------------

def _listing(tmp_path, text: str) -> GpuFacts:
    """GpuFacts read by the real probe from an nvidia-smi stand-in printing ``text`` (exit 0), without NVML."""
    (tmp_path / "out.txt").write_text(text)
    executable(tmp_path / "nvidia-smi", f"#!/bin/sh\ncat '{tmp_path / 'out.txt'}'\n")  # stands for a driver whose
    return gpu_probe.probe_gpus((str(tmp_path),), 10, use_nvml=False, proc_version=tmp_path / "none")  # answer
    # is ``text``


def _lines(*indexes: int) -> list[str]:
    return [EIGHT.splitlines()[i] for i in indexes]


@pytest.mark.parametrize("text", [
    "\n".join(_lines(0, 1, 2, 3)) + "\n",
    "\r\n".join(_lines(0, 1, 2, 3)) + "\r\n",  # CRLF (a capture copied through Windows)
    "\n\n" + "\n\n".join(_lines(0, 1, 2, 3)) + "\n\n  \n",  # blank lines
    "\n".join(ln + "   " for ln in _lines(0, 1, 2, 3)) + "\n",  # trailing blanks
    "index, uuid, name, driver_version, compute_cap, compute_mode, memory.total [MiB]\n"  # the header (without
    + "\n".join(_lines(0, 1, 2, 3)) + "\n",  # noheader), as the real nvidia-smi-query-csv.txt has it
])
def test_harmless_variations_of_a_real_listing_pass(tmp_path, text):
    facts = _listing(tmp_path, text)
    assert facts.smi.strays == () and [g.index for g in facts.gpus] == [0, 1, 2, 3]
    verdict = gpu_v.gpus_present(facts)
    assert verdict.status == "pass" and verdict.message.startswith("4 GPUs: GPU 0:"), verdict


def test_the_real_single_gpu_and_derived_multi_gpu_listings_pass(tmp_path):
    for name in ("h100-host/nvidia-smi-query-csv-noheader.txt", "multigpu-derived/nvidia-smi-query-csv-noheader"
                 "-2gpu.txt", "multigpu-derived/nvidia-smi-query-csv-noheader-8gpu.txt"):
        text = first(name).output if name.startswith("h100-host") else (DATA / name).read_text()
        facts = _listing(tmp_path, text)
        assert gpu_v.gpus_present(facts).status == "pass" and facts.list_problems() == [], name


def test_a_gpu_in_the_middle_printed_as_an_error_fails_naming_it(tmp_path):
    """GPUs 0, 1, 3 listed and GPU 2 an error line (a GPU off the bus): not "3 GPUs"; the MPS check skips too."""
    facts = _listing(tmp_path, "\n".join([*_lines(0, 1), FALLEN, *_lines(3)]) + "\n")
    verdict = gpu_v.gpus_present(facts)
    assert verdict.status == "fail", verdict
    assert "nvidia-smi lists GPU indexes 0, 1, 3, expected 0..2: GPU 2 not listed" in verdict.message
    assert f"nvidia-smi printed {FALLEN!r} where a GPU line" in verdict.message
    assert verdict.remediation.startswith("nvidia-smi -q -i 2; nvidia-smi -q -i 0000:3B:00.0; nvidia-smi -L")
    assert "Xid 79" in verdict.remediation and "reboot" in verdict.remediation
    mps_facts = probe.MpsFacts("/bin/true", "/bin/true", cmd.CmdResult(("ps",), 0), (),
                               probe.PipeDir(PIPE, True, True, True, False, True), None)
    reason = _client_runs(LabConfig(), facts, mps_facts)
    assert isinstance(reason, str) and "not usable" in reason and "GPU 2 not listed" in reason


def test_the_last_gpu_printed_as_an_error_fails_though_no_index_is_missing(tmp_path):
    facts = _listing(tmp_path, "\n".join([*_lines(0, 1, 2), FALLEN]) + "\n")
    verdict = gpu_v.gpus_present(facts)
    assert verdict.status == "fail" and FALLEN in verdict.message and "GPU 0: " in verdict.message, verdict
    assert verdict.remediation.startswith("nvidia-smi -q -i 0000:3B:00.0; ")
    mps_facts = probe.MpsFacts("/bin/true", "/bin/true", cmd.CmdResult(("ps",), 0), (),
                               probe.PipeDir(PIPE, True, True, True, False, True), None)
    reason = _client_runs(LabConfig(), facts, mps_facts)  # no client pinned to a list that lost a GPU
    assert isinstance(reason, str) and "not usable" in reason and FALLEN in reason


@pytest.mark.parametrize("indexes, missing", [((0, 1, 3), "GPU 2 not listed"), ((1, 2), "GPU 0 not listed"),
                                              ((0, 2, 5), "GPU 1, 3, 4 not listed")])
def test_gaps_in_the_indexes_are_a_problem_of_the_list_itself(indexes, missing):
    gpus = [gpu_probe.Gpu(i, f"GPU-683e20a0-8269-a95e-460e-{i:012x}", "H100", (9, 0), "Default") for i in indexes]
    assert any(missing in p for p in gpu_probe.gpu_list_problems(gpus))
    assert gpu_probe.gpu_list_problems(gpus[:1] if indexes[0] == 0 else []) == []


def test_a_garbled_huge_index_is_bounded_and_never_a_crash(tmp_path):
    text = "\n".join(_lines(0)) + "\n" + _lines(1)[0].replace("1,", "999999999999,", 1) + "\n"
    verdict = gpu_v.gpus_present(_listing(tmp_path, text))
    assert verdict.status == "fail" and "expected 0..1" in verdict.message and len(verdict.remediation) < 8000


@pytest.mark.parametrize("junk", ["²" + _lines(1)[0][1:], _lines(1)[0][:60], "garbage \x00\x1b[31m", ",,,,,,",
                                  "No devices were found"])
def test_a_line_that_is_no_gpu_row_fails_never_crashes(tmp_path, junk):
    verdict = gpu_v.gpus_present(_listing(tmp_path, _lines(0)[0] + "\n" + junk + "\n"))
    assert verdict.status == "fail" and "where a GPU line" in verdict.message, verdict


def test_nvml_counting_other_gpus_than_nvidia_smi_is_a_problem():
    """NVML (the [gpu] extra) reads the same driver: 4 GPUs there and 3 in nvidia-smi's list is a GPU it lost."""
    smi_gpus, driver = gpu_probe.parse_query_csv("\n".join(_lines(0, 1, 2)))
    nvml_gpus = tuple(gpu_probe.parse_query_csv("\n".join(_lines(0, 1, 2, 3)))[0])
    smi = gpu_probe.SmiQuery("nvidia-smi", cmd.CmdResult(("nvidia-smi",), 0, "\n".join(_lines(0, 1, 2))),
                             tuple(smi_gpus), driver)
    facts = GpuFacts(smi, NvmlFacts(driver, "13.0", nvml_gpus))
    verdict = gpu_v.gpus_present(facts)
    assert verdict.status == "fail" and "NVML counts 4 GPUs, nvidia-smi lists 3" in verdict.message, verdict
    same = GpuFacts(smi, NvmlFacts(driver, "13.0", nvml_gpus[:3]))
    assert gpu_v.gpus_present(same).status == "pass"
