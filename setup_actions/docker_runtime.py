"""Setup action: register the NVIDIA runtime in Docker (``nvidia-ctk runtime configure``, labcheck.ctk_configure).

``plan`` says what would change and touches nothing. ``apply`` changes the host only with
``--fix-host`` (never with ``--no-provision``), and then:

- needs root: as root it acts, else through non-interactive ``sudo -n`` (never a password prompt);
  with neither it changes nothing and names the command to run as root;
- backs up daemon.json (timestamped copy next to it) before any change;
- lets ``nvidia-ctk`` merge the runtime in; without nvidia-ctk (but with the runtime binary) merges
  itself, keeping every existing key, and writes atomically (temp file + rename);
- verifies the result still holds every key (and value) it had, restoring the backup otherwise;
- reloads the engine (``systemctl reload`` of its unit when systemd runs it, else SIGHUP to its pid: the
  dockerd :func:`labcheck.probes.docker.probe_dockerd` finds, the same one the checks' fixes name).
  WHY reload, not restart: SIGHUP makes dockerd re-read daemon.json runtimes, while a restart stops
  every running container, e.g. an attendee's existing Kind cluster.

Idempotent: once the file and the engine both have the runtime, ``plan`` has nothing to do.
"""

from __future__ import annotations

import copy
import json
import os
import pwd
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from shlex import quote as sh
from typing import Literal

from labcheck import cmd, ctk_configure, fsio
from labcheck.probes.docker import DaemonJson, Dockerd, probe_dockerd, read_daemon_json
from labcheck.probes.tools import ToolFacts
from labcheck.remedy import Shell, this_host, with_note
from labcheck.verdicts.docker import configure_runtime, configure_steps, reload_runtimes, restart_dockerd
from setup_actions.outcome import Outcome
from setup_actions.privilege import privilege_prefix

RUNTIME_BINARY = "nvidia-container-runtime"


def configure_command(shell: Shell | None = None, runtime: str = ctk_configure.RUNTIME,
                      daemon_json: str = ctk_configure.DAEMON_JSON, dockerd: Dockerd | None = None,
                      endpoint: str = "", *first: str) -> str:
    """What to paste to register ``runtime`` in ``daemon_json`` by hand (the lab config's names, quoted) and
    reload ``dockerd`` (None: not probed) the way :func:`reload_engine` does, on the engine at ``endpoint`` (a
    rootless one by its user's manager; an engine on another machine is never configured: fixtures/docker.py
    refuses it, after the probe's answer); no ``sudo`` for root (--fix-host's notes run as root). ``first``: (command,
    note) of a step that must come before it (e.g. mend the file), "" for none: one shell line, notes after ``#``."""
    command, *notes = configure_steps(shell or this_host(), None, runtime, daemon_json, endpoint, dockerd)
    before, why = first if first else ("", "")
    return with_note(f"{before} && {command}" if before else command, why, *notes)


def install_and_configure_command(shell: Shell | None = None, runtime: str = ctk_configure.RUNTIME,
                                  daemon_json: str = ctk_configure.DAEMON_JSON, dockerd: Dockerd | None = None,
                                  endpoint: str = "") -> str:
    """Install the toolkit with this host's package commands (labcheck.verdicts.tools.install_command), then
    :func:`configure_command`: the verdicts' own line for a missing nvidia-ctk."""
    missing = ToolFacts("nvidia-ctk", None, None)
    return configure_runtime(shell or this_host(), missing, runtime, daemon_json, endpoint, dockerd)


def _mend_first(path: str) -> tuple[str, str]:
    """The step before configuring when ``path`` cannot be parsed: json.tool fails (and says where) until it is
    mended by hand, so the rest of the line runs only on a valid file."""
    return (f"python3 -m json.tool {sh(path)} >/dev/null",
            "first fix the JSON by hand: the suite never overwrites a file it cannot parse")


@dataclass(frozen=True)
class Plan:
    path: str
    runtime: str
    changes: tuple[str, ...] = ()
    problem: str = ""
    needs_write: bool = False
    needs_reload: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not self.changes and not self.problem

    def describe(self) -> str:
        if self.problem:
            return f"cannot configure runtime {self.runtime!r}: {self.problem}"
        if self.nothing_to_do:
            return f"nothing to do: runtime {self.runtime!r} is in {self.path} and loaded by the engine"
        return "; ".join(self.changes)


