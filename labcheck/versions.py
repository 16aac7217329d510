"""Version strings as tools print them ("v0.24.0", "24.0.7", "20.10.24+dfsg1", "580.159.04")."""

from __future__ import annotations

import re

_NUM = re.compile(r"v?(\d+(?:\.\d+)*)")


def parse(text: str) -> tuple[int, ...] | None:
    """The first dotted number in ``text`` as a tuple, or None if there is none."""
    m = _NUM.search(text or "")
    if not m:
        return None
    return tuple(int(p) for p in m.group(1).split("."))


def at_least(found: str, minimum: str) -> bool | None:
    """True/False when both parse; None when ``found`` has no version in it."""
    f, m = parse(found), parse(minimum)
    if f is None or m is None:
        return None
    width = max(len(f), len(m))
    return f + (0,) * (width - len(f)) >= m + (0,) * (width - len(m))


def show(version: tuple[int, ...] | None) -> str:
    return ".".join(str(p) for p in version) if version else "unknown"
