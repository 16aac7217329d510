"""Read a printed remediation as the shell a user pastes it into reads it.

WHY bash itself: a fix that "looks like" a command can still be prose that bash accepts (``then: nvidia-ctk ...``
became arguments of ``apt-get install``) or a syntax error (``kill -HUP 1  (dockerd ...)``). ``bash -n`` says
whether it parses; :func:`commands` says which words each simple command gets (shlex with bash's operators, the
comment dropped), so a test can check that a configured path is one word where it belongs.
"""

from __future__ import annotations

import shlex
import subprocess


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

