"""The one ``nvidia-ctk runtime configure`` command that registers the NVIDIA runtime in Docker.

Its flags, from NVIDIA's source (nvidia-container-toolkit cmd/nvidia-ctk/runtime/configure/configure.go; all
three exist since toolkit v1.11, older than the workshop's min_ctk 1.14):
``--runtime=docker`` (the engine whose config is edited), ``--config=PATH`` (the daemon.json to edit; default
/etc/docker/daemon.json) and ``--nvidia-runtime-name=NAME`` (the key under "runtimes"; default "nvidia").

WHY the names: the checks read the lab config's docker_daemon_json and docker_runtime_name; a fix that registered
"nvidia" in /etc/docker/daemon.json while they look for another name or file could never pass. A flag is left out
only where the configured value is nvidia-ctk's own default (then the command is NVIDIA's documented one, word for
word). The setup action runs :func:`argv`; every remediation pastes :func:`command`: the two cannot drift apart.
"""

from __future__ import annotations

from shlex import quote

DAEMON_JSON = "/etc/docker/daemon.json"
RUNTIME = "nvidia"


def argv(runtime: str = RUNTIME, daemon_json: str = DAEMON_JSON, ctk: str = "nvidia-ctk") -> list[str]:
    return [ctk, "runtime", "configure", "--runtime=docker",
            *([f"--config={daemon_json}"] if daemon_json != DAEMON_JSON else []),
            *([f"--nvidia-runtime-name={runtime}"] if runtime != RUNTIME else [])]


def command(runtime: str = RUNTIME, daemon_json: str = DAEMON_JSON, ctk: str = "nvidia-ctk") -> str:
    """:func:`argv` as shell text, each word quoted (a runtime name or path with a space or ``$`` stays one word)."""
    return " ".join(quote(a) for a in argv(runtime, daemon_json, ctk))
