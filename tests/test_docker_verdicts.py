"""Docker verdicts on REAL engine answers (tests/data/debian-docker-20.10) and real error strings.

The engine JSON is what Debian's docker.io 20.10 said with a runtime ``nvidia`` registered whose binary
is not installed; the ``run-*.txt`` captures are what that engine answered to ``docker run``.
"""

import http.server
import json
import shlex
import socketserver
import threading

import pytest

from labcheck.clis import Clis
from labcheck.cmd import CmdResult
from labcheck.config import LabConfig
from labcheck.probes import docker as probe
from labcheck.probes.tools import ToolFacts
from labcheck.remedy import Shell
from labcheck.rerun import Rerun
from labcheck.verdicts import docker as v
from tests import captures
from tests.shell_text import commands, parses

DATA = "debian-docker-20.10"


def engine_from_capture(**kw) -> probe.EngineFacts:
    info = json.loads(captures.text(f"{DATA}/docker-info.json"))
    version = json.loads(captures.text(f"{DATA}/docker-version.json"))["Server"]
    facts = probe.EngineFacts("unix:///var/run/docker.sock", 30.0, client=object(), **kw)
    return probe.fill_from_api(facts, version, info)


def unreachable_engine(error: str, timed_out: bool = False, **kw) -> probe.EngineFacts:
    return probe.EngineFacts("unix:///var/run/docker.sock", 2.0, error=error, timed_out=timed_out, **kw)


def engine_error(capture: str) -> str:
    """The engine's own message, as the SDK's APIError.explanation carries it (without the CLI's prefix)."""
    out = captures.first(f"{DATA}/{capture}").output.splitlines()[0]
    return out.removeprefix("docker: Error response from daemon: ")


# --- facts from the capture ------------------------------------------------------------------------

def test_capture_gives_version_runtimes_and_default():
    e = engine_from_capture()
    assert e.server_version == "20.10.24+dfsg1"
    assert e.api_version == "1.41"
    assert e.runtimes["nvidia"] == {"path": "nvidia-container-runtime"}
    assert e.default_runtime == "runc"


# --- CLI -------------------------------------------------------------------------------------------

def test_cli_present_reports_version_and_path():
    res = CmdResult(("docker", "--version"), 0, "Docker version 28.2.2, build e6534b4\n")
    verdict = v.cli_present(probe.CliFacts(res, "/usr/bin/docker", "28.2.2"))
    assert verdict.status == "pass" and "28.2.2" in verdict.message and "/usr/bin/docker" in verdict.message


def test_cli_missing_fails_with_official_install_command():
    verdict = v.cli_present(probe.CliFacts(CmdResult(("docker", "--version"), None, missing=True), None, ""))
    assert verdict.status == "fail"
    assert "get.docker.com" in verdict.remediation and "docs.docker.com/engine/install" in verdict.remediation


def test_cli_that_hangs_is_named():
    res = CmdResult(("docker", "--version"), None, timed_out=True, timeout=2)
    verdict = v.cli_present(probe.CliFacts(res, "/usr/bin/docker", ""))
    assert verdict.status == "fail" and "`docker --version` hung" in verdict.message


# --- engine ----------------------------------------------------------------------------------------

def test_reachable_engine_passes():
    verdict = v.engine_reachable(engine_from_capture())
    assert verdict.status == "pass" and "20.10.24+dfsg1" in verdict.message


def test_engine_version_20_10_fails_with_upgrade_command():
    verdict = v.engine_version(engine_from_capture(), "24.0")
    assert verdict.status == "fail"
    assert "20.10.24+dfsg1 is older than the required 24.0" in verdict.message
    assert verdict.remediation.startswith("sudo apt-get remove -y docker.io && curl -fsSL https://get.docker.com")


@pytest.mark.parametrize(("version", "pre"), [("24.0.0-rc.1", "rc.1"), ("24.0.0-beta.2", "beta.2")])
def test_a_prerelease_engine_of_the_minimum_fails_and_says_so(version, pre):
    """The captured engine's answer with the version a Docker test-channel build reports (derived): below 24.0."""
    e = engine_from_capture()
    e.server_version = version
    verdict = v.engine_version(e, "24.0")
    assert verdict.status == "fail", verdict
    assert verdict.message == (f"Docker engine {version} is older than the required 24.0 (a pre-release, {pre}, of "
                               "24.0.0: a pre-release ranks below its release)")
    assert v.engine_version(e, "23.0").status == "pass"


