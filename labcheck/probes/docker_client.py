"""Connect to the Docker engine through the docker SDK, with a timeout, without raising.

Shared by the Docker checks (module 0) and the node checks (module 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Connection:
    client: Any | None  # docker.DockerClient when reachable
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.client is not None


def connect(timeout: float = 30.0, base_url: str | None = None) -> Connection:
    """A client that answered ``ping``, or the reason none could be had (DOCKER_HOST is honoured)."""
    try:
        import docker  # lazy: the docker SDK costs start-up (tests/test_startup.py); only engine probes need it
    except ImportError:  # pragma: no cover - a dependency of the package
        return Connection(None, "the docker Python SDK is not installed: pip install docker")
    try:
        client = docker.DockerClient(base_url=base_url, timeout=timeout) if base_url else \
            docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # docker raises DockerException, requests errors, OSError...
        return Connection(None, f"{type(exc).__name__}: {exc}")
    return Connection(client)
