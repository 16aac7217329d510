"""Module 0 against input the real tools refuse or that is not shaped as they answer (audit m0, items 1, 2, 6, 8).

* JSON: every JSON file the suite reads goes through :func:`labcheck.fsio.parse_json`; NaN/Infinity (which
  dockerd's and CDI's Go decoder refuse) and nesting deep enough to raise RecursionError are a failing check
  naming the file, on real files: daemon.json, a CDI .json spec, the suite's state records.
* CDI: a spec container-device-interface refuses (its rules: pkg/cdi/device.go, pkg/cdi/spec.go,
  pkg/cdi/container-edits.go, pkg/parser/parser.go) fails "CDI spec valid"; the real H100 spec still passes.
* The engine: a fake engine on a real unix socket (a small HTTP server in this process, standing for whatever
  else may listen on DOCKER_HOST) answers /version, /info, /containers in shapes Docker never uses; the engine
  checks report it, no check errors.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from labcheck import cdi, config, fsio, state
from labcheck.probes import cdi as cdi_probe
from labcheck.probes import docker as docker_probe
from labcheck.probes import docker_client
from labcheck.probes import node as node_probe
from labcheck.verdicts import cdi as cdi_v
from labcheck.verdicts import docker as docker_v
from tests.standins import executable
from tests.test_cdi import SPEC, materialize

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 100_000 + "]" * 100_000  # RecursionError in json.loads (and PyYAML's composer)
DEEP_RUNTIME = '{"runtimes": {"nvidia": ' + "[" * 990 + "]" * 990 + "}}"  # parses; json.dumps of it recursed


# --- the one strict JSON reader ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ('{"a": NaN}', "NaN is not a JSON value"),
    ('{"a": [Infinity]}', "Infinity is not a JSON value"),
    ('-Infinity', "-Infinity is not a JSON value"),
    (DEEP, "nested more than 100 levels deep"),
    ("[" * 101 + "]" * 101, "nested more than 100 levels deep"),
    ("1" * 5000, "a number of thousands of digits"),
])
def test_json_reader_refuses_what_go_refuses_naming_the_file(tmp_path, text, words):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(fsio.FileProblem) as exc:
        fsio.read_json(path)
    assert exc.value.path == str(path) and words in exc.value.message


def test_json_reader_names_line_and_column_and_reads_bytes_and_surrogates_as_go_does():
    with pytest.raises(fsio.FileProblem) as exc:
        fsio.parse_json('{\n  "a": 1,\n}', "/etc/docker/daemon.json")
    assert str(exc.value).startswith("/etc/docker/daemon.json:3:1: not valid JSON")
    with pytest.raises(fsio.FileProblem, match="not UTF-8"):
        fsio.parse_json(b'{"a": "\xff"}', "/x.json")
    assert fsio.parse_json('{"a": "\\ud800x", "b": "\\ud83d\\ude00"}', "/x.json") == {"a": "\ufffdx", "b": "😀"}
    assert fsio.parse_json("[" * 100 + "]" * 100, "/x.json") is not None  # 100 levels: still read


# --- daemon.json ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}, "max-concurrent-downloads": NaN}', "NaN"),
    ('{"default-shm-size": Infinity}', "Infinity"),
    (DEEP, "nested more than 100 levels deep"),
    (DEEP_RUNTIME, "nested more than 100 levels deep"),
])
def test_daemon_json_dockerd_refuses_fails_its_check(tmp_path, text, words):
    path = tmp_path / "daemon.json"
    path.write_text(text)
    verdict = docker_v.daemon_json_valid(docker_probe.read_daemon_json(path))
    assert verdict.status == "fail" and words in verdict.message and str(path) in verdict.message


# --- state records ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, is_json", [(DEEP, False), ('{"cluster": "c", "phase": "created", "time": NaN}', False),
                                           ('{"cluster": "c", "phase": "created", "pid": "12"}', True),
                                           ('{"cluster": "c"}', True)])
def test_a_state_record_the_suite_did_not_write_is_no_record(tmp_path, text, is_json):
    state.write(tmp_path, state.ClusterRecord("c", "created", "id1"))
    assert state.read(tmp_path, "c").node_id == "id1"
    path = state.record_path(tmp_path, "c")
    path.write_text(text)
    assert state.read(tmp_path, "c") is None and (state.read_json(path) is not None) == is_json


# --- CDI ----------------------------------------------------------------------------------------------------

def _h100(root: Path) -> dict:
    return yaml.safe_load(materialize(SPEC, root))


def _spec_valid(tmp_path: Path, doc: dict | str, name: str = "nvidia.yaml"):
    etc = tmp_path / "etc-cdi"
    etc.mkdir(exist_ok=True)
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    (etc / name).write_text(text)
    return cdi_v.spec_valid(cdi_probe.probe_cdi((str(etc),), None, 10, spec_path=str(etc / "nvidia.yaml")))


def test_the_real_h100_spec_is_still_valid(tmp_path):
    assert _spec_valid(tmp_path, _h100(tmp_path)).status == "pass"


@pytest.mark.parametrize("edits", [{}, None, {"env": [], "mounts": []}, "absent"])
def test_device_without_edits_makes_the_spec_invalid(tmp_path, edits):
    """pkg/cdi/device.go Device.validate: "invalid device, empty device edits"; the spec is refused whole."""
    doc = _h100(tmp_path)
    for d in doc["devices"]:
        if edits == "absent":
            d.pop("containerEdits")
        else:
            d["containerEdits"] = edits
    verdict = _spec_valid(tmp_path, doc)
    assert verdict.status == "fail" and "device '0' has no containerEdits" in verdict.message


def _edit(doc: dict, where: str, change) -> dict:
    change(doc["devices"][0] if where == "device" else doc)
    return doc


@pytest.mark.parametrize("change, words", [
    (lambda d: d["devices"][0].update(name="bad name!"), "device name 'bad name!'"),
    (lambda d: d["devices"][0].update(name="-0"), "device name '-0'"),
    (lambda d: d["containerEdits"]["env"].append("NOEQUALS"), "env[1]: 'NOEQUALS' is not KEY=VALUE"),
    (lambda d: d["containerEdits"]["env"].append("=x"), "'=x' is not KEY=VALUE"),
    (lambda d: d["containerEdits"]["hooks"][0].update(env=["NOEQUALS"]), "hooks[0].env[0]: 'NOEQUALS'"),
    (lambda d: d.update(kind="0vendor.com/gpu"), "kind '0vendor.com/gpu' is not of the form"),
    (lambda d: d.update(kind="nvidia.com/gpu/x"), "kind 'nvidia.com/gpu/x' is not of the form"),
    (lambda d: d.update(devicesx=[]), "unknown field 'devicesx'"),
    (lambda d: d["devices"][0]["containerEdits"]["deviceNodes"][0].update(perms="rw"), "unknown field 'perms'"),
    (lambda d: d["containerEdits"]["mounts"][0].update(option=["ro"]), "containerEdits.mounts[0]: unknown field"),
    (lambda d: d["devices"][0]["containerEdits"]["deviceNodes"][0].update(type="x"), "type 'x': expected one"),
    (lambda d: d["devices"][0]["containerEdits"]["deviceNodes"][0].update(permissions="rwx"), "permissions 'rwx'"),
    (lambda d: d["devices"][0]["containerEdits"]["deviceNodes"][0].update(hostPath="/dev/nvidia0", path=""),
     "path: expected the device's path in the container"),
])
def test_what_cdi_refuses_fails_spec_valid(tmp_path, change, words):
    doc = _h100(tmp_path)
    change(doc)
    verdict = _spec_valid(tmp_path, doc)
    assert verdict.status == "fail" and words in verdict.message + verdict.details, verdict.message


def test_what_cdi_accepts_stays_valid(tmp_path):
    """The same source's rules accept these: an upper-case vendor, '_' in it, a MIG-style name, a field name in
    another case (Go matches fields case-insensitively), permissions "none", type "c", a non-empty netDevices."""
    doc = _h100(tmp_path)
    doc["devices"][0]["name"] = "0:1"
    node = doc["devices"][0]["containerEdits"]["deviceNodes"][0]
    node.update(type="c", permissions="none")
    doc["containerEdits"]["Env"] = doc["containerEdits"].pop("env")
    spec = cdi.parse_spec(yaml.safe_dump(doc), "nvidia.yaml")
    assert not spec.problems, spec.problems
    for kind in ("Nvidia_Labs.com/gpu", "n/g"):
        text = SPEC.replace("HOSTROOT", "").replace("kind: nvidia.com/gpu", f"kind: {kind}")
        assert not cdi.parse_spec(text, "x.yaml").problems, kind


def test_a_key_written_twice_fails(tmp_path):
    text = materialize(SPEC, tmp_path).replace("cdiVersion: 0.5.0\n", "cdiVersion: 0.5.0\ncdiVersion: 0.5.0\n")
    verdict = _spec_valid(tmp_path, text)
    assert verdict.status == "fail" and "'cdiVersion' is written twice" in verdict.message


@pytest.mark.parametrize("text, words", [
    (None, "NaN is not a JSON value"),
    (DEEP, "nested more than 100 levels deep"),
])
def test_json_cdi_spec_go_refuses_fails(tmp_path, text, words):
    if text is None:
        doc = _h100(tmp_path)
        text = json.dumps(doc).replace('"nvidia.com/gpu"', '"nvidia.com/gpu", "x": NaN', 1)
    verdict = _spec_valid(tmp_path, text, "nvidia.json")
    assert verdict.status == "fail" and words in verdict.message


def test_deeply_nested_yaml_spec_fails(tmp_path):
    verdict = _spec_valid(tmp_path, "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: " + DEEP + "\n")
    assert verdict.status == "fail" and "nested too deeply" in verdict.message


def _module0(tmp_path: Path, *args: str, env: dict | None = None) -> dict:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests_env"), "-m", "module0", "--no-provision",
         f"--results-json={out}", "-p", "no:cacheprovider", "-q", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, **(env or {})})
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout
    return {r["check"]: r for r in json.loads(out.read_text())["records"]}


def test_module0_run_over_a_spec_with_empty_device_edits_is_not_ready(tmp_path):
    """The audit's reproduction: every device's containerEdits {} passed all five CDI checks."""
    etc = tmp_path / "etc-cdi"
    etc.mkdir()
    doc = _h100(tmp_path)
    for d in doc["devices"]:
        d["containerEdits"] = {}
    (etc / "nvidia.yaml").write_text(yaml.safe_dump(doc))
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"cdi_dirs: [{json.dumps(str(etc))}]\ncdi_spec_path: {json.dumps(str(etc / 'nvidia.yaml'))}\n")
    recs = _module0(tmp_path, "-k", "cdi", f"--lab-config={lab}")
    assert recs["cdi_spec_valid"]["verdict"] == "fail" and "has no containerEdits" in recs["cdi_spec_valid"]["message"]
    assert "raised an error" not in json.dumps(recs)


# --- the engine's answers ---------------------------------------------------------------------------------

class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    answers: dict[str, object] = {}


class _Answer(BaseHTTPRequestHandler):
    """Answers by the path's last part (the SDK prefixes /v1.NN): what ``answers`` holds for it, else 404."""

    def address_string(self) -> str:  # a unix socket has no (host, port)
        return "engine"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        key = next((k for k in self.server.answers if path.endswith(k)), None)
        if key is None:
            self.send_response(404)
            body = b'{"message": "not here"}'
        else:
            self.send_response(200)
            value = self.server.answers[key]
            body = value if isinstance(value, bytes) else json.dumps(value).encode()
        self.send_header("Content-Type", "application/json" if body != b"OK" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


@pytest.fixture
def engine(tmp_path):
    """A fake engine on a real unix socket; the test sets its answers."""
    sock = tmp_path / "engine.sock"
    server = _Engine(str(sock), _Answer)
    server.answers = {"/_ping": b"OK", "/version": {"Version": "24.0.7", "ApiVersion": "1.43"},
                      "/info": {"ServerVersion": "24.0.7", "Runtimes": {"runc": {"path": "runc"}},
                                "DefaultRuntime": "runc"}}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"unix://{sock}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("answer, words", [
    ({"/info": {"Runtimes": ["runc"]}}, "/info Runtimes is a list, expected an object"),
    ({"/info": ["runc"]}, "/info answered a list, expected an object"),
    ({"/version": "24.0.7"}, "server API version"),  # the SDK reads /version as it connects: its own words
    ({"/version": {"Version": 24, "ApiVersion": "1.43"}}, "/version Version is a number, expected a string"),
    ({"/info": {"Runtimes": {"nvidia": "x"}}}, "/info Runtimes.nvidia is a string"),
    ({"/info": {"Runtimes": {"nvidia": {"path": 5}}}}, "/info Runtimes.nvidia.path is a number"),
    ({"/info": {"DefaultRuntime": ["runc"]}}, "/info DefaultRuntime is a list"),
])
def test_an_engine_answer_not_of_dockers_shape_fails_the_engine_check(engine, answer, words):
    server, url = engine
    server.answers.update(answer)
    facts = docker_probe.probe_engine(config.LabConfig(docker_host=url, command_timeout=10))
    verdict = docker_v.engine_reachable(facts)
    assert verdict.status == "fail" and words in verdict.message, verdict.message