def test_engine_version_24_passes():
    e = engine_from_capture()
    e.server_version = "24.0.7"
    assert v.engine_version(e, "24.0").status == "pass"


# Real SDK errors seen here: no socket, and a socket that accepts but never answers.
NO_SOCKET = ("DockerException: Error while fetching server API version: ('Connection aborted.', "
             "FileNotFoundError(2, 'No such file or directory'))")
HUNG = ("DockerException: Error while fetching server API version: UnixHTTPConnectionPool(host='localhost', "
        "port=None): Read timed out. (read timeout=2)")
DENIED = ("DockerException: Error while fetching server API version: ('Connection aborted.', "
          "PermissionError(13, 'Permission denied'))")


def test_no_engine_fails_with_start_command():
    verdict = v.engine_reachable(unreachable_engine(NO_SOCKET))
    assert verdict.status == "fail"
    assert "found none" in verdict.message and verdict.remediation.startswith("sudo systemctl start docker")


def test_hung_engine_is_named_with_its_timeout():
    verdict = v.engine_reachable(unreachable_engine(HUNG, timed_out=probe.is_timeout(HUNG)))
    assert verdict.status == "fail"
    assert "did not answer `ping` within 2s (hung)" in verdict.message
    assert "unix:///var/run/docker.sock" in verdict.message


def test_permission_denied_suggests_docker_group():
    verdict = v.engine_reachable(unreachable_engine(DENIED))
    assert verdict.remediation == "sudo usermod -aG docker $USER && newgrp docker"


def test_cli_reaching_another_engine_suggests_the_context_endpoint():
    verdict = v.engine_reachable(unreachable_engine(NO_SOCKET, cli_server_version="27.3.1"))
    assert "docker context" in verdict.message and "DOCKER_HOST" in verdict.remediation


@pytest.mark.parametrize("verdict_fn", [
    lambda e: v.engine_version(e, "24.0"),
    lambda e: v.runtime_registered(e, probe.DaemonJson("/etc/docker/daemon.json", False)),
    lambda e: v.runtime_usable(e, probe.RuntimeProbe("nvidia", attempted=False), 1),
])
def test_engine_dependent_checks_skip_when_unreachable(verdict_fn):
    verdict = verdict_fn(unreachable_engine(NO_SOCKET))
    assert verdict.status == "skip" and verdict.message.startswith("Docker engine not reachable: ")


# --- daemon.json -----------------------------------------------------------------------------------

def test_absent_daemon_json_skips_rather_than_passes(tmp_path):
    """A daemon.json that is not there was not validated: skip with the reason (real read of a missing file)."""
    verdict = v.daemon_json_valid(probe.read_daemon_json(tmp_path / "daemon.json"))
    assert verdict.status == "skip" and "no " in verdict.message and "to validate" in verdict.message


def test_valid_daemon_json_passes_naming_its_settings():
    text = '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}'
    verdict = v.daemon_json_valid(probe.parse_daemon_json(text, "/etc/docker/daemon.json"))
    assert verdict.status == "pass" and "(runtimes)" in verdict.message


def test_malformed_daemon_json_names_file_line_and_column():
    text = '{\n  "runtimes": {\n    "nvidia": {"path": "x",}\n  }\n}\n'
    dj = probe.parse_daemon_json(text, "/etc/docker/daemon.json")
    verdict = v.daemon_json_valid(dj)
    assert verdict.status == "fail"
    assert verdict.message.startswith("/etc/docker/daemon.json, line 3, column 28: not valid JSON")
    assert "python3 -m json.tool /etc/docker/daemon.json" in verdict.remediation


def test_daemon_json_that_is_not_an_object_fails():
    verdict = v.daemon_json_valid(probe.parse_daemon_json("[]", "/x/daemon.json"))
    assert verdict.status == "fail" and "expected a JSON object, found a list" in verdict.message


# --- runtime registered ----------------------------------------------------------------------------

def test_capture_has_nvidia_registered_not_default():
    verdict = v.runtime_registered(engine_from_capture(), probe.DaemonJson("/etc/docker/daemon.json", False))
    assert verdict.status == "pass"
    assert "path nvidia-container-runtime" in verdict.message and "default runtime: runc" in verdict.message


