"""Ship the suite to a fleet host: one archive, sent only when the host's copy differs.

WHY not execnet's RSync (used before, once per shipped folder, and by pytest-xdist 3 for pytest itself): it walks
and describes every file to every host on every run, from the controller's one interpreter. Measured on the build
VM with yappi, that was about 100 ms of controller CPU per host per run (8 RSyncs of ~300 files), the largest
per-host cost of a fleet run: with 30 hosts, seconds that one process cannot spread over CPUs. Here the controller
builds the archive and its manifest once per run; each host computes the manifest of its own copy (its own CPU)
and compares digests; only a host whose copy differs (first run, an edited suite, a file added or removed there)
receives the archive, and its shipped folders are then replaced whole, so no stale file survives (what RSync's
``delete`` did).

The manifest lists every shipped regular file with its size, modification time (whole seconds) and permission
bits, in path order; ``__pycache__`` folders, byte code and dot-names are neither shipped nor listed. Byte code
lives in the host's ``.pycache`` folder (``sys.pycache_prefix``), kept between runs: an archive extracted again
restores the same modification times, so it stays valid.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import execnet

from labcheck.inventory import WORKER_PIDFILE

PYCACHE = ".pycache"  # in the host's work folder, kept between runs
LAB_CONFIG_NAME = "lab.yaml"  # the worker reads lab.yaml from its folder (labcheck.plugin.config_path)
# What a host needs of this checkout to run the checks (shipped into the host's work folder).
SHIPPED = ("conftest.py", "pyproject.toml", "labcheck", "fixtures", "reports", "setup_actions", "tests_env")
# Everything a fleet run leaves in a host's work folder, now or in earlier versions: the suite, pytest itself as
# pytest-xdist 3 rsynced it, the lab config (and its temporary name while written), the worker's pid file, byte code.
FLEET_ENTRIES = (*SHIPPED, "pytest", "_pytest", "py", "py.py", "pluggy", LAB_CONFIG_NAME, f"{LAB_CONFIG_NAME}.tmp",
                 WORKER_PIDFILE, PYCACHE, "__pycache__")


@dataclass(frozen=True)
class Bundle:
    """What every host of this run gets: the top-level names it owns in the host's folder, the archive."""

    names: tuple[str, ...]
    digest: str
    data: bytes


def _skipped(name: str) -> bool:
    return name == "__pycache__" or name.endswith((".pyc", ".pyo", "~")) or name.startswith(".")


def walk(top: str) -> list[tuple[str, os.stat_result]]:
    """(path, lstat) of every regular file under ``top`` (a file or a folder; paths start with ``top``).

    The host runs this very function (its source goes in HOST_FUNCTIONS): both sides list the same files."""
    st = os.lstat(top)
    if stat.S_ISREG(st.st_mode):
        return [(top, st)]
    found = []
    for here, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not _skipped(d)]
        for name in files:
            if not _skipped(name):
                path = os.path.join(here, name)
                fst = os.lstat(path)
                if stat.S_ISREG(fst.st_mode):
                    found.append((path, fst))
    return found


def _mode(st: os.stat_result) -> int:
    """The permission bits shipped and compared: rwx for the owner, r-x for others (tarfile's "data" filter,
    which the host applies when its Python has it, clears group/other write bits anyway)."""
    return stat.S_IMODE(st.st_mode) & 0o755


def manifest(entries: Iterable[tuple[str, os.stat_result]]) -> str:
    return "".join(f"{path}\t{st.st_size}\t{int(st.st_mtime)}\t{_mode(st):o}\n" for path, st in sorted(entries))


def bundle(sources: Sequence[tuple[str, Path]]) -> Bundle:
    """The archive of ``sources`` (top-level name in the host's folder, local path), with its manifest's digest.

    Each source is stored under its top-level name, as the host walks it from its work folder."""
    files = []  # (name in the archive and on the host, local path, lstat)
    for name, src in sources:
        root = str(src)
        files += [(name + path[len(root):], path, st) for path, st in walk(root)]
    files.sort()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for arc, path, st in files:
            info = tarfile.TarInfo(arc)
            info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), _mode(st)
            with open(path, "rb") as f:
                tar.addfile(info, f)
    text = manifest((arc, st) for arc, _path, st in files)
    return Bundle(tuple(sorted(name for name, _src in sources)), hashlib.sha256(text.encode()).hexdigest(),
                  buf.getvalue())


# Runs on the host (any Python >= 3.10) in the gateway's interpreter, in the host's work folder: the xdist worker
# later runs in the same interpreter, which is why sys.pycache_prefix is set there. HOST_FUNCTIONS alone (no
# channel) is what tests execute locally.
HOST_FUNCTIONS = "\n".join([
    "from __future__ import annotations",  # the shared functions' annotations name types the host does not import
    "import hashlib, io, os, shutil, stat, sys, tarfile",
    *(inspect.getsource(f) for f in (_skipped, walk, _mode, manifest)),
]) + r'''
def digest_of(names):
    entries = []
    for top in names:
        if not os.path.lexists(top):
            return None
        entries += walk(top)
    return hashlib.sha256(manifest(entries).encode()).hexdigest()

def remove(name):
    if os.path.isdir(name) and not os.path.islink(name):
        shutil.rmtree(name)
    elif os.path.lexists(name):
        os.unlink(name)

def safe(member):
    parts = member.name.split("/")
    return (member.isfile() or member.isdir()) and not member.name.startswith("/") and ".." not in parts

def unpack(data, names):
    for name in names:
        remove(name)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if safe(m)]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(members=members, filter="data")
        else:
            tar.extractall(members=members)
'''

_RECEIVE = HOST_FUNCTIONS + f"\nPYCACHE = {PYCACHE!r}\n" + r'''
sys.pycache_prefix = os.path.abspath(PYCACHE)
digest, names = channel.receive()
same = digest_of(names) == digest
channel.send(same)
if not same:
    unpack(channel.receive(), names)
name, data, pidfile = channel.receive()
os.path.exists(pidfile) and os.remove(pidfile)  # a stale one must not name another process
if data is None:
    os.path.exists(name) and os.remove(name)
else:
    with open(name + ".tmp", "wb") as f:  # the controller's bytes as they are: the host's check judges them
        f.write(data)
    os.replace(name + ".tmp", name)
channel.send("sent" if not same else "up to date")
'''


def ship(gateway: execnet.Gateway, what: Bundle, lab_config: bytes | None, pidfile: str,
         timeout: float = 120.0) -> str:
    """Bring the host's copy up to date with ``what`` and write its lab config (the controller's file's bytes,
    read once: :func:`labcheck.fleet_plugin.lab_config_bytes`): "sent" or "up to date"."""
    ch = gateway.remote_exec(_RECEIVE)
    ch.send((what.digest, list(what.names)))
    if not ch.receive(timeout):
        ch.send(what.data)
    ch.send((LAB_CONFIG_NAME, lab_config, pidfile))
    result = ch.receive(timeout)
    ch.waitclose(timeout)
    return result
