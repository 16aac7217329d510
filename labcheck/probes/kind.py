"""The kind CLI, called with argument lists and timeouts (never through a shell).

``kind get kubeconfig`` prints credentials: its stdout is returned to the caller only, and never
put into a message (CmdResult.describe() of a failed call shows stderr's last line only).
"""

from __future__ import annotations

from labcheck import cmd
from labcheck.probes.node import docker_run

# Every call takes ``docker_host`` (the lab config's): kind drives the docker CLI, which reads DOCKER_HOST; each goes
# through docker_run, which runs none against an engine on another machine.


def get_clusters(kind: str = "kind", timeout: float = 30.0, *, docker_host: str = ""
                 ) -> tuple[list[str], cmd.CmdResult]:
    res = docker_run([kind, "get", "clusters"], timeout=timeout, docker_host=docker_host)
    names = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()] if res.ok else []
    return names, res


def create(name: str, config: str, image: str, *, kind: str = "kind", timeout: float = 600.0,
           docker_host: str = "") -> cmd.CmdResult:
    wait = max(int(timeout) - 30, 30)
    return docker_run([kind, "create", "cluster", "--name", name, "--config", config, "--image", image,
                       "--wait", f"{wait}s"], timeout=timeout, docker_host=docker_host)


def delete(name: str, *, kind: str = "kind", timeout: float = 120.0, docker_host: str = "") -> cmd.CmdResult:
    return docker_run([kind, "delete", "cluster", "--name", name], timeout=timeout, docker_host=docker_host)


def kubeconfig(name: str, *, kind: str = "kind", timeout: float = 30.0, docker_host: str = "") -> cmd.CmdResult:
    return docker_run([kind, "get", "kubeconfig", "--name", name], timeout=timeout, docker_host=docker_host)


def safe_error(res: cmd.CmdResult) -> str:
    """A one-line reason for a failed kind call, from stderr only (stdout may hold a kubeconfig)."""
    if res.rc is None:  # it never finished: missing, hung, could not start, printed too much
        return res.describe()
    lines = [ln.strip() for ln in res.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "rror" in ln]
    tail = (errors or lines or ["no error output"])[-1]
    return f"`{' '.join(res.argv[:3])} ...` exited {res.rc}: {tail}"
