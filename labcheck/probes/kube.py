"""Ask the cluster's API server (kubernetes client, kubeconfig from ``kind get kubeconfig``).

The kubernetes package is imported here, lazily, only by the checks that need the API: the rest of
module 1 runs without it. The kubeconfig holds credentials: it is written to a private file (0600)
for the client, deleted afterwards, and no message built here contains any part of it.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass, field
from urllib.parse import urlparse


@dataclass(frozen=True)
class ApiFacts:
    server: str = ""  # the API server URL (not a secret)
    reachable: bool = False
    error: str = ""
    node_found: bool = False
    node_ready: bool | None = None
    ready_message: str = ""
    resource_versions: tuple[str, ...] = field(default=())
    # Something accepted the connection but the API requests failed (an error status, TLS, a dead apiserver
    # behind the port): evidence of a broken cluster, not a missing prerequisite.
    api_error: bool = False
    node_labels: dict = field(default_factory=dict)  # the node's Kubernetes labels (kind sets nodes[].labels there)
    kubeconfig_error: str = ""  # `kind get kubeconfig` failed: no API to ask (stdout, the secret, never kept)


def server_of(kubeconfig_text: str) -> str:
    import yaml  # lazy: PyYAML only where YAML is read or written, not at start-up (tests/test_startup.py)

    try:
        doc = yaml.safe_load(kubeconfig_text)
        return str(doc["clusters"][0]["cluster"]["server"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return ""


def redact(message: str, secret_text: str) -> str:
    """Remove any long piece of the kubeconfig from ``message`` (client errors may echo config values)."""
    for line in secret_text.splitlines():
        for piece in line.split():
            if len(piece) >= 16 and piece in message and not piece.startswith(("https://", "http://")):
                message = message.replace(piece, "<redacted>")
    return message


def tcp_answers(url: str, timeout: float) -> str:
    """'' when something accepts TCP connections at the server's host:port, else why not."""
    u = urlparse(url)
    if not u.hostname:
        return f"no API server address in the kubeconfig ({url!r})"
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname, port), timeout=timeout):
            return ""
    except OSError as exc:
        return f"no API server answers at {u.hostname}:{port} ({exc.strerror or exc})"


def api_facts(kubeconfig_text: str, node_name: str, timeout: float = 10.0) -> ApiFacts:
    server = server_of(kubeconfig_text)
    why = tcp_answers(server, timeout) if server else "the kubeconfig names no API server"
    if why:
        return ApiFacts(server, False, why)
    try:
        from kubernetes import client, config  # lazy: heavy, and only module 1's API checks need it
    except ImportError:
        return ApiFacts(server, False, "the kubernetes Python client is not installed: pip install kubernetes")
    fd, path = tempfile.mkstemp(prefix="labcheck-kubeconfig-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(kubeconfig_text)
        os.chmod(path, 0o600)
        try:
            api = config.new_client_from_config(config_file=path)
            groups = client.ApisApi(api).get_api_versions(_request_timeout=timeout)
            versions = tuple(v.version for g in groups.groups if g.name == "resource.k8s.io" for v in g.versions)
            node_found, ready, msg, labels = False, None, "", {}
            for n in client.CoreV1Api(api).list_node(_request_timeout=timeout).items:
                if n.metadata.name == node_name:
                    node_found = True
                    labels = dict(n.metadata.labels or {})
                    cond = next((c for c in n.status.conditions or [] if c.type == "Ready"), None)
                    ready = cond is not None and cond.status == "True"
                    msg = f"{cond.reason}: {cond.message}" if cond is not None else "no Ready condition"
            return ApiFacts(server, True, "", node_found, ready, msg, versions, node_labels=labels)
        except Exception as exc:  # the client raises ApiException, urllib3 and config errors
            return ApiFacts(server, False, redact(f"{type(exc).__name__}: {exc}", kubeconfig_text)[:300],
                            api_error=True)
    finally:
        os.unlink(path)
