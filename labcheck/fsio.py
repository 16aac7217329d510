"""The one way the suite reads, writes and backs up files, and turns YAML/JSON errors into ``file:line``.

WHY one module: every file the suite touches (lab config, daemon.json, CDI specs, kind config, its own
state and result files) can be something hostile or broken -- a FIFO that blocks ``open()`` forever, a
character device such as /dev/null, a folder, a symlink, gigabytes of data, bytes that are not UTF-8, a
YAML "billion laughs". Each reader and writer used to handle a different subset of these. Here each case
has one answer:

* :func:`read_text` refuses anything but a regular file *before* opening it (``os.stat``), then opens with
  ``O_NONBLOCK`` and checks again with ``fstat`` (a file swapped for a FIFO in between cannot block either),
  reads at most ``max_bytes`` and turns a decoding error into a :class:`FileProblem` naming file and line.
* :func:`write_atomic` writes through a symlink to its target (the link stays a link: a user's daemon.json
  or kind config that links into their own config repository keeps doing so), refuses devices, FIFOs,
  folders and dangling links with a clear message, keeps the target's mode and owner, and never leaves its
  temporary file behind, also on failure or Ctrl-C.
* :func:`backup` copies a file (through its symlink) to a fresh name next to it, keeping its mode.
* :func:`load_yaml` / :func:`compose_yaml` bound alias expansion and nesting, so a 900-byte alias bomb
  fails at once with a message instead of exhausting memory in whatever walks the result.
* :func:`parse_json` / :func:`read_json` read JSON as strictly as Go does (no NaN/Infinity) and turn every
  way ``json.loads`` can fail (syntax, nesting, huge integers, bad bytes) into a :class:`FileProblem`.
* :func:`where` is the one ``file:line`` (``file:line:column``) format for every parse error.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labcheck import versions

if TYPE_CHECKING:  # annotations only: PyYAML is imported where a YAML text is read
    import yaml

MAX_READ_BYTES = 4 * 1024 * 1024  # a generated CDI spec for 8 GPUs is ~30 KB; daemon.json, lab.yaml far less
MAX_YAML_NODES = 100_000  # values a document may expand to through aliases (nvidia-ctk's 8-GPU spec: ~3,000)

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symlink"),  # an lstat mode: the suite's own files in shared folders (follow_symlinks=False)
)


class FileProblem(Exception):
    """A file that cannot be read or written as asked. ``str()`` says which file, what was found, what to do."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, fix: str = "",
                 column: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.message = message
        self.fix = fix
        super().__init__(f"{where(self.path, line, column)}: {message}")


def where(path: str | Path, line: int | None = None, column: int | None = None) -> str:
    """``path``, ``path:line`` or ``path:line:column``: how every parse error names its place."""
    if not line:
        return str(path)
    return f"{path}:{line}:{column}" if column else f"{path}:{line}"