def outcome(status: Literal["nothing to do", "changed", "not run", "failed"], message: str, remediation: str = "",
            backup: str = "") -> Outcome:
    """The outcome in this action's words: ``status`` is its ``action``; only "nothing to do" and "changed"
    leave the engine with the runtime (``ok``)."""
    return Outcome(status in ("nothing to do", "changed"), status, message, remediation, changed=status == "changed",
                   backup=backup)


def plan(daemon_json: DaemonJson, engine_runtimes: Iterable[str] | None, runtime: str = "nvidia") -> Plan:
    """What would change. ``engine_runtimes`` is None when the engine could not be asked."""
    path = daemon_json.path
    if daemon_json.error:
        where = f"{path}, line {daemon_json.line}, column {daemon_json.column}" if daemon_json.line else path
        return Plan(path, runtime, problem=f"{where}: {daemon_json.error}; fix it by hand first "
                                           "(the suite never overwrites a file it cannot parse)")
    loaded = engine_runtimes is not None and runtime in set(engine_runtimes)
    if runtime in daemon_json.runtimes:
        if loaded or engine_runtimes is None:
            return Plan(path, runtime)
        return Plan(path, runtime, (f"reload the Docker engine so it loads runtime {runtime!r} from {path}",),
                    needs_reload=True)
    if loaded:
        # registered some other way (e.g. dockerd --add-runtime): don't add a second definition
        return Plan(path, runtime)
    action = "add" if daemon_json.exists else "create"
    return Plan(path, runtime, (
        f"{action} runtimes.{runtime} = {{\"path\": \"{RUNTIME_BINARY}\", \"args\": []}} in {path}"
        + (" (backup first, all existing settings kept)" if daemon_json.exists else ""),
        "reload the Docker engine so it loads the runtime",
    ), needs_write=True, needs_reload=True)


def merged(data: dict | None, runtime: str, path: str) -> dict:
    """``data`` with ``runtimes.<runtime>`` added, every other key and runtime kept (same entry as nvidia-ctk)."""
    out = copy.deepcopy(data) if data else {}
    runtimes = out.get("runtimes")
    if not isinstance(runtimes, dict):
        runtimes = {}
    runtimes[runtime] = {"path": path, "args": []}
    out["runtimes"] = runtimes
    return out