def test_runtime_absent_fails_with_nvidia_ctk_configure():
    e = engine_from_capture()
    del e.runtimes["nvidia"]
    verdict = v.runtime_registered(e, probe.DaemonJson("/etc/docker/daemon.json", False))
    assert verdict.status == "fail" and "found only: runc" in verdict.message
    assert verdict.remediation.startswith(
        "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl reload docker   # ")


def test_runtime_in_file_but_not_loaded_asks_for_a_reload():
    """The runtime is in daemon.json: a reload loads it (--fix-host reloads too); a restart only if that fails."""
    e = engine_from_capture()
    del e.runtimes["nvidia"]
    dj = probe.parse_daemon_json('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}', "/d.json")
    verdict = v.runtime_registered(e, dj)
    assert "has not loaded it" in verdict.message
    assert verdict.remediation.startswith("sudo systemctl reload docker   # only if the reload is refused"), verdict
    assert "restart: sudo systemctl restart docker (a restart stops every running container" in verdict.remediation


# --- runtime usable --------------------------------------------------------------------------------

def started_probe(logs: str, exit_code: int = 0) -> probe.RuntimeProbe:
    return probe.RuntimeProbe("nvidia", True, image="labcheck-probe:busybox", container="c", exit_code=exit_code,
                              logs=logs, output=probe.parse_probe_output(logs))


def test_registered_but_binary_missing_real_error():
    err = engine_error("run-runtime-nvidia-missing-binary.txt")
    verdict = v.runtime_usable(engine_from_capture(), probe.RuntimeProbe("nvidia", True, error=err), 0)
    assert verdict.status == "fail"
    assert "registered with path 'nvidia-container-runtime' but dockerd cannot execute it" in verdict.message
    assert 'exec: "nvidia-container-runtime": executable file not found in $PATH' in verdict.message
    assert verdict.remediation.startswith("sudo apt-get install -y nvidia-container-toolkit")


def test_unknown_runtime_real_error():
    err = engine_error("run-runtime-unknown.txt")
    assert err == "Unknown runtime specified nvidia-absent"
    verdict = v.runtime_usable(engine_from_capture(), probe.RuntimeProbe("nvidia", True, error=err), 0)
    assert verdict.status == "fail" and "nvidia-ctk runtime configure" in verdict.remediation


# As reported in NVIDIA/nvidia-docker#958 and NVIDIA/nvidia-container-runtime#68: the runtime is there,
# the hook it needs is not.
HOOK_NOT_FOUND = ('OCI runtime create failed: exec: "nvidia-container-runtime-hook": executable file not found in '
                  '$PATH: unknown')
HOOK_STAT = ("OCI runtime create failed: unable to retrieve OCI runtime error (open /run/containerd/io.containerd."
             "runtime.v1.linux/moby/af42/log.json: no such file or directory): nvidia-container-runtime did not "
             "terminate sucessfully: 2019/07/23 17:28:30 ERROR: nvidia-container-runtime: inject NVIDIA hook: stat "
             "/usr/bin/nvidia-container-runtime-hook: no such file or directory\n: unknown")


@pytest.mark.parametrize("err", [HOOK_NOT_FOUND, HOOK_STAT])
def test_runtime_missing_its_hook_names_the_hook(err):
    verdict = v.runtime_usable(engine_from_capture(), probe.RuntimeProbe("nvidia", True, error=err), 1)
    assert verdict.status == "fail"
    assert "(nvidia-container-runtime) runs but needs" in verdict.message
    assert "nvidia-container-runtime-hook, which is missing" in verdict.message
    assert verdict.remediation.startswith("sudo apt-get install -y nvidia-container-toolkit")


def test_missing_binary_from_real_errors():
    assert v.missing_binary(engine_error("run-runtime-nvidia-missing-binary.txt")) == "nvidia-container-runtime"
    assert v.missing_binary(HOOK_STAT) == "/usr/bin/nvidia-container-runtime-hook"
    assert v.missing_binary(engine_error("run-runtime-unknown.txt")) == ""