def value_kind(value: Any) -> str:
    """What a value read from YAML or JSON is, in a message's words ("nothing" for null or an empty document)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    for types, words in ((str, "a string"), (int | float, "a number"), (list | tuple, "a list"), (dict, "a mapping")):
        if isinstance(value, types):
            return words
    return type(value).__name__


def shown(value: Any, limit: int = 60, *, bare: bool = False, kinds: bool = False) -> str:
    """A value read from a file or printed by a tool, for a message: one line, bounded, no control character raw.

    WHY one helper: such a value can be a line of megabytes, or hold a newline or an escape sequence that would
    break the message (and the terminal showing it). By default its ``repr`` ('1' and 1 stay told apart).
    ``bare=True``: a printable string as itself (a containerd setting reads as its TOML wrote it); a string with
    a control character is still its repr. ``kinds=True``: a list or mapping as what it is ("a list", "a mapping":
    :func:`value_kind`), not its contents (a CDI field that wanted a number). Past ``limit`` characters the text
    is cut and says how long it was, "... (N characters)": N is the string's own length (the repr's for another
    value), what a reader can look for in the file."""
    if kinds and isinstance(value, list | tuple | dict):
        return value_kind(value)
    text = value if bare and isinstance(value, str) and value.isprintable() else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 15]}... ({len(value) if isinstance(value, str) else len(text)} characters)"


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO (named pipe)"); "a regular file" otherwise."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


# --- reading -----------------------------------------------------------------------------------------

def read_bytes(path: str | Path, max_bytes: int = MAX_READ_BYTES, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of the regular file ``path``. Raises FileNotFoundError when it does not exist (callers treat
    "absent" on their own terms) and :class:`FileProblem` for everything else that is wrong with it.

    ``follow_symlinks=False`` for the suite's own files in shared folders (state, lock holders, pid files): a
    symlink there was planted, and is refused like a FIFO."""
    p = str(path)
    try:
        st = os.stat(p) if follow_symlinks else os.lstat(p)  # never opens, so a FIFO cannot block here
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileProblem(p, f"cannot read: {exc.strerror or exc}", fix=f"check the permissions of {p}") from None
    if not follow_symlinks:
        _refuse_link(p, st.st_mode, "read")
    _require_regular(p, st.st_mode, "read")
    if st.st_size > max_bytes:
        raise FileProblem(p, f"is {st.st_size} bytes, more than the {max_bytes} bytes this file may have",
                          fix=f"check that {p} is the right file")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileProblem(p, f"cannot read: {exc.strerror or exc}", fix=f"check the permissions of {p}") from None
    try:
        _require_regular(p, os.fstat(fd).st_mode, "read")  # swapped for a FIFO since the stat: still refused
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileProblem(p, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise FileProblem(p, f"is more than the {max_bytes} bytes this file may have",
                          fix=f"check that {p} is the right file")
    return b"".join(chunks)


def read_text(path: str | Path, max_bytes: int = MAX_READ_BYTES, *, follow_symlinks: bool = True,
              errors: str = "strict") -> str:
    """The UTF-8 text of the regular file ``path`` (see :func:`read_bytes`); bytes that are not UTF-8 are a
    :class:`FileProblem` naming the line and byte offset, never a UnicodeDecodeError. ``errors="replace"``: a
    system file only read for a few fields (/proc, os-release), where a stray byte costs nothing."""
    data = read_bytes(path, max_bytes, follow_symlinks=follow_symlinks)
    if errors != "strict":
        return data.decode("utf-8", errors=errors)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileProblem(path, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
                                f"a binary file, or saved in another encoding", line,
                          fix=f"save {path} as UTF-8 text") from None


def read_pid(path: str | Path) -> int | None:
    """The process id in a pid file, or None when it is absent, not a regular file (a FIFO planted in /tmp's
    MPS pipe folder must not block), unreadable or not a number in ASCII digits (:func:`labcheck.versions.ascii_int`:
    ``int`` read "١٢" as pid 12) or a symlink (a daemon writes its pid file itself; a link there was planted)."""
    try:
        return versions.ascii_int(read_text(path, 64, follow_symlinks=False).strip())
    except (OSError, FileProblem):
        return None


def _refuse_link(path: str, mode: int, verb: str) -> None:
    if stat.S_ISLNK(mode):
        target = "?"
        with contextlib.suppress(OSError):
            target = os.readlink(path)
        raise FileProblem(path, f"is a symlink (to {target!r}), not a regular file: refusing to {verb} through it "
                                "(the suite never makes this file a link: someone else put it there)",
                          fix=f"rm -- {shlex.quote(path)}   # only a link: the suite writes a new file in its place")


def _require_regular(path: str, mode: int, verb: str) -> None:
    if not stat.S_ISREG(mode):
        raise FileProblem(path, f"is {kind_of(mode)}, not a regular file: refusing to {verb} it",
                          fix=f"give the path of a regular file instead of {path}")


# --- writing -----------------------------------------------------------------------------------------

def write_target(path: str | Path, *, follow_symlinks: bool = True) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the file its symlink (chain) points at.

    Raises :class:`FileProblem` for a folder, a device, a FIFO, a socket, a dangling or looping symlink:
    nothing but a regular file (or a new name) is ever replaced. ``follow_symlinks=False``: any symlink at
    ``path`` is refused (see :func:`read_bytes`).
    """
    p = Path(path)
    if not follow_symlinks:
        with contextlib.suppress(FileNotFoundError):
            _refuse_link(str(p), os.lstat(p).st_mode, "write")
    if not os.path.islink(p):
        target = p
    else:
        try:
            target = Path(os.path.realpath(p, strict=True))
        except (OSError, RuntimeError):
            raise FileProblem(p, f"is a symlink to {os.readlink(p)!r}, which does not exist (or loops): refusing "
                                 "to write through it", fix=f"remove the link {p} or create its target") from None
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise FileProblem(p, f"cannot write: {exc.strerror or exc}") from None
    _require_regular(str(p) if target == p else f"{p} (-> {target})", st.st_mode, "replace")
    return target


def write_atomic(path: str | Path, data: str | bytes, default_mode: int = 0o644, *,
                 follow_symlinks: bool = True) -> Path:
    """Replace the regular file ``path`` (or its symlink's target) with ``data`` atomically; returns the file
    written. A reader sees the old file or the new one, never half of one. The mode (and, when allowed, the
    owner) of the file replaced is kept; a new file gets ``default_mode`` less the umask. The temporary file
    (``.<name>.*.labcheck-tmp`` next to the target, a name CDI and kind ignore) never stays behind.
    Raises :class:`FileProblem` for what must not be replaced (see :func:`write_target`), OSError otherwise.
    """
    target = write_target(path, follow_symlinks=follow_symlinks)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    target.parent.mkdir(parents=True, exist_ok=True)
    with _temp_next_to(target) as (fd, tmp):
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):
                    os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, default_mode & ~_umask())
        os.replace(tmp, target)
    return target


@contextlib.contextmanager
def _temp_next_to(dest: Path) -> Iterator[tuple[int, str]]:
    """(fd, name) of a new temporary file beside ``dest`` (same folder, so os.replace onto it is atomic), removed
    again if the block fails in any way, Ctrl-C included: the one place a temp file of ours could stay behind."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".labcheck-tmp", dir=str(dest.parent))
    try:
        yield fd, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, data: Any, indent: int | None = None, *, follow_symlinks: bool = True) -> Path:
    """:func:`write_atomic` of ``data`` as JSON (with a final newline when indented)."""
    text = json.dumps(data, indent=indent)
    return write_atomic(path, text + "\n" if indent is not None else text, follow_symlinks=follow_symlinks)


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def backup_name(path: str | Path) -> str:
    """A name next to ``path`` for a copy of the user's file, never one that exists already.

    WHY never reuse: a second change in the same second must not overwrite the first backup, which may be the
    user's original. Nor a name handed out before in this process: two fixes printed for one file (each copies it
    before its edit) are pasted later, one after the other, and the second copy would replace the original with
    the first fix's result. Matches ``<path>.labcheck-*.bak``.
    """
    stamp = time.strftime("%Y%m%d%H%M%S")
    with _BACKUP_NAMES_LOCK:
        for n in range(1000):
            cand = f"{path}.labcheck-{stamp}{f'-{n}' if n else ''}.bak"
            if cand not in _BACKUP_NAMES and not os.path.lexists(cand):
                break
        else:
            cand = f"{path}.labcheck-{stamp}-{os.getpid()}-{time.monotonic_ns()}.bak"
        _BACKUP_NAMES.add(cand)
        return cand


_BACKUP_NAMES: set[str] = set()  # every name backup_name handed out in this process
_BACKUP_NAMES_LOCK = threading.Lock()  # fixes are built in prefetch threads too


def backup(path: str | Path) -> str:
    """Copy the regular file ``path`` (through its symlink) to :func:`backup_name`, keeping its mode and times;
    returns the backup's name. The copy is written under a temporary name first, so a half-written backup is
    never left under a backup's name."""
    src = write_target(path)
    dest = backup_name(path)
    with _temp_next_to(Path(dest)) as (fd, tmp):
        os.close(fd)
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)
    return dest