def test_the_fake_engine_answering_as_docker_does_passes(engine):
    """The same server with Docker's shapes: the failures above come from the shapes, not from the server."""
    _, url = engine
    facts = docker_probe.probe_engine(config.LabConfig(docker_host=url, command_timeout=10))
    assert docker_v.engine_reachable(facts).status == "pass" and facts.runtimes == {"runc": {"path": "runc"}}


@pytest.mark.parametrize("labels", [["labcheck.owned=1"], "x", 5])
def test_leftover_probe_with_labels_not_an_object_is_left_alone_not_a_crash(engine, labels):
    server, url = engine
    cid = "a" * 64
    server.answers.update({
        "/containers/json": [{"Id": cid, "Names": [f"/{docker_probe.PROBE_PREFIX}dead"]}],
        f"/containers/{cid}/json": {"Id": cid, "Name": f"/{docker_probe.PROBE_PREFIX}dead",
                                    "Config": {"Labels": labels}}})
    conn = docker_client.connect(timeout=10, base_url=url)
    assert conn.ok and docker_probe.remove_leftover_probes(conn.client) == ()


def test_leftover_probe_whose_config_is_a_list_is_left_alone(engine):
    server, url = engine
    cid = "b" * 64
    server.answers.update({"/containers/json": [{"Id": cid}],
                           f"/containers/{cid}/json": {"Id": cid, "Name": 7, "Config": []}})
    conn = docker_client.connect(timeout=10, base_url=url)
    assert docker_probe.remove_leftover_probes(conn.client) == ()


