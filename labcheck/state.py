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
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path


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


def _key(cluster: str) -> str:
    # The cluster name may hold any character (spaces, quotes, ';'): never use it as a file name.
    return hashlib.sha256(cluster.encode()).hexdigest()[:16]


def record_path(directory: Path, cluster: str) -> Path:
    return directory / f"cluster-{_key(cluster)}.json"


def lock_path(directory: Path, cluster: str) -> Path:
    return directory / f"cluster-{_key(cluster)}.lock"


def read(directory: Path, cluster: str) -> ClusterRecord | None:
    try:
        data = json.loads(record_path(directory, cluster).read_text(encoding="utf-8"))
        rec = ClusterRecord(**data)
    except (OSError, ValueError, TypeError):
        return None
    return rec if rec.cluster == cluster else None


def write(directory: Path, rec: ClusterRecord) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rec = ClusterRecord(**{**asdict(rec), "pid": os.getpid(), "time": time.time()})
    write_json(record_path(directory, rec.cluster), asdict(rec))


def forget(directory: Path, cluster: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(directory, cluster).unlink()


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically: a reader (another worker, a later run) sees the old file or the new one,
    never half of one; a failed write leaves no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def backup_name(path: str | Path) -> str:
    """A name next to ``path`` for a copy of the user's file, never one that exists already.

    WHY never reuse: a second change in the same second must not overwrite the first backup, which may be the
    user's original. Matches ``<path>.labcheck-*.bak``.
    """
    stamp = time.strftime("%Y%m%d%H%M%S")
    for n in range(1000):
        cand = f"{path}.labcheck-{stamp}{f'-{n}' if n else ''}.bak"
        if not os.path.lexists(cand):
            return cand
    return f"{path}.labcheck-{stamp}-{os.getpid()}-{time.monotonic_ns()}.bak"


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def change_record_path(directory: Path, config_path: str) -> Path:
    return directory / f"kind-config-{_key(os.path.abspath(config_path))}.change.json"
