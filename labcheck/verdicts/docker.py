"""Verdicts on the Docker engine and the NVIDIA runtime: pure functions over probed facts.

Each failure names what was expected, what was found, and the exact command that fixes it.
Checks that need the engine skip with "Docker engine not reachable: ..." when it is not (the
reachability check itself is the one that fails, with the fix).
"""

from __future__ import annotations

import os
import re
import sys
from shlex import quote as sh

from labcheck import config, ctk_configure, docker_endpoint, versions
from labcheck.clis import DEFAULT as DEFAULT_CLIS
from labcheck.clis import Clis
from labcheck.probes.docker import CliFacts, DaemonJson, Dockerd, EngineFacts, RuntimeProbe
from labcheck.probes.tools import ToolFacts
from labcheck.redact import scrub
from labcheck.remedy import DEFAULT, Shell, program, with_note
from labcheck.rerun import DEFAULT as DEFAULT_RERUN
from labcheck.rerun import Rerun
from labcheck.verdict import Verdict, failed, passed, skipped, warned
from labcheck.verdicts.tools import TOOLKIT_GUIDE, TOOLKIT_PACKAGE, toolkit_guide_note, toolkit_recipe

INSTALL_GUIDE = "https://docs.docker.com/engine/install/"
# A statically linked busybox (the probe image is built from it alone), by package manager: Debian's and Alpine's
# static build is a package of its own; Fedora's busybox is static.
BUSYBOX = {"apt-get": "busybox-static", "dnf": "busybox", "apk": "busybox-static"}


def install_docker(shell: Shell = DEFAULT) -> str:
    return "curl -fsSL https://get.docker.com -o get-docker.sh && " + shell.sudo("sh get-docker.sh")


# --- the engine's service: start, reload, restart, its log ------------------------------------------------------
#
# Which line works depends on what runs the engine the checks talk to (the endpoint; the probe's Dockerd):
# - systemd's system service here (docker.service, or the unit the probe found): `sudo systemctl VERB UNIT`;
# - a user's rootless engine (its socket in /run/user/UID/, or its dockerd in user@UID.service): `systemctl --user
#   VERB docker`, as that user, never sudo (the system's docker.service is another engine, or none).
# An engine on another machine gets none of these: whether it is one is the probe's answer (EngineFacts.remote,
# Dockerd.remote: its host name looked up as the SDK's connect does), never read again here from the URL, and such
# an engine fails docker_engine_reachable with the fix that points the suite back at this host's engine
# (engine_elsewhere) while every engine-dependent check skips. So every line below acts on this machine.

RESTART_STOPS = "a restart stops every running container (an attendee's Kind cluster too)"


def _rootless(endpoint: str, dockerd: Dockerd | None) -> str:
    """The user service of a rootless engine ("docker" when only its socket says so), "" for any other."""
    if dockerd is not None and dockerd.user_unit:
        return dockerd.user_unit.removesuffix(".service") if dockerd.user_unit == "docker.service" else \
            dockerd.user_unit
    return "docker" if docker_endpoint.rootless_uid(endpoint) is not None else ""


def _as_owner(shell: Shell, endpoint: str) -> str:
    """A note for root pasting a ``systemctl --user`` line: it drives the manager of whoever runs it."""
    uid = docker_endpoint.rootless_uid(endpoint)
    return (f"as the user whose rootless engine it is{f' (uid {uid})' if uid is not None else ''}, not as root"
            if shell.root else "")


def _service(shell: Shell, verb: str, endpoint: str = "", dockerd: Dockerd | None = None) -> tuple[str, str]:
    """``systemctl VERB`` of the engine's service on this machine, as (command, note)."""
    user = _rootless(endpoint, dockerd)
    if user:
        return f"systemctl --user {verb} {sh(user)}", _as_owner(shell, endpoint)
    unit = dockerd.unit if dockerd is not None and dockerd.unit else "docker.service"
    return shell.sudo(f"systemctl {verb} {'docker' if unit == 'docker.service' else sh(unit)}"), ""


def start_docker(shell: Shell = DEFAULT, endpoint: str = "", dockerd: Dockerd | None = None) -> str:
    return with_note(*_service(shell, "start", endpoint, dockerd))