# As reported in NVIDIA/nvidia-container-toolkit#260 and NVIDIA/nvidia-docker#1252.
NVML_NOT_LOADED = ("failed to create shim: OCI runtime create failed: container_linux.go:380: starting container "
                   "process caused: process_linux.go:545: container init caused: Running hook #0:: error running "
                   "hook: exit status 1, stdout: , stderr: nvidia-container-cli: initialization error: nvml error: "
                   "driver not loaded: unknown")
DRIVER_ERROR = ('OCI runtime create failed: container_linux.go:349: starting container process caused '
                '"process_linux.go:449: container init caused \\"process_linux.go:432: running prestart hook 1 '
                'caused \\\\\\"error running hook: exit status 1, stdout: , stderr: nvidia-container-cli: '
                'initialization error: driver error: failed to process request\\\\\\\\n\\\\\\"\\"": unknown')


@pytest.mark.parametrize("err", [NVML_NOT_LOADED, DRIVER_ERROR])
def test_runtime_without_driver_points_at_the_driver(err):
    verdict = v.runtime_usable(engine_from_capture(), probe.RuntimeProbe("nvidia", True, error=err), 1)
    assert verdict.status == "fail" and "cannot reach the NVIDIA driver" in verdict.message
    assert "nvidia-smi" in verdict.remediation


def test_gpu_host_with_gpu_inside_passes():
    logs = "LABCHECK_DEV /dev/nvidia0\nLABCHECK_DEV /dev/nvidiactl\nLABCHECK_SMI_RC 0\n" \
           "LABCHECK_SMI GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)\nLABCHECK_DONE\n"
    verdict = v.runtime_usable(engine_from_capture(), started_probe(logs), 1)
    assert verdict.status == "pass" and "/dev/nvidia0" in verdict.message and "NVIDIA H100" in verdict.message


def test_gpu_host_with_container_but_no_gpu_is_not_a_pass():
    verdict = v.runtime_usable(engine_from_capture(), started_probe("LABCHECK_DONE\n"), 1)
    assert verdict.status == "fail" and "gives them no GPU" in verdict.message


def test_gpu_host_with_only_the_control_nodes_inside_is_not_a_pass():
    """/dev/nvidiactl and /dev/nvidia-uvm but no /dev/nvidiaN: what a container gets when the runtime hands it
    the driver's control devices and no GPU (e.g. NVIDIA_VISIBLE_DEVICES=void); CUDA finds no device there."""
    logs = "LABCHECK_DEV /dev/nvidiactl\nLABCHECK_DEV /dev/nvidia-uvm\nLABCHECK_DONE\n"
    verdict = v.runtime_usable(engine_from_capture(), started_probe(logs), 1)
    assert verdict.status == "fail", verdict
    assert "gives them no GPU: no /dev/nvidiaN inside" in verdict.message
    assert "found: /dev/nvidiactl, /dev/nvidia-uvm" in verdict.message and "this host has 1 GPU(s)" in verdict.message


def test_no_gpu_host_says_gpu_access_is_unproven():
    verdict = v.runtime_usable(engine_from_capture(), started_probe("LABCHECK_DONE\n"), 0)
    assert verdict.status == "warn" and "no NVIDIA GPU" in verdict.message


def test_probe_that_exits_nonzero_fails():
    verdict = v.runtime_usable(engine_from_capture(), started_probe("sh: oops\n", exit_code=2), 1)
    assert verdict.status == "fail" and "exited 2" in verdict.message


def test_hung_container_names_the_step():
    p = probe.RuntimeProbe("nvidia", True, container="labcheck-runtime-probe-x", timed_out=True,
                           hung_step="waiting for the probe container to exit",
                           error="ReadTimeout: UnixHTTPConnectionPool(host='localhost', port=None): Read timed out.")
    verdict = v.runtime_usable(engine_from_capture(), p, 1)
    assert verdict.message.startswith("waiting for the probe container to exit hung: no answer within 30s")


def test_missing_probe_image_says_how_to_get_one():
    p = probe.RuntimeProbe("nvidia", True, image_error="probe image labcheck-probe:busybox is not present locally; "
                                                        "no static busybox at /bin/busybox to build it from")
    verdict = v.runtime_usable(engine_from_capture(), p, 1)
    assert verdict.status == "fail" and "busybox-static" in verdict.remediation


