"""The instructors' fleet inventory: which machines to check, how to reach them over SSH.

Two formats, both read by :func:`load`:

* YAML: ``defaults:`` (any host key) and ``hosts:``, a list of mappings with ``name``, ``ssh`` (the
  ssh target: ``user@host`` or a ``~/.ssh/config`` alias) and optionally ``port``, ``python``,
  ``timeout``, ``connect_timeout``, ``ssh_options`` (list of extra ``ssh`` arguments), ``workdir``.
* A plain hosts file: one ssh target per line (``user@host`` or ``user@host:port``), optionally
  preceded by a name (``attendee-07 ubuntu@10.0.0.17``); ``#`` starts a comment.

Each host becomes an execnet/pytest-xdist ``ssh=`` spec (:meth:`Host.xspec`). execnet splits the
ssh part on whitespace and reserves ``//``, so values containing either are refused here with a
message saying what to do instead (an alias in ``~/.ssh/config``).
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from labcheck import fsio, versions
from labcheck.config import MAX_SECONDS

DEFAULT_PYTHON = "python3"
DEFAULT_TIMEOUT = 1800.0  # seconds for the whole run on one host (module 1 builds a cluster)
DEFAULT_CONNECT_TIMEOUT = 15.0
DEFAULT_WORKDIR = ".dra-labcheck-fleet"  # relative to the remote login directory
# Dead-peer detection: ssh gives up after ServerAliveInterval * ServerAliveCountMax seconds of silence.
KEEPALIVE = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")
FLEET_ENV = "LABCHECK_FLEET"  # set to 1 in a fleet worker's environment
WORKER_PIDFILE = ".labcheck-worker.pid"  # in the host's work folder: the worker to stop on a timeout
# The check name under which the fleet runner files a host it could not run (or lost); the fleet view
# (reports.fleet) keeps it out of the matrix columns.
CONNECTION_CHECK = "host_connection"
COLLECT_CHECK = "checks_collected"  # a host's failing check when a check file could not be collected there
CONTROL_PERSIST = 60  # seconds an idle shared connection stays up if the runner could not close it
MAX_BYTES = 4 * 1024 * 1024  # an inventory of a few thousand hosts is well under this
_LOOKS_YAML = re.compile(r"^\s*(hosts|defaults)\s*:", re.MULTILINE)  # meant as a YAML inventory

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_KEYS = {"name", "ssh", "port", "python", "timeout", "connect_timeout", "ssh_options", "workdir"}


class InventoryError(ValueError):
    """The inventory cannot be used; the message says where and what to write instead."""


@dataclass(frozen=True)
class Host:
    name: str
    ssh: str
    port: int | None = None
    python: str = DEFAULT_PYTHON
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ssh_options: tuple[str, ...] = ()
    workdir: str = DEFAULT_WORKDIR
    # Set by the fleet runner, not the inventory: an ssh control socket, so that the probe's
    # connection is reused by the host's gateway (one SSH handshake per host instead of two).
    control_path: str = ""

    @property
    def target(self) -> str:
        """How people name this host: ``user@host`` or ``user@host:port`` (``user@[2001:db8::1]:port``:
        as the hosts file reads it back)."""
        if not self.port:
            return self.ssh
        user, at, address = self.ssh.rpartition("@")
        return f"{user}{at}[{address}]:{self.port}" if ":" in address else f"{self.ssh}:{self.port}"

    @property
    def remote_dir(self) -> str:
        """Where the suite is shipped on the host; one folder per inventory name."""
        return f"{self.workdir.rstrip('/')}/{self.name}"

    def ssh_args(self) -> list[str]:
        """The ``ssh`` arguments before the remote command (without the ``ssh`` program itself)."""
        args = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(self.connect_timeout)}", *KEEPALIVE]
        if self.control_path:
            args += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}",
                     "-o", f"ControlPersist={CONTROL_PERSIST}"]
        if self.port:
            args += ["-p", str(self.port)]
        return [*args, *self.ssh_options, self.ssh]

    def manual_ssh(self, command: str = "", *, tty: bool = False) -> str:
        """The ssh command line a person types to run ``command`` (a shell line) on the host, for
        remediations: the inventory's options, none of the fleet's batch options. ``tty``: ``ssh -t``, for a
        command that may ask for a password (sudo cannot prompt without a terminal)."""
        args = shlex.join(["ssh", *(["-t"] if tty else []), *(["-p", str(self.port)] if self.port else []),
                           *self.ssh_options, self.ssh])
        return f"{args} {shlex.quote(command)}" if command else args

    def control_command(self, operation: str) -> list[str]:
        """argv asking the shared connection's master to ``check`` or ``exit``."""
        return ["ssh", "-o", f"ControlPath={self.control_path}", "-O", operation, *self.ssh_args()]

    def stop_worker_command(self) -> list[str]:
        """argv stopping this host's fleet worker (SIGTERM to the pid it wrote), for a run past its time; a link at
        the pid file's name is not the worker's (it writes none through a link) and is not followed."""
        pidfile = shlex.quote(f"{self.remote_dir}/{WORKER_PIDFILE}")
        return self.ssh_command("sh", "-c", f"test -f {pidfile} && ! test -L {pidfile} && "
                                            f"kill -TERM $(cat {pidfile}) && rm -f {pidfile}")

    def ssh_command(self, *remote: str) -> list[str]:
        """argv running ``remote`` on the host; ssh hands it to the remote shell, hence the quoting."""
        return ["ssh", *self.ssh_args(), shlex.join(remote)] if remote else ["ssh", *self.ssh_args()]

    def xspec(self) -> str:
        """The execnet gateway spec for this host, as pytest-xdist's ``--tx`` takes it.

        ``id`` is the inventory name (xdist's worker id), ``env:LABCHECK_HOST_NAME`` files the
        host's results under that name, ``chdir`` is where the suite is shipped. Plugin autoload is
        off on the hosts (half of a worker's start-up time; the checks need only the suite's own
        plugins and pytest-xdist's, which the worker command line loads).
        """
        return "//".join([
            # -q: the gateway's ssh writes straight to the terminal ("Connection ... closed by remote
            # host" from a lost host); the probe has already reported any connection error.
            f"ssh=-q {' '.join(self.ssh_args())}",
            f"id={self.name}",
            f"python={self.python}",
            f"chdir={self.remote_dir}",
            f"env:LABCHECK_HOST_NAME={self.name}",
            "env:PYTEST_DISABLE_PLUGIN_AUTOLOAD=1",
            f"env:{FLEET_ENV}=1",
        ])


