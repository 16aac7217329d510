"""Lab configuration: documented thresholds and paths, optionally overridden by a YAML file.

A bad file never stops the run: :func:`load` returns the defaults plus a list of problems, and the
``lab_config_valid`` check turns those problems into a failing verdict with file, line and fix. A threshold set
below the workshop's minimum (THRESHOLDS) is such a problem: the minimum stands, and the check, a criterion of
READY whenever a lab config was read, fails.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from labcheck import cdi, docker_endpoint, fsio, versions
from labcheck.remedy import DEFAULT as SUDO  # a user who may need sudo: the lab config can be root's
from labcheck.remedy import with_note

GiB = 1024**3


@dataclass(frozen=True)
class LabConfig:
    # Module 0 thresholds (../shared/seeds/module0-prerequisites.md)
    min_kernel: str = "5.15"
    min_docker: str = "24.0"
    # Docker engine and NVIDIA runtime (labcheck.probes.docker). docker_host "" = DOCKER_HOST or the default socket.
    docker_host: str = ""
    docker_daemon_json: str = "/etc/docker/daemon.json"
    docker_pidfile: str = "/var/run/docker.pid"
    docker_runtime_name: str = "nvidia"
    probe_image: str = "labcheck-probe:busybox"
    busybox_paths: tuple[str, ...] = ("/bin/busybox", "/usr/bin/busybox")
    min_kind: str = "0.24.0"
    min_helm: str = "3.10"
    min_driver: str = "535"
    min_compute_capability: str = "6.0"
    min_ctk: str = "1.14"
    cdi_dirs: tuple[str, ...] = ("/etc/cdi", "/var/run/cdi")
    mps_pipe_dir: str = "/tmp/nvidia-mps"
    mps_log_dir: str = "/var/log/nvidia-mps"
    cdi_spec_path: str = "/etc/cdi/nvidia.yaml"  # where --fix-host writes `nvidia-ctk cdi generate` output
    # Module 1
    cluster_name: str = "workshop-dra"
    # The workshop's kindest/node:v1.34.0, pinned to the digest kind v0.30.0's release notes list for it: a tag
    # can point at a build for another kind release, the digest cannot.
    node_image: str = "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
    kind_config_path: str = "manifests/kind-config.yaml"
    shm_min_bytes: int = 8 * GiB
    # Every external command's timeout, seconds
    command_timeout: float = 30.0
    cluster_create_timeout: float = 600.0
    # Where the suite records what it created (ownership: --teardown deletes only those) and its locks
    state_dir: str = "~/.local/state/dra-labcheck"
    # The kind CLI (a name on PATH or a path)
    kind_binary: str = "kind"
    extra_lib_dirs: tuple[str, ...] = field(default=("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib"))
    extra_bin_dirs: tuple[str, ...] = field(default=("/usr/local/nvidia/bin",))

    @property
    def node_name(self) -> str:
        return f"{self.cluster_name}-control-plane"


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    line: int | None
    message: str
    fix: str
    outcome: str = ""  # what the suite does meanwhile (lab config: default used, setting ignored, kept as written)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


_FIELDS = {f.name: f for f in dataclasses.fields(LabConfig)}
MAX_BYTES = 256 * 1024  # a lab config is a few dozen lines
VERSION_FIELDS = ("min_kernel", "min_docker", "min_kind", "min_helm", "min_driver", "min_compute_capability",
                  "min_ctk")
# The workshop's minimums: each one's default is the seed's value (../shared/seeds/module0-prerequisites.md: kernel
# 5.15, Docker 24.0, kind 0.24.0, Helm 3.10, driver 535, compute capability 6.0, toolkit 1.14; module1-kind-setup.md:
# an 8 GiB /dev/shm). A lab config may raise one (a stricter lab), never lower it: `min_docker: "20.10"` made
# Debian's engine 20.10 pass and the run print READY on a host the workshop does not support (:func:`_threshold`).
THRESHOLDS = (*VERSION_FIELDS, "shm_min_bytes")
MAX_SECONDS = 86400.0  # a timeout beyond a day is a typo (here and in a fleet inventory)
# Sane ranges (inclusive). WHY an upper bound: the timeout becomes a deadline the selectors module must convert
# (1e10 s raised OverflowError in 9 checks); a command that may take more than a day is a hang. shm: a node's
# /dev/shm is RAM-backed, so more than 64 TiB is a typo; a value in range below the workshop's 8 GiB is refused
# as a lowered minimum (THRESHOLDS).
NUMBER_RANGES: dict[str, tuple[float, float, str]] = {
    "command_timeout": (1.0, MAX_SECONDS, "seconds"),
    "cluster_create_timeout": (1.0, MAX_SECONDS, "seconds"),
    "shm_min_bytes": (1024**2, 64 * 1024**4, "bytes"),
}
# Paths the suite opens, writes or hands to a tool as they are: absolute, so the answer does not depend on the
# folder pytest was started in ("" was read as the current folder: cdi_dirs: [""] scanned it as a CDI folder).
ABSOLUTE_PATH_FIELDS = ("docker_daemon_json", "docker_pidfile", "cdi_spec_path", "mps_pipe_dir", "mps_log_dir")
# Lists of absolute paths; the first group must name at least one (an empty cdi_dirs searches nowhere, an empty
# busybox_paths leaves nothing to build the probe image from); the extra_* folders may be empty (PATH only).
NONEMPTY_PATH_LISTS = ("cdi_dirs", "busybox_paths")
PATH_LISTS = (*NONEMPTY_PATH_LISTS, "extra_lib_dirs", "extra_bin_dirs")
# Names handed to docker / kind / nvidia-ctk as one argument: never empty, never split by white space.
NAME_FIELDS = ("docker_runtime_name", "probe_image", "node_image")
# kind names the node container "<cluster>-control-plane", also its hostname: an RFC 1123 label of at most 63
# characters, so the cluster name is lowercase letters, digits and '-' and at most 63 - 14 characters.
_KIND_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,47}[a-z0-9])?$")
_VERSION = re.compile(r"^v?[0-9]+(\.[0-9]+)*$")  # ASCII digits: "0.٢٤.0" would be read as version 0
# Folders no setting may name as a folder of the suite's own (OWN_FOLDERS), since the suite and its fixes create,
# write and clear entries in it as if it were theirs. Two kinds, both compared after realpath (``/tmp/``,
# ``/var/run`` -> ``/run``, ``//etc/.``, a link to one):
# - SYSTEM_TREES: the system's own files, and everything under them (/etc/ssh, /usr/local/bin, /var/lib/docker are
#   where the OS, its packages and its daemons keep what they need; no workshop folder belongs there);
# - SHARED_DIRS: folders many users or programs share, refused themselves while a folder below them is fine
#   (/tmp/nvidia-mps, the default pipe folder; /var/log/nvidia-mps, the default log folder; ~/.local/state/...);
#   every home folder of /home counts too, and the user's own (HOME).
# Under /run only the users' own runtime folders (/run/user/UID/...) may be named: the rest of it holds the system's
# daemons' sockets and pid files (/run/docker.sock, /run/systemd).
SYSTEM_TREES = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/efi", "/proc",
                "/sys", "/dev", "/run", "/snap", "/lost+found", "/var/lib", "/var/cache", "/var/spool", "/var/mail",
                "/var/backups", "/var/db", "/var/empty")
SHARED_DIRS = frozenset({"/", "/home", "/media", "/mnt", "/opt", "/root", "/srv", "/tmp", "/var", "/var/log",
                         "/var/tmp", "/var/opt", "/var/local"})
USER_RUNTIME = re.compile(r"^/run/user/[0-9]+/.")  # a folder below a user's own runtime folder (XDG_RUNTIME_DIR)
OWN_FOLDER_PLACES = "e.g. under /tmp, /var/tmp or your home folder"
# Each setting that names a folder of its own, and why it must be one.
OWN_FOLDERS = {
    # a record there is the proof of ownership --teardown acts on (a world-writable /tmp would let anyone forge one)
    "state_dir": "the suite keeps its lock and ownership records there",
    # the stale-pipe fix removes the daemon's entries (control, log, ...) there, which in /tmp may be anyone's
    "mps_pipe_dir": "the MPS control daemon creates its pipes there (control, log, ...), and the MPS fixes create "
                    "the folder for you when it is missing and remove those entries",
    "mps_log_dir": "the MPS start fix creates the folder for you when it is missing, for control.log and server.log",
}


def load(path: str | Path | None) -> tuple[LabConfig, list[ConfigProblem]]:
    """Read ``path`` over the defaults. A FIFO, device, folder, oversize or non-UTF-8 file, bad YAML, an alias
    bomb, unknown keys, wrong types and values out of range are problems (file, line, fix), never crashes."""
    if path is None:
        return LabConfig(), []
    p = Path(path)
    try:
        text = fsio.read_text(p, MAX_BYTES)
    except FileNotFoundError:
        if p.is_symlink():  # a dangling link: name where it points, that is what to fix
            target = os.readlink(p)
            return LabConfig(), [ConfigProblem(
                str(p), None, f"lab config file not found: {p} is a symbolic link to {target}, which does not exist",
                with_note(f"ls -l -- {shlex.quote(str(p))}", "point the link at your lab config (ln -sfn "
                          f"/path/to/lab.yaml {shlex.quote(str(p))}) or remove it"),
                WHOLE_FILE_DEFAULTS)]
        return LabConfig(), [
            ConfigProblem(str(p), None, "lab config file not found",
                          edit_fix(str(p), None, "create it (lab.example.yaml lists every setting), or drop "
                                                 "--lab-config"), WHOLE_FILE_DEFAULTS)
        ]
    except fsio.FileProblem as exc:
        # fsio's fixes are words for a person ("save X as UTF-8 text"): a command that shows the file leads
        return LabConfig(), [ConfigProblem(str(p), exc.line, exc.message,
                                           with_note(f"ls -l -- {shlex.quote(str(p))}", exc.fix or "check the file"),
                                           WHOLE_FILE_DEFAULTS)]
    return parse(text, str(p))


def parse(text: str, source: str = "lab.yaml") -> tuple[LabConfig, list[ConfigProblem]]:
    try:
        root = fsio.compose_yaml(text, source)
        data = fsio.construct_yaml(root, source)
    except fsio.YamlError as exc:
        where = fsio.where(source, exc.line)
        return LabConfig(), [ConfigProblem(source, exc.line, exc.problem,
                                           edit_fix(source, exc.line, f"fix the YAML at {where}"), WHOLE_FILE_DEFAULTS)]
    if data is None:
        return LabConfig(), []
    if not isinstance(data, dict):
        return LabConfig(), [
            ConfigProblem(source, 1, f"expected a mapping of settings, found {fsio.value_kind(data)}",
                          edit_fix(source, 1, "write it as 'key: value' lines, e.g. 'min_docker: \"24.0\"'"),
                          WHOLE_FILE_DEFAULTS)
        ]
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    nodes = {str(k.value): (k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    values: dict = {}
    problems = _duplicate_keys(root, source, text)
    for key, value in data.items():
        key_node, value_node = nodes.get(str(key), (None, None))
        line = fsio.line_of(key_node)
        f = _FIELDS.get(str(key))
        if f is None:
            problems.append(ConfigProblem(source, line, f"unknown setting {key!r}", with_note(
                *_removal_steps(str(key), _Where(source, text, key_node, value_node), "the file holds only settings "
                                "the suite reads"), f"a typo? known settings: {', '.join(sorted(_FIELDS))}"),
                "ignored"))
            continue
        default = f.default
        if f.name in VERSION_FIELDS and isinstance(value_node, yaml.ScalarNode) and not isinstance(value, bool):
            value = value_node.value  # as written: `min_helm: 3.10` is "3.10", never the float 3.1
        try:
            coerced = _coerce(value, default)
        except (TypeError, ValueError):
            problems.append(ConfigProblem(
                source, line, f"{key}: expected {_kind(default)}, found {fsio.shown(value, 80)}",
                edit_fix(source, line, f"set {key} to a value like {default!r}"), _default_used(default)))
            continue
        bad = _value_problem(f.name, coerced, default)
        if bad:
            # The default stands in for a value that cannot be used. Not for cluster_name (see below).
            outcome = KEPT_AS_WRITTEN if f.name == "cluster_name" else _default_used(default)
            problems.append(ConfigProblem(source, line, f"{key}: {bad[0]}", edit_fix(source, line, bad[1]), outcome))
            if f.name != "cluster_name":
                # The default stands in for a value that cannot be used. Not for cluster_name: the default would
                # point the suite at another cluster (possibly someone else's); docker and kind refuse it instead.
                continue
        lowered = _threshold(f.name, coerced, default, _Where(source, text, key_node, value_node))
        if lowered:  # the workshop's minimum stands: no check may pass on a lowered bar
            problems.append(lowered)
            continue
        values[f.name] = coerced
    cfg = LabConfig(**values)
    lines = {name: fsio.line_of(node) for name, (node, _) in nodes.items()}
    return cfg, problems + _cross_problems(cfg, source, lines)


MAX_SHOWN = 200  # characters of one setting in the report's environment (a list of paths can be long)


def changed_settings(cfg: LabConfig) -> dict[str, str]:
    """Each setting of ``cfg`` that differs from the documented default, as text for the report (a list joined
    with ", ", a long value cut, one with a control character quoted and escaped), in the order lab.example.yaml
    lists them."""
    out = {}
    for f in dataclasses.fields(LabConfig):
        value = getattr(cfg, f.name)
        if value != f.default:
            text = ", ".join(value) if isinstance(value, tuple) else str(value)
            out[f.name] = fsio.shown(text, MAX_SHOWN, bare=True)
    return out


def _duplicate_keys(root, source: str, text: str) -> list[ConfigProblem]:
    """A key written twice: YAML keeps the last silently, so `min_kind: 0.1.0` below the real threshold won. The
    fix removes the first one (what YAML ignores), so what the suite uses does not change."""
    seen: dict[str, tuple] = {}
    problems = []
    for key_node, value_node in root.value:
        key, line = str(key_node.value), fsio.line_of(key_node)
        if key in seen:
            first = _Where(source, text, *seen[key])
            problems.append(ConfigProblem(
                source, line, f"{key} is set twice (line {first.line} and line {line}): YAML keeps only the last",
                with_note(*_removal_steps(key, first, f"the one on line {line}, used now, is the only one")),
                f"the last one (line {line}) is used"))
        seen.setdefault(key, (key_node, value_node))
    return problems


@dataclass(frozen=True)
class _Where:
    """Where a setting is written: the file (as named) and its text, and the setting's YAML key and value nodes."""

    source: str
    text: str
    key: object
    value: object

    @property
    def line(self) -> int | None:
        return fsio.line_of(self.key)

    def alone_on_its_line(self) -> bool:
        """The setting is the only thing on its line (a comment aside), and YAML and sed count lines alike, so
        ``sed -i '<line>d'`` removes exactly it. Not so in a flow mapping (``{min_docker: "20.10", ...}``), for
        a value over several lines, or with a line break sed does not know (a lone CR, NEL, U+2028/U+2029)."""
        key, value = getattr(self.key, "start_mark", None), getattr(self.value, "end_mark", None)
        if key is None or value is None or key.line != value.line:
            return False
        lines = _sed_lines(self.text)
        if lines is None or key.line >= len(lines):
            return False
        row = lines[key.line].rstrip("\r")
        rest = row[value.column:].strip()
        if _ANCHOR.search(row[key.column:value.column]):
            return False  # it names an anchor that other settings may use (*t): removing it breaks the whole file
        return not row[:key.column].strip() and (not rest or rest.startswith("#"))

    def sed_delete(self) -> str:
        """``sed -i`` text that deletes the setting's line by its key: a fix is pasted later, maybe after another
        fix removed a line above it (two fixes from one file), and a bare ``<line>d`` would then delete the wrong
        setting. The only line that starts with the key is found wherever it is by then; of a key written twice,
        the line given, and only while it still starts with the key. "" when the key is not a plain word at the
        line's start (quoted, or characters sed's pattern would read): then the editor."""
        name, line = str(getattr(self.key, "value", "")), self.line
        lines = _sed_lines(self.text)
        if not line or lines is None or not _PLAIN_KEY.fullmatch(name) or \
                not re.match(rf"{re.escape(name)}[ \t]*:", lines[line - 1]):
            return ""
        if _keys_at_line_start(self.text)[name] == 1:  # the one line with that key: wherever it is by then
            return f"sed -i {shlex.quote(f'/^{name}[[:space:]]*:/d')}"  # the file: an absolute realpath
        return f"sed -i {shlex.quote(f'{line}{{/^{name}[[:space:]]*:/d;}}')}"