def apply(
    p: Plan,
    *,
    fix_host: bool,
    no_provision: bool = False,
    pidfile: str = "/var/run/docker.pid",
    timeout: float = 30.0,
    nvidia_ctk: str | None = None,
    runtime_binary: str | None = None,
    loaded: Callable[[], bool] | None = None,
    prefix: list[str] | None | Literal["auto"] = "auto",
    shell: Shell | None = None,
    endpoint: str = "",
) -> Outcome:
    """Carry out ``p``. ``loaded`` (optional) answers whether the engine now lists the runtime.

    ``nvidia_ctk``/``runtime_binary`` default to what is on PATH; ``prefix`` to :func:`privilege_prefix`;
    ``shell`` (who pastes the fixes) to :func:`labcheck.remedy.this_host`. ``endpoint`` (the engine's URL) and
    ``pidfile``: where :func:`labcheck.probes.docker.probe_dockerd` looks for the dockerd to reload.
    """
    shell = shell or this_host()
    dockerd = probe_dockerd(endpoint, pidfile, timeout)
    configure = configure_command(shell, p.runtime, p.path, dockerd, endpoint)
    if no_provision or not fix_host:
        why = "--no-provision: only checking" if no_provision else "--fix-host not given"
        if p.nothing_to_do:
            return outcome("nothing to do", p.describe())
        return outcome("not run", f"{why}; would: {p.describe()}", "" if p.problem else configure)
    if p.problem:
        return outcome("failed", p.describe(),
                       configure_command(shell, p.runtime, p.path, dockerd, endpoint, *_mend_first(p.path)))
    if p.nothing_to_do:
        return outcome("nothing to do", p.describe())
    if prefix == "auto":
        prefix = privilege_prefix(timeout)
    if prefix is None:
        return outcome("failed", f"changing {p.path} and reloading Docker needs root, and this user ({_user()}) "
                                 "is not root and has no password-less sudo: nothing was changed", configure)
    backup = ""
    if p.needs_write:
        ctk = nvidia_ctk if nvidia_ctk is not None else cmd.which("nvidia-ctk")
        binary = runtime_binary if runtime_binary is not None else cmd.which(RUNTIME_BINARY)
        if not ctk and not binary:
            return outcome("failed", "the NVIDIA Container Toolkit is not installed (no nvidia-ctk, no "
                                     f"{RUNTIME_BINARY}): registering the runtime now would break every container "
                                     "started with it; nothing was changed",
                           install_and_configure_command(shell, p.runtime, p.path, dockerd, endpoint))
        before = read_daemon_json(p.path)
        if before.error:  # changed since the plan was made
            return outcome("failed", f"{p.path} became unreadable: {before.error}",
                           configure_command(shell, p.runtime, p.path, dockerd, endpoint, *_mend_first(p.path)))
        try:
            fsio.write_target(p.path)  # a FIFO, device, folder or dangling link is never replaced
        except fsio.FileProblem as exc:
            first = (f"test -f {sh(p.path)} || test ! -e {sh(p.path)}",  # a regular file, or none: then it can go on
                     f"first: {exc.fix or 'make it a regular file'}")
            return outcome("failed", f"{exc}: nothing was changed",
                           configure_command(shell, p.runtime, p.path, dockerd, endpoint, *first))
        if before.exists:
            try:
                backup = _backup(p.path, prefix, timeout)
            except (OSError, fsio.FileProblem) as exc:
                return outcome("failed", f"could not back up {p.path} ({exc}): nothing was changed", configure)
        err = (_configure_with_ctk(ctk, p.path, p.runtime, prefix, timeout) if ctk else
               _merge_ourselves(p.path, before.data, p.runtime, _runtime_path(binary), prefix, timeout))
        if err:
            return outcome("failed", f"{err}{_restore(backup, p.path, prefix, timeout)}", configure, backup)
        problem = verify(before.data or {}, read_daemon_json(p.path), p.runtime)
        if problem:
            return outcome("failed", f"{problem}{_restore(backup, p.path, prefix, timeout)}", configure, backup)
    reload_note = reload_engine(dockerd, p.path, prefix, timeout, shell, endpoint)
    status_note = ""
    if loaded is not None:
        deadline = time.monotonic() + timeout
        ok = loaded()
        while not ok and time.monotonic() < deadline:
            time.sleep(0.2)
            ok = loaded()
        status_note = "; the engine now lists it" if ok else \
            f"; the engine still does not list it: {restart_dockerd(shell, p.path, endpoint, dockerd)}"
    wrote = f"registered runtime {p.runtime!r} in {p.path}" if p.needs_write else f"{p.path} already had it"
    saved = f" (backup: {backup})" if backup else ""
    return outcome("changed", f"{wrote}{saved}; {reload_note}{status_note}", backup=backup)


def verify(before: dict, after: DaemonJson, runtime: str) -> str:
    """"" when ``after`` parses, has the runtime and still holds every key/value (and runtime) ``before`` had."""
    if after.error or after.data is None:
        return f"{after.path} is not valid JSON after the change: {after.error or 'missing'}"
    if runtime not in after.runtimes:
        return f"{after.path} has no runtimes.{runtime} after the change"
    lost = [k for k in before if k != "runtimes" and after.data.get(k) != before[k]]
    old_rt = before.get("runtimes") if isinstance(before.get("runtimes"), dict) else {}
    lost += [f"runtimes.{k}" for k in old_rt if k != runtime and after.runtimes.get(k) != old_rt[k]]
    if lost:
        return f"{after.path} lost or changed existing settings: {', '.join(lost)}"
    return ""


