"""The ``docker`` and ``kind`` command prefixes of every module 1 remediation, built from the lab config.

WHY one helper: the probes talk to the engine ``docker_host`` names (rootless Docker:
``unix:///run/user/1000/docker.sock``) and run the configured ``kind_binary``; a fix that said plain
``docker`` / ``kind`` would act on the default engine (or another kind) than the one that was checked.
kind drives the docker CLI, so its prefix carries DOCKER_HOST too. Credentials in a docker_host URL
are never written into a fix (labcheck.redact): the user fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from shlex import quote as sh

from labcheck.config import LabConfig
from labcheck.redact import scrub


@dataclass(frozen=True)
class Clis:
    """Shell text to start a pasted command with: ``docker``: e.g. ``DOCKER_HOST=... docker``; ``kind``: the
    configured binary, quoted, with the same DOCKER_HOST."""

    docker: str = "docker"
    kind: str = "kind"

    @classmethod
    def of(cls, cfg: LabConfig) -> Clis:
        env = f"DOCKER_HOST={sh(str(scrub(cfg.docker_host)))} " if cfg.docker_host else ""
        return cls(env + "docker", env + sh(cfg.kind_binary or "kind"))


DEFAULT = Clis()