_ANCHOR = re.compile(r"(?:^|[\s:,\[{])&[^\s,\[\]{}]+")  # a YAML anchor (&name) in a setting's line
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # a key sed's pattern reads as written


@functools.lru_cache(maxsize=4)
def _keys_at_line_start(text: str) -> collections.Counter:
    """How many lines of ``text`` start with each plain key and a colon. Cached: once per file, not per setting."""
    return collections.Counter(m[1] for m in re.finditer(rf"^({_PLAIN_KEY.pattern})[ \t]*:", text, re.M))


@functools.lru_cache(maxsize=4)
def _sed_lines(text: str) -> tuple[str, ...] | None:
    """``text``'s lines as sed counts them, or None when it holds a line break sed does not know (a lone CR, NEL,
    U+2028/U+2029). Cached: a file of 20000 unknown settings asks once per setting (it was quadratic)."""
    if any(c in text.replace("\r\n", "\n") for c in "\r\x85\u2028\u2029"):
        return None
    return tuple(text.split("\n"))


def _threshold(name: str, value, default, where: _Where) -> ConfigProblem | None:
    """A workshop minimum (THRESHOLDS) set below the workshop's value, as a problem with its fix; else None."""
    if name not in THRESHOLDS:
        return None
    if name in VERSION_FIELDS:
        below = versions.at_least(value, default) is False
        shown, minimum = repr(value), repr(default)
    else:
        below = value < default
        shown, minimum = f"{value} ({_bytes(value)})", f"{default} ({_bytes(default)})"
    if not below:
        return None
    return ConfigProblem(
        where.source, where.line,
        f"{name}: {shown} is below the workshop's minimum {minimum}: a lab config may raise a minimum, never lower "
        "it (a host the workshop does not support would pass)", _raise_fix(name, default, where),
        f"the workshop's minimum {minimum} is used instead")


