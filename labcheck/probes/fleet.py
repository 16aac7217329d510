"""Probe fleet hosts over SSH before the distributed run: reachable? Python? the suite's packages?

pytest-xdist opens an execnet gateway per host with no timeout of its own, and a gateway that
cannot start (refused, no Python, missing packages) would stop the whole session. So each host is
first asked one bounded question through the real ``ssh`` client (:func:`labcheck.cmd.run`, with a
timeout); only hosts that answer correctly get a gateway, the others are reported with the reason.
The probe also creates the host's work folder, which execnet's ``chdir`` cannot do for nested paths.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from labcheck import cmd, fleet_ship, fsio
from labcheck.inventory import DEFAULT_WORKDIR, Host
from labcheck.remedy import DEFAULT as DEFAULT_SHELL
from labcheck.remedy import Shell, install_with_any, this_host, with_note

MIN_PYTHON = (3, 10)
# Import name -> pip name of what a worker imports: pytest and its deps (xdist ships pytest itself,
# not pluggy & co), execnet and pytest-xdist (the worker side), and the suite's own dependencies.
REMOTE_MODULES = {
    "pytest": "pytest",
    "execnet": "execnet",
    "xdist": "pytest-xdist",
    "yaml": "PyYAML",
    "docker": "docker",
    "kubernetes": "kubernetes",
}
MARK = "LABCHECK-PROBE "
# Where a host's packages go when its Python is the system's: PEP 668 (Debian 12, Ubuntu 24.04) refuses
# `pip install` there (externally-managed-environment), so the fix makes a venv, relative to the login folder.
HOST_VENV = ".dra-labcheck-venv"
# In a host's work folder: the fleet made it. Shipping replaces the suite's folders and lab.yaml there, so a
# folder that exists without it (an attendee's own, e.g. workdir /home and a host named after its user) is refused.
OWNED = ".labcheck-fleet-workdir"

# Runs on the host under its Python; written for old Pythons too, so that "too old" is reported.
_SCRIPT = """\
import json, os, sys, sysconfig
try:
    from importlib.util import find_spec
except ImportError:
    find_spec = None
missing = [m for m in MODULES if find_spec is None or find_spec(m) is None]
has = lambda m: find_spec is not None and find_spec(m) is not None
venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
managed = os.path.isfile(os.path.join(sysconfig.get_path("stdlib") or "", "EXTERNALLY-MANAGED"))
error = ""
foreign = []
created = False
try:
    os.makedirs(WORKDIR)
    created = True
except OSError as exc:
    if not os.path.isdir(WORKDIR):
        error = "cannot create %s: %s" % (os.path.abspath(WORKDIR), exc)
marker = os.path.join(WORKDIR, OWNED)
if not error and not (os.path.isfile(marker) and not os.path.islink(marker)):
    try:
        entries = sorted(os.listdir(WORKDIR))
    except OSError as exc:
        entries = []
        error = "cannot list %s: %s" % (os.path.abspath(WORKDIR), exc)
    # The fleet's own: made now, empty, or an earlier version's copy of the suite: nothing but what fleet runs
    # leave there, the suite's package among it (a user's folder of the same names has no labcheck/__init__.py)
    copy = not set(entries) - set(FLEET_ENTRIES) and os.path.isfile(os.path.join(WORKDIR, "labcheck", "__init__.py"))
    if not error and (created or not entries or copy):
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 420))
        except OSError as exc:
            error = "cannot mark %s as the fleet's work folder: %s" % (os.path.abspath(WORKDIR), exc)
    elif not error:
        foreign = entries[:6]
print(MARK + json.dumps({"version": list(sys.version_info[:3]), "executable": sys.executable,
                         "missing": missing, "error": error, "foreign": foreign,
                         "workdir": os.path.abspath(WORKDIR), "venv": venv, "managed": managed,
                         "pip": has("pip"), "ensurepip": has("ensurepip"), "home": os.path.expanduser("~"),
                         "root": getattr(os, "geteuid", lambda: -1)() == 0,
                         "apt": os.path.isfile("/usr/bin/apt-get")}))