def load(path: str | Path) -> list[Host]:
    """Read an inventory file (YAML or plain hosts list); raise :class:`InventoryError` if unusable."""
    path = Path(path)
    expected = "expected a YAML inventory or a hosts file (one user@host per line)"
    try:
        text = fsio.read_text(path, MAX_BYTES)  # a regular file, bounded, UTF-8: never a hang on a FIFO
    except FileNotFoundError:
        raise InventoryError(f"cannot read inventory {path}: no such file; {expected}") from None
    except fsio.FileProblem as exc:
        raise InventoryError(f"inventory {exc}; {expected}") from None
    try:
        doc = fsio.load_yaml(text, str(path))
    except fsio.YamlError as exc:
        if _LOOKS_YAML.search(text):  # meant as YAML: its own error and line, not a hosts-file reading of it
            raise InventoryError(f"inventory {exc}; fix the YAML (indentation, quotes) there") from None
        doc = None
    if isinstance(doc, dict):
        hosts = _from_yaml(doc, path)
    else:
        hosts = _from_lines(text, path)
    if not hosts:
        raise InventoryError(f"{path}: no hosts found; expected `hosts:` entries or one user@host per line")
    seen: set[str] = set()
    for h in hosts:
        if h.name in seen:
            raise InventoryError(f"{path}: host name {h.name!r} appears twice; give each host a unique `name`")
        seen.add(h.name)
    return hosts


def select(hosts: list[Host], names: list[str]) -> list[Host]:
    """Only the named hosts (``--fleet-host``), in inventory order; unknown names are an error."""
    if not names:
        return hosts
    known = {h.name for h in hosts}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InventoryError(f"--fleet-host {', '.join(unknown)}: not in the inventory "
                             f"(known: {', '.join(sorted(known))})")
    return [h for h in hosts if h.name in names]