def _bytes(n: int) -> str:
    """A size as people write it: 8 GiB, 1 MiB, 1536 KiB."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def _raise_fix(name: str, default, where: _Where) -> str:
    """Remove the setting from the file read (a copy kept first), so the workshop's minimum applies; or, where
    that cannot be one exact command, open the file at its line. Raising it instead stays allowed (the note)."""
    wanted = f'"{default}"' if name in VERSION_FIELDS else str(default)
    return with_note(*_removal_steps(name, where, f"the workshop's minimum {wanted} applies"),
                     f"a stricter lab may set {name}: {wanted} or higher there instead")


# --- the one way a fix changes the lab config: remove a setting (cp + sed), or open the file at its line ----------

def _mine(path: str) -> bool:
    """This user may change ``path`` (an absolute path, links resolved) without sudo: sed -i writes a new file next
    to it, and the copy goes there too, so its folder counts as well; a file not there yet, its folder alone."""
    folder = os.access(os.path.dirname(path), os.W_OK | os.X_OK)
    return folder and (os.access(path, os.W_OK) or not os.path.lexists(path))


def edit_command(source: str, line: int | None = None) -> str:
    """The user's editor on the lab config ``source`` at ``line`` (``${EDITOR:-vi} +LINE PATH``; ``sudoedit PATH``
    where this user may not change it): what a fix runs where no exact command can make the change. The file it
    names is the one the link ``source`` leads to (sed -i would replace a link with a file; editors vary)."""
    path = os.path.realpath(source)
    if not _mine(path):
        return f"sudoedit {shlex.quote(path)}"
    return f"${{EDITOR:-vi}} {f'+{line} ' if line else ''}{shlex.quote(path)}"


def edit_fix(source: str, line: int | None, *notes: str) -> str:
    """:func:`edit_command`, what to change there after ``#`` (e.g. ``set node_image: ...``)."""
    return with_note(edit_command(source, line), *notes)


