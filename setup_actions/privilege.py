"""How a setup step gets root without ever waiting for a password, and for whom it acts when run through sudo."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from labcheck import cmd


def privilege_prefix(timeout: float = 10.0, *, euid: int | None = None, sudo: str | None = "sudo") -> list[str] | None:
    """``[]`` as root, ``[sudo, "-n"]`` when sudo works without a password, None otherwise.

    WHY ``-n``: a step run from pytest has no terminal to type a password into; sudo must fail at once
    instead, so the check can say which command needs root. ``euid``/``sudo`` default to this process and the
    ``sudo`` on PATH (tests pass others).
    """
    if (os.geteuid() if euid is None else euid) == 0:
        return []
    if not sudo:
        return None
    return [sudo, "-n"] if cmd.run([sudo, "-n", "true"], timeout=timeout).ok else None


NO_ID = 2**32 - 1  # (uid_t)-1: chown's "leave unchanged", never a user's id


def sudo_invoker(environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """(uid, gid) of the user who ran ``sudo`` (SUDO_UID, SUDO_GID, which sudo sets), None when neither is set.

    Raises ValueError, saying what was found and what was expected, for values sudo never sets (one without the
    other, not a decimal number, out of range): an env value is input, never trusted to chown with.
    """
    raw = {name: environ.get(name) for name in ("SUDO_UID", "SUDO_GID")}
    if all(v is None for v in raw.values()):
        return None
    ids = []
    for name, value in raw.items():
        if value is None:
            raise ValueError(f"{name} is not set but {'SUDO_GID' if name == 'SUDO_UID' else 'SUDO_UID'} is: "
                             "sudo sets both; unset the other or run the suite through sudo again")
        if not re.fullmatch(r"[0-9]{1,10}", value) or int(value) >= NO_ID:
            raise ValueError(f"{name}={value!r} is not a user/group id (expected a decimal number below {NO_ID}, "
                             "as sudo sets it); unset it or run the suite through sudo again")
        ids.append(int(value))
    return ids[0], ids[1]