def reload_engine(dockerd: Dockerd, daemon_json: str, prefix: list[str], timeout: float,
                  shell: Shell | None = None, endpoint: str = "") -> str:
    """Make ``dockerd`` re-read ``daemon_json``; say how (or that it could not), in ``shell``'s words: the very
    reload the checks' fixes print (labcheck.verdicts.docker.reload_runtimes), a restart only when it failed."""
    shell = shell or this_host()
    if dockerd.unit:
        res = cmd.run([*prefix, "systemctl", "reload", dockerd.unit], timeout=timeout)
        if res.ok:
            return f"reloaded Docker (systemctl reload {dockerd.unit})"
        return f"could not reload Docker: {res.describe()}; {restart_dockerd(shell, daemon_json, endpoint, dockerd)}"
    pid = dockerd.pid
    if pid is None:
        return f"no running dockerd found: {reload_runtimes(shell, dockerd, daemon_json, endpoint)}"
    by_hand = reload_runtimes(shell, dockerd, daemon_json, endpoint)
    if prefix:
        res = cmd.run([*prefix, "kill", "-HUP", str(pid)], timeout=timeout)
        if not res.ok:
            return f"could not signal dockerd {pid}: {res.describe()}; run: {by_hand}"
    else:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            return f"could not signal dockerd {pid}: {exc}; run: {by_hand}"
    return f"sent SIGHUP to dockerd (pid {pid}, {dockerd.found_by}) to reload its runtimes"


def _runtime_path(binary: str | None) -> str:
    """What nvidia-ctk writes (the bare name, resolved on dockerd's PATH) unless only an odd path has it."""
    if not binary or shutil.which(RUNTIME_BINARY) == binary:
        return RUNTIME_BINARY
    return binary


def _backup(path: str, prefix: list[str], timeout: float) -> str:
    if not prefix:
        return fsio.backup(path)
    dest = fsio.backup_name(path)
    res = cmd.run([*prefix, "cp", "-p", "--", path, dest], timeout=timeout)  # -p: the backup keeps the mode
    if not res.ok:
        raise OSError(res.describe())
    return dest


def _restore(backup: str, path: str, prefix: list[str], timeout: float) -> str:
    if not backup:
        return ""
    if prefix:
        res = cmd.run([*prefix, "cp", "-p", "--", backup, path], timeout=timeout)
        return f"; restored {path} from {backup}" if res.ok else f"; RESTORE FAILED ({res.describe()}): copy {backup}"
    try:
        fsio.write_atomic(path, fsio.read_bytes(backup))
    except (OSError, fsio.FileProblem) as exc:
        return f"; RESTORE FAILED ({exc}): copy {backup} back to {path}"
    return f"; restored {path} from {backup}"


def _configure_with_ctk(ctk: str, path: str, runtime: str, prefix: list[str], timeout: float) -> str:
    res = cmd.run([*prefix, *ctk_configure.argv(runtime, path, ctk)], timeout=timeout)
    return "" if res.ok else f"nvidia-ctk failed: {res.describe()}"


def _merge_ourselves(path: str, data: dict | None, runtime: str, runtime_path: str, prefix: list[str],
                     timeout: float) -> str:
    text = json.dumps(merged(data, runtime, runtime_path), indent=4) + "\n"
    try:
        if not prefix:
            fsio.write_atomic(path, text)
            return ""
        # Not root: write our copy, then let root put it next to the file (its symlink's target, so a link
        # stays a link) and rename it over (atomic).
        target = fsio.write_target(path)
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
        with tempfile.NamedTemporaryFile("w", delete=False, suffix=".json") as tmp:
            tmp.write(text)
        staged = f"{target}.labcheck-tmp"
        try:
            for argv in ([*prefix, "mkdir", "-p", "--", str(target.parent)],
                         [*prefix, "install", "-m", f"{mode:o}", "--", tmp.name, staged],
                         [*prefix, "mv", "-f", "--", staged, str(target)]):
                res = cmd.run(argv, timeout=timeout)
                if not res.ok:
                    cmd.run([*prefix, "rm", "-f", "--", staged], timeout=timeout)
                    return f"could not write {path}: {res.describe()}"
        finally:  # our copy of the user's settings never stays behind in /tmp
            os.unlink(tmp.name)
    except fsio.FileProblem as exc:
        return f"could not write {exc}"
    except OSError as exc:
        return f"could not write {path}: {exc}"
    return ""


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
