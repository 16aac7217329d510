"""What the Kind node's containerd says about CDI: a reader of ``containerd config dump`` and of the kind config's
``containerdConfigPatches`` (both TOML).

WHY CDI: NVIDIA's DRA driver hands the kubelet CDI device names (its kubelet plugin writes one spec per claim into
the node's /var/run/cdi), which containerd resolves only with CDI on: "Having CDI enabled is a prerequisite for
DRA" (the driver's maintainers, issue #426; unresolvable CDI devices otherwise, #736).

What containerd does (read from its sources, 2026-12):
- containerd 1.7: the CRI plugin ``io.containerd.grpc.v1.cri`` has ``enable_cdi`` (default false) and
  ``cdi_spec_dirs`` (default /etc/cdi, /var/run/cdi): pkg/cri/config/config.go and config_unix.go. Its
  ``config dump`` always prints ``version = 2`` (cmd/containerd/command/config.go), with go-toml v1's "basic"
  strings. kindest/node images of kind v0.26 and earlier run containerd 1.7 (v0.26.0: 1.7.24).
- containerd 2.x: the settings moved to ``io.containerd.cri.v1.runtime``, ``enable_cdi`` defaults to true
  (internal/cri/config/config_unix.go). Its ``config dump`` migrates a version-2 file (the CRI plugin's keys move
  to the new table: plugins/cri/runtime/plugin.go) and prints ``version = 3`` with go-toml v2's 'literal' strings
  and indented tables. kind v0.27 and later ship 2.x (v0.30.0: 2.1.4).
- kind merges each containerdConfigPatches entry into the node's /etc/containerd/config.toml, which states
  ``version = 2`` on every kindest/node image (kind images/base/files/etc/containerd/config.toml), and skips a
  patch that states another version (pkg/internal/patch/toml.go).

WHY a reader of our own: Python 3.10 has no tomllib, and a few keys are all that is needed. It reads what
containerd's encoders print and what people write in patches: tables, dotted and quoted keys, booleans, integers,
strings of the four kinds, arrays (over several lines too), comments. A value it has no use for (a float, a date,
an inline table) is kept as text; anything it cannot read is a problem with its line, never a guess.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from labcheck import fsio

REQUIRED_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")  # the host's specs (read-only) and the DRA driver's per-claim ones
DEFAULT_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")  # both containerd 1.7 and 2.x (config_unix.go)
SAME_DIR = {"/run/cdi": "/var/run/cdi"}  # /var/run is a link to /run in kindest/node (Debian): one folder
NODE_CONFIG_VERSION = 2  # the version of kindest/node's /etc/containerd/config.toml, the one kind patches
MAX_DEPTH = 32  # nested arrays: containerd prints none deeper than 2; deeper is not a config dump


@dataclass(frozen=True)
class Layout:
    """Where one containerd config version keeps the CRI plugin's CDI settings, and their default."""

    version: int
    containerd: str
    table: tuple[str, ...]
    shown: str  # the table's header as that containerd's ``config dump`` prints it
    enabled_default: bool


LAYOUTS = {
    2: Layout(2, "containerd 1.x", ("plugins", "io.containerd.grpc.v1.cri"), '[plugins."io.containerd.grpc.v1.cri"]',
              False),
    3: Layout(3, "containerd 2.x", ("plugins", "io.containerd.cri.v1.runtime"),
              "[plugins.'io.containerd.cri.v1.runtime']", True),
}