def restart_docker(shell: Shell = DEFAULT, endpoint: str = "", dockerd: Dockerd | None = None) -> str:
    return with_note(*_service(shell, "restart", endpoint, dockerd))


def journal(shell: Shell = DEFAULT, endpoint: str = "", dockerd: Dockerd | None = None) -> str:
    """The engine's last log lines, from the journal of the manager that runs it."""
    if _rootless(endpoint, dockerd):
        return "journalctl --user -u docker -n 50"
    return shell.sudo("journalctl -u docker -n 50")


def join_group(shell: Shell = DEFAULT) -> str:
    return shell.sudo('usermod -aG docker $USER') + " && newgrp docker"


def reload_runtimes(shell: Shell = DEFAULT, dockerd: Dockerd | None = None,
                    daemon_json: str = ctk_configure.DAEMON_JSON, endpoint: str = "") -> str:
    """What makes the running engine load the runtimes in ``daemon_json``, in this host's situation (``dockerd``:
    the probe's :class:`~labcheck.probes.docker.Dockerd`, None when nobody probed; ``endpoint``: the engine's URL).

    A reload, never a restart, as --fix-host does (setup_actions.docker_runtime.reload_engine): dockerd re-reads its
    configuration file on SIGHUP, and ``runtimes`` ("the list of available OCI runtimes") is one of the options a
    reload applies (Docker's dockerd reference, "Configuration reload behavior",
    https://docs.docker.com/reference/cli/dockerd/#configuration-reload-behavior); running containers keep running,
    while `systemctl restart docker` (NVIDIA's guide) stops them all. systemd runs the dockerd (its cgroup is
    Docker's service and systemd is the init): `systemctl reload UNIT` (Docker's unit reloads with SIGHUP). Anywhere
    else (a container, WSL without systemd, another init, a dockerd started by hand, a rootless one) the SIGHUP to
    its pid. The note says when a restart is really needed.
    """
    return with_note(*_reload(shell, dockerd, daemon_json, endpoint))


def _restart_needed(restart: str) -> str:
    """When the reload is not enough, and what the restart costs."""
    return (f"only if the reload is refused, or the engine still does not list the runtime after it, restart: "
            f"{restart} ({RESTART_STOPS})")


def _reload(shell: Shell, dockerd: Dockerd | None, daemon_json: str, endpoint: str = "") -> tuple[str, str]:
    """:func:`reload_runtimes` as (command, note): callers chain the command and gather the notes after one ``#``."""
    restart, _ = _service(shell, "restart", endpoint, dockerd)
    if dockerd is not None and dockerd.unit:
        unit = "docker" if dockerd.unit == "docker.service" else sh(dockerd.unit)
        return shell.sudo(f"systemctl reload {unit}"), _restart_needed(restart)
    user = _rootless(endpoint, dockerd)
    if dockerd is not None and dockerd.pid is not None:
        hup = f"kill -HUP {dockerd.pid}"
        return (hup if user else shell.sudo(hup),
                f"dockerd, pid {dockerd.pid} from {dockerd.found_by}: SIGHUP makes it re-read the runtimes in "
                f"daemon.json; {'your rootless engine' if user else 'no systemd runs it here'}")
    if user:  # the unit dockerd-rootless-setuptool.sh installs reloads with SIGHUP (ExecReload), as the system's
        return f"systemctl --user reload {sh(user)}", "; ".join(filter(None, (_as_owner(shell, endpoint),
                                                                             _restart_needed(restart))))
    if dockerd is None:
        return shell.sudo("systemctl reload docker"), _restart_needed(restart)
    return (shell.sudo("systemctl reload docker"),
            f"no dockerd pid is known here ({dockerd.problem}); where systemd does not run Docker, send dockerd "
            f"SIGHUP instead ({shell.sudo('kill -HUP <pid of dockerd>')}), or stop it and start it again "
            f"({shell.sudo(_hand_start(daemon_json))} &)")


def _hand_start(daemon_json: str) -> str:
    """dockerd started by hand with the lab config's daemon.json."""
    return "dockerd" if daemon_json == ctk_configure.DAEMON_JSON else f"dockerd {sh(f'--config-file={daemon_json}')}"


