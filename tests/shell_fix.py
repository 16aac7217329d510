"""What a printed fix must be, read the way a shell reads it: tests of remediation text for hostile configured paths.

A fix is pasted into bash. So it must parse (``bash -n``), name each configured path as ONE word (quoted: a space,
quote, ``$`` or ``;`` in a path never splits it or runs anything), and never remove a folder it was given.
"""

from __future__ import annotations

import shlex
import subprocess

# Valid folder names a lab.yaml may hold, each a trap for a fix that pastes it unquoted: white space, both quotes,
# command substitution, a command separator, a glob, a newline. "HOSTILE" marks them in a fix's words.
HOSTILE_NAMES = ("HOSTILE my mps", "HOSTILE it's", 'HOSTILE "q" `id`', "HOSTILE $(touch pwned)", "HOSTILE a;rm -rf ~",
                 "HOSTILE *", "HOSTILE #not a note", "HOSTILE new\nline")
MARK = "HOSTILE"
SEPARATORS = {"&&", "||", ";", "|", "{", "}"}


def parses(fix: str) -> str:
    """'' when bash parses ``fix``; else bash's complaint."""
    res = subprocess.run(["bash", "-n"], input=fix, capture_output=True, text=True, timeout=10)
    return "" if res.returncode == 0 else res.stderr.strip() or f"bash -n exited {res.returncode}"


def words(fix: str) -> list[str]:
    """The words of ``fix`` as the shell splits them (quotes removed, ``;``, ``&&``, ``|`` ... words of their own,
    the note after ``#`` dropped)."""
    lex = shlex.shlex(fix, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


def marked_words(fix: str) -> list[str]:
    """The words that hold a hostile path (each must be a whole path, or ``NAME=path``)."""
    return [w for w in words(fix) if MARK in w]


def removed(fix: str) -> list[tuple[str, ...]]:
    """Each ``rm`` command's options and operands, up to the next separator."""
    out, ws = [], words(fix)
    for i, w in enumerate(ws):
        if w == "rm":
            args = []
            for a in ws[i + 1:]:
                if a in SEPARATORS:
                    break
                args.append(a)
            out.append(tuple(args))
    return out


def removes_folder(fix: str, *folders: str) -> bool:
    """Whether ``fix`` runs ``rm -r`` (any recursive rm) or names one of ``folders`` as an ``rm`` operand."""
    wanted = {f.rstrip("/") for f in folders}
    for args in removed(fix):
        if any(a.startswith("-") and a != "--" and ("r" in a or "R" in a) for a in args):
            return True
        if any(a.rstrip("/") in wanted for a in args):
            return True
    return False