def edit_setting(source: str, name: str, *notes: str) -> str:
    """The editor on the lab config ``source`` at the line that sets ``name`` (read now; none when it is not
    written there once, e.g. a file still to be made), what to change after ``#``: for a verdict whose fix is a
    setting of the lab config (``set node_image: ...``)."""
    where = _written(source, name)
    return edit_fix(source, where.line if where else None, *notes)


def _removal_steps(name: str, where: _Where, applies: str) -> tuple[str, ...]:
    """(command, *notes) that remove setting ``name`` from the file (a copy kept first), so that ``applies`` (what
    the suite uses then); the editor at its line where sed cannot remove exactly it (:meth:`_Where.alone_on_its_line`).
    As a tuple: callers chain a rerun after the command and gather notes after one ``#``."""
    path = os.path.realpath(where.source)  # sed -i would replace a symlink with a file: edit the file it names
    delete = where.sed_delete() if where.line and where.alone_on_its_line() else ""
    if delete:
        steps = (f"cp -p {shlex.quote(path)} {shlex.quote(fsio.backup_name(path))}",
                 f"{delete} {shlex.quote(path)}")
        return (" && ".join(steps) if _mine(path) else SUDO.sudo(*steps),
                f"keeps a copy, then deletes line {where.line} ({name}) of the lab config, so {applies}")
    return edit_command(where.source, where.line), f"remove {name}{f' (line {where.line})' if where.line else ''}, " \
                                                   f"so {applies}"


