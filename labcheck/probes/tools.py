"""Find the workshop's command-line tools and ask each for its version (with a timeout)."""

from __future__ import annotations

from dataclasses import dataclass

from labcheck import cmd, versions

# What each tool is asked: the plain forms the tools document (no shell, no string-built commands).
VERSION_ARGS: dict[str, tuple[str, ...]] = {
    "kind": ("version",),  # "kind v0.24.0 go1.22.6 linux/amd64"
    "helm": ("version", "--template", "{{.Version}}"),  # "v3.16.2"
    "nvidia-ctk": ("--version",),  # "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: ..."
}


@dataclass(frozen=True)
class ToolFacts:
    name: str
    path: str | None
    result: cmd.CmdResult | None

    @property
    def version(self) -> str:
        """The first dotted version number in the tool's answer, or "" when there is none."""
        if self.result is None or not self.result.ok:
            return ""
        return versions.show(versions.parse(self.result.output)) if versions.parse(self.result.output) else ""


def probe_tool(name: str, extra_dirs: tuple[str, ...] = (), timeout: float = 30.0,
               args: tuple[str, ...] | None = None) -> ToolFacts:
    path = cmd.which(name, extra_dirs)
    if path is None:
        return ToolFacts(name, None, None)
    return ToolFacts(name, path, cmd.run([path, *(args if args is not None else VERSION_ARGS[name])],
                                         timeout=timeout))
