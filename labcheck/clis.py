"""The command prefixes of every module 1 remediation: ``docker``, ``kind``, ``kubectl`` and the suite itself.

WHY one helper: the probes talk to the engine ``docker_host`` names (rootless Docker:
``unix:///run/user/1000/docker.sock``) and run the configured ``kind_binary``; a fix that said plain
``docker`` / ``kind`` would act on the default engine (or another kind) than the one that was checked.
kind drives the docker CLI, so its prefix carries DOCKER_HOST too. Credentials in a docker_host URL
are never written into a fix (labcheck.redact): the user fills them in. A plain ``kubectl`` acts on the
user's current context, which may be another cluster: ``kubectl --context kind-<cluster_name>`` is the
context kind writes for the configured cluster. "Run the suite again" is :class:`labcheck.rerun.Rerun`
(this interpreter, the run's lab config and folder), never a bare ``pytest tests_env``.
"""

from __future__ import annotations

from dataclasses import dataclass
from shlex import quote as sh

from labcheck.config import LabConfig
from labcheck.redact import scrub
from labcheck.rerun import DEFAULT as DEFAULT_RERUN
from labcheck.rerun import Rerun


@dataclass(frozen=True)
class Clis:
    """Shell text to start a pasted command with: ``docker``: e.g. ``DOCKER_HOST=... docker``; ``kind``: the
    configured binary, quoted, with the same DOCKER_HOST; ``rerun``: how to run this suite again
    (``rerun.provision()``, ``rerun.again(...)``). kubectl's is :func:`kubectl`, from the verdict's cluster."""

    docker: str = "docker"
    kind: str = "kind"
    rerun: Rerun = DEFAULT_RERUN

    @classmethod
    def of(cls, cfg: LabConfig, rerun: Rerun = DEFAULT_RERUN) -> Clis:
        """``rerun``: this run's (labcheck.rerun.of(pytest's config)); the default is for pure unit tests."""
        env = f"DOCKER_HOST={sh(str(scrub(cfg.docker_host)))} " if cfg.docker_host else ""
        return cls(env + "docker", env + sh(cfg.kind_binary or "kind"), rerun)


def kubectl(cluster: str) -> str:
    """``kubectl --context kind-<cluster>``, quoted: the context ``kind create cluster`` writes for it."""
    return f"kubectl --context {sh('kind-' + cluster)}"


DEFAULT = Clis()
