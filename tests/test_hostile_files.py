"""Every file the suite reads, with every kind of hostile content or file in its place, through the public function
its fixture calls: the lab config (labcheck.config.load), the kind config (labcheck.kindconfig.load and the kind
config step's plan), a CDI spec in a spec folder (labcheck.probes.cdi.probe_cdi), Docker's daemon.json
(labcheck.probes.docker.read_daemon_json and the --fix-host runtime plan), the suite's state records
(labcheck.state.read / read_json, the MPS record's check), and the answer each host of a fleet gives the
controller's probe (labcheck.probes.fleet.classify).

Each case must end in verdicts (one failing, naming the file, where the file cannot be used), never an exception:
an exception here is a traceback or a pytest error in a real run instead of a failed check. Slow cases (alias
bombs, nesting thousands deep, megabytes on one line) must also stay fast.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labcheck import cmd, fsio, kindconfig, state
from labcheck import config as labconfig
from labcheck.inventory import Host
from labcheck.probes import fleet as fleet_probe
from labcheck.probes.cdi import probe_cdi
from labcheck.probes.docker import read_daemon_json
from labcheck.verdict import Verdict
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import docker as docker_v
from labcheck.verdicts import host as host_v
from labcheck.verdicts import kindconfig as kind_v
from setup_actions import docker_runtime
from setup_actions import kind_config as kind_config_action
from setup_actions.mps_daemon import record_problem
from tests.test_cdi import gpu_facts


def _nest(depth: int, opening: str, closing: str) -> bytes:
    return (opening * depth + closing * depth).encode()


LAUGHS = "".join(f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9 if p else ["lol"] * 9) + "]\n"
                 for c, p in zip("abcdefghi", ["", *"abcdefgh"], strict=True))

# name -> bytes: what a file of any of the kinds below may hold
CONTENT: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b" \n\t\n",
    "bom-only": "\ufeff".encode(),
    "bom-then-garbage": "\ufeff{[".encode(),
    "nul-bytes": b"a: 1\n\x00\x00\x00\n",
    "not-utf8": b"a: \xff\xfe\xfd\n",
    "latin1": "name: caf\xe9\n".encode("latin-1"),
    "binary-garbage": bytes(range(256)) * 16,
    "control-characters": b"a: \x1b[31mred\x07\n",
    "lone-surrogate-json": b'{"a": "\\ud800"}',
    "yaml-scalar": b"just a string\n",
    "yaml-list": b"- 1\n- 2\n",
    "json-list": b"[1, 2, 3]",
    "json-null": b"null",
    "json-number": b"12",
    "json-nan": b'{"a": NaN}',
    "json-huge-int": b'{"a": ' + b"9" * 5000 + b"}",
    "yaml-huge-int": b"a: " + b"9" * 5000 + b"\n",
    "yaml-huge-float": b"a: 1.0e99999\n",
    "duplicate-keys": b"a: 1\na: 2\n",
    "json-duplicate-keys": b'{"a": 1, "a": 2}',
    "two-documents": b"a: 1\n---\nb: 2\n",
    "bad-syntax": b"a: [\n",
    "tabs": b"a:\n\t- 1\n",
    "deep-yaml": _nest(5000, "[", "]"),
    "deep-json-objects": b'{"a":' * 3000 + b"1" + b"}" * 3000,
    "deep-mapping": ("".join(f"{' ' * i}k{i}:\n" for i in range(300)) + " " * 300 + "v\n").encode(),
    "billion-laughs": LAUGHS.encode(),
    "recursive-alias": b"a: &x [1, *x]\n",
    "undefined-alias": b"a: *nothing\n",
    "merge-of-a-scalar": b"a:\n  <<: 5\n",
    "merge-of-a-list-of-scalars": b"a:\n  <<: [1, 2]\n",
    "python-tag": b"a: !!python/object/apply:os.system ['true']\n",
    "unknown-tag": b"a: !custom x\n",
    "bad-int-tag": b"a: !!int 1e3\n",
    "bad-float-tag": b"a: !!float abc\n",
    "bad-bool-tag": b"a: !!bool maybe\n",
    "bad-timestamp": b"a: 2001-13-40\n",
    "bad-binary": b"a: !!binary x\n",
    "unhashable-key": b"? [a, b]\n: c\n",
    "set-and-omap": b"a: !!set {x}\nb: !!omap [c: 1]\n",
    "very-long-line": b"a: " + b"x" * (1024 * 1024) + b"\n",
    "many-keys": b"".join(b"k%d: %d\n" % (i, i) for i in range(20000)),
    "oversize": b"#" * (fsio.MAX_READ_BYTES + 1),
}

# what may stand where a regular file is expected
KINDS = ("directory", "fifo", "dev-null", "dangling-symlink", "symlink-loop", "socket", "unreadable")


def _place(path: Path, what: str) -> None:
    """Put ``what`` (a CONTENT name or a KIND) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if what in CONTENT:
        path.write_bytes(CONTENT[what])
    elif what == "directory":
        path.mkdir()
    elif what == "fifo":
        os.mkfifo(path)
    elif what == "dev-null":
        path.symlink_to("/dev/null")
    elif what == "dangling-symlink":
        path.symlink_to(path.parent / "nowhere")
    elif what == "symlink-loop":
        path.symlink_to(path)
    elif what == "socket":
        short = Path(tempfile.mkdtemp(dir="/tmp")) / "s"  # a socket's path has at most 107 bytes
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(short))  # closed below: the socket file stays, and is moved into place
        sock.close()
        os.rename(short, path)
        short.parent.rmdir()
    elif what == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads a file of mode 000")
        path.write_bytes(b"a: 1\n")
        path.chmod(0)
    else:
        raise AssertionError(what)


