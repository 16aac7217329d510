"""The command prefixes of every module 1 remediation: ``docker``, ``kind``, ``kubectl`` and the suite itself.

WHY one helper: the probes talk to the engine ``docker_host`` names (rootless Docker:
``unix:///run/user/1000/docker.sock``) and run the configured ``kind_binary``; a fix that said plain
``docker`` / ``kind`` would act on the default engine (or another kind) than the one that was checked.
kind drives the docker CLI, so its prefix carries DOCKER_HOST too. Credentials in a docker_host URL
are never written into a fix (labcheck.redact): the user fills them in. A plain ``kubectl`` acts on the
user's current context, which may be another cluster, and ``kubectl --context kind-<cluster_name>`` fails where
that context is not in the user's kubeconfig (kind writes it only at ``kind create``, into the kubeconfig of
that moment; ``KUBECONFIG`` may name another file now): :meth:`Clis.kubectl` hands kubectl the kubeconfig
``kind get kubeconfig`` prints for the configured cluster. "Run the suite again" is
:class:`labcheck.rerun.Rerun` (this interpreter, the run's lab config and folder), never a bare ``pytest tests_env``.
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
    (``rerun.provision()``, ``rerun.again(...)``). kubectl's is :meth:`kubectl`, from the verdict's cluster."""

    docker: str = "docker"
    kind: str = "kind"
    rerun: Rerun = DEFAULT_RERUN

    @classmethod
    def of(cls, cfg: LabConfig, rerun: Rerun = DEFAULT_RERUN) -> Clis:
        """``rerun``: this run's (labcheck.rerun.of(pytest's config)); the default is for pure unit tests."""
        env = f"DOCKER_HOST={sh(str(scrub(cfg.docker_host)))} " if cfg.docker_host else ""
        return cls(env + "docker", env + sh(cfg.kind_binary or "kind"), rerun)

    def kubectl(self, cluster: str, args: str) -> str:
        """``kubectl ARGS`` (shell text, already quoted) against ``cluster``, with the kubeconfig kind prints for it,
        in a private temporary file removed when the command ends: ``( ... )``, one command for ``&&`` and ``|``.

        WHY a file: client-go reads a kubeconfig more than once, so ``--kubeconfig <(kind get kubeconfig ...)`` (or
        /dev/stdin) finds it empty the second time and falls back to localhost:8080 (tried: kubectl 1.32). WHY not
        ``kind export kubeconfig``: it rewrites the user's kubeconfig and switches its current context. mktemp makes
        the file 0600 (it holds the cluster's client key); the EXIT trap removes it, also when kind or kubectl
        fails. Tried in bash and dash (sh)."""
        return (f"(kc=$(mktemp) && trap 'rm -f -- \"$kc\"' EXIT && {self.kind} get kubeconfig --name {sh(cluster)} "
                f">\"$kc\" && kubectl --kubeconfig \"$kc\" {args})")


DEFAULT = Clis()