class TomlProblem(Exception):
    """Text this reader cannot take as TOML: ``line`` (1-based) and what was expected and found there."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Other:
    """A value kept as its text (a float, a date, an inline table): never one a check decides on."""

    text: str


@dataclass(frozen=True)
class Entry:
    value: object  # bool | int | str | list | Other
    line: int


def shown(value: object) -> str:
    """A key or setting of a containerd config for a message: as the TOML wrote it when printable, else escaped;
    bounded (:func:`labcheck.fsio.shown` with ``bare=True``, the one helper for values in messages)."""
    return fsio.shown(value, 120, bare=True)


_BARE = re.compile(r"[A-Za-z0-9_-]+")
_INT = re.compile(r"[+-]?(0|[1-9](_?[0-9])*)")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b", '"': '"', "\\": "\\"}
_SPACES = re.compile(r"[ \t]*")
_BASIC = re.compile(r'"((?:[^"\\\n]|\\[^\n])*)"')  # a "basic" string on one line, its escapes still in it
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
_TOKEN = re.compile(r"[^ \t\r\n,\]}#]*")  # a bare value: true, 42, 1.5, 1979-05-27T07:32:00Z
# in a """string""": an escape, or a line-ending backslash, which joins the lines (no group)
_MULTI_ESCAPE = re.compile(r"\\(?:[ \t]*\r?\n[ \t\r\n]*|(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[^\n]))")


class _Reader:
    """One pass over the text, by character position; lines are found by bisecting the newline positions."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, at: int | None = None) -> int:
        return bisect.bisect_right(self.starts, self.i if at is None else at)

    def fail(self, message: str, at: int | None = None) -> TomlProblem:
        return TomlProblem(self.line(at), message)

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def found(self) -> str:
        if self.i >= len(self.s):
            return "the end of the text"
        end = self.s.find("\n", self.i)
        rest = self.s[self.i:end if end >= 0 else len(self.s)]  # the whole rest of the line: shown says its length
        return fsio.shown(rest, 40, bare=True) if rest else "the end of the line"

    def spaces(self) -> None:
        self.i = _SPACES.match(self.s, self.i).end()

    def comment(self) -> None:
        if self.peek() == "#":
            end = self.s.find("\n", self.i)
            self.i = len(self.s) if end < 0 else end

    def end_of_line(self) -> None:
        """After a key's value or a table header: only spaces and a comment may follow on the line."""
        self.spaces()
        self.comment()
        if self.peek(2) == "\r\n":
            self.i += 2
        elif self.peek() == "\n":
            self.i += 1
        elif self.i < len(self.s):
            raise self.fail(f"expected the end of the line, found {self.found()}")

    def blank(self) -> None:
        """Spaces, newlines and comments (between the items of an array)."""
        while self.i < len(self.s):
            self.spaces()
            self.comment()
            if self.peek() in ("\n", "\r"):
                self.i += 1
            else:
                return

    def key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self.spaces()
            c = self.peek()
            if c == '"':
                parts.append(self.basic_string())
            elif c == "'":
                parts.append(self.literal_string())
            else:
                m = _BARE.match(self.s, self.i)
                if not m:
                    raise self.fail(f"expected a key, found {self.found()}")
                parts.append(m.group())
                self.i = m.end()
            self.spaces()
            if self.peek() != ".":
                return tuple(parts)
            self.i += 1

    def basic_string(self) -> str:
        m = _BASIC.match(self.s, self.i)
        if not m:
            raise self.fail('a "string" is not closed on its line')
        start, self.i = self.i, m.end()
        return _ESCAPE.sub(lambda e: self.unescape(e.group(1), start), m.group(1))

    def unescape(self, code: str, at: int) -> str:
        """One escape (the text after its backslash) as TOML reads it."""
        if code in _ESCAPES:
            return _ESCAPES[code]
        if code[0] in ("u", "U") and len(code) > 1:
            point = int(code[1:], 16)
            if point < 0xD800 or 0xDFFF < point <= 0x10FFFF:
                return chr(point)
        raise self.fail(f"unknown escape \\{fsio.shown(code[:1], bare=True)} in a string", at)

    def literal_string(self) -> str:
        start = self.i
        end = self.s.find("'", self.i + 1)
        newline = self.s.find("\n", self.i + 1)
        if end < 0 or 0 <= newline < end:
            raise self.fail("a 'string' is not closed on its line", start)
        self.i = end + 1
        return self.s[start + 1:end]

    def multiline(self, quote: str) -> str:
        start, self.i = self.i, self.i + 3
        end = self.s.find(quote * 3, self.i)
        if end < 0:
            raise self.fail(f"a {quote * 3} string is never closed", start)
        while self.s[end + 3:end + 4] == quote:  # up to two quotes may end the text itself
            end += 1
        raw, self.i = self.s[self.i:end], end + 3
        raw = raw[1:] if raw.startswith("\n") else raw[2:] if raw.startswith("\r\n") else raw
        if quote == "'":
            return raw
        return _MULTI_ESCAPE.sub(lambda e: "" if e.group(1) is None else self.unescape(e.group(1), start), raw)

    def value(self, depth: int = 0):
        c = self.peek()
        if self.peek(3) in ('"""', "'''"):
            return self.multiline(c)
        if c == '"':
            return self.basic_string()
        if c == "'":
            return self.literal_string()
        if c == "[":
            return self.array(depth + 1)
        if c == "{":
            return self.inline_table()
        m = _TOKEN.match(self.s, self.i)
        token, self.i = m.group(), m.end()
        if not token:
            raise self.fail(f"expected a value, found {self.found()}")
        if token in ("true", "false"):
            return token == "true"
        return int(token.replace("_", "")) if _INT.fullmatch(token) and len(token) <= 40 else Other(token)

    def array(self, depth: int) -> list:
        if depth > MAX_DEPTH:
            raise self.fail(f"arrays nested more than {MAX_DEPTH} deep")
        start, self.i = self.i, self.i + 1
        items = []
        while True:
            self.blank()
            if self.peek() == "]":
                self.i += 1
                return items
            if not self.peek():
                raise self.fail("an array is never closed", start)
            items.append(self.value(depth))
            self.blank()
            if not self.peek():
                raise self.fail("an array is never closed", start)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "]":
                raise self.fail(f"expected ',' or ']' in an array, found {self.found()}")

    def inline_table(self) -> Other:
        """Kept as text: ``{...}`` on one line, strings inside it skipped whole."""
        start, self.i, depth = self.i, self.i + 1, 1
        while depth:
            c = self.peek()
            if c in ("", "\n"):
                raise self.fail("an inline table {...} is not closed on its line", start)
            if c == '"':
                self.basic_string()
                continue
            if c == "'":
                self.literal_string()
                continue
            depth += {"{": 1, "}": -1}.get(c, 0)
            self.i += 1
        return Other(self.s[start:self.i])