def test_parse_probe_output():
    out = probe.parse_probe_output("LABCHECK_DEV /dev/nvidia0\nLABCHECK_SMI_RC 127\nLABCHECK_SMI sh: not found\n"
                                   "LABCHECK_DONE\n")
    assert out == probe.ProbeOutput(("/dev/nvidia0",), 127, ("sh: not found",), True)


# --- the endpoint itself is wrong (audit m0-13a): starting Docker is not the fix ---------------------

@pytest.mark.parametrize("url,words", [
    ("tcp://:abc", "Port could not be cast to integer value as 'abc'"),
    ("garbage", "port is required"),
    ("tcp://h:99999", "Port out of range"),
    ("npipe://", "npipe:// is a Windows named pipe"),
    ("fd://", "fd protocol is not implemented"),
    ("http://[::1", "Invalid IPv6 URL"),
])
def test_a_malformed_docker_host_says_unset_it_not_start_docker(monkeypatch, url, words):
    """The real engine probe under DOCKER_HOST=url (the SDK refuses the URL before connecting)."""
    monkeypatch.setenv("DOCKER_HOST", url)
    engine = probe.probe_engine(LabConfig(command_timeout=5))
    verdict = v.engine_reachable(engine)
    assert verdict.status == "fail" and words in verdict.message, verdict
    assert verdict.remediation.startswith("unset DOCKER_HOST"), verdict.remediation
    assert "systemctl" not in verdict.remediation
    configured = probe.probe_engine(LabConfig(command_timeout=5, docker_host=url))
    verdict = v.engine_reachable(configured, configured=url)
    assert verdict.remediation.startswith(("${EDITOR:-vi} ", "sudoedit ")), verdict.remediation
    assert "# set docker_host to your engine's address" in verdict.remediation and parses(verdict.remediation)


def test_ssh_without_paramiko_says_install_it(monkeypatch):
    pytest.importorskip("docker")
    try:
        import paramiko  # noqa: F401  # lazy: probes whether paramiko is installed (this test needs it absent)
        pytest.skip("paramiko is installed here: the SDK gets past this step")
    except ImportError:
        pass
    engine = probe.probe_engine(LabConfig(command_timeout=5, docker_host="ssh://me@127.0.0.1"))
    verdict = v.engine_reachable(engine, configured="ssh://me@127.0.0.1")
    assert "paramiko" in verdict.message and "-m pip install paramiko" in verdict.remediation