def restart_dockerd(shell: Shell = DEFAULT, daemon_json: str = ctk_configure.DAEMON_JSON, endpoint: str = "",
                    dockerd: Dockerd | None = None) -> str:
    """How to restart the engine when a reload was not enough, words for a message (not a remediation): its
    service's restart where it runs; for a dockerd of no service known here, also the hand start with the lab
    config's daemon.json."""
    restart = restart_docker(shell, endpoint, dockerd)
    if _rootless(endpoint, dockerd) or (dockerd and dockerd.unit):
        return f"restart it: `{restart}` ({RESTART_STOPS})"
    return (f"restart it: `{restart}` where systemd runs Docker, else stop dockerd and start it again: "
            f"`{shell.sudo(_hand_start(daemon_json))} &` ({RESTART_STOPS})")


def configure_runtime(shell: Shell = DEFAULT, ctk: ToolFacts | None = None, name: str = ctk_configure.RUNTIME,
                      daemon_json: str = ctk_configure.DAEMON_JSON, endpoint: str = "",
                      dockerd: Dockerd | None = None) -> str:
    """Register runtime ``name`` in ``daemon_json`` (the lab config's names) with the nvidia-ctk that was found
    (by its path: one in extra_bin_dirs is not on sudo's PATH); installing the toolkit first when it is missing;
    then make the engine load it (:func:`reload_runtimes`, after ``dockerd``).
    ``endpoint``: the engine checked (a rootless one is reloaded by its user's manager).

    One shell line: ``<install> && <configure> && <reload>``, what is not a command after ``#`` (a ``then:``
    between them became arguments of ``apt-get install``)."""
    return with_note(*configure_steps(shell, ctk, name, daemon_json, endpoint, dockerd))


def configure_steps(shell: Shell, ctk: ToolFacts | None, name: str, daemon_json: str, endpoint: str,
               dockerd: Dockerd | None) -> tuple[str, ...]:
    """:func:`configure_runtime` as (command, *notes), for callers that put a step before it or add notes (one
    comment at the end of the line)."""
    found = program(ctk.path if ctk is not None else None, "nvidia-ctk")
    configure = shell.sudo(ctk_configure.command(name, daemon_json, found))
    reload, note = _reload(shell, dockerd, daemon_json, endpoint)
    steps, notes = f"{configure} && {reload}", (note,)
    if ctk is not None and ctk.path is None:
        recipe = toolkit_recipe(shell)
        if not recipe:  # NVIDIA publishes no recipe for this package manager: the guide's, first (a note)
            return steps, "first " + toolkit_guide_note(shell), *notes
        return f"{recipe} && {steps}", *notes
    return steps, *notes


def reinstall_toolkit(shell: Shell = DEFAULT, name: str = ctk_configure.RUNTIME,
                      daemon_json: str = ctk_configure.DAEMON_JSON, endpoint: str = "",
                      dockerd: Dockerd | None = None) -> str:
    return with_note(*_reinstall(shell, name, daemon_json, endpoint, dockerd))


def _reinstall(shell: Shell, name: str, daemon_json: str, endpoint: str, dockerd: Dockerd | None) -> tuple[str, ...]:
    """:func:`reinstall_toolkit` as (command, *notes)."""
    configure, *notes = configure_steps(shell, None, name, daemon_json, endpoint, dockerd)
    tool = shell.package_manager
    if not (TOOLKIT_PACKAGE.get(tool) or tool == "yum"):
        return configure, f"first reinstall the NVIDIA Container Toolkit as its guide says: {TOOLKIT_GUIDE}", *notes
    reinstall = shell.install(TOOLKIT_PACKAGE, "the NVIDIA Container Toolkit", reinstall=True)
    return f"{reinstall} && {configure}", *notes


def unreachable(engine: EngineFacts) -> Verdict:
    """The skip every engine-dependent check gives when the engine does not answer, or answers from another
    machine (what that engine runs says nothing about this host)."""
    if engine.remote:
        return skipped(f"not verified on this host: the Docker engine at {engine.endpoint} runs on {engine.remote}, "
                       "another machine (see docker_engine_reachable)")
    return skipped(f"Docker engine not reachable: {engine.error or engine.info_error}")


def _answers(engine: EngineFacts) -> bool:
    """The engine answered, on this machine: what the engine-dependent checks need to judge this host."""
    return engine.reachable and not engine.info_error and not engine.remote