def test_module0_run_against_an_engine_answering_runtimes_as_a_list_gives_verdicts(engine, tmp_path):
    """The audit's reproduction: four engine checks ERROR "setup step raised an error: AttributeError"."""
    server, url = engine
    server.answers["/info"] = {"Runtimes": ["runc"]}
    recs = _module0(tmp_path, "-k", "docker or nvidia_runtime", env={"DOCKER_HOST": url})
    assert recs and "raised an error" not in json.dumps(recs)
    assert recs["docker_engine_reachable"]["verdict"] == "fail"
    assert "Runtimes is a list" in recs["docker_engine_reachable"]["message"]


# --- the CLI ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("output, version", [
    ("Docker version ???, build x", ""),
    ("Docker version , build x", ""),
    ("Docker version dev, build x", ""),
    ("Docker version 20.10.24+dfsg1, build 297e128", "20.10.24+dfsg1"),
    ("Docker version v24.0.7, build x", "v24.0.7"),
    ("Docker version 1234567890123456789.1, build x", ""),  # no version labcheck.versions can read
])
def test_docker_cli_version_must_be_a_version(tmp_path, monkeypatch, output, version):
    executable(tmp_path / "docker", f"#!/bin/sh\necho '{output}'\n")  # stands for the CLI's answer
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    cli = docker_probe.probe_cli(config.LabConfig(command_timeout=10))
    assert cli.version == version
    assert docker_v.cli_present(cli).status == ("pass" if version else "fail")


# --- docker inspect (the node probe): the same reader ---------------------------------------------------------

@pytest.mark.parametrize("printed, words", [
    (DEEP, "printed no JSON"),
    ('[{"State": NaN}]', "printed no JSON"),
    ('{"Id": "x"}', "printed no JSON"),
    ('["x"]', "printed str, expected a JSON object"),
])
def test_docker_inspect_output_not_of_dockers_shape_is_an_error_not_a_crash(tmp_path, printed, words):
    (tmp_path / "out.json").write_text(printed)
    docker = executable(tmp_path / "docker", f"#!/bin/sh\ncat {tmp_path / 'out.json'}\n")  # stands for the CLI
    node = node_probe.inspect("kind-control-plane", timeout=10, docker=str(docker))
    assert not node.exists and words in node.error
