"""What a setup action's ``apply`` did, as data the fixtures hand to the checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """``ok``: the host is now as the action wants it; ``changed``: this run changed it.

    A failed outcome carries the exact command a person can run instead (e.g. the one that needs root).
    """

    ok: bool
    changed: bool
    message: str
    remediation: str = ""