@pytest.mark.parametrize("answer", [b"[]", b'"x"', b"not json", b"{}"])
def test_something_that_is_not_a_docker_engine_is_named_as_such(tmp_path, answer):
    """A real HTTP server on a unix socket that answers every request with ``answer`` (200, JSON type): the
    endpoint answers, but not as a Docker engine, so 'start Docker' would send the user to the wrong place."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):
            conn, _ = super().get_request()
            return conn, ("local", 0)

    sock = tmp_path / "not-docker.sock"
    server = Server(str(sock), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"unix://{sock}"
        engine = probe.probe_engine(LabConfig(command_timeout=5, docker_host=url))
        verdict = v.engine_reachable(engine, configured=url)
    finally:
        server.shutdown()
        server.server_close()
    assert verdict.status == "fail" and "not as a Docker engine" in verdict.message, verdict
    assert verdict.remediation.startswith(("${EDITOR:-vi} ", "sudoedit ")), verdict.remediation
    lab = tmp_path / "lab.yaml"  # the lab config that set it: the editor opens at its line
    lab.write_text(f"cluster_name: lab-a\ndocker_host: {url}\n")
    fix = v.engine_reachable(engine, configured=url, rerun=Rerun(lab_config=str(lab))).remediation
    assert fix.startswith(f"${{EDITOR:-vi}} +2 {lab}   # set docker_host to your engine's address"), fix
    assert parses(fix) and not fix.startswith("set ")


# --- runtime fixes use the configured names (audit m0-13b) -------------------------------------------

def _first_command(fix: str) -> list[str]:
    return shlex.split(fix.split(" && ")[0])


def test_runtime_fixes_name_the_configured_runtime_and_daemon_json():
    e = engine_from_capture()
    dj = probe.DaemonJson("/srv/my docker/daemon.json", False)
    expected = ["nvidia-ctk", "runtime", "configure", "--runtime=docker", "--config=/srv/my docker/daemon.json",
                "--nvidia-runtime-name=nv$rt"]
    root = Shell(root=True)
    assert _first_command(v.runtime_registered(e, dj, "nv$rt", shell=root).remediation) == expected
    not_listed = probe.RuntimeProbe("nv$rt", attempted=False)
    usable = v.runtime_usable(e, not_listed, 1, root, None, dj.path)
    assert _first_command(usable.remediation) == expected
    refused = probe.RuntimeProbe("nv$rt", True, error="unknown runtime specified nv$rt")
    assert _first_command(v.runtime_usable(e, refused, 1, root, None, dj.path).remediation) == expected
    broken = probe.RuntimeProbe("nv$rt", True, error="OCI runtime create failed: something else")
    fix = v.runtime_usable(e, broken, 1, root, None, dj.path).remediation
    assert "'--config=/srv/my docker/daemon.json' '--nvidia-runtime-name=nv$rt'" in fix


def test_a_toolkit_outside_sudos_path_is_named_by_its_path():
    e = engine_from_capture()
    del e.runtimes["nvidia"]
    dj = probe.DaemonJson("/etc/docker/daemon.json", False)
    ctk = ToolFacts("nvidia-ctk", "/usr/local/nvidia/bin/nvidia-ctk", None)
    assert v.runtime_registered(e, dj, "nvidia", ctk=ctk).remediation.startswith(
        "sudo /usr/local/nvidia/bin/nvidia-ctk runtime configure")
    ctk = ToolFacts("nvidia-ctk", "/usr/bin/nvidia-ctk", None)
    assert v.runtime_registered(e, dj, "nvidia", ctk=ctk).remediation.startswith("sudo nvidia-ctk runtime")


def test_whether_the_engine_is_on_another_host_is_the_probes_answer_not_the_urls():
    """EngineFacts.remote (the probe looked the name up) decides: an engine there is not this host's (the runtime
    checks skip; docker_engine_reachable fails with the fix that points back here); a URL naming a host the probe
    found to be this machine gets this machine's fix, never a line over ssh."""
    e = engine_from_capture()
    del e.runtimes["nvidia"]
    dj = probe.DaemonJson("/etc/docker/daemon.json", False)
    e.endpoint, e.remote = "tcp://gpu-7:2376", "gpu-7"
    elsewhere = v.runtime_registered(e, dj)
    assert elsewhere.status == "skip" and "runs on gpu-7, another machine" in elsewhere.message, elsewhere
    e.remote = ""  # gpu-7 resolved to an address of this machine
    fix = v.runtime_registered(e, dj).remediation
    assert commands(fix)[:2] == [["sudo", "nvidia-ctk", "runtime", "configure", "--runtime=docker"],
                                 ["sudo", "systemctl", "reload", "docker"]], fix
    assert "gpu-7" not in fix and "ssh" not in fix, fix


# --- the docker commands of the fixes talk to the configured engine; the runtime fix is one shell line (fixes-2) ---

HOSTS = ("unix:///run/user/1000/docker.sock", "tcp://gpu-7.lab:2376", "unix:///tmp/d d/'q'/$x;`y`.sock")


def _word(cli: Clis) -> str:
    """The DOCKER_HOST assignment a fix starts its docker command with, as the shell reads it."""
    return shlex.split(cli.docker)[0]


