"""labcheck.fsio on real files: FIFOs, character devices, folders, symlinks, oversize and non-UTF-8 files,
alias bombs. A FIFO test runs the read in a child process with a timeout, so a regression hangs nothing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labcheck import fsio

BOMB = (  # 900 bytes that expand to 10**9 strings when walked
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if "labcheck-tmp" in n)


# --- reading -----------------------------------------------------------------------------------------

def test_read_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "lab.yaml"
    os.mkfifo(fifo)
    code = ("import sys; from labcheck import fsio\n"
            "try:\n    fsio.read_text(sys.argv[1])\nexcept fsio.FileProblem as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=20,
                         cwd=Path(__file__).resolve().parent.parent)
    assert f"{fifo}: is a FIFO (named pipe), not a regular file" in out.stdout


@pytest.mark.parametrize("path,words", [("/dev/null", "a character device"), ("/dev/zero", "a character device")])
def test_read_refuses_devices(path, words):
    with pytest.raises(fsio.FileProblem, match=words):
        fsio.read_text(path)


def test_read_refuses_a_folder_and_names_it(tmp_path):
    with pytest.raises(fsio.FileProblem) as exc:
        fsio.read_text(tmp_path)
    assert str(tmp_path) in str(exc.value) and "a folder" in str(exc.value)


def test_read_bounds_the_size(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2000)
    with pytest.raises(fsio.FileProblem, match="more than the 1000 bytes"):
        fsio.read_text(big, max_bytes=1000)
    assert fsio.read_text(big, max_bytes=2000) == "#" * 2000


def test_read_names_file_and_line_of_bytes_that_are_not_utf8(tmp_path):
    bad = tmp_path / "lab.yaml"
    bad.write_bytes(b"min_docker: '24.0'\nmin_helm: \xff\xfe\n")
    with pytest.raises(fsio.FileProblem) as exc:
        fsio.read_text(bad)
    assert str(exc.value).startswith(f"{bad}:2: is not UTF-8 text (byte 0xff")


def test_read_follows_a_symlink_and_missing_is_file_not_found(tmp_path):
    (tmp_path / "real").write_text("hi")
    (tmp_path / "link").symlink_to("real")
    assert fsio.read_text(tmp_path / "link") == "hi"
    with pytest.raises(FileNotFoundError):
        fsio.read_text(tmp_path / "absent")


# --- writing -----------------------------------------------------------------------------------------

def test_write_through_a_symlink_keeps_the_link_and_the_mode(tmp_path):
    real = tmp_path / "conf" / "daemon.json"
    real.parent.mkdir()
    real.write_text("{}")
    os.chmod(real, 0o640)
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    fsio.write_atomic(link, '{"a": 1}')
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == '{"a": 1}'
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert _leftovers(real.parent) == [] and _leftovers(tmp_path) == []


@pytest.mark.parametrize("make,words", [
    (lambda p: os.mkfifo(p), "a FIFO"),
    (lambda p: p.mkdir(), "a folder"),
    (lambda p: p.symlink_to(null_device(p.parent)), "a character device"),
    (lambda p: p.symlink_to(p.parent / "nowhere"), "does not exist"),
])
def test_write_refuses_what_is_not_a_regular_file(tmp_path, make, words):
    target = tmp_path / "out.json"
    make(target)
    before = os.lstat(target)
    with pytest.raises(fsio.FileProblem, match=words):
        fsio.write_atomic(target, "{}")
    after = os.lstat(target)
    assert (before.st_ino, before.st_mode) == (after.st_ino, after.st_mode)
    assert _leftovers(tmp_path) == []


def null_device(folder: Path) -> Path:
    """A private character device equal to /dev/null (major 1, minor 3), made with mknod (root only).

    WHY not /dev/null itself: a regression in the writer would replace the machine's /dev/null with a regular
    file for every process on it (that happened once while checking that these tests fail on the old code).
    """
    if os.geteuid() != 0:
        pytest.skip("making a character device (mknod) needs root; as root, /dev/null could be replaced")
    dev = folder / "null-device"
    if not dev.exists():
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return dev


def test_write_refuses_a_character_device_as_root(tmp_path):
    dev = null_device(tmp_path)
    before = os.stat(dev)
    with pytest.raises(fsio.FileProblem, match="a character device"):
        fsio.write_atomic(dev, "{}")
    assert stat.S_ISCHR(os.stat(dev).st_mode) and os.stat(dev).st_ino == before.st_ino
    assert _leftovers(tmp_path) == []


def test_write_new_file_gets_the_default_mode_and_failure_leaves_no_temp(tmp_path):
    out = tmp_path / "new.json"
    fsio.write_json(out, {"a": 1}, indent=2)
    assert json.loads(out.read_text()) == {"a": 1}
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 & ~_umask()

    with pytest.raises(TypeError):
        fsio.write_atomic(tmp_path / "x", 5)  # type: ignore[arg-type]  # fails while writing
    assert _leftovers(tmp_path) == []


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_backup_keeps_mode_and_never_reuses_a_name(tmp_path):
    f = tmp_path / "kind-config.yaml"
    f.write_text("user edit")
    os.chmod(f, 0o600)
    a, b = fsio.backup(f), fsio.backup(f)
    assert a != b
    for name in (a, b):
        assert Path(name).read_text() == "user edit" and stat.S_IMODE(os.stat(name).st_mode) == 0o600
    assert _leftovers(tmp_path) == []


# --- YAML --------------------------------------------------------------------------------------------

def test_a_900_byte_alias_bomb_fails_fast_with_a_clear_message():
    assert len(BOMB) < 1000
    t0 = time.monotonic()
    with pytest.raises(fsio.YamlError) as exc:
        fsio.load_yaml(BOMB, "lab.yaml")
    assert time.monotonic() - t0 < 2
    assert "lab.yaml:" in str(exc.value) and "alias bomb" in str(exc.value)


def test_recursive_alias_and_deep_nesting_are_yaml_errors():
    with pytest.raises(fsio.YamlError, match="recursive anchor"):
        fsio.load_yaml("a: &x [1, *x]\n", "s.yaml")
    with pytest.raises(fsio.YamlError, match="nested too deeply|not valid YAML"):
        fsio.load_yaml("[" * 5000 + "]" * 5000, "s.yaml")


def test_yaml_errors_name_file_and_line_and_ordinary_aliases_still_work():
    with pytest.raises(fsio.YamlError) as exc:
        fsio.load_yaml("a: 1\nb: [\n", "cfg.yaml")
    assert str(exc.value).startswith("cfg.yaml:3: not valid YAML")
    assert fsio.load_yaml("a: &x [1, 2]\nb: *x\n", "s") == {"a": [1, 2], "b": [1, 2]}


BAD_TAGGED_VALUES = [
    ("!!int 1e3", "'1e3' is not a whole number, which its tag !!int says it is"),
    ("!!int 0x", "'0x' is not a whole number"),
    ("!!float abc", "'abc' is not a number, which its tag !!float says it is"),
    ("!!bool maybe", "'maybe' is not true or false, which its tag !!bool says it is"),
    ("!!timestamp x", "'x' is not a date or time"),
    ("2001-13-40", "'2001-13-40' reads as a date or time but is not one the suite can read: quote it"),
    ("!!timestamp 2001-01-01T99:00:00", "'2001-01-01T99:00:00' reads as a date or time"),
    ("!!binary 'x'", "failed to decode base64 data"),  # PyYAML's own error already; kept as evidence
    ("9" * 5000, "(5000 characters) reads as a whole number but is not one the suite can read: quote it"),
    ("!!int " + "9" * 5000, "(5000 characters) reads as a whole number"),
]


@pytest.mark.parametrize("value,words", BAD_TAGGED_VALUES, ids=[v[:24] for v, _ in BAD_TAGGED_VALUES])
def test_a_value_its_tag_cannot_read_is_a_yaml_error_at_its_line(value, words):
    """PyYAML's constructors raise ValueError, KeyError or AttributeError (no line) for these: each was a crash of
    the lab config and kind config checks. Now a YamlError at the value's own line, however deep."""
    with pytest.raises(fsio.YamlError) as exc:
        fsio.load_yaml(f"a: 1\nb:\n  c:\n  - {value}\n", "cfg.yaml")
    assert exc.value.line == 4 and words in exc.value.problem, exc.value
    assert str(exc.value).startswith("cfg.yaml:4: not valid YAML: ")