def removal_steps(source: str, name: str, applies: str) -> tuple[str, ...]:
    """(command, *notes) that remove setting ``name`` from the lab config ``source`` as it is now
    (:func:`_removal_steps`; its line read when the fix is made, so it is the line the file has): for a verdict
    whose fix undoes a setting (docker_host naming an engine on another machine). A file that cannot be read or
    parsed, or that sets ``name`` more than once: the editor, with what to remove."""
    where = _written(source, name)
    if where is None:
        return edit_command(source), f"remove every {name} line, so {applies}"
    return _removal_steps(name, where, applies)


def _written(source: str, name: str) -> _Where | None:
    """Where the lab config ``source`` sets ``name`` (a top-level key, written once), or None."""
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    try:
        text = fsio.read_text(source, MAX_BYTES)
        root = fsio.compose_yaml(text, source)
    except (OSError, fsio.FileProblem, fsio.YamlError):
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    pairs = [(k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode) and str(k.value) == name]
    return _Where(source, text, *pairs[0]) if len(pairs) == 1 else None


WHOLE_FILE_DEFAULTS = "the file is not used: the documented defaults apply"
KEPT_AS_WRITTEN = "kept as written (a default would point the suite at another cluster): docker and kind refuse it"


def _default_used(default) -> str:
    shown = ", ".join(default) if isinstance(default, tuple) else default
    return f"the documented default {shown!r} is used instead" if shown != "" else "the documented default is used"


