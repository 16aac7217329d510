"""Read kernel settings (sysctl) from /proc/sys, the way ``sysctl NAME`` does, without running it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

PROC_SYS = "/proc/sys"
MAX_BYTES = 4096  # a sysctl value is a short line; anything longer is not one
_INTEGER = re.compile(r"-?[0-9]{1,18}")  # how the kernel writes an integer sysctl (some are -1)


def read(name: str, root: str = PROC_SYS) -> tuple[int | None, str]:
    """(integer value, "") or (None, why). ``name`` is dotted (fs.inotify.max_user_watches)."""
    path = os.path.join(root, *name.split("."))
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES)
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    text = raw.decode("ascii", errors="replace").strip()
    if _INTEGER.fullmatch(text):  # as the kernel prints it: int() would also take "1_000", "+5", " 5"
        return int(text), ""
    return None, f"{path} holds {text[:60]!r}, not an integer"


def read_all(names: Iterable[str], root: str = PROC_SYS) -> tuple[dict[str, int | None], dict[str, str]]:
    """({name: value or None}, {name: why unreadable})."""
    values, errors = {}, {}
    for n in names:
        values[n], err = read(n, root)
        if err:
            errors[n] = err
    return values, errors