# --- YAML and JSON -----------------------------------------------------------------------------------

class YamlError(ValueError):
    """A YAML document that cannot be used: ``line`` (1-based, or None) and ``problem`` in words."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        super().__init__(f"{where(source, line)}: {problem}")


def line_of(node: Any) -> int | None:
    """The 1-based line a YAML node starts on."""
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def compose_yaml(text: str, source: str, max_nodes: int = MAX_YAML_NODES) -> yaml.Node | None:
    """The YAML node tree of one document (None when empty), its expansion through aliases bounded.

    The node tree keeps each scalar's source text (``3.10`` stays "3.10", where constructing gives 3.1) and
    every value's line. Raises :class:`YamlError` for bad syntax, nesting too deep, more than one document,
    a recursive alias, or aliases that expand to more than ``max_nodes`` values.
    """
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    try:
        loader = yaml.SafeLoader(text)  # its reader refuses a NUL or another control character here, at once
    except yaml.reader.ReaderError as exc:
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        raise YamlError(source, text.count("\n", 0, exc.position) + 1,
                        f"not valid YAML: character #x{code:04x} (a control character) is not allowed in YAML "
                        f"text: remove it") from None
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except RecursionError:
        raise YamlError(source, None, "not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if node is not None:
        _bound_expansion(node, source, max_nodes)
    return node


def construct_yaml(node: yaml.Node | None, source: str) -> Any:
    """The Python value of a node from :func:`compose_yaml` (safe types only)."""
    if node is None:
        return None
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    loader = _checked_loader()("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, line_of(node)) from None
    except RecursionError:
        raise YamlError(source, line_of(node), "not valid YAML: nested too deeply") from None
    except _CONSTRUCT_ERRORS as exc:  # a safety net: _checked_loader turns these into ConstructorErrors with a line
        raise YamlError(source, line_of(node), f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


# What PyYAML's SafeConstructor raises, besides its own errors, for a tagged value it cannot read: ``!!int 1e3``
# (ValueError), ``!!bool maybe`` (KeyError), ``!!timestamp x`` (AttributeError), ``!!timestamp 2001-13-40``
# (ValueError), an integer of 5000 digits (ValueError), a plain date that is none (``2001-13-40``: ValueError).
_CONSTRUCT_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError)
_TAG_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "timestamp": "a date or time"}


def _bad_tagged_value(node: yaml.Node) -> str:
    """Why a scalar could not be read: its value and the type its tag asks for, written (``!!int 1e3``) or implied
    by the value's form (an integer of 5000 digits)."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    tag = str(getattr(node, "tag", ""))
    text = str(getattr(node, "value", ""))
    short = tag.removeprefix("tag:yaml.org,2002:")
    words = _TAG_WORDS.get(short, f"a value of type {tag}")
    implied = isinstance(node, yaml.ScalarNode) and yaml.resolver.Resolver().resolve(
        yaml.ScalarNode, text, (True, False)) == tag
    if implied:
        return (f"{shown(text, 40)} reads as {words} but is not one the suite can read: quote it if it is text, or "
                "fix it")
    return f"{shown(text, 40)} is not {words}, which its tag !!{short} says it is: fix the value or remove the tag"