def _from_yaml(doc: dict, path: Path) -> list[Host]:
    defaults = doc.get("defaults") or {}
    entries = doc.get("hosts")
    if not isinstance(defaults, dict):
        raise InventoryError(f"{path}: `defaults` must be a mapping of host keys ({', '.join(sorted(_KEYS))})")
    if not isinstance(entries, list):
        raise InventoryError(f"{path}: expected `hosts:` to be a list of mappings with `name` and `ssh`")
    defaults = _with_port(defaults, f"{path}: defaults")
    hosts = []
    for i, entry in enumerate(entries, 1):
        if isinstance(entry, str):
            entry = {"ssh": entry}
        if not isinstance(entry, dict):
            raise InventoryError(f"{path}: hosts entry {i} must be a mapping with `name` and `ssh`, found {entry!r}")
        where = f"{path}: hosts entry {i}"
        hosts.append(_host({**defaults, **_with_port(entry, where)}, where))  # the entry's own port wins
    return hosts


def _from_lines(text: str, path: Path) -> list[Host]:
    hosts = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2:
            raise InventoryError(f"{path}:{lineno}: expected `[name] user@host[:port]`, found {raw.strip()!r}; "
                                 f"use a YAML inventory for per-host options")
        entry: dict = {"ssh": parts[-1]}
        if len(parts) == 2:
            entry["name"] = parts[0]
        hosts.append(_host(_with_port(entry, f"{path}:{lineno}"), f"{path}:{lineno}"))
    return hosts


def _with_port(entry: dict, where: str) -> dict:
    """``entry`` with a port written into its ``ssh`` target (``user@host:2222``, ``user@[fe80::1]:2222``) moved
    to ``port``, the same in a hosts file and in YAML; a different ``port:`` beside it is an InventoryError.

    WHY: ssh takes no port in its destination; ``host:2222`` left there is a host name it cannot resolve.
    """
    target = entry.get("ssh")
    if not isinstance(target, str):
        return entry
    host, sep, port = target.strip().rpartition(":")
    address = host.rpartition("@")[2]
    # user@host:port; not an IPv6 address: [fe80::1] alone, or bare fe80::1 (its last group is no port)
    if not sep or "]" in port or (":" in address and not address.startswith("[")):
        return entry
    number = _port(port, where, f" of {target.strip()!r}")
    given = entry.get("port")
    if given not in (None, "") and _port(given, where) != number:
        raise InventoryError(f"{where}: two ports: {number} in ssh {target.strip()!r} and {given!r} in `port`; "
                             f"keep one (ssh: {host} with port: {number}, or only ssh: {target.strip()})")
    return {**entry, "ssh": host, "port": number}


def _unbracketed(target: str) -> str:
    """``user@[2001:db8::1]`` -> ``user@2001:db8::1``: brackets set an IPv6 address apart from its port in the
    inventory, but ssh takes the address bare ("Could not resolve hostname [::1]")."""
    user, at, address = target.rpartition("@")
    if address.startswith("[") and address.endswith("]"):
        return f"{user}{at}{address[1:-1]}"
    return target


def _port(value: object, where: str, of: str = "") -> int:
    """A TCP port, 1-65535, from an inventory value (YAML int or text): anything else is an InventoryError.

    WHY so strict: 0 made ssh use its default port 22 silently, '١٢' read as 12, True as 1.
    """
    number = None if isinstance(value, bool) else versions.ascii_int(str(value).strip())
    if number is None or not 0 < number < 65536:
        raise InventoryError(f"{where}: port {value!r}{of} is no TCP port; expected 1-65535 in ASCII digits, "
                             f"as in user@host:2222 or port: 2222; an IPv6 address goes in brackets, [fe80::1]:22")
    return number


