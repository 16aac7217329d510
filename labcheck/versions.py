"""Numbers and version strings as tools print them ("v0.24.0", "24.0.7", "20.10.24+dfsg1", "580.159.04", a pid),
pre-releases included ("v0.31.0-alpha.12+0123abcd", "v3.17.0-rc.1", "28.0.0-rc.1").

A version is read from the start of its text only: the caller hands over the tool's own version field (the
engine's ``Version``, ``uname -r``, the ``kind v...`` word: labcheck.probes.tools.VERSION_FIELD), never a
sentence to search. WHY: the first number anywhere read Docker's dev build "master-dockerproject-2019-07-17"
as version 2019 (at least 24.0: the engine check passed); what has no version at its start is no version, and
each caller turns that into a failing check that shows the text found."""

from __future__ import annotations

import re

# At the start (an optional "v"), ASCII digits, and ending there: at the end or before a separator ("-", "+", "~",
# "_", a blank...), never inside a word ("24abc", "24٢", "1.2.3.dev0" are no versions, not 24 and 1.2.3).
_NUM = re.compile(r"v?([0-9]+(?:\.[0-9]+)*)(?![^\W_]|\.)")
_ASCII_INT = re.compile(r"[0-9]{1,18}")
# A pre-release, right after a version's numbers, as the tools this suite judges print one (their sources: kind's
# pkg/cmd/kind/version "0.31.0-alpha.12+0123456789abcd" (pre-release alpha.12, build 0123...); helm's release tags
# through its ldflags "v3.17.0-rc.1"; Docker "28.0.0-rc.1", "25.0.0-beta.1", "19.03.0-beta3", "17.06.0-ce-rc1";
# nvidia-ctk's Makefile LIB_VERSION-LIB_TAG "1.17.0-rc.1" (its packages "1.17.0~rc.1"); a kernel "6.9.0-rc3").
# WHY a marker word, not semver's "anything after -": what else follows the numbers is no pre-release, and
# semver would rank each below its release: a distribution's build ("20.10.24+dfsg1", "24.0.7-0ubuntu4"), Docker
# 17.x's edition ("17.06.0-ce" is the release), a kernel's ("6.8.0-45-generic", "5.15.153.1-microsoft-standard-WSL2",
# "-preempt"). The marker is a whole word: "rc1" and "rc.1" are, "preempt" and "development" are not.
_PRE = re.compile(r"[-~](?:(?:ce|ee)-)?((?:alpha|beta|rc|pre|preview|dev)(?![A-Za-z])[0-9A-Za-z.~-]*)",
                  re.ASCII | re.IGNORECASE)
_PRE_PART = re.compile(r"[0-9]+|[A-Za-z]+", re.ASCII)


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
    """The dotted number ``text`` starts with (an optional leading "v") as a tuple, or None when it does not start
    with one ("master-dockerproject-2019-07-17", "kind v0.24.0": the caller picks the tool's version field first)
    or a part is absurdly long. Only the numbers: "0.31.0-alpha" is (0, 31, 0); what ranks versions is
    :func:`at_least` and :func:`same`."""
    split = _split(text)
    return split[0] if split else None


def prerelease(text: str) -> str:
    """The pre-release of the version ``text`` starts with ("alpha.12" of "v0.31.0-alpha.12+0123abcd", "rc.1" of
    "28.0.0-rc.1"), "" for a release (and for no version)."""
    split = _split(text)
    return split[1] if split else ""


def _split(text: str) -> tuple[tuple[int, ...], str] | None:
    m = _NUM.match(text or "")
    if not m:
        return None
    parts = [ascii_int(p) for p in m.group(1).split(".")]
    if None in parts:
        return None
    pre = _PRE.match(text, m.end())
    return tuple(parts), pre.group(1) if pre else ""


def _rank(text: str, width: int) -> tuple | None:
    """What orders versions (semver's precedence): the numbers, padded with zeros to ``width`` parts, then a
    release above every pre-release of it; pre-releases of the same numbers by their parts in order, a number
    below a word ("rc.1" < "rc.2" < "rc.10"; alpha < beta < rc, as words sort)."""
    split = _split(text)
    if split is None:
        return None
    numbers, pre = split
    if not pre:
        return numbers + (0,) * (width - len(numbers)), (1,)
    parts = tuple((0, n, "") if (n := ascii_int(p)) is not None else (1, 0, p.lower())
                  for p in _PRE_PART.findall(pre))
    return numbers + (0,) * (width - len(numbers)), (0, parts)


def at_least(found: str, minimum: str) -> bool | None:
    """True/False when both parse; None when ``found`` (or ``minimum``) does not start with a version. A
    pre-release is below its release: "0.31.0-alpha" is not at least "0.31.0" (and is above "0.30.x")."""
    f, m = parse(found), parse(minimum)
    if f is None or m is None:
        return None
    width = max(len(f), len(m))
    return _rank(found, width) >= _rank(minimum, width)


def same(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name the same version: the same numbers and the same pre-release (or none; build
    metadata after "+" aside). "0.31.0-alpha" is not release 0.31.0."""
    sa, sb = _split(a), _split(b)
    if sa is None or sb is None:
        return sa == sb
    return sa[0] == sb[0] and _rank(a, len(sa[0])) == _rank(b, len(sb[0]))


def below_as_prerelease(found: str, minimum: str) -> str:
    """The words a "too old" message adds when ``found`` is too old only because it is a pre-release of a version
    that reaches ``minimum`` ("0.31.0-alpha" for 0.31.0): without them the numbers read as enough. "" otherwise."""
    numbers = parse(found)
    pre = prerelease(found)
    if not pre or numbers is None or not at_least(show(numbers), minimum):
        return ""
    return f" (a pre-release, {pre}, of {show(numbers)}: a pre-release ranks below its release)"


def show(version: tuple[int, ...] | None) -> str:
    return ".".join(str(p) for p in version) if version else "unknown"
