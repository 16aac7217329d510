"""Who pastes a remediation, and on which distribution: the two facts that change its words.

One place decides "as root, or with sudo" and the distribution's package commands, so every
remediation fits the host it is shown on: no ``sudo`` for root (a root shell may have none), no
``ubuntu-drivers`` on Debian. Built from the host probe (labcheck.probes.host).

One way to get this host's Shell: :func:`this_host`. The checks' ``fix_shell`` fixture returns it, and the probes
whose facts carry their own fix commands (CDI, the kind config's folders, the MPS daemon) call it, so a check's
fix and a probe's fix can never word "as root or with sudo" differently. Verdicts stay pure: they take the Shell
as an argument (tests pass ``Shell(root=True)`` and ``Shell(root=False)``).
"""

from __future__ import annotations

import functools
import os
import shlex
from dataclasses import dataclass

from labcheck import fsio
from labcheck.probes.host import PACKAGE_TOOLS, HostFacts, probe_host

UBUNTU = "ubuntu"
DEBIAN = "debian"
OTHER = "other"

# Which package manager a distribution's os-release ID (or ID_LIKE) names. WHY from os-release first: a tool on
# PATH can be a stray (apt-get on a Fedora for cross-building); the tools found only decide among the candidates
# (yum where an old RHEL has no dnf) or where os-release names nothing known.
DISTRO_TOOLS = {
    "debian": ("apt-get",), "ubuntu": ("apt-get",),
    "fedora": ("dnf", "yum"), "rhel": ("dnf", "yum"), "centos": ("dnf", "yum"), "rocky": ("dnf", "yum"),
    "almalinux": ("dnf", "yum"), "ol": ("dnf", "yum"), "amzn": ("dnf", "yum"),
    "suse": ("zypper",), "opensuse": ("zypper",), "sles": ("zypper",), "opensuse-leap": ("zypper",),
    "opensuse-tumbleweed": ("zypper",),
    "alpine": ("apk",), "arch": ("pacman",), "manjaro": ("pacman",),
}
# How each installs (and reinstalls) packages without asking: "{}" is the package names, already quoted.
INSTALL_LINE = {"apt-get": "apt-get install -y {}", "dnf": "dnf install -y {}", "yum": "yum install -y {}",
                "zypper": "zypper --non-interactive install {}", "apk": "apk add {}",
                "pacman": "pacman -S --noconfirm {}"}
REINSTALL_LINE = {"apt-get": "apt-get install --reinstall -y {}", "dnf": "dnf reinstall -y {}",
                  "yum": "yum reinstall -y {}", "zypper": "zypper --non-interactive install --force {}",
                  "apk": "apk fix {}", "pacman": "pacman -S --noconfirm {}"}


@dataclass(frozen=True)
class Shell:
    """``root``: the user runs as root. ``distro``: os-release ID; ``like``: its ID_LIKE.

    The default (a sudo user on Ubuntu, the workshop's reference host) is what a verdict assumes
    when nobody told it better.
    """

    root: bool = False
    distro: str = UBUNTU
    like: tuple[str, ...] = ()
    tools: tuple[str, ...] | None = None  # the package managers on PATH (None: not probed, os-release decides)

    @classmethod
    def of(cls, host: HostFacts) -> Shell:
        return cls(host.is_root, host.os_id or OTHER, host.os_like, host.package_tools)

    @property
    def package_manager(self) -> str:
        """The package manager the fixes install with ("apt-get", "dnf", ...), "" when none is known here: the
        first one os-release's ID, then ID_LIKE, names that is on PATH (any of them when PATH was not probed),
        else the first found on PATH."""
        for name in (self.distro, *self.like):
            for tool in DISTRO_TOOLS.get(name, ()):
                if self.tools is None or tool in self.tools:
                    return tool
        return next((t for t in PACKAGE_TOOLS if t in (self.tools or ())), "")

    def install(self, packages: dict[str, str], what: str, reinstall: bool = False) -> str:
        """Install ``packages[<this host's package manager>]`` (one or more package names) as root, without
        asking; where the manager, or its package for ``what``, is not known, say plainly which package it is
        (a note: a comment, never a guessed command)."""
        tool = self.package_manager
        names = _package_words(packages, tool)
        if tool and names:
            return self.sudo((REINSTALL_LINE if reinstall else INSTALL_LINE)[tool].format(names))
        known = ", ".join(f"{name} ({t})" for t, name in packages.items())
        seen = f"with {tool}" if tool else "with this host's package manager"
        return with_note("", f"{'reinstall' if reinstall else 'install'} {what} {seen}; its package is {known}")

    @property
    def family(self) -> str:
        """ubuntu (and derivatives), debian, or other: the choice of package commands."""
        if self.distro == UBUNTU or UBUNTU in self.like:
            return UBUNTU
        if self.distro == DEBIAN or DEBIAN in self.like:
            return DEBIAN
        return OTHER

    def sudo(self, *commands: str) -> str:
        """Each command as root: prefixed with ``sudo`` unless the user is root; joined with ``&&``."""
        return " && ".join(c if self.root else f"sudo {c}" for c in commands)

    def user_folder(self, path: str) -> str:
        """Make the folder ``path`` when it is missing, owned by whoever pastes the line (``$(id -un)`` expands in
        their own shell, before sudo); a folder already there is left exactly as it is, and used when they can
        write in it, else the line stops (false) and says why. Missing parents are made too (root's).

        WHY a new folder is theirs: a daemon run as that user (MPS) creates its pipes and logs there, and cannot in a
        folder ``sudo mkdir`` made root's. WHY nothing existing is changed: ``install -d -o`` also re-owns and
        re-modes a folder that exists (``chmod 700`` undone to 755, given to another user), and the folder is
        whatever the lab config names, possibly shared or someone else's. ``[ -w ]``/``[ -x ]`` are asked as the
        user, who runs the daemon. Each path is one quoted word, also in the messages (printf ``%s``); ``--``: a
        relative hostPath of a kind config may start with '-'."""
        p = shlex.quote(path)
        make = self.sudo(f'install -d -o "$(id -un)" -- {p}')
        return (f"if [ -d {p} ]; then [ -w {p} ] && [ -x {p} ] || {{ printf '%s %s\\n' {p} {_NOT_WRITABLE} >&2; "
                f"false; }}; elif [ -e {p} ] || [ -L {p} ]; then printf '%s %s\\n' {p} {_NOT_A_FOLDER} >&2; false; "
                f"else {make}; fi")

    def move_aside(self, path: str, to: str = "") -> str:
        """Move ``path`` out of the way, to ``to`` or a backup name that no file has (fsio.backup_name).

        WHY not ``mv X X.bak``: an ``X.bak`` already there (the user's, or an earlier fix's) would be overwritten.
        ``-n`` keeps one made between the check and the paste; ``--``: a path may start with '-'."""
        return self.sudo(f"mv -n -- {shlex.quote(path)} {shlex.quote(to or fsio.backup_name(path))}")