# --- CLI and engine --------------------------------------------------------------------------------

def cli_present(cli: CliFacts, shell: Shell = DEFAULT) -> Verdict:
    res = cli.result
    if res.missing:
        return failed("expected the `docker` CLI on PATH, found none",
                      with_note(install_docker(shell), f"official guide: {INSTALL_GUIDE}"))
    if not res.ok or not cli.version:
        return failed(f"expected `docker --version` to print a version, but {res.describe()}",
                      with_note(install_docker(shell), "reinstalls the Docker CLI", f"official guide: {INSTALL_GUIDE}"))
    return passed(f"docker CLI {cli.version} at {cli.path or 'PATH'}")


def engine_reachable(engine: EngineFacts, shell: Shell = DEFAULT, cli: CliFacts | None = None,
                     configured: str = "", rerun: Rerun = DEFAULT_RERUN) -> Verdict:
    """``cli``: the docker CLI probe; when it is missing too, Docker is not installed (install, not start).
    ``configured``: the lab config's docker_host ("" when the endpoint came from DOCKER_HOST or the default).
    ``rerun``: this run's suite again (labcheck.rerun.of), after the fix of an engine on another machine."""
    where = engine.endpoint
    bad_url = docker_endpoint.problem(where)
    if engine.remote and not bad_url:  # a URL the SDK refuses is that first (its own fix)
        return engine_elsewhere(where, engine.remote, configured, rerun)
    if engine.reachable and not engine.info_error:
        return passed(f"Docker engine {engine.server_version or '(version unknown)'} answers at {where}")
    if engine.reachable:
        what = "hung" if "time" in engine.info_error.lower() else "failed"
        restart, note = _service(shell, "restart", where)
        return failed(f"Docker engine at {where} answered ping but `version`/`info` {what}: {engine.info_error}",
                      with_note(restart, note, f"then read why in {journal(shell, where)}", RESTART_STOPS))
    err = engine.error
    low = err.lower()
    if bad_url or "install paramiko" in low or any(s in low for s in NOT_AN_ENGINE):
        return _wrong_endpoint(where, configured, bad_url, err, rerun)
    if engine.timed_out:
        restart, note = _service(shell, "restart", where)
        return failed(f"Docker engine at {where} accepted the connection but did not answer `ping` within "
                      f"{engine.timeout:g}s (hung): {err}",
                      with_note(restart, note, RESTART_STOPS, f"if DOCKER_HOST={scrub(where)} is not your engine's "
                                                              "socket: unset DOCKER_HOST"))
    if "permission denied" in low:
        return failed(f"no permission to talk to the Docker engine at {where}: {err}", join_group(shell))
    if engine.cli_server_version:
        return failed(f"the docker CLI reaches an engine ({engine.cli_server_version}, e.g. through a docker "
                      f"context) but the suite cannot at {where}: {err}",
                      "export DOCKER_HOST=$(docker context inspect --format '{{.Endpoints.docker.Host}}')")
    if cli is not None and cli.result.missing:
        return failed(f"expected a Docker engine answering at {where}, found none, and no `docker` CLI on PATH: "
                      f"Docker is not installed ({err})",
                      with_note(install_docker(shell), f"official guide: {INSTALL_GUIDE}"))
    start, note = _service(shell, "start", where)
    if _rootless(where, None):
        others = ("without a systemd user manager: dockerd-rootless.sh &",)
    else:
        others = (f"no systemd: {shell.sudo('dockerd')} &",
                  *(() if shell.root else (f"if it runs but you are not root: {join_group(shell)}",)))
    return failed(f"expected a Docker engine answering at {where}, found none: {err}",
                  with_note(start, note, *others))