@pytest.mark.parametrize("host", HOSTS)
def test_every_docker_command_of_the_runtime_fixes_names_the_configured_engine(host):
    """docker_host set (rootless, remote, hostile): `docker run` / `docker rm` / `docker info` / `docker version`
    in module 0's fixes went to the default engine. They carry it as module 1's do (labcheck.clis.Clis)."""
    cli = Clis.of(LabConfig(docker_host=host))
    assign = f"DOCKER_HOST={host}"
    assert _word(cli) == assign
    e = engine_from_capture()
    hung = probe.RuntimeProbe("nvidia", True, image="labcheck-probe:busybox", container="labcheck-probe-1",
                              error="Read timed out", timed_out=True, hung_step="waiting for the probe container",
                              cleanup_error="Read timed out")
    no_image = probe.RuntimeProbe("nvidia", True, image_error="probe image x is not present locally")
    failing = started_probe("sh: oops\n", exit_code=2)
    no_gpu = started_probe("LABCHECK_DONE\n")
    fixes = {"hung": v.runtime_usable(e, hung, 1, cli=cli), "no image": v.runtime_usable(e, no_image, 1, cli=cli),
             "exit 2": v.runtime_usable(e, failing, 1, cli=cli), "no GPU": v.runtime_usable(e, no_gpu, 1, cli=cli)}
    for what, verdict in fixes.items():
        assert verdict.status == "fail" and parses(verdict.remediation), (what, verdict.remediation)
        assert not any(c[0] == "docker" for c in commands(verdict.remediation)), (what, verdict)  # no bare docker
    assert [assign, "docker", "run", "--rm", "--runtime=nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all",
            "labcheck-probe:busybox", "true"] in commands(fixes["hung"].remediation)
    assert [assign, "docker", "run", "--rm", "--runtime=nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all",
            "labcheck-probe:busybox", "/bin/sh", "-c", "ls /dev"] in commands(fixes["exit 2"].remediation)
    assert [assign, "docker", "info"] in commands(fixes["no GPU"].remediation)
    assert f"{cli.docker} pull busybox" in fixes["no image"].remediation
    assert f"`{cli.docker} rm -f labcheck-probe-1`" in fixes["hung"].details
    odd = engine_from_capture()
    odd.server_version = "unknown"
    fix = v.engine_version(odd, "24.0", cli=cli).remediation
    assert parses(fix) and commands(fix)[0] == [assign, "docker", "version"], fix
    plain = v.runtime_usable(e, failing, 1).remediation  # no docker_host: the plain CLI, as before
    assert commands(plain)[0][:3] == ["docker", "run", "--rm"]


def test_the_runtime_configure_fix_is_one_shell_line():
    """`<toolkit install>  then: nvidia-ctk runtime configure ...` parsed, but `then:`, `nvidia-ctk`, `runtime`
    became arguments of `apt-get install -y nvidia-container-toolkit`. Now install && configure && reload, notes
    after '#', on one line even when a probed text holds a newline."""
    e = engine_from_capture()
    del e.runtimes["nvidia"]
    dj = probe.DaemonJson("/srv/my docker/daemon.json", False)
    missing = ToolFacts("nvidia-ctk", None, None)
    hup = probe.Dockerd(2777, "pidfile /run/x\n`id`.pid")
    for dockerd in (None, hup, probe.Dockerd(812, "pidfile", "docker.service"),
                    probe.Dockerd(problem="socket /var/run/docker.sock: cannot connect\nrm -rf ~")):
        for shell in (Shell(), Shell(root=True)):
            fix = v.configure_runtime(shell, missing, "nv rt", dj.path, e.endpoint, dockerd)
            assert parses(fix) and "\n" not in fix and "then" not in fix.partition("#")[0], fix
            sudo = [] if shell.root else ["sudo"]
            steps = commands(fix)
            assert [*sudo, "apt-get", "install", "-y", "nvidia-container-toolkit"] in steps, fix
            i = steps.index([*sudo, "apt-get", "install", "-y", "nvidia-container-toolkit"])
            assert steps[i + 1] == [*sudo, "nvidia-ctk", "runtime", "configure", "--runtime=docker",
                                    "--config=/srv/my docker/daemon.json", "--nvidia-runtime-name=nv rt"], fix
            assert len(steps) == i + 3, fix  # then the reload, and nothing after it but the note
    other = v.configure_runtime(Shell(distro="arch"), missing, "nvidia", dj.path, e.endpoint, hup)
    assert parses(other) and commands(other)[0][:3] == ["sudo", "nvidia-ctk", "runtime"], other
    assert "# first install the NVIDIA Container Toolkit for arch as its guide says: https://" in other
    fedora = v.configure_runtime(Shell(distro="fedora"), missing, "nvidia", dj.path, e.endpoint, hup)
    assert parses(fedora) and ["sudo", "dnf", "install", "-y", "nvidia-container-toolkit"] in commands(fedora)
    assert "apt-get" not in fedora, fedora
    for fix in (v.reinstall_toolkit(Shell(), "nvidia", dj.path, e.endpoint, hup),
                v.reinstall_toolkit(Shell(distro="fedora"), "nvidia", dj.path, e.endpoint, hup),
                v.reinstall_toolkit(Shell(distro="arch"), "nvidia", dj.path, e.endpoint, hup),
                v.runtime_registered(e, dj, "nv rt", dockerd=hup).remediation):
        assert parses(fix) and "\n" not in fix, fix