CASES = [*CONTENT, *KINDS]


def _checked(verdicts: list[Verdict], path: Path, case: str, usable: set[str]) -> None:
    """Each is a verdict; unless the file is one of ``usable``, one fails and names it."""
    assert all(isinstance(v, Verdict) and v.status in ("pass", "fail", "warn", "skip") for v in verdicts), verdicts
    if case in usable:
        return
    failing = [v for v in verdicts if v.status == "fail"]
    assert failing, (case, verdicts)
    assert any(str(path) in v.message for v in failing), (case, failing)
    for v in failing:
        assert len(v.message) < 3000, (case, v.message[:300])  # values in messages are bounded


def _fast(fn: Callable[[], list[Verdict]]) -> list[Verdict]:
    t0 = time.monotonic()
    out = fn()
    assert time.monotonic() - t0 < 15, "took too long"
    return out


# --- the lab config ----------------------------------------------------------------------------------------

LAB_USABLE = {"empty", "whitespace", "bom-only", "json-null"}  # no settings: the documented defaults, valid


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_lab_config_is_a_failing_lab_config_check(tmp_path, case):
    path = tmp_path / "lab.yaml"
    _place(path, case)

    def run() -> list[Verdict]:
        cfg, problems = labconfig.load(path)
        assert isinstance(cfg, labconfig.LabConfig)
        return [host_v.lab_config(problems, str(path))]

    _checked(_fast(run), path, case, LAB_USABLE)


# --- the kind config ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_a_hostile_kind_config_is_a_failing_kind_config_check(tmp_path, case):
    path = tmp_path / "manifests" / "kind-config.yaml"
    _place(path, case)

    def run() -> list[Verdict]:
        parsed = kindconfig.load(path)
        kindconfig.node_paths(parsed, "/tmp/nvidia-mps")
        try:  # the kind config step reads the file there first: a file it cannot read is its FileProblem
            kind_config_action.plan_write(path, "kind: Cluster\n")
        except fsio.FileProblem as exc:
            assert str(path) in str(exc)
        return [kind_v.config_valid(parsed), kind_v.host_paths_exist(parsed, "/tmp/nvidia-mps")]

    _checked(_fast(run), path, case, set())