@dataclass(frozen=True)
class Toml:
    """Every key by its full path (table, then key) => its value and line; every table header => its line."""

    entries: dict[tuple[str, ...], Entry]
    tables: dict[tuple[str, ...], int]

    def get(self, *path: str) -> Entry | None:
        return self.entries.get(path)

    def table(self, path: tuple[str, ...]) -> dict[str, Entry] | None:
        """The keys set directly in table ``path`` (None when neither a header nor a key names it)."""
        keys = {k[-1]: e for k, e in self.entries.items() if k[:-1] == path}
        named = path in self.tables or any(k[:len(path)] == path for k in (*self.entries, *self.tables))
        return keys if keys or named else None


def read_toml(text: str) -> Toml:
    """Read ``text`` (raises TomlProblem). An array of tables (``[[x]]``) gets its index as one more path part; a
    key set twice is a problem, as in TOML (containerd and kind refuse such a file)."""
    r = _Reader(text)
    out: dict[tuple[str, ...], Entry] = {}
    tables: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    while r.i < len(text):
        r.blank()
        if r.i >= len(text):
            break
        line = r.line()
        if r.peek() == "[":
            many = r.peek(2) == "[["
            close = "]]" if many else "]"
            r.i += len(close)
            path = r.key()
            if r.peek(len(close)) != close:
                raise r.fail(f"expected {close} to close the table header, found {r.found()}")
            r.i += len(close)
            if many:
                counts[path] = counts.get(path, -1) + 1
                path = (*path, f"[{counts[path]}]")
            table = path
            tables.setdefault(path, line)
        else:
            key = (*table, *r.key())
            if r.peek() != "=":
                written = ".".join(shown(k) for k in key[len(table):])
                raise r.fail(f"expected '=' after the key {written}, found {r.found()}")
            r.i += 1
            r.spaces()
            value = r.value()
            if key in out:
                written = ".".join(shown(k) for k in key)
                raise TomlProblem(line, f"{written} is set twice (also on line {out[key].line})")
            out[key] = Entry(value, line)
        r.end_of_line()
    return Toml(out, tables)


