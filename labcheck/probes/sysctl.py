"""Read kernel settings (sysctl) from /proc/sys, the way ``sysctl NAME`` does, without running it."""

from __future__ import annotations

import os
from collections.abc import Iterable

from labcheck import fsio, versions

PROC_SYS = "/proc/sys"
MAX_BYTES = 4096  # a sysctl value is a short line; anything longer is not one


def read(name: str, root: str = PROC_SYS) -> tuple[int | None, str]:
    """(integer value, "") or (None, why). ``name`` is dotted (fs.inotify.max_user_watches)."""
    path = os.path.join(root, *name.split("."))
    try:  # bounded, regular files only: /proc/sys's are; a FIFO under a configured root must not hang the run
        raw = fsio.read_bytes(path, MAX_BYTES)
    except fsio.FileProblem as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    text = raw.decode("ascii", errors="replace").strip()
    value = versions.ascii_int(text, signed=True)  # as the kernel writes it (some are -1): int() took "1_000", "+5"
    return (value, "") if value is not None else (None, f"{path} holds {fsio.shown(text, 60)}, not an integer")


def read_all(names: Iterable[str], root: str = PROC_SYS) -> tuple[dict[str, int | None], dict[str, str]]:
    """({name: value or None}, {name: why unreadable})."""
    values, errors = {}, {}
    for n in names:
        values[n], err = read(n, root)
        if err:
            errors[n] = err
    return values, errors
