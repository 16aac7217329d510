"""Numbers and version strings as tools print them ("v0.24.0", "24.0.7", "20.10.24+dfsg1", "580.159.04", a pid)."""

from __future__ import annotations

import re

_NUM = re.compile(r"v?([0-9]+(?:\.[0-9]+)*)")
_ASCII_INT = re.compile(r"[0-9]{1,18}")


def ascii_int(text: str, signed: bool = False) -> int | None:
    """``text`` as a number when it is 1 to 18 ASCII digits and nothing else (no blank; a leading ``-`` only when
    ``signed``, for what a tool prints as negative: a CUresult, a sysctl such as -1); None otherwise.

    WHY the one way to read a number that comes from outside (tool output, files, labels, the inventory, the
    environment): ``str.isdigit()`` is True for "²" (``int`` then raises: a crash) and ``int`` reads "١٢"
    (Arabic-Indic digits) as 12 (a wrong reading); ``int`` of more than 4300 digits raises too
    (``sys.get_int_max_str_digits``). 18 digits is more than any pid, port, GPU index or size in KiB a tool
    prints, and stays below 2**63, so nothing it is handed to (``os.kill``, a C call) can overflow.
    """
    if signed and text.startswith("-"):
        magnitude = ascii_int(text[1:])
        return None if magnitude is None else -magnitude
    return int(text) if _ASCII_INT.fullmatch(text) else None


def parse(text: str) -> tuple[int, ...] | None:
    """The first dotted number in ``text`` as a tuple, or None if there is none (or a part of it is absurdly long)."""
    m = _NUM.search(text or "")
    if not m:
        return None
    parts = [ascii_int(p) for p in m.group(1).split(".")]
    return None if None in parts else tuple(parts)


def at_least(found: str, minimum: str) -> bool | None:
    """True/False when both parse; None when ``found`` has no version in it."""
    f, m = parse(found), parse(minimum)
    if f is None or m is None:
        return None
    width = max(len(f), len(m))
    return f + (0,) * (width - len(f)) >= m + (0,) * (width - len(m))


def show(version: tuple[int, ...] | None) -> str:
    return ".".join(str(p) for p in version) if version else "unknown"
