"""The verdict a check reaches: pure data, produced by pure functions over probed facts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["pass", "fail", "warn", "skip"]


@dataclass(frozen=True)
class Verdict:
    """``remediation`` is the exact command (or step) that fixes a failure; required for fail."""

    status: Status
    message: str
    remediation: str = ""
    details: str = ""

    def __post_init__(self) -> None:
        if self.status == "fail" and not self.remediation:
            raise ValueError(f"a failing verdict needs a remediation: {self.message!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def passed(message: str, details: str = "") -> Verdict:
    return Verdict("pass", message, details=details)


def failed(message: str, remediation: str, details: str = "") -> Verdict:
    return Verdict("fail", message, remediation, details)


def warned(message: str, remediation: str = "", details: str = "") -> Verdict:
    return Verdict("warn", message, remediation, details)


def skipped(message: str) -> Verdict:
    return Verdict("skip", message)