# What Shell.user_folder prints after the path when it leaves an existing one alone (each one quoted word there).
NOT_WRITABLE = ("is a folder you cannot write in: left as it is (the suite never changes the owner or mode of a "
                "folder it did not make); name a folder of your own in the lab config")
NOT_A_FOLDER = "exists and is not a folder: left as it is; move it aside or name another folder in the lab config"
_NOT_WRITABLE, _NOT_A_FOLDER = shlex.quote(NOT_WRITABLE), shlex.quote(NOT_A_FOLDER)


def _package_words(packages: dict[str, str], tool: str) -> str:
    """The package names ``tool`` installs, quoted ("" for none): yum takes dnf's (the same repositories)."""
    names = packages.get(tool) or (packages.get("dnf", "") if tool == "yum" else "")
    return " ".join(shlex.quote(n) for n in names.split())


def install_with_any(packages: dict[str, str], what: str) -> str:
    """Shell text (to run as root) that installs ``packages[<manager>]`` with the first package manager it finds
    where it runs, else fails saying which package it is. WHY: for a host whose distribution nobody could ask
    (another machine, whose Python is missing), the manager is chosen there, when it runs, in :data:`PACKAGE_TOOLS`
    order; one ``sh -c`` word, so ``sudo`` or ``ssh`` can run it whole."""
    branches = [f"command -v {tool} >/dev/null 2>&1; then {INSTALL_LINE[tool].format(_package_words(packages, tool))}"
                for tool in PACKAGE_TOOLS if _package_words(packages, tool)]
    # the message in double quotes, so that the line stays readable once ssh quotes it again; nothing in it expands
    known = "".join(c for c in ", ".join(f"{name} ({t})" for t, name in packages.items()) if c not in '"$`\\!')
    chain = "if " + "; elif ".join(branches) + f'; else echo "install {what}: {known}" >&2; false; fi'
    return f"sh -c {shlex.quote(chain)}"


DEFAULT = Shell()

# sudo's default secure_path (Debian, Ubuntu): a tool there is found by name, with or without sudo
SECURE_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def program(found: str | None, name: str) -> str:
    """How a pasted command names the program ``name`` that a probe found at ``found`` (None: not found); the
    caller shell-quotes it as one word.

    WHY one way: a tool found only in extra_bin_dirs (/usr/local/nvidia/bin) is not on sudo's PATH nor,
    often, the user's; a fix that said its bare name printed "command not found" while another fix of the
    same run used the path. By name where sudo's secure_path finds it (NVIDIA's documented line, word for
    word), by path otherwise.
    """
    if not found:
        return name
    return os.path.basename(found) if os.path.dirname(found) in SECURE_PATH else found


def note_text(text: str) -> str:
    """``text`` (a configured value, a path, a tool's words, a whole fix) as it may stand after ``#``: every
    character that is not printable shown as its escape (``\\n``, ``\\r``, ``\\x1b``, ``\\u2028``), the rest as
    it is (spaces, quotes, ``$(...)`` and accented letters are harmless in a comment).

    WHY: a remediation is pasted into a shell, and only a newline ends a comment there, but a terminal turns more
    than ``\\n`` into "run this line" (``\\r``; Ctrl-O in readline) or into escape sequences that end a bracketed
    paste; a Unicode line separator or bidi control makes the printed line read otherwise than it runs. A value in
    lab.yaml can hold any of them (kind_config_path is any string; cluster_name is kept as written even when invalid).
    """
    # repr of one non-printable character is its escape in quotes: '\\n', '\\x1b', '\\u2028'
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def with_note(command: str, *notes: str) -> str:
    """A remediation: ``command`` (shell text; "" for none), then the non-empty ``notes`` after one ``#``.

    WHY: a remediation is pasted into a shell; what is not a command must be a comment, and one line of it: a
    newline in a note (a configured path can hold one) would end the comment and run the rest. So every note goes
    through :func:`note_text`: the ONE way to put a value (or another fix) after ``#``.
    """
    text = "; ".join(note_text(n.strip()) for n in notes if n and n.strip())
    if not text:
        return command
    return f"{command}   # {text}" if command else f"# {text}"


@functools.cache
def this_host() -> Shell:
    """The Shell of whoever runs the suite here, probed once per process.

    WHY once: the effective user and /etc/os-release do not change while the suite runs, so every caller gets the
    same answer (and the same object). Per process is what pytest-xdist needs: each worker probes the same host
    for itself; a concurrent first call from a prefetch thread at worst probes twice and gets an equal Shell.
    """
    return Shell.of(probe_host())
