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

from labcheck import fsio


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
    # kind gave a kubeconfig, but no API can be asked with it (why: a server URL that names no usable address,
    # wrong YAML types, one the kubernetes client cannot load); no value of it is quoted but the server URL
    kubeconfig_unusable: str = ""


def server_of(kubeconfig_text: str) -> tuple[str, str]:
    """(the first cluster's server URL, '') or ('', why the kubeconfig names none). Quotes no value of the
    kubeconfig (it holds credentials): a YAML error is reported by its position only."""
    try:
        doc = fsio.load_yaml(kubeconfig_text, "kubeconfig")  # the one YAML reader (bounded aliases and nesting)
    except fsio.YamlError as exc:
        return "", f"it is not valid YAML{f' (line {exc.line})' if exc.line else ''}"
    clusters = doc.get("clusters") if isinstance(doc, dict) else None
    first = clusters[0] if isinstance(clusters, list) and clusters else None
    cluster = first.get("cluster") if isinstance(first, dict) else None
    server = cluster.get("server") if isinstance(cluster, dict) else None
    if not isinstance(server, str) or not server.strip():
        return "", "it has no clusters[0].cluster.server (a mapping holding a URL string was expected)"
    return server.strip(), ""


def address_of(url: str) -> tuple[str, int, str]:
    """(host, port, '') of an http(s) API server URL, or ('', 0, why it names no address a connection can be made
    to): a bad port, a broken IPv6 literal, a host name that cannot be looked up (IDNA: a label over 63 characters).
    """
    shown = fsio.shown(url, 120)
    try:
        u = urlparse(url)
        host, port = u.hostname, u.port
        if host:
            host.encode("idna")  # what the socket module does to a name before looking it up
    except ValueError as exc:  # urllib's "Port out of range", "Invalid IPv6 URL"; UnicodeError (idna) is one too
        return "", 0, f"its server URL {shown} is not usable: {exc}"
    if u.scheme not in ("https", "http"):
        return "", 0, f"its server URL {shown} is not an http(s) URL"
    if not host:
        return "", 0, f"its server URL {shown} names no host"
    return host, port if port is not None else (443 if u.scheme == "https" else 80), ""


def redact(message: str, secret_text: str) -> str:
    """Remove any long piece of the kubeconfig from ``message`` (client errors may echo config values)."""
    for line in secret_text.splitlines():
        for piece in line.split():
            if len(piece) >= 16 and piece in message and not piece.startswith(("https://", "http://")):
                message = message.replace(piece, "<redacted>")
    return message


def tcp_answers(host: str, port: int, timeout: float) -> str:
    """'' when something accepts TCP connections at host:port, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    except OSError as exc:
        return f"no API server answers at {host}:{port} ({exc.strerror or exc})"
    except ValueError as exc:  # a name address_of let through that the resolver still refuses
        return f"{host!r} cannot be looked up: {exc}"


def _unusable(server: str, why: str) -> ApiFacts:
    return ApiFacts(server, False, f"the kubeconfig kind gives is not usable: {why}", kubeconfig_unusable=why)


def api_facts(kubeconfig_text: str, node_name: str, timeout: float = 10.0) -> ApiFacts:
    server, why = server_of(kubeconfig_text)
    host, port, why = ("", 0, why) if why else address_of(server)
    if why:
        return _unusable(server, why)
    why = tcp_answers(host, port, timeout)
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
        except Exception as exc:  # the client's ConfigException, or a TypeError on a value of the wrong YAML type
            return _unusable(server, redact(f"the kubernetes client cannot load it: {type(exc).__name__}: {exc}",
                                            kubeconfig_text)[:300])
        try:
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
