"""Read a printed remediation as the shell a user pastes it into reads it.

WHY bash itself: a fix that "looks like" a command can still be prose that bash accepts (``then: nvidia-ctk ...``
became arguments of ``apt-get install``) or a syntax error (``kill -HUP 1  (dockerd ...)``). ``bash -n`` says
whether it parses; :func:`commands` says which words each simple command gets (shlex with bash's operators, the
comment dropped), so a test can check that a configured path is one word where it belongs. :func:`ran` asks
bash itself which commands a fix runs (a dry run: nothing runs for real), for hostile values that must stay in
their quotes or notes; :func:`unquoted_controls` finds control characters a terminal could act on.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path


def parses(fix: str) -> bool:
    """``bash -n`` accepts ``fix`` (reads it, runs nothing)."""
    return subprocess.run(["bash", "-n", "-c", fix], capture_output=True, timeout=10).returncode == 0


def commands(fix: str) -> list[list[str]]:
    """The simple commands of ``fix`` (split at ``&&``, ``||``, ``;``, ``|``, ``&``), each as its words; the
    comment after ``#`` dropped. Words only: a test of where a value lands, not a shell."""
    lex = shlex.shlex(fix, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    lex.commenters = "#"
    out: list[list[str]] = [[]]
    for word in lex:
        if word and set(word) <= set(";&|"):
            out.append([])
        else:
            out[-1].append(word)
    return [c for c in out if c]




# Each record (argc, then argv, NUL-separated) is a file of its own in $__RECORDS, named by the time it was made and
# the recording process (the commands of a pipeline record at the same time). The fix's own output goes nowhere.
# Every builtin becomes a recorder (but ``builtin``, which the recorders use), and PATH names no folder: every
# program is "not found", and bash hands it to command_not_found_handle, which records it. $(mktemp) prints
# /dev/null, so a redirection to its file goes nowhere. __RC: what each recorded command returns (0 walks the &&
# side, 1 the || side).
_DRY_PRELUDE = r"""exec >/dev/null 2>&1 </dev/null
__rec() { builtin printf '%s\0' "$#" "$@" >"$__RECORDS/$EPOCHREALTIME.$BASHPID"; (( __RC == 0 )); }
command_not_found_handle() { __rec "$@"; [[ $1 == mktemp ]] && builtin printf '/dev/null\n'; (( __RC == 0 )); }
for __b in $(builtin compgen -b); do
  [[ $__b == builtin ]] || builtin eval "function $__b { __rec $__b \"\$@\"; }"
done
PATH=/nonexistent-labcheck-dry-run
"""


def ran(fix: str, rc: int = 0, cwd: str = "/") -> list[list[str]]:
    """The commands bash runs for ``fix``, each as its argv after expansion, in order; none is run for real.

    WHY bash itself: a pasted fix is read by bash, so what it runs is bash's answer, not a tokenizer's guess: a
    newline in a value that ends a comment, ``$(...)`` in double quotes, a ``;`` in an unquoted word all show up
    here as commands, also inside ``$(...)``, pipelines and subshells. Each builtin (cd, kill, echo, trap, exit ...)
    is a recording function and PATH holds no program, so only recorders run. ``rc``: what each recorded command
    returns; run with 0 and with 1 to walk both sides of ``&&`` and ``||``. ``cwd``: where a stray output
    redirection would land.

    A program named by a path (a word with '/') is neither looked up nor recorded: bash runs the file itself. So a
    test names its programs (kind_binary, the rerun's python) without '/', and a fix naming a program that exists
    here by its path is refused (it would run for real, with an empty PATH).
    """
    try:
        words = [w for c in commands(fix) for w in c]
    except ValueError:  # shlex cannot read it (a quote a newline left open): every word, comments included
        words = fix.split()
    real = [w for w in words if "/" in w and os.path.isfile(w) and os.access(w, os.X_OK)]
    assert not real, f"the dry run would run {real} for real: {fix}"
    with tempfile.TemporaryDirectory(prefix="labcheck-dry-run-") as records:
        subprocess.run(["/bin/bash", "--norc", "--noprofile", "-c", f"{_DRY_PRELUDE}__RC={int(rc)}\n{fix}\n"],
                       env={"HOME": "/nonexistent-labcheck-home", "LC_ALL": "C.UTF-8", "__RECORDS": records},
                       cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        names = sorted(os.listdir(records), key=lambda n: float(n.rsplit(".", 1)[0]))
        fields = [Path(records, n).read_bytes().decode("utf-8", "surrogateescape").split("\0") for n in names]
    return [f[1:1 + int(f[0])] for f in fields]


def unquoted_controls(fix: str) -> str:
    """The characters of ``fix`` that are not printable and stand outside single or double quotes (in a comment
    after ``#`` too, whatever quotes it holds): '' when there is none.

    WHY: in quotes bash takes a newline or an escape character as part of the word; anywhere else a newline ends
    the comment or the command, and a terminal may act on a carriage return or an escape sequence as it is pasted.
    """
    found, quote, comment, prev = [], "", False, " "
    for c in fix:
        if comment:
            comment = c != "\n"
            if not c.isprintable():
                found.append(c)
        elif quote:
            quote = "" if c == quote and not (quote == '"' and prev == "\\") else quote
        elif c in "'\"" and prev != "\\":
            quote = c
        elif c == "#" and (prev.isspace() or prev in ";&|()"):
            comment = True
        elif not c.isprintable():
            found.append(c)
        prev = c
    return "".join(found)


def sed_delete(line: int | None, key: str, path) -> str:
    """How a lab config fix deletes a setting's line: the one line that starts with the key (``line`` None), or,
    for a key written twice, line ``line`` only while it still starts with the key."""
    where = f"{line}{{/^{key}[[:space:]]*:/d;}}" if line else f"/^{key}[[:space:]]*:/d"
    return f"sed -i '{where}' {path}"
