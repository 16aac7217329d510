"""What the suite created, recorded on disk: the proof of ownership behind ``--teardown``.

WHY a state file and not a label: kind creates the node container itself and has no option for
extra Docker labels, so ownership is "a state file written by us, naming the node container ID we
saw right after creating it". A cluster someone else created (or re-created under the same name)
has no matching record and is never deleted. ``phase: creating`` left behind by an interrupted run
tells the next run that a half-made cluster is its own to repair.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from labcheck import fsio
from labcheck.fsio import backup_name  # noqa: F401  (where the setup steps have always imported it from)


@dataclass(frozen=True)
class ClusterRecord:
    cluster: str
    phase: str  # "creating" | "created"
    node_id: str = ""
    config: str = ""
    image: str = ""
    pid: int = 0
    time: float = 0.0
    run_id: str = ""  # the pytest run (shared by its xdist workers) that wrote it


def state_dir(configured: str) -> Path:
    return Path(os.path.expanduser(configured))


def temp_dir() -> Path:
    """The suite's own folder under /tmp for this user (/tmp/dra-labcheck-UID; under $TMPDIR when set): what must
    not outlive a reboot (the MPS daemon's record) and locks of steps on the whole machine (the Docker runtime, the
    CDI spec). WHY a folder of its own and not /tmp itself: anyone may create a file of any name in /tmp first.

    Only the path: take a lock in it with ``lock.held(temp_dir(), name, timeout, private=True)`` before anything
    else there. That makes it 0700, or refuses it (another user may have made it first, also for root) with the
    fix: labcheck.lock.private_folder."""
    return Path(tempfile.gettempdir()) / f"dra-labcheck-{os.getuid()}"


def _key(cluster: str) -> str:
    # The cluster name may hold any character (spaces, quotes, ';'): never use it as a file name.
    return hashlib.sha256(cluster.encode()).hexdigest()[:16]


def record_path(directory: Path, cluster: str) -> Path:
    return directory / f"cluster-{_key(cluster)}.json"


def lock_path(directory: Path, cluster: str) -> Path:
    return directory / f"cluster-{_key(cluster)}.lock"


def read(directory: Path, cluster: str) -> ClusterRecord | None:
    """The record of ``cluster``, or None when there is none the suite can trust (absent, a link or not a regular
    file, unreadable, not valid JSON, not a record of this cluster): no record means no proof of ownership, so
    nothing is deleted."""
    data = read_json(record_path(directory, cluster))
    if data is None or not _record_shaped(data):
        return None
    rec = ClusterRecord(**data)
    return rec if rec.cluster == cluster else None


_FIELD_TYPES = {"str": (str,), "int": (int,), "float": (int, float)}  # ClusterRecord's annotations, as text


def _record_shaped(data: dict) -> bool:
    """Only ClusterRecord's keys, cluster and phase among them, each of its field's JSON type ("pid": "12" or
    "node_id": [] is a file the suite did not write)."""
    types = {f.name: _FIELD_TYPES[str(f.type)] for f in fields(ClusterRecord)}
    return ({"cluster", "phase"} <= data.keys() <= types.keys()
            and all(isinstance(v, types[k]) and not isinstance(v, bool) for k, v in data.items()))


def write(directory: Path, rec: ClusterRecord) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rec = ClusterRecord(**{**asdict(rec), "pid": os.getpid(), "time": time.time()})
    write_json(record_path(directory, rec.cluster), asdict(rec))


def forget(directory: Path, cluster: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(directory, cluster).unlink()


def write_json(path: Path, data: dict) -> None:
    """The one atomic JSON writer for the suite's state (cluster and MPS daemon records): labcheck.fsio's, never
    through a symlink. WHY: the MPS record lives in /tmp; a link planted there would have had root's write
    replace the file it points at. Raises fsio.FileProblem for a link, FIFO, device or folder at ``path``."""
    fsio.write_json(path, data, follow_symlinks=False)


def read_json(path: Path) -> dict | None:
    """The JSON object of a state record, or None (absent, not a regular file, a link, too big, not JSON). Through
    the one strict reader, :func:`labcheck.fsio.read_json`: a file nested ``[[[[...`` thousands deep is None too,
    never a RecursionError in the fixture or teardown that reads it."""
    try:
        data = fsio.read_json(path, follow_symlinks=False)
    except (OSError, fsio.FileProblem):
        return None
    return data if isinstance(data, dict) else None


def change_record_path(directory: Path, config_path: str) -> Path:
    return directory / f"kind-config-{_key(os.path.abspath(config_path))}.change.json"