def test_compose_keeps_the_source_text_of_scalars():
    node = fsio.compose_yaml("min_helm: 3.10\n", "lab.yaml")
    assert node.value[0][1].value == "3.10"
    assert fsio.construct_yaml(node, "lab.yaml") == {"min_helm": 3.1}


def test_json_error_names_file_line_and_column():
    with pytest.raises(json.JSONDecodeError) as exc:
        json.loads('{\n  "a": 1,\n}')
    assert str(fsio.json_error(exc.value, "/etc/docker/daemon.json")).startswith("/etc/docker/daemon.json:3:1: "
                                                                                 "not valid JSON")


# --- values in messages ----------------------------------------------------------------------------------------
# fsio.shown is the one way a value read from a file or printed by a tool enters a message (it replaced
# containerd.shown, cdi._shown and config._shown, and the ad-hoc cuts of probes, verdicts and setup actions).

HOSTILE_TEXTS = ["a\nb", "a\rb", "\x1b[2J\x1b[31mred", "nul\x00", "tab\there", "line\u2028sep", "next\x85line",
                 "\x7f", "x\n" * 500]


def test_shown_is_the_repr_by_default_so_a_string_and_a_number_stay_told_apart():
    assert [fsio.shown(v) for v in ("1", 1, None, True, 1.5, ["a", 2], {"k": "v"})] == \
        ["'1'", "1", "None", "True", "1.5", "['a', 2]", "{'k': 'v'}"]


