"""Whether a Docker endpoint URL (lab config ``docker_host``, or DOCKER_HOST) can be used as written on Linux.

WHY its own check: the docker SDK refuses a malformed URL ("tcp://:abc", "garbage", "tcp://h:99999") before it
connects, and a check that then said "start Docker" sent the user to an engine that was running all along.
The syntax is the SDK's own (``docker.utils.parse_host``), so this can never disagree with what the probe does;
on top of it, the endpoints the SDK parses but cannot use here: ``npipe://`` (a Windows named pipe).
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

DEFAULT = "unix:///var/run/docker.sock"
EXAMPLE = "unix:///var/run/docker.sock, unix:///run/user/1000/docker.sock (rootless) or tcp://HOST:2376"
LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")


def problem(url: str) -> str:
    """What is wrong with ``url`` as a Docker endpoint on Linux, or "" when the SDK can try to connect to it."""
    if any(ord(c) < 32 or c == "\x7f" for c in url):
        return "it contains a control character"
    try:
        from docker import errors  # lazy: the docker SDK costs start-up (tests/test_startup.py)
        from docker.utils import parse_host
    except ImportError:  # pragma: no cover - a dependency of the package
        return ""
    try:
        parse_host(url)
    except (errors.DockerException, ValueError) as exc:
        return str(exc)
    if url.strip().lower().startswith("npipe:"):
        return "npipe:// is a Windows named pipe: Docker on Linux listens on a unix:// socket or tcp://"
    return ""


def remote_host(url: str) -> str:
    """The host of an engine on another machine (tcp://, http(s)://, ssh:// to a name that is not this one), or ""
    for an engine here (unix://, tcp://localhost) and for a URL that names no usable host."""
    parsed = urlparse(url)
    try:
        host = parsed.hostname or ""
    except ValueError:
        return ""
    return host if parsed.scheme in ("tcp", "http", "https", "ssh") and host not in LOCAL_HOSTS else ""


def unix_socket(url: str) -> str:
    """The socket of a ``unix://`` endpoint as an absolute path ("/var/run/docker.sock"), "" for any other."""
    path = url[len("unix://"):] if url.startswith("unix://") else ""
    return path if path.startswith("/") else ""


_USER_RUNTIME_SOCKET = re.compile(r"^(?:/var)?/run/user/([0-9]{1,10})/")


def rootless_uid(url: str) -> int | None:
    """The uid whose runtime folder holds the socket of a ``unix://`` endpoint (``/run/user/1000/docker.sock``:
    rootless Docker's, under ``$XDG_RUNTIME_DIR``), None for any other endpoint."""
    m = _USER_RUNTIME_SOCKET.match(unix_socket(url))
    return int(m[1]) if m else None


def ssh_login(url: str) -> tuple[str, ...]:
    """The ``ssh`` words that log in to the host of a remote engine (:func:`remote_host`), before the command to run
    there; () for an engine here. ``ssh://user@host:port`` gives its user and port; ``tcp://host:2376`` only the
    host (2376 is Docker's port, not ssh's). ``--`` ends the options: a host named ``-oProxyCommand=...`` stays a
    host. A password in the URL is never carried (labcheck.redact's rule: the user types their own)."""
    host = remote_host(url)
    if not host:
        return ()
    parsed = urlparse(url)
    try:
        port = parsed.port if parsed.scheme == "ssh" else None
    except ValueError:
        port = None
    user = parsed.username if parsed.scheme == "ssh" else None
    return ("ssh", *(("-p", str(port)) if port else ()), "--", f"{user}@{host}" if user else host)
