"""Read the real captures in tests/data (copied from ../shared/real-captures).

Each ``.txt`` holds one or more blocks: a ``$ command`` line, the output, and ``[exit N]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"
_EXIT = re.compile(r"^\[exit (\d+)\]$")


@dataclass(frozen=True)
class Capture:
    command: str
    output: str
    rc: int | None


def blocks(relpath: str) -> list[Capture]:
    out: list[Capture] = []
    cmd, lines = None, []
    for line in (DATA / relpath).read_text().splitlines():
        if line.startswith("$ "):
            if cmd is not None:
                out.append(Capture(cmd, "\n".join(lines), None))
            cmd, lines = line[2:], []
        elif (m := _EXIT.match(line)) and cmd is not None:
            out.append(Capture(cmd, "\n".join(lines), int(m.group(1))))
            cmd, lines = None, []
        else:
            lines.append(line)
    if cmd is not None:
        out.append(Capture(cmd, "\n".join(lines), None))
    return out


def first(relpath: str) -> Capture:
    return blocks(relpath)[0]


def text(relpath: str) -> str:
    return (DATA / relpath).read_text()