def _seconds(value: object, default: float, label: str, where: str) -> float:
    """A finite number of seconds, at least 1 (``default`` when unset): NaN, inf and less are InventoryErrors
    (ssh's ConnectTimeout takes whole seconds, and 0 there means no limit at all)."""
    if value in (None, ""):
        return default
    try:
        seconds = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        seconds = None
    if seconds is None or not math.isfinite(seconds) or not 1 <= seconds <= MAX_SECONDS:
        raise InventoryError(f"{where}: {label} {value!r} is no number of seconds; expected a number from 1 to "
                             f"{MAX_SECONDS:g} (a day), e.g. {label}: {default:g}")
    return seconds


def _text(entry: dict, key: str, where: str, default: str) -> str:
    """A text setting (YAML text or a number, e.g. ``python: 3``): a list, mapping or true/false is an error."""
    value = entry.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InventoryError(f"{where}: `{key}` must be text, found {type(value).__name__} {value!r}")
    return str(value)


def _options(value: object, where: str) -> tuple[str, ...]:
    """``ssh_options``: a list of ssh arguments, or one line of them (split as a shell would)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:  # "No closing quotation"
            raise InventoryError(f"{where}: ssh_options {value!r} cannot be split into arguments ({exc}); "
                                 f"write them as a list, e.g. ssh_options: [-o, StrictHostKeyChecking=accept-new]"
                                 ) from None
    if isinstance(value, list) and all(isinstance(o, (str, int)) and not isinstance(o, bool) for o in value):
        return tuple(str(o) for o in value)
    raise InventoryError(f"{where}: ssh_options must be a list of ssh arguments (text), found {value!r}; "
                         f"e.g. ssh_options: [-o, StrictHostKeyChecking=accept-new]")


def _host(entry: dict, where: str) -> Host:
    unknown = {str(k) for k in entry} - _KEYS - {"defaults"}
    if unknown:
        raise InventoryError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}")
    ssh = entry.get("ssh")
    if not isinstance(ssh, str) or not ssh.strip():
        raise InventoryError(f"{where}: `ssh` (the ssh target, e.g. ubuntu@10.0.0.11) is missing")
    ssh = _unbracketed(ssh.strip())
    name = _text(entry, "name", where, "") or _default_name(ssh, entry.get("port"))
    if not _NAME.fullmatch(name):  # fullmatch: "$" would let a final newline through, into execnet's spec
        raise InventoryError(f"{where}: host name {name!r} may only contain letters, digits, '.', '_' and '-'")
    host = replace(
        Host(name=name, ssh=ssh),
        port=_port(entry["port"], where) if entry.get("port") not in (None, "") else None,
        python=_text(entry, "python", where, DEFAULT_PYTHON),
        timeout=_seconds(entry.get("timeout"), DEFAULT_TIMEOUT, "timeout", where),
        connect_timeout=_seconds(entry.get("connect_timeout"), DEFAULT_CONNECT_TIMEOUT, "connect_timeout", where),
        ssh_options=_options(entry.get("ssh_options"), where),
        workdir=_text(entry, "workdir", where, DEFAULT_WORKDIR),
    )
    for label, value in [("ssh", host.ssh), ("python", host.python), ("workdir", host.workdir),
                         *[("ssh_options", o) for o in host.ssh_options]]:
        if not value or any(c.isspace() for c in value) or "//" in value:
            raise InventoryError(f"{where}: {label} value {value!r} contains whitespace or '//', which the "
                                 f"SSH gateway spec cannot carry; put such settings in ~/.ssh/config and use "
                                 f"the Host alias as `ssh`")
    if host.ssh.startswith("-"):  # ssh (and execnet's spec) would read it as an option: -oProxyCommand=... runs
        raise InventoryError(f"{where}: ssh target {host.ssh!r} starts with '-', which ssh reads as an option, not "
                             f"a host; write it as user@host (options go in ssh_options)")
    if os.path.normpath(host.workdir) in ("/", "."):  # "/", "/.", "/..": the host's root; ".": the login folder
        raise InventoryError(f"{where}: workdir {host.workdir!r} is the root or the login folder itself; give a "
                             f"folder of the suite's own, e.g. workdir: {DEFAULT_WORKDIR}")
    return host


def _default_name(ssh: str, port: object) -> str:
    name = ssh.rsplit("@", 1)[-1] + (f"-{port}" if port else "")
    return re.sub(r"[^A-Za-z0-9._-]", "-", name).strip("-._") or "host"

