"""What a setup action's ``apply`` did, as data the fixtures hand to the checks: the one outcome type of every
setup action (the Docker runtime, the CDI spec, the MPS daemon on the host and in the node, the node's loader
config, the kind config file, the Kind cluster).

WHY one type: the checks read the same few things of every action (did it work, what did it do, what should a
person run instead); one shape means one way to read them, and a fixture that turns a lock problem into an
outcome builds the same type as the action it guards.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """``ok``: the host is now as the action wants it (or the action found it so).

    ``action``: what the action did or found, in that action's words ("none", "reuse", "create", "repair",
    "start", "write", "generate", "update", "replace", "blocked", "locked", "error"; the Docker runtime's
    "nothing to do", "changed", "not run", "failed"); checks compare it with those literals.
    ``changed``: this run changed the host (created the cluster, started the daemon, wrote the file).
    ``remediation``: the exact command a person can run instead (e.g. the one that needs root), when not ok.
    ``backup``: where a file this run replaced was copied first (the check and the terminal name it).
    ``details``: more text for the check's details (the kind config's unified diff).
    """

    ok: bool
    action: str
    message: str
    remediation: str = ""
    changed: bool = False
    backup: str = ""
    details: str = ""

    def note(self) -> str:
        """One line for a verdict's details: what --fix-host did, and what to run when it could not."""
        text = f"--fix-host setup ({self.action}): {self.message}"
        if self.remediation:
            text += f"; run: {self.remediation}"
        return text