def test_shown_bare_shows_a_printable_string_as_itself_and_anything_else_as_its_repr():
    """containerd's settings read as their TOML wrote them (enable_cdi = yes); a value with a control character,
    or one that is no string, is still told by its repr."""
    assert fsio.shown("/etc/cdi", bare=True) == "/etc/cdi"
    assert fsio.shown("it's ok é", bare=True) == "it's ok é"
    assert fsio.shown("a\tb", bare=True) == "'a\\tb'"
    assert [fsio.shown(v, bare=True) for v in (5, True, ["/etc/cdi"])] == ["5", "True", "['/etc/cdi']"]


def test_shown_kinds_names_a_list_or_mapping_instead_of_its_contents():
    """A CDI field that wanted a number and holds a list says "found a list": its contents are no help there."""
    assert [fsio.shown(v, kinds=True) for v in ([1, 2], (), {"a": [1]}, {})] == \
        ["a list", "a list", "a mapping", "a mapping"]
    assert [fsio.shown(v, kinds=True) for v in ("5s", 1.5, True, None)] == ["'5s'", "1.5", "True", "None"]


@pytest.mark.parametrize("bare", [False, True], ids=["repr", "bare"])
@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=[ascii(t)[:14] for t in HOSTILE_TEXTS])
def test_shown_never_lets_a_control_character_through_raw(text, bare):
    """A newline would split the message, an escape sequence would repaint the terminal: every one is escaped,
    in a string, in a list, cut or not."""
    for value in (text, [text], {"k": text}):
        got = fsio.shown(value, 40, bare=bare)
        assert got.isprintable(), got


def test_shown_cuts_a_long_value_and_says_how_long_it_was():
    """A value read from a file can be a line of megabytes: cut near ``limit``, with the length of the whole (the
    string's own length, what a reader can look for; the repr's for another value)."""
    assert fsio.shown("x" * 60) == repr("x" * 60)[:45] + "... (60 characters)"
    assert fsio.shown("x" * 1000, 60) == "'" + "x" * 44 + "... (1000 characters)"
    assert fsio.shown("x" * 1000, 60, bare=True) == "x" * 45 + "... (1000 characters)"
    assert fsio.shown(list(range(500)), 40) == repr(list(range(500)))[:25] + f"... ({len(repr(list(range(500))))} " \
                                                                              "characters)"
    assert fsio.shown("x" * 58) == repr("x" * 58)  # exactly the limit: whole
    for limit in (40, 60, 120, 200):
        assert len(fsio.shown("y" * 4_000_000, limit)) <= limit + 10