def engine_elsewhere(endpoint: str, host: str, configured: str, rerun: Rerun = DEFAULT_RERUN) -> Verdict:
    """The failure of an engine on another machine (``host``), whether it answers or not: module 0 reads this host's
    driver, GPUs and files, module 1 mounts them into the Kind node, so containers and the node must run here; a
    READY made of this host's driver and another machine's containers would be false.

    The fix undoes the setting that chose the endpoint, then runs the suite again: the lab config's docker_host
    (``configured``; removed the one way a fix removes a setting, labcheck.config.removal_steps: a copy kept, then
    its line deleted, or the editor at it) or DOCKER_HOST; the URL itself stays out of the fix (it may carry
    credentials) and the host goes after ``#`` as one line."""
    message = (f"the engine at {endpoint} is on another machine ({host}); the lab must run on this host: its driver, "
               "GPUs and files are checked here, so its containers and the Kind node must run here too")
    there = f"to check {host} itself, run the suite there (or from here with --hosts: docs/instructors.md)"
    if configured and configured == endpoint:  # docker_host removed from the lab config (a copy kept), then the rerun
        remove, *notes = config.removal_steps(rerun.lab_file, "docker_host", "the suite uses DOCKER_HOST if it is "
                                              f"set, else {docker_endpoint.DEFAULT}")
        return failed(message, with_note(f"{remove} && {rerun.again()}", *notes, there))
    return failed(message, with_note(f"unset DOCKER_HOST && {rerun.again()}",
                                     f"this host's engine at {docker_endpoint.DEFAULT}; rootless Docker: export "
                                     "DOCKER_HOST=unix:///run/user/$(id -u)/docker.sock instead of the unset", there))


# What the SDK says when something answers at the endpoint, but not as a Docker engine (its /version is not the
# engine's JSON object): starting Docker is not the fix, pointing at the engine is.
NOT_AN_ENGINE = ("invalid response from docker daemon", "indices must be integers", "expecting value",
                 "is not json", "jsondecodeerror")


def _wrong_endpoint(where: str, configured: str, bad_url: str, err: str, rerun: Rerun) -> Verdict:
    """The endpoint itself is the problem: a URL the SDK cannot use, ssh:// without paramiko, or no engine there."""
    if bad_url:
        what = f"the Docker endpoint {where!r} cannot be used: {bad_url}"
    elif "install paramiko" in err.lower():
        return failed(f"the Docker endpoint {where} is ssh://, which the docker SDK reaches only through the paramiko "
                      f"package, not installed for {sys.executable}: {err}",
                      with_note(f"{sh(sys.executable)} -m pip install paramiko", "or point "
                                f"{'docker_host in the lab config' if configured else 'DOCKER_HOST'} at a unix:// "
                                "socket"))
    else:
        what = f"something answers at {where}, but not as a Docker engine: {err}"
    if configured and configured == where:
        fix = config.edit_setting(rerun.lab_file, "docker_host", f"set docker_host to your engine's address (e.g. "
                                  f"{docker_endpoint.EXAMPLE}), or delete the line to use DOCKER_HOST or the default "
                                  "socket")
    else:
        fix = with_note("unset DOCKER_HOST", f"the default socket {docker_endpoint.DEFAULT}; or export "
                                             f"DOCKER_HOST=<your engine's address>, e.g. {docker_endpoint.EXAMPLE}")
    return failed(what, fix)


