"""How a setup step gets root without ever waiting for a password."""

from __future__ import annotations

import os

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
