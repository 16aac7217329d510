"""Whether a Docker endpoint URL (lab config ``docker_host``, or DOCKER_HOST) can be used as written on Linux.

WHY its own check: the docker SDK refuses a malformed URL ("tcp://:abc", "garbage", "tcp://h:99999") before it
connects, and a check that then said "start Docker" sent the user to an engine that was running all along.
The syntax is the SDK's own (``docker.utils.parse_host``), so this can never disagree with what the probe does;
on top of it, the endpoints the SDK parses but cannot use here: ``npipe://`` (a Windows named pipe).

And whether the engine runs on this machine (:func:`remote_host`): the lab is this host's GPUs, driver and files,
so an engine elsewhere cannot prove it ready.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable
from urllib.parse import urlparse

from labcheck import fsio

DEFAULT = "unix:///var/run/docker.sock"
EXAMPLE = "unix:///var/run/docker.sock, unix:///run/user/1000/docker.sock (rootless) or tcp://HOST:2376"
# Endpoints that connect to a host by name or address (the SDK makes http or https of tcp://); unix:// (the SDK's
# http+unix) and npipe:// name no host.
NETWORK_SCHEMES = ("tcp", "http", "https", "ssh")
# Names of this machine's loopback in /etc/hosts (Debian's ip6-*, Red Hat's localhost.localdomain) and RFC 6761's
# "localhost." zone, which resolvers answer with loopback.
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
# A host may bind any address when these are 1 (keepalived, HAProxy hosts): then a bind proves nothing.
NONLOCAL_BIND = {4: "/proc/sys/net/ipv4/ip_nonlocal_bind", 6: "/proc/sys/net/ipv6/ip_nonlocal_bind"}
Addresses = Callable[[str], Iterable[str]]


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


def chosen(docker_host: str) -> str:
    """The engine the suite talks to: the lab config's ``docker_host``, else DOCKER_HOST, else the default socket
    (the docker SDK's order; the docker CLI and kind read DOCKER_HOST the same way)."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT


def remote_host(url: str, addresses: Addresses | None = None) -> str:
    """The host of an engine on another machine, or "" for one on this machine (a unix:// socket, rootless ones
    included; tcp:// or ssh:// to a loopback or unspecified address, localhost, this machine's name or one of its
    addresses) and for a URL that names no host.

    WHY the SDK's reading of the URL (``parse_host``): "gpu-box:2375" with no scheme is tcp:// to gpu-box for the
    SDK, " TCP://h:1" is tcp:// too; reading the URL any other way would call such an engine local.
    ``addresses``: how a host name resolves (:func:`resolver`); a name every address of which is this machine's
    is this machine. Without it (a pure verdict) a name other than localhost or this machine's is another machine.
    """
    host = target_host(url)
    if not host or _local(host):
        return ""
    if addresses is not None and _address(host) is None:
        found = list(addresses(host))
        if found and all(_local(a) for a in found):
            return ""
    return host


def target_host(url: str) -> str:
    """The host name or address ``url`` connects to ("gpu-box", "10.0.0.5", "::1"); "" when it names no host (a unix
    socket, a pipe) or none can be read from it.

    Read as the SDK reads it (``parse_host``); a URL the SDK refuses (a password in it: "tcp://u:pw@gpu-box:2376")
    as written, since the docker CLI and kind (module 1) may still take it."""
    try:
        from docker import errors  # lazy: the docker SDK costs start-up (tests/test_startup.py)
        from docker.utils import parse_host
    except ImportError:  # pragma: no cover - a dependency of the package
        return ""
    text = url.strip()
    with contextlib.suppress(errors.DockerException, ValueError):
        text = parse_host(text)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in NETWORK_SCHEMES:
        return ""
    # the host is after the last "@" (a password may hold "/" or "@": tcp://admin:pa/ss@w0rd@HOST:9), before any path
    authority = rest.rpartition("@")[2].split("/", 1)[0]
    try:
        return urlparse(f"//{authority}").hostname or ""
    except ValueError:  # a bad port or bracket
        return ""


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address (an IPv4-mapped IPv6 address as its IPv4 one; a zone "%eth0" dropped), or None."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _local(host: str) -> bool:
    """``host`` is this machine: a loopback name or address, the unspecified address (a connect to 0.0.0.0 or ::
    reaches this machine), this machine's own name, or an address of one of its interfaces."""
    name = host.lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost") or name == socket.gethostname().lower():
        return True
    ip = _address(name)
    return ip is not None and (ip.is_loopback or ip.is_unspecified or _assigned_here(ip))


def _assigned_here(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` is an address of this machine: the kernel lets a socket bind only to its own addresses
    (EADDRNOTAVAIL otherwise), unless ip_nonlocal_bind lets it bind to any, when this says no."""
    try:
        if fsio.read_text(NONLOCAL_BIND[ip.version], 64).strip() != "0":
            return False
    except (OSError, ValueError, fsio.FileProblem):
        pass  # no such sysctl (not Linux, no /proc): binding decides
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((str(ip), 0))
    except OSError:
        return False
    return True


def resolver(timeout: float) -> Addresses:
    """The addresses a host name resolves to (getaddrinfo, as the SDK's connect does), at most ``timeout`` seconds:
    getaddrinfo has no timeout of its own and a dead DNS server would stall the check. None found: no addresses
    (the name counts as another machine)."""
    def addresses(host: str) -> list[str]:
        found: list[str] = []

        def lookup() -> None:
            with contextlib.suppress(OSError, UnicodeError):
                found.extend(str(info[4][0]) for info in socket.getaddrinfo(host, None))

        worker = threading.Thread(target=lookup, name="labcheck-resolve", daemon=True)
        worker.start()
        worker.join(timeout)
        return [] if worker.is_alive() else found
    return addresses


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