# --- a CDI spec --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["nvidia.yaml", "nvidia.json"])
@pytest.mark.parametrize("case", CASES)
def test_a_hostile_cdi_spec_is_a_failing_cdi_check(tmp_path, case, name):
    etc = tmp_path / "etc-cdi"
    path = etc / name
    _place(path, case)

    def run() -> list[Verdict]:
        facts = probe_cdi((str(etc), str(tmp_path / "run-cdi")), None, 10, spec_path=str(etc / "nvidia.yaml"))
        gpu = gpu_facts()
        return [cdi_v.spec_present(facts), cdi_v.spec_valid(facts), cdi_v.device_count(facts, gpu),
                cdi_v.not_stale(facts, gpu), cdi_v.no_conflicts(facts)]

    verdicts = _fast(run)
    if case == "directory":  # CDI skips a folder in the spec folder, as the runtime does: no spec is there
        assert verdicts[0].status == "fail" and "found none" in verdicts[0].message, verdicts[0]
        return
    _checked(verdicts, path, case, set())


# --- Docker's daemon.json -------------------------------------------------------------------------------------

# A real dockerd 20.10 starts with a daemon.json of null. The other two are JSON objects whose one flaw for dockerd
# is their key "a", which it refuses as an unknown directive: the suite does not check directive names.
DAEMON_USABLE = {"json-null", "lone-surrogate-json", "json-duplicate-keys"}


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_daemon_json_is_a_failing_check_and_fix_host_touches_nothing(tmp_path, case):
    path = tmp_path / "daemon.json"
    _place(path, case)

    def run() -> list[Verdict]:
        dj = read_daemon_json(path)
        plan = docker_runtime.plan(dj, [], "nvidia")
        if case not in DAEMON_USABLE and case != "dangling-symlink":
            assert plan.problem and not plan.needs_reload, plan  # --fix-host refuses a file dockerd refuses
        return [docker_v.daemon_json_valid(dj)]

    _checked(_fast(run), path, case, DAEMON_USABLE | {"dangling-symlink"})  # no file: nothing to validate


# --- the suite's own records ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_a_hostile_state_record_is_no_record_and_never_a_crash(tmp_path, case):
    """A cluster record the suite cannot trust is none (no proof of ownership, so nothing is deleted); the MPS
    record's check says what is wrong with any object read."""
    directory = tmp_path / "state"
    path = state.record_path(directory, "workshop-dra")
    _place(path, case)
    t0 = time.monotonic()
    assert state.read(directory, "workshop-dra") is None
    record = state.read_json(path)
    assert record is None or isinstance(record, dict)
    assert isinstance(record_problem(record or {}), str)
    assert time.monotonic() - t0 < 15


# --- what the real readers accept or refuse where Python's differ ---------------------------------------------

KIND_HEAD = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"


def test_a_key_written_twice_in_a_kind_config_fails_as_kind_refuses_it(tmp_path):
    """kind reads its config with yaml.v3, which refuses a key written twice in one mapping ("mapping key already
    defined"); PyYAML keeps the last, so `name:` twice, or a label twice, was called valid."""
    path = tmp_path / "kind-config.yaml"
    path.write_text(KIND_HEAD + "name: a\nname: b\nnodes:\n- role: control-plane\n  labels: {x: '1', x: '2'}\n")
    verdict = kind_v.config_valid(kindconfig.load(path))
    assert verdict.status == "fail", verdict
    assert f"{path}:4: 'name' is written twice in one mapping (line 3 and line 4): kind refuses the file" \
        in verdict.message + verdict.details, verdict
    assert "'x' is written twice in one mapping (line 7 and line 7)" in verdict.details, verdict.details


def test_a_kind_config_key_a_merge_key_brought_may_be_set_again(tmp_path):
    """yaml.v3 lets a mapping's own key win over a merged one: no problem of a key written twice."""
    text = KIND_HEAD + "nodes:\n- &cp {role: control-plane, image: 'kindest/node:v1.34.0'}\n- <<: *cp\n  role: worker\n"
    assert not [p for p in kindconfig.parse(text, "k.yaml").problems if "written twice" in p.message]