"""

# Host states; "ok" means the probe passed (the run itself may still fail checks).
OK = "ok"
UNREACHABLE = "unreachable"
NO_PYTHON = "no python"
MISSING_PACKAGES = "missing packages"
FOREIGN_WORKDIR = "work folder in use"


@dataclass(frozen=True)
class ProbeResult:
    host: Host
    status: str
    message: str
    remediation: str = ""
    python_version: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK


def script(host: Host) -> str:
    return (f"MODULES = {sorted(REMOTE_MODULES)!r}\nWORKDIR = {host.remote_dir!r}\nMARK = {MARK!r}\n"
            f"OWNED = {OWNED!r}\nFLEET_ENTRIES = {fleet_ship.FLEET_ENTRIES!r}\n" + _SCRIPT)


def probe(host: Host, run: Callable[..., cmd.CmdResult] = cmd.run) -> ProbeResult:
    """Ask ``host`` once, bounded by its connect timeout (+10 s for Python to answer)."""
    argv = host.ssh_command(host.python, "-c", script(host))
    return classify(host, run(argv, timeout=host.connect_timeout + 10), this_host())


# Each package manager's names (labcheck.remedy.Shell.install): the OpenSSH client, and a Python 3 with venv
# (Debian's and Ubuntu's python3 has no venv module without python3-venv; the others ship it with python3).
SSH_CLIENT = {"apt-get": "openssh-client", "dnf": "openssh-clients", "zypper": "openssh-clients",
              "apk": "openssh-client", "pacman": "openssh"}
PYTHON = {"apt-get": "python3 python3-venv", "dnf": "python3", "zypper": "python3", "apk": "python3",
          "pacman": "python"}


def _ssh_client_fix(shell: Shell) -> str:
    """How this machine (the controller) gets an ``ssh`` client: as root or with sudo, with its package manager
    (labcheck.remedy)."""
    return shell.install(SSH_CLIENT, "an OpenSSH client")


def _as_root_on(host: Host, command: str, root: bool | None = None) -> str:
    """``command`` as root on ``host``: plain for a root login (``root``, or a ``root@`` target when the host did
    not say), else through sudo over ``ssh -t``, so that sudo can ask for the password."""
    if root is None:
        root = host.ssh.rpartition("@")[0] == "root"
    return host.manual_ssh(command) if root else host.manual_ssh(f"sudo {command}", tty=True)


def _packages_fix(host: Host, info: dict, missing: list[str]) -> str:
    """Install what the host lacks where pip may write: into the host's Python when it is a venv or not managed by
    the distribution; else (PEP 668: Debian 12's and Ubuntu 24.04's system Python refuse ``pip install``) into a
    venv of the suite's own in the login folder, with the inventory's ``python:`` pointed at it."""
    if info.get("venv") or (not info.get("managed") and info.get("pip")):
        return host.manual_ssh(shlex.join([host.python, "-m", "pip", "install", *missing]))
    home = str(info.get("home") or "")
    # the inventory cannot carry whitespace or '//' (labcheck.inventory): then the path relative to the login folder
    venv = f"{home.rstrip('/')}/{HOST_VENV}" if home.startswith("/") and not any(
        c.isspace() or not c.isprintable() for c in home) and "//" not in home else HOST_VENV
    python = f"{venv}/bin/python"
    make = (f"{shlex.join([host.python, '-m', 'venv', venv])} && "
            f"{shlex.join([python, '-m', 'pip', 'install', *sorted(REMOTE_MODULES.values())])}")
    note = f"then set python: {python} for host {host.name} in the inventory"
    if info.get("ensurepip"):
        return with_note(host.manual_ssh(make), note)
    if info.get("apt"):  # Debian's and Ubuntu's Python has no venv (ensurepip) without python3-venv
        root = bool(info.get("root"))
        install = "apt-get install -y python3-venv"
        return with_note(host.manual_ssh(f"{install if root else 'sudo ' + install} && {make}", tty=not root), note)
    return with_note(host.manual_ssh(make), note, f"{host.python} -m venv needs ensurepip: install your "
                     "distribution's venv package for that Python first")


def classify(host: Host, res: cmd.CmdResult, shell: Shell = DEFAULT_SHELL) -> ProbeResult:
    """Turn the probe's ssh result into a host state with message and remediation (pure). ``shell``: the
    controller's (who runs the fleet), for the fix that installs its ssh client."""
    check_ssh = host.manual_ssh("true")
    if res.missing:
        return ProbeResult(host, UNREACHABLE, "the `ssh` client is not installed on this machine",
                           _ssh_client_fix(shell))
    if res.timed_out:
        return ProbeResult(host, UNREACHABLE,
                           f"{host.target} did not answer within {res.timeout:g}s",
                           f"{check_ssh}   # is the machine on and reachable? then rerun the fleet")
    if res.rc == 255:
        why = _last_line(res.stderr) or "ssh failed"
        return ProbeResult(host, UNREACHABLE, f"{host.target} unreachable over SSH: {why}",
                           f"{check_ssh}   # fix the connection (sshd running? key authorised?), then rerun")
    if res.rc in (126, 127):
        return ProbeResult(host, NO_PYTHON,
                           f"no Python at `{host.python}` ({_last_line(res.stderr) or f'exit {res.rc}'})",
                           f"{_as_root_on(host, install_with_any(PYTHON, 'Python 3'))}   "
                           f"# or set `python:` for this host in the inventory")
    info = _parse(res.stdout)
    wrong = _answer_problem(info) if info is not None else ""
    if info is None or wrong:
        said = f"answered the probe with what the fleet cannot use ({wrong})" if wrong else \
            f"did not run the probe (exit {res.rc}: {_last_line(res.output) or 'no output'})"
        return ProbeResult(host, NO_PYTHON, f"`{host.python}` {said}",
                           f"{host.manual_ssh(shlex.quote(host.python) + ' --version')}   # must be Python "
                           f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer")
    version = ".".join(str(v) for v in info.get("version", []))
    if tuple(info.get("version", ()))[:2] < MIN_PYTHON:
        return ProbeResult(host, NO_PYTHON,
                           f"`{host.python}` is Python {version}; the suite needs "
                           f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer",
                           f"{_as_root_on(host, install_with_any(PYTHON, 'Python 3'), info.get('root'))}   "
                           f"# or point `python:` in the inventory at a newer interpreter", version)
    if info.get("error"):
        return ProbeResult(host, UNREACHABLE, info["error"],
                           host.manual_ssh("mkdir -p -- " + shlex.quote(host.remote_dir)), version)
    foreign = info.get("foreign") or []
    if foreign:
        folder = str(info.get("workdir") or host.remote_dir)
        listed = ", ".join(str(e) for e in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        return ProbeResult(host, FOREIGN_WORKDIR,
                           f"the work folder {folder} exists and was not made by the fleet runner (it holds "
                           f"{listed}): shipping the suite there would replace files in it",
                           f"give this host a `workdir:` of the suite's own in the inventory (default "
                           f"{DEFAULT_WORKDIR}), or move that folder away: "
                           f"{host.manual_ssh(shlex.join(['mv', folder, folder + '.moved']))}", version)
    missing = info.get("missing") or []
    if missing:
        pips = sorted(REMOTE_MODULES[m] for m in missing if m in REMOTE_MODULES)
        return ProbeResult(host, MISSING_PACKAGES,
                           f"Python {version} at `{host.python}` lacks {', '.join(pips)}",
                           _packages_fix(host, info, pips), version)
    return ProbeResult(host, OK, f"Python {version} at {info.get('executable') or host.python}", "", version)


# The probe answer's fields and the type each must have (absent is fine): what _SCRIPT prints. WHY checked: the
# answer comes from another machine's Python (a broken or tampered one, another version of the suite), and
# classify compares and slices these ("version": "3.11" compared with a tuple of ints was a TypeError).
_ANSWER_FIELDS: dict[str, Callable[[object], bool]] = {
    "version": lambda v: isinstance(v, list) and len(v) >= 2 and all(type(n) is int for n in v),
    "missing": lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v),
    "foreign": lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v),
    **dict.fromkeys(("executable", "error", "workdir", "home"), lambda v: isinstance(v, str)),
    **dict.fromkeys(("venv", "managed", "pip", "ensurepip", "root", "apt"), lambda v: isinstance(v, bool)),
}


def _answer_problem(info: dict) -> str:
    """Which field of the probe answer is not of the type the probe script prints ("" when all are)."""
    for name, fits in _ANSWER_FIELDS.items():
        if name in info and info[name] is not None and not fits(info[name]):
            return f"its {name!r} is {fsio.shown(info[name])}"
    return "" if info.get("version") is not None else "it has no 'version'"


def _parse(stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith(MARK):
            try:
                doc = fsio.parse_json(line[len(MARK):], "the host's probe answer")
            except fsio.FileProblem:
                return None
            return doc if isinstance(doc, dict) else None
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""
