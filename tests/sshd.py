"""Real OpenSSH servers on loopback ports, for testing the fleet over SSH.

Each :class:`Sshd` is a real ``/usr/sbin/sshd`` (Debian's openssh-server) with its own config, host
key, port and pid file, started in the foreground (``-D``) so the test owns the process. Logins use
one generated client key, as the user running the tests (root in CI: sshd needs root to switch
users and to use its privilege-separation directory). Nothing here replaces SSH: the fleet code runs
the real ``ssh`` client against these servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nobody listens on: connections to it are refused."""
    return free_port()


@dataclass
class ClientKey:
    private: Path
    public: Path

    @classmethod
    def generate(cls, folder: Path) -> ClientKey:
        key = folder / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
        return cls(key, key.with_suffix(".pub"))

    def ssh_options(self) -> list[str]:
        """Client options for a throwaway test server: our key, no known_hosts bookkeeping."""
        return ["-i", str(self.private), "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]


@dataclass
class Sshd:
    folder: Path
    client: ClientKey
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> Sshd:
        self.folder.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        hostkey = self.folder / "ssh_host_ed25519_key"
        if not hostkey.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True, timeout=30)
        auth = self.folder / "authorized_keys"
        auth.write_text(self.client.public.read_text())
        auth.chmod(0o600)
        cfg = self.folder / "sshd_config"
        cfg.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {hostkey}",
            f"PidFile {self.folder / 'sshd.pid'}",
            f"AuthorizedKeysFile {auth}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 50",
            "MaxSessions 50",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            "",
        ]))
        log = open(self.folder / "sshd.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on port {self.port} within {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.folder / "sshd.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def session_pids(self) -> list[int]:
        """The sshd processes serving this server's connections (children of the listener), and theirs."""
        if self.proc is None:
            return []
        pids, frontier = [], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            try:
                children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            for c in children:
                pids.append(int(c))
                frontier.append(int(c))
        return pids

    def kill(self) -> None:
        """Kill the server and every session it serves: the host "dies" (connections drop at once)."""
        if self.proc is None:
            return
        sessions = self.session_pids()
        for pid in [self.proc.pid, *sessions]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