# --- every docker fix is one runnable shell line, on every kind of engine (review: prose in parentheses) ---------

# Each an engine the probe found on this machine (EngineFacts.remote ""): tcp:// and ssh:// to a name that resolves
# here too. One on another machine gets no fix of these (test_dockerd_reload: engine_elsewhere, the rest skip).
ENDPOINTS = ("unix:///var/run/docker.sock", "unix:///run/user/1000/docker.sock", "tcp://gpu-7.lab:2376",
             "ssh://bob@gpu-7.lab:2222")


def _every_docker_fix(endpoint: str, shell: Shell) -> dict[str, str]:
    """The remediation of each failing docker verdict on the engine at ``endpoint``, found on this machine."""
    up = engine_from_capture()
    up.endpoint = endpoint
    bare = engine_from_capture()
    bare.endpoint = endpoint
    del bare.runtimes["nvidia"]
    old = engine_from_capture()
    old.endpoint, old.server_version = endpoint, "20.10.5+dfsg1"
    hung = probe.RuntimeProbe("nvidia", True, timed_out=True, hung_step="starting the container")
    lost = probe.RuntimeProbe("nvidia", True, engine_lost=True, error="connection refused")
    verdicts = {
        "down": v.engine_reachable(probe.EngineFacts(endpoint, 5, error="connection refused", remote=""), shell),
        "hung ping": v.engine_reachable(probe.EngineFacts(endpoint, 5, error="timed out", timed_out=True, remote=""),
                                        shell),
        "info failed": v.engine_reachable(probe.EngineFacts(endpoint, 5, client=object(), info_error="boom",
                                                            remote=""), shell),
        "no cli": v.cli_present(probe.CliFacts(CmdResult(("docker",), None, missing=True), None, ""), shell),
        "old": v.engine_version(old, "24.0", shell),
        "bad json": v.daemon_json_valid(probe.DaemonJson("/etc/docker/daemon.json", True, error="x", line=2,
                                                         column=3), shell, None, endpoint),
        "absent": v.runtime_registered(bare, probe.DaemonJson("/etc/docker/daemon.json", False), shell=shell),
        "not loaded": v.runtime_registered(bare, probe.parse_daemon_json(
            '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}', "/etc/docker/daemon.json"), shell=shell),
        "hung": v.runtime_usable(up, hung, 1, shell),
        "lost": v.runtime_usable(up, lost, 1, shell),
        "no image": v.runtime_usable(up, probe.RuntimeProbe("nvidia", True, image_error="no busybox"), 1, shell),
        "hook": v.runtime_usable(up, probe.RuntimeProbe("nvidia", True, error=HOOK_NOT_FOUND), 1, shell),
        "other binary": v.runtime_usable(up, probe.RuntimeProbe(
            "nvidia", True, error='exec: "crun-helper": executable file not found in $PATH'), 1, shell),
    }
    for name, verdict in verdicts.items():
        assert verdict.status == "fail", (name, verdict)
    return {name: verdict.remediation for name, verdict in verdicts.items()}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("shell", [Shell(), Shell(root=True), Shell(distro="fedora")], ids=["user", "root", "dnf"])
def test_every_docker_fix_is_a_shell_line_for_the_engine_it_names(endpoint, shell):
    """Prose such as `sudo systemctl restart docker  (then look at ...)` or `fix X by hand, then ...` is a bash
    syntax error when pasted. Every fix parses, keeps what is not a command after '#', runs its systemctl on the
    engine's own manager (rootless: --user, never sudo; this machine's: never over ssh) and reloads rather than
    restarts for a daemon.json change."""
    for name, fix in _every_docker_fix(endpoint, shell).items():
        assert parses(fix), (name, fix)
        steps = commands(fix)
        assert not any(c[0] == "ssh" for c in steps), (name, fix)
        if "/run/user/" in endpoint:
            assert not any(c[:2] == ["sudo", "systemctl"] for c in steps), (name, fix)
            assert all("--user" in c for c in steps if "systemctl" in c), (name, fix)
        if name in ("bad json", "absent", "not loaded", "other binary"):
            assert not any("restart" in c for c in steps for c in [" ".join(c)]), (name, fix)
        if shell.distro == "fedora":
            assert not any("apt-get" in c for c in steps), (name, fix)