def _value_problem(name: str, value, default) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) for a well-typed value the suite cannot use, else None."""
    if isinstance(value, str) and "\0" in value or isinstance(value, tuple) and any("\0" in v for v in value):
        return ("expected no NUL character (no path or name can hold one), found one",
                f"set {name}: {fsio.shown(default, 80)}")
    if name in NUMBER_RANGES:
        low, high, unit = NUMBER_RANGES[name]
        if not math.isfinite(value) or not low <= value <= high:
            return (f"expected a finite number of {unit} from {_amount(low)} to {_amount(high)}, found "
                    f"{repr(value) if len(repr(value)) <= 20 else format(value, '.3g')}",
                    f"set {name}: {_amount(default)}")
    elif name in ABSOLUTE_PATH_FIELDS:
        return _path_problem(name, value, default) or _own_folder_problem(name, value, default)
    elif name in PATH_LISTS:
        if not value and name in NONEMPTY_PATH_LISTS:
            return ("expected at least one absolute path, found an empty list", f"set {name}: {list(default)}")
        for item in value:
            bad = _path_problem(name, item, default)
            if bad:
                return (f"entry {item!r}: {bad[0]}", bad[1])
    elif name in NAME_FIELDS:
        if not value or any(c.isspace() or ord(c) < 32 for c in value):
            return (f"expected a non-empty name without spaces or control characters, found {value!r}",
                    f"set {name}: {default!r}")
    elif name == "kind_binary":
        if not value:
            return ("expected a command name found on PATH (kind) or an absolute path, found ''",
                    f"set kind_binary: {default}")
        if os.sep in value and not os.path.isabs(value):
            return (f"expected a command name found on PATH (kind) or an absolute path, found {value!r} (module 1 "
                    "would run it relative to the folder pytest starts in)",
                    f"set kind_binary: {os.path.abspath(os.path.expanduser(value))}")
    elif name == "kind_config_path":
        if not value:
            return ("expected a path to the kind config file, found ''", f"set kind_config_path: {default}")
        why = system_place(value, shared=False)
        if why:  # the suite writes the file and its backups there
            return (f"{value!r} {why}: the suite writes the kind config and its backups there; expected a file "
                    f"of the lab's own ({OWN_FOLDER_PLACES}, or the project folder)",
                    f"set kind_config_path: {default}")
    elif name == "docker_host":
        bad = docker_endpoint.problem(value) if value else ""
        if bad:
            return (f"{value!r} is not a Docker endpoint the suite can use: {bad}",
                    f"set docker_host to your engine's address (e.g. {docker_endpoint.EXAMPLE}), or remove it to use "
                    "DOCKER_HOST or the default socket")
    elif name in VERSION_FIELDS:
        if not _VERSION.match(value) or versions.parse(value) is None:  # None: a part past 18 digits
            return (f"expected a version such as {default!r}, found {value!r}", f'set {name}: "{default}"')
    elif name == "cluster_name":
        if not _KIND_NAME.match(value):
            return (f"{value!r} is not a valid kind cluster name: lowercase letters, digits and '-', starting and "
                    "ending with a letter or digit, at most 49 characters (the node is <name>-control-plane, a "
                    "63-character host name)",
                    f"set cluster_name: {default}")
    elif name == "state_dir":
        return _own_folder_problem(name, value, default)
    return None


def _own_folder_problem(name: str, value: str, default: str) -> tuple[str, str] | None:
    """For an OWN_FOLDERS setting: '' or a system or shared folder, by any name (:func:`system_place`), is a
    problem; else None."""
    if name not in OWN_FOLDERS:
        return None
    if not value:
        return (f"'' is no folder: {OWN_FOLDERS[name]}; expected a folder of its own ({OWN_FOLDER_PLACES})",
                f"set {name}: {default}")
    why = system_place(value)
    if why:
        return (f"{value!r} {why}: {OWN_FOLDERS[name]}; expected a folder of its own ({OWN_FOLDER_PLACES})",
                f"set {name}: {default}")
    return None


def system_place(value: str, shared: bool = True) -> str:
    """Why the folder ``value`` (``~`` expanded) is a system folder, or with ``shared`` a shared one ("" when it is
    neither): how it is written (normalised) and where it leads (realpath) are both judged, so neither a ``..`` nor
    a link gets past."""
    written = os.path.normpath(os.path.expanduser(value))
    written = "/" + written.lstrip("/") if written.startswith("/") else written  # POSIX keeps a leading "//"
    homes = _own_homes()
    for path in dict.fromkeys((written, os.path.realpath(written))):
        shown = "" if path == value else f"({path}) "
        if any(path.startswith(h + "/") for h in homes):
            continue  # below the user's own home, wherever that is (a service account's /var/lib/jenkins)
        tree = next((t for t in SYSTEM_TREES if path == t or path.startswith(t + "/")), "")
        if tree and not USER_RUNTIME.match(path):
            return f"{shown}is {'' if path == tree else 'under '}{tree}, a system folder"
        if shared and (path in SHARED_DIRS or _home_folder(path)):
            return f"{shown}is a shared folder (a folder of its own below it is fine)"
    return ""


def _own_homes() -> tuple[str, ...]:
    """The running user's home, as written in $HOME and where it leads, when it is a folder of its own.

    WHY: the documented defaults (state_dir ~/.local/state/dra-labcheck) live below the home, and a service
    account's home is often under a system tree (/var/lib/jenkins): refusing them would fail the lab config check
    with a fix that names the same value. Not when the home is "/", a system tree or above one (HOME=/, /etc or
    /var for a daemon user): then "below the home" would admit system folders."""
    home = os.path.normpath(os.path.expanduser("~"))
    homes = tuple(dict.fromkeys((home, os.path.realpath(home))))
    if not all(os.path.isabs(h) for h in homes):
        return ()
    if any(h == "/" or t == h or t.startswith(h + "/") for h in homes for t in SYSTEM_TREES):
        return ()  # HOME=/, /etc or /var: below it lie system folders
    return homes


def _home_folder(path: str) -> bool:
    """A user's home folder: the user's own, or any folder right under /home."""
    return path == os.path.realpath(os.path.expanduser("~")) or os.path.dirname(path) == "/home"


def _amount(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


def _path_problem(name: str, value: str, default) -> tuple[str, str] | None:
    """An empty, relative or ``~`` path (the suite never expands ``~`` here: tools get the path as written)."""
    shown = fsio.shown(list(default) if isinstance(default, tuple) else default, 80)
    if not value:
        return ("expected an absolute path, found ''", f"set {name}: {shown}")
    if not os.path.isabs(value):
        return (f"expected an absolute path (starting with /), found {value!r}",
                f"set {name} to absolute paths, e.g. {os.path.abspath(os.path.expanduser(value))} (default {shown})")
    return None


def _cdi_folder_problems(cfg: LabConfig, source: str, lines: dict[str, int | None]) -> list[ConfigProblem]:
    """cdi_spec_path must be in the one host folder the kind config mounts into the node (labcheck.cdi.mounted_dir:
    the first of cdi_dirs that is not the node's own /var/run/cdi), or the spec --fix-host writes never reaches
    the node. The same folder by another name counts (/var/run is a link to /run on current distributions), as
    the CDI verdicts compare them (realpath)."""
    spec_dir = os.path.normpath(os.path.dirname(cfg.cdi_spec_path))
    mounted = cdi.mounted_dir(cfg.cdi_dirs)
    line = lines.get("cdi_spec_path") or lines.get("cdi_dirs")
    kept = "kept as written: the CDI checks fail until they agree"
    listed = ", ".join(map(repr, cfg.cdi_dirs))
    if not mounted:
        return [ConfigProblem(
            source, lines.get("cdi_dirs") or line,
            f"cdi_dirs ({listed}) lists only the node's own CDI folders ({', '.join(cdi.NODE_OWN_DIRS)}): the kind "
            f"config mounts no host folder at the node's {cdi.NODE_STATIC_DIR}, so no host spec reaches the node",
            edit_fix(source, lines.get("cdi_dirs") or line, f"set cdi_dirs: {[cdi.NODE_STATIC_DIR, *cfg.cdi_dirs]!r}"),
            kept)]
    if os.path.realpath(spec_dir) == os.path.realpath(mounted):
        return []
    searched = {os.path.realpath(d) for d in cfg.cdi_dirs}
    where = (f"which cdi_dirs ({listed}) does not list: the spec --fix-host writes there is never searched"
             if os.path.realpath(spec_dir) not in searched else
             f"but the kind config mounts only {mounted!r} (the first of cdi_dirs that is not the node's own "
             f"{' or '.join(cdi.NODE_OWN_DIRS)}) at the node's {cdi.NODE_STATIC_DIR}: the spec --fix-host writes "
             "there never reaches the node")
    movable = os.path.normpath(spec_dir) not in cdi.NODE_OWN_DIRS
    first = [spec_dir, *(d for d in cfg.cdi_dirs if os.path.realpath(d) != os.path.realpath(spec_dir))]
    return [ConfigProblem(
        source, line, f"cdi_spec_path: {cfg.cdi_spec_path!r} is in {spec_dir!r}, {where}",
        edit_fix(source, line, f"set cdi_spec_path: {os.path.join(mounted, 'nvidia.yaml')!r}"
                 + (f", or set cdi_dirs: {first!r} (the first is the one mounted)" if movable else "")), kept)]


def _cross_problems(cfg: LabConfig, source: str, lines: dict[str, int | None]) -> list[ConfigProblem]:
    """Settings each valid alone that cannot work together."""
    problems = _cdi_folder_problems(cfg, source, lines)
    if not cfg.cdi_spec_path.endswith(cdi.SPEC_SUFFIXES):
        problems.append(ConfigProblem(
            source, lines.get("cdi_spec_path"),
            f"cdi_spec_path: {cfg.cdi_spec_path!r} does not end in {', '.join(cdi.SPEC_SUFFIXES)}: CDI reads only "
            "such files, so the spec --fix-host writes there would never be used",
            edit_fix(source, lines.get("cdi_spec_path"),
                     f"set cdi_spec_path: {os.path.splitext(cfg.cdi_spec_path)[0]}.yaml"),
            "kept as written: the CDI checks fail until it is fixed"))
    return problems


def _kind(default) -> str:
    if isinstance(default, tuple):
        return "a list of strings"
    return {bool: "true or false", int: "a whole number", float: "a number"}.get(type(default), "a string")


def _coerce(value, default):
    if isinstance(default, tuple):
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError
        return value
    if isinstance(default, int | float) and not isinstance(default, bool) and isinstance(value, str):
        # YAML 1.1 reads 1.0e300 or 8e9 (no '+', no dot) as a string; Python reads them as the number they are
        value = float(value)  # ValueError for words; nan/inf strings reach the range check
        if isinstance(default, int):
            if not math.isfinite(value) or value != int(value):
                raise ValueError
            value = int(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TypeError
    return value