def engine_version(engine: EngineFacts, minimum: str, shell: Shell = DEFAULT, *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    """``cli``: the docker prefix of the fixes (:class:`labcheck.clis.Clis`: the engine the lab config names)."""
    if not _answers(engine):
        return unreachable(engine)
    found = engine.server_version
    ok = versions.at_least(found, minimum)
    if ok is None:
        return failed(f"cannot read the Docker engine version (found {found!r}); the workshop needs >= {minimum}",
                      with_note(f"{cli.docker} version; {install_docker(shell)}", "the first command shows what "
                                "the engine says it is; the rest installs Docker CE"))
    if not ok:
        distro = any(s in found for s in ("dfsg", "ubuntu", "deb"))
        fix = (f"{shell.sudo('apt-get remove -y docker.io')} && {install_docker(shell)}"
               if distro and shell.package_manager == "apt-get"
               else install_docker(shell))
        why = " (a distribution package: replace it with Docker CE)" if distro else ""
        why = versions.below_as_prerelease(found, minimum) or why
        return failed(f"Docker engine {found} is older than the required {minimum}{why}",
                      with_note(fix, f"official guide: {INSTALL_GUIDE}"))
    return passed(f"Docker engine {found} >= {minimum}")


# --- daemon.json -----------------------------------------------------------------------------------

def daemon_json_location(dj: DaemonJson) -> str:
    if dj.line:
        return f"{dj.path}, line {dj.line}, column {dj.column}"
    return dj.path


def daemon_json_valid(dj: DaemonJson, shell: Shell = DEFAULT, dockerd: Dockerd | None = None,
                      endpoint: str = "") -> Verdict:
    """``dockerd``/``endpoint``: the engine's process and URL, how the fix makes it read the mended file (a reload,
    as the runtime fixes: :func:`reload_runtimes`)."""
    if not dj.exists:  # nothing read is not "valid": say so (the runtime checks judge what the engine runs)
        return skipped(f"no {dj.path} to validate: the engine runs with its defaults (see the NVIDIA runtime checks)")
    if dj.error:
        if dj.line:
            reload, note = _reload(shell, dockerd, dj.path, endpoint)
            # json.tool fails (and says where) until the file is mended; then the engine reloads it
            fix = with_note(f"python3 -m json.tool {sh(dj.path)} >/dev/null && {reload}",
                            f"first fix the JSON at line {dj.line}, column {dj.column} (dockerd refuses to start "
                            "with an invalid daemon.json, and a reload keeps the settings it had)", note)
        else:
            fix = with_note(shell.sudo(f"ls -l -- {sh(dj.path)}"), "make it readable and valid JSON")
        return failed(f"{daemon_json_location(dj)}: {dj.error}", fix)
    keys = ", ".join(sorted(dj.data or {})) or "no settings"
    return passed(f"{dj.path} is valid JSON ({keys})")


# --- NVIDIA runtime --------------------------------------------------------------------------------

def runtime_registered(engine: EngineFacts, dj: DaemonJson, name: str = "nvidia", setup_note: str = "",
                       shell: Shell = DEFAULT, ctk: ToolFacts | None = None, dockerd: Dockerd | None = None) -> Verdict:
    """``ctk``: the nvidia-ctk probe; when it is missing the fix installs the toolkit before configuring.
    ``dockerd``: the engine's process (:func:`labcheck.probes.docker.probe_dockerd`): how the fix reloads it."""
    if not _answers(engine):
        return unreachable(engine)
    listed = ", ".join(sorted(engine.runtimes)) or "none"
    if name in engine.runtimes:
        path = engine.runtimes[name].get("path", "?")
        default = engine.default_runtime or "?"
        note = "it is the default runtime" if default == name else \
            f"default runtime: {default}; containers use it with --runtime={name} or --gpus"
        return passed(f"runtime {name!r} registered in the Docker engine (path {path}); {note}", setup_note)
    details = setup_note
    configure, *notes = configure_steps(shell, ctk, name, dj.path, engine.endpoint, dockerd)
    if dj.error:
        return failed(f"runtime {name!r} is not registered (engine lists: {listed}) and {daemon_json_location(dj)} "
                      f"is invalid: {dj.error}",
                      with_note(f"python3 -m json.tool {sh(dj.path)} >/dev/null && {configure}",
                                "first fix the JSON (see daemon_json_valid)", *notes), details)
    if name in dj.runtimes:
        return failed(f"runtime {name!r} is in {dj.path} but the running engine has not loaded it "
                      f"(engine lists: {listed})", reload_runtimes(shell, dockerd, dj.path, engine.endpoint), details)
    rerun = "rerun this suite with --fix-host" if shell.root else "rerun this suite as root with --fix-host"
    return failed(f"expected runtime {name!r} registered in the Docker engine, found only: {listed}",
                  with_note(configure, *notes, f"or {rerun}"), details)


def runtime_usable(engine: EngineFacts, probe: RuntimeProbe, host_gpus: int, shell: Shell = DEFAULT,
                   ctk: ToolFacts | None = None, daemon_json: str = ctk_configure.DAEMON_JSON,
                   dockerd: Dockerd | None = None, *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    """Pass only when a container started with the runtime ran, and (on a GPU host) saw a GPU. ``daemon_json``:
    the lab config's, where the fixes register the runtime; ``dockerd``: how they reload the engine; ``cli``: the
    docker prefix of every ``docker run``/``rm`` they print (:class:`labcheck.clis.Clis`: the engine the lab
    config's docker_host names, which the probe used; a bare ``docker`` would act on the default engine)."""
    verdict = _runtime_usable(engine, probe, host_gpus, shell, ctk, daemon_json, dockerd, cli)
    if probe.leftovers_removed:  # an earlier run was killed before it could remove its probe container
        note = (f"removed {len(probe.leftovers_removed)} probe container(s) left by an interrupted run: "
                f"{', '.join(probe.leftovers_removed)}")
        verdict = Verdict(verdict.status, verdict.message, verdict.remediation,
                          "\n".join(x for x in (verdict.details, note) if x))
    if probe.cleanup_error:  # a hung runtime can keep our probe container alive: say how to remove it
        note = (f"the probe container {probe.container} could not be removed ({probe.cleanup_error}); "
                f"remove it with `{cli.docker} rm -f {sh(probe.container)}`")
        verdict = Verdict(verdict.status, verdict.message, verdict.remediation,
                          "\n".join(x for x in (verdict.details, note) if x))
    return verdict


def _runtime_usable(engine: EngineFacts, probe: RuntimeProbe, host_gpus: int, shell: Shell,
                    ctk: ToolFacts | None, daemon_json: str, dockerd: Dockerd | None, cli: Clis) -> Verdict:
    name = probe.runtime
    if not _answers(engine):
        return unreachable(engine)
    reinstall, *reinstall_notes = _reinstall(shell, name, daemon_json, engine.endpoint, dockerd)
    # one container with the runtime, by hand, on the engine the probe used
    run = f"{cli.docker} run --rm --runtime={sh(name)} -e NVIDIA_VISIBLE_DEVICES=all {sh(probe.image or 'busybox')}"
    if not probe.attempted:
        return failed(f"cannot start a container with runtime {name!r}: the engine does not list it "
                      f"(engine lists: {', '.join(sorted(engine.runtimes)) or 'none'})",
                      configure_runtime(shell, ctk, name, daemon_json, engine.endpoint, dockerd))
    if probe.engine_lost:
        start, note = _service(shell, "start", engine.endpoint, dockerd)
        return failed(f"the Docker engine at {engine.endpoint} stopped answering while {probe.hung_step or 'probing'}"
                      f": {probe.error or probe.image_error}",
                      with_note(start, note, f"then rerun; {journal(shell, engine.endpoint, dockerd)} says why it "
                                             "stopped"))
    if probe.timed_out:
        return failed(f"{probe.hung_step} hung: no answer within {engine.timeout:g}s "
                      f"(runtime {name!r}, container {probe.container or '-'}): {probe.error or probe.image_error}",
                      with_note(f"{_service(shell, 'restart', engine.endpoint, dockerd)[0]} && {run} true",
                                "restarts the engine (a hung runtime needs it; it stops every running container), "
                                "then starts one container by hand; if that hangs too, read "
                                f"{journal(shell, engine.endpoint, dockerd)}",
                                _service(shell, "restart", engine.endpoint, dockerd)[1]))
    if probe.image_error:
        return failed(f"cannot test runtime {name!r}: {probe.image_error}",
                      with_note(shell.install(BUSYBOX, "a static busybox"), "the suite builds its probe image from "
                                "the first static busybox in busybox_paths (lab.yaml; default /bin/busybox, "
                                "/usr/bin/busybox): add the path this package puts it at when it is another "
                                f"(e.g. /usr/sbin/busybox, /bin/busybox.static); or {cli.docker} pull busybox, or "
                                "set probe_image in lab.yaml to a local image with /bin/sh"))
    if probe.error:
        return _start_error(name, engine, probe, shell, ctk, daemon_json, dockerd)
    out = probe.output
    if probe.exit_code != 0 or not out.complete:
        return failed(f"a container with runtime {name!r} started but its probe exited {probe.exit_code} "
                      f"(expected 0): {probe.logs.strip()[-300:] or 'no output'}",
                      with_note(f"{run} /bin/sh -c 'ls /dev'; {reinstall}", "the first command shows the "
                                "container's error", *reinstall_notes))
    smi = ""
    if out.smi_rc == 0:
        smi = "; nvidia-smi -L inside: " + ("; ".join(out.smi_lines) or "no output")
    elif out.smi_rc is not None:  # the injected nvidia-smi needs a C library a busybox image lacks
        smi = (f"; nvidia-smi -L could not run in probe image {probe.image} (exit {out.smi_rc}: "
               + ("; ".join(out.smi_lines) or "no output") + ")")
    devices = ", ".join(out.devices)
    if host_gpus > 0:
        if not any(versions.ascii_int(d.removeprefix("/dev/nvidia")) is not None for d in out.devices):
            return failed(f"runtime {name!r} starts containers but gives them no GPU: no /dev/nvidiaN inside with "
                          f"NVIDIA_VISIBLE_DEVICES=all (found: {devices or 'no /dev/nvidia*'}), although this host "
                          f"has {host_gpus} GPU(s){smi}",
                          with_note(f"nvidia-container-cli -k -d /dev/tty info; {cli.docker} info | grep -i "
                                    f"runtime; {reinstall}", "the first two show what the runtime sees",
                                    *reinstall_notes))
        return passed(f"runtime {name!r} starts containers with the GPU: {devices}{smi}")
    if out.devices:
        return warned(f"runtime {name!r} starts containers and injected {devices}, but this host shows no GPU "
                      f"(/dev/nvidiaN, /proc/driver/nvidia/gpus){smi}", "check `nvidia-smi` on the host")
    return warned(f"runtime {name!r} starts containers ({probe.seconds:.1f}s), but this host has no NVIDIA GPU, so "
                  "GPU access through it cannot be proven here (no /dev/nvidia* inside)",
                  "run the suite on the GPU host to prove GPU access")


_EXEC_NOT_FOUND = re.compile(r'exec: \\?"([^"\\]+)\\?": executable file not found')
_STAT_MISSING = re.compile(r"stat (\S+): no such file or directory")


def missing_binary(error: str) -> str:
    """The program an engine/runtime error says it could not find ("" if it says no such thing)."""
    m = _EXEC_NOT_FOUND.search(error) or _STAT_MISSING.search(error)
    return m.group(1) if m else ""


def _start_error(name: str, engine: EngineFacts, probe: RuntimeProbe, shell: Shell, ctk: ToolFacts | None,
                 daemon_json: str, dockerd: Dockerd | None) -> Verdict:
    err = probe.error
    low = err.lower()
    path = str(engine.runtimes.get(name, {}).get("path", "") or name)
    if "unknown runtime specified" in low:
        return failed(f"the engine refused runtime {name!r}: {err}",
                      configure_runtime(shell, ctk, name, daemon_json, engine.endpoint, dockerd))
    missing = missing_binary(err)
    if missing:
        if os.path.basename(missing) == os.path.basename(path):
            what = f"runtime {name!r} is registered with path {path!r} but dockerd cannot execute it (binary missing)"
        else:
            what = f"runtime {name!r} ({path}) runs but needs {missing}, which is missing"
        if os.path.basename(missing).startswith("nvidia-container"):
            fix = with_note(shell.install(TOOLKIT_PACKAGE, "the NVIDIA Container Toolkit"),
                            "from NVIDIA's repository, which its guide adds first where it is missing: "
                            f"{TOOLKIT_GUIDE}")
        else:  # a runtime's path is a daemon.json setting: a reload applies it
            reload, note = _reload(shell, dockerd, daemon_json, engine.endpoint)
            fix = with_note(reload, f"first install {missing}, or point runtimes.{name}.path in daemon.json at the "
                                    "real binary; then this makes the engine read it", note)
        return failed(f"{what}; starting a container failed: {err}", fix)
    if "permission denied" in low:
        return failed(f"runtime {name!r} ({path}) cannot be executed: {err}",
                      shell.sudo(f"chmod 755 $(command -v {sh(path)})"))
    if "nvidia-container-cli" in low and any(s in low for s in ("nvml", "driver", "libnvidia-ml", "load library")):
        return failed(f"runtime {name!r} runs but cannot reach the NVIDIA driver: {err}",
                      "check `nvidia-smi` on the host and install/repair the NVIDIA driver "
                      "(https://www.nvidia.com/Download/index.aspx), then rerun")
    return failed(f"starting a container with runtime {name!r} failed: {err}",
                  reinstall_toolkit(shell, name, daemon_json, engine.endpoint, dockerd))