@functools.cache
def _checked_loader() -> type:
    """PyYAML's SafeLoader, except that a value its constructors cannot read is a ConstructorError at the value's
    line (a YAMLError like any other), never the ValueError, KeyError or AttributeError they raise.

    WHY here: ``construct_object`` is where every node, however deep, is made into a value, so the node that failed
    (and so its line) is known; the constructors themselves raise plain Python errors without a mark."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    class CheckedLoader(yaml.SafeLoader):
        def construct_object(self, node, deep=False):
            try:
                return super().construct_object(node, deep)
            except yaml.YAMLError:
                raise
            except _CONSTRUCT_ERRORS:
                raise yaml.constructor.ConstructorError(None, None, _bad_tagged_value(node),
                                                        node.start_mark) from None

    return CheckedLoader


def load_yaml(text: str, source: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load`` with bounded alias expansion and errors as :class:`YamlError` (file and line)."""
    return construct_yaml(compose_yaml(text, source, max_nodes), source)


def _bound_expansion(root: yaml.Node, source: str, max_nodes: int) -> None:
    """Count the values the tree expands to when every alias is copied out (memoized: linear in the text)."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YamlError(source, line_of(node), "a YAML alias refers to the value that contains it "
                                                   "(recursive anchor): write the value out instead")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > max_nodes:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > max_nodes:
                    break
        active.discard(key)
        if total > max_nodes:
            raise YamlError(source, line_of(node), f"YAML aliases expand to more than {max_nodes} values "
                                                   "(an alias bomb?): write the values out instead of using "
                                                   "anchors (&) and aliases (*)")
        sizes[key] = total
        return total

    try:
        size(root)
    except RecursionError:
        raise YamlError(source, line_of(root), "not valid YAML: nested too deeply") from None


def _yaml_error(exc: yaml.YAMLError, source: str, fallback_line: int | None = None) -> YamlError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else fallback_line
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return YamlError(source, line, f"not valid YAML: {problem}")


def json_error(exc: json.JSONDecodeError, source: str) -> FileProblem:
    """A JSON syntax error as a :class:`FileProblem` at ``file:line:column``."""
    return FileProblem(source, f"not valid JSON: {exc.msg}", exc.lineno, column=exc.colno)


MAX_JSON_DEPTH = 100  # daemon.json, a CDI spec, the suite's records: a few levels (Go's decoder: 10000)


class _NotJsonConstant(ValueError):
    """NaN, Infinity or -Infinity: Python's extension of JSON, which Go's decoder (dockerd, CDI) refuses."""


def _refuse_constant(name: str) -> None:
    raise _NotJsonConstant(f"{name} is not a JSON value (dockerd and CDI runtimes refuse it): write a number")


def parse_json(text: str | bytes, source: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The value of the JSON ``text`` read from ``source`` (a path, or what printed it), as strictly as Go's
    ``encoding/json`` reads it; anything else is a :class:`FileProblem` naming ``source`` (and the line, when
    known), never an exception of another type.

    WHY one strict reader: ``json.loads`` reads ``NaN``, ``Infinity`` and ``-Infinity``, which dockerd and every
    CDI runtime (Go) refuse ("invalid character 'N' looking for beginning of value"), so a file Python accepts
    was called valid while Docker would not start with it. And ``json.loads`` raises more than
    ``JSONDecodeError``: RecursionError for ``[[[[...`` a thousand levels deep, ValueError for an integer of
    more than 4300 digits, UnicodeDecodeError for bytes that are not UTF-8; each was a crash of the check that
    read it. Nesting deeper than ``max_depth`` is refused too, so nothing that walks or prints the value
    (``json.dumps`` in a message) can hit the recursion limit either.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileProblem(source, f"not valid JSON: not UTF-8 text (byte 0x{text[exc.start]:02x} at offset "
                                      f"{exc.start})", text.count(b"\n", 0, exc.start) + 1) from None
    if text.startswith("\ufeff"):  # json.loads: "Unexpected UTF-8 BOM (decode using utf-8-sig)", Python's advice
        raise FileProblem(source, "not valid JSON: it starts with a byte order mark (BOM), which Go's JSON decoder "
                                  "(dockerd) refuses: save the file as UTF-8 without a BOM", 1, column=1)
    too_deep = f"not valid JSON here: nested more than {max_depth} levels deep (an object in a list in ...)"
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise json_error(exc, source) from None
    except _NotJsonConstant as exc:
        raise FileProblem(source, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise FileProblem(source, too_deep) from None
    except ValueError:  # int() of more than sys.get_int_max_str_digits() digits
        raise FileProblem(source, "not valid JSON here: a number of thousands of digits") from None
    if _depth_over(value, max_depth):
        raise FileProblem(source, too_deep)
    return _without_lone_surrogates(value) if _LONE_SURROGATE_ESCAPE.search(text) else value


# "\ud800" alone: Python keeps the lone surrogate (and every later UTF-8 write of it, a report, raises); Go's
# decoder reads it as U+FFFD. Pairs ("\ud83d\ude00") are already one character once loaded.
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate replaced by U+FFFD (recursion bounded: called after the depth check)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists/objects more than ``limit`` deep (an explicit stack: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def read_json(path: str | Path, max_bytes: int = MAX_READ_BYTES, *, follow_symlinks: bool = True) -> Any:
    """The JSON value of the regular file ``path``: :func:`read_text` then :func:`parse_json` (FileNotFoundError
    when absent; :class:`FileProblem` for everything else)."""
    return parse_json(read_text(path, max_bytes, follow_symlinks=follow_symlinks), str(path))