def test_a_daemon_json_of_null_is_no_settings_as_dockerd_reads_it(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text("null")  # dockerd 20.10 starts with it (checked with tests/private_dockerd.py)
    dj = read_daemon_json(path)
    assert docker_v.daemon_json_valid(dj).status == "pass" and dj.data == {} and dj.runtimes == {}
    assert not docker_runtime.plan(dj, [], "nvidia").problem


def test_a_daemon_json_with_a_byte_order_mark_fails_in_words_dockerd_would_use(tmp_path):
    """dockerd 20.10 refuses a BOM ("invalid character 'ï' looking for beginning of value"); the message was
    Python's own advice ("decode using utf-8-sig")."""
    path = tmp_path / "daemon.json"
    path.write_bytes("\ufeff{}".encode())
    verdict = docker_v.daemon_json_valid(read_daemon_json(path))
    assert verdict.status == "fail" and "starts with a byte order mark (BOM)" in verdict.message, verdict
    assert "utf-8-sig" not in verdict.message


@pytest.mark.parametrize("name", ["nvidia.yaml", "nvidia.json"])
def test_a_cdi_spec_with_a_byte_order_mark_reads_as_the_runtime_reads_it(tmp_path, name):
    """The runtime reads a .json spec as YAML too, which skips a BOM: a spec saved by an editor with one is the
    same spec."""
    etc = tmp_path / "etc-cdi"
    etc.mkdir()
    dev = tmp_path / "nvidia0"
    dev.touch()
    text = ('{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": [{"name": "0", "containerEdits": '
            f'{{"deviceNodes": [{{"path": "{dev}"}}]}}}}]}}')
    (etc / name).write_bytes(("\ufeff" + text).encode())
    facts = probe_cdi((str(etc),), None, 10, spec_path=str(etc / "nvidia.yaml"))
    assert cdi_v.spec_valid(facts).status == "pass", cdi_v.spec_valid(facts)


# --- the answer a fleet host gives the controller's probe ---------------------------------------------------------

ANSWER = {"version": [3, 11, 2], "executable": "/usr/bin/python3", "missing": [], "error": "", "foreign": [],
          "workdir": "/home/u/.dra-labcheck-fleet/h", "venv": False, "managed": True, "pip": True,
          "ensurepip": True, "home": "/home/u", "root": False, "apt": True}
WRONG_ANSWERS = [
    *[("version", v) for v in ("3.11", 5, [3], [None], [[1]], {"a": 1}, "x" * 5000)],
    *[(f, v) for f in ("missing", "foreign") for v in (5, "xdist", [None], [[1]], {"a": 1})],
    *[(f, v) for f in ("executable", "workdir", "home") for v in (5, [], {}, True)],
    *[("root", v) for v in ("yes", 5, [])],
]


@pytest.mark.parametrize("field, value", WRONG_ANSWERS, ids=[f"{f}={fsio.shown(v, 20)}" for f, v in WRONG_ANSWERS])
def test_a_fleet_host_answer_of_the_wrong_shape_is_a_host_state_never_a_crash(field, value):
    """The answer is JSON from another machine's Python: `"version": "3.11"` was a TypeError in the controller
    (compared with a tuple of ints), `"missing": 5` another. Now the host cannot run, and the message says which
    field of its answer is wrong."""
    res = cmd.CmdResult(("ssh",), 0, fleet_probe.MARK + json.dumps({**ANSWER, field: value}) + "\n")
    result = fleet_probe.classify(Host("h1", "u@h1"), res)
    assert result.status == fleet_probe.NO_PYTHON and not result.ok, result
    assert f"answered the probe with what the fleet cannot use (its {field!r} is " in result.message, result
    assert len(result.message) < 300 and result.remediation