def _strings(value: object) -> tuple[str, ...] | None:
    return tuple(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _same(path: str) -> str:
    p = os.path.normpath(path) if path.startswith("/") else path
    return SAME_DIR.get(p, p)


def missing_dirs(dirs: Sequence[str]) -> tuple[str, ...]:
    """The REQUIRED_SPEC_DIRS that ``dirs`` lacks (/run/cdi counts as /var/run/cdi: one folder in the node)."""
    have = {_same(d) for d in dirs}
    return tuple(d for d in REQUIRED_SPEC_DIRS if _same(d) not in have)


@dataclass(frozen=True)
class CriCdi:
    """What ``containerd config dump`` says about CDI in the CRI plugin. ``problem`` set: it could not be read (the
    other fields are then not known)."""

    version: int | None = None
    enabled: bool | None = None
    spec_dirs: tuple[str, ...] = ()
    layout: Layout | None = None
    defaulted: tuple[str, ...] = ()  # keys the dump does not print: containerd's default for its version applies
    problem: str = ""
    enabled_line: int | None = None

    @property
    def missing_dirs(self) -> tuple[str, ...]:
        return missing_dirs(self.spec_dirs)

    @property
    def where(self) -> str:
        """``enable_cdi = X in [table], containerd N.x's config version V``, for a message."""
        if self.layout is None:
            return "unknown"
        how = " (not in the dump: containerd's default)" if "enable_cdi" in self.defaulted else ""
        return (f"enable_cdi = {'true' if self.enabled else 'false'}{how} in {self.layout.shown}, "
                f"{self.layout.containerd}'s config version {self.version}")


def dump_cdi(text: str) -> CriCdi:
    """Read ``containerd config dump``'s output (stdout) for CDI. Never raises: text that is not a dump of a
    version this reader knows, or whose CDI settings have the wrong type, gives ``problem`` (with its line)."""
    try:
        entries = read_toml(text)
    except TomlProblem as exc:
        return CriCdi(problem=f"is not TOML this suite can read ({exc})")
    version = entries.get("version")
    if version is None:
        return CriCdi(problem="has no top-level `version` (containerd 1.x prints 2, 2.x prints 3): not containerd's "
                              f"config dump? ({len(entries.entries)} keys read)")
    if not isinstance(version.value, int) or isinstance(version.value, bool) or version.value not in LAYOUTS:
        found = version.value.text if isinstance(version.value, Other) else version.value
        return CriCdi(problem=f"has version = {shown(found)} on line {version.line}: expected 2 "
                              "(containerd 1.x) or 3 (containerd 2.x)")
    layout = LAYOUTS[version.value]
    table = entries.table(layout.table)
    if table is None:
        return CriCdi(version.value, layout=layout,
                      problem=f"has no {layout.shown} table ({layout.containerd}, config version {version.value}): "
                              "the CRI plugin's settings are missing (is the CRI plugin disabled? the kubelet needs "
                              "it)")
    defaulted = []
    enabled_entry = table.get("enable_cdi")
    if enabled_entry is None:
        enabled, defaulted = layout.enabled_default, ["enable_cdi"]
    elif isinstance(enabled_entry.value, bool):
        enabled = enabled_entry.value
    else:
        return CriCdi(version.value, layout=layout, problem="has enable_cdi = "
                      f"{shown(_text(enabled_entry.value))} on line {enabled_entry.line}, in "
                      f"{layout.shown}: expected true or false")
    dirs_entry = table.get("cdi_spec_dirs")
    if dirs_entry is None:
        dirs, defaulted = DEFAULT_SPEC_DIRS, [*defaulted, "cdi_spec_dirs"]
    else:
        dirs = _strings(dirs_entry.value)
        if dirs is None:
            return CriCdi(version.value, enabled, layout=layout, problem=f"has cdi_spec_dirs = "
                          f"{shown(_text(dirs_entry.value))} on line {dirs_entry.line}, in "
                          f"{layout.shown}: expected a list of folders")
    return CriCdi(version.value, enabled, dirs, layout, tuple(defaulted),
                  enabled_line=enabled_entry.line if enabled_entry else None)


def _text(value: object) -> object:
    return value.text if isinstance(value, Other) else value


@dataclass(frozen=True)
class PatchesCdi:
    """What a kind config's containerdConfigPatches do to CDI in the node's containerd, as kind merges them into
    the node's version-2 config: the last patch kind applies that sets a key wins (a JSON merge patch each)."""

    enabled: bool | None = None  # None: no patch kind applies sets enable_cdi
    enabled_by: int | None = None  # index of the patch that set it
    spec_dirs: tuple[str, ...] | None = None
    problems: tuple[tuple[int, str], ...] = ()  # (patch index, why it cannot be read)
    skipped: tuple[tuple[int, int], ...] = ()  # (patch index, the version it states): kind does not apply it


def patches_cdi(patches: Sequence[str], node_version: int = NODE_CONFIG_VERSION) -> PatchesCdi:
    """Evaluate ``patches`` (the kind config's containerdConfigPatches, each a TOML string) for CDI.

    A patch stating no version, or ``node_version``, is applied; one stating another version is skipped, as kind
    does. Only the CRI table of ``node_version``'s layout counts: that is where containerd 1.7 reads the settings,
    and what containerd 2.x migrates from a version-2 config. (containerdConfigPatchesJSON6902 are not evaluated:
    the node's own ``containerd config dump``, module 1's check, shows their result.)
    """
    layout = LAYOUTS[node_version]
    enabled = by = dirs = None
    problems, skipped = [], []
    for i, patch in enumerate(patches):
        try:
            entries = read_toml(patch)
        except TomlProblem as exc:
            problems.append((i, str(exc)))
            continue
        version = entries.get("version")
        if version is not None and (not isinstance(version.value, int) or isinstance(version.value, bool)):
            problems.append((i, f"line {version.line}: version = {shown(_text(version.value))}: "
                                "expected a number"))
            continue
        if version is not None and version.value != node_version:
            skipped.append((i, version.value))
            continue
        on = entries.get(*layout.table, "enable_cdi")
        if on is not None and not isinstance(on.value, bool):
            problems.append((i, f"line {on.line}: enable_cdi = {shown(_text(on.value))}: "
                                "expected true or false"))
        elif on is not None:
            enabled, by = on.value, i
        listed = entries.get(*layout.table, "cdi_spec_dirs")
        if listed is not None:
            dirs = _strings(listed.value)
            if dirs is None:
                problems.append((i, f"line {listed.line}: cdi_spec_dirs = "
                                    f"{shown(_text(listed.value))}: expected a list of folders"))
    return PatchesCdi(enabled, by, dirs, tuple(problems), tuple(skipped))
