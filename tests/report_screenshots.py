"""Regenerate the report screenshots in docs/ (README links them): ``python -m tests.report_screenshots``.

Three real runs of the suite on this machine, each rendered by headless Chromium (tests/browser.py):
module 0 as it is here; module 1 against the kind test double (tests/doubles/kind: a real node container
on the real Docker engine, no Kubernetes) with a stand-in driver tree, torn down afterwards; and a fleet
run over three loopback sshd servers (tests/sshd.py, needs root), one of them refusing connections.
Each PNG is the top of the page (the dashboard a person reads first, then the start of the table), at
0.75 scale: small enough for the repository.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests import m1_cluster as m1
from tests.browser import Browser, find_chromium
from tests.sshd import ClientKey, Sshd, closed_port

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _pytest(args: list[str], env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--self-contained-html", *args],
                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def module0(base: Path) -> Path:
    html = base / "m0.html"
    _pytest(["tests_env", "-m", "module0", f"--html={html}"])
    return html


def module1(base: Path) -> Path:
    m1.fake_driver(base)  # its folder name tests shell quoting; a plain one reads better in a picture
    (base / "nvidia drv; 'x'").rename(base / "nvidia")
    libdir, bindir = base / "nvidia" / "lib64", base / "nvidia" / "bin"
    cfg = m1.lab_config(base, m1.unique("shot"), extra_lib_dirs=(str(libdir),), extra_bin_dirs=(str(bindir),))
    m1.write_lab_yaml(base / "lab.yaml", cfg)
    html = base / "m1.html"
    try:
        _pytest(["tests_env", "-m", "module1", "--lab-config", str(base / "lab.yaml"), "--teardown",
                 f"--html={html}"], env=m1.double_env())
    finally:
        m1.remove_cluster(cfg.cluster_name)
    return html


def fleet(base: Path) -> Path:
    key = ClientKey.generate(base)
    servers = [Sshd(base / f"sshd{i}", key).start() for i in (1, 2)]
    try:
        hosts = [{"name": f"gpu-0{i}", "ssh": "root@127.0.0.1", "port": s.port} for i, s in enumerate(servers, 1)]
        hosts.append({"name": "gpu-03", "ssh": "root@127.0.0.1", "port": closed_port()})
        inv = base / "hosts.yaml"
        inv.write_text(json.dumps({"defaults": {"python": sys.executable, "connect_timeout": 5, "timeout": 300,
                                                "workdir": str(base / "remote"), "ssh_options": key.ssh_options()},
                                   "hosts": hosts}))
        html = base / "fleet.html"
        _pytest([f"--hosts={inv}", "-m", "module0", "tests_env", f"--html={html}"])
        return html
    finally:
        for s in servers:
            s.stop()


def shoot(html: Path, png: Path, width: int = 1280, top: int = 1900, scale: float = 0.75) -> int:
    """Screenshot of the page's first ``top`` CSS pixels; returns the page's whole height."""
    with Browser(find_chromium(), width=width, height=800) as b:
        b.open(html)
        height = b.evaluate("document.documentElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": width, "height": min(top, height), "scale": scale}
        data = b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip},
                      session=b.session)["data"]
        png.write_bytes(base64.b64decode(data))
    return height


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lab-") as tmp:
        base = Path(tmp)
        for name, make in (("report-module0", module0), ("report-module1-kind-double", module1),
                           ("report-fleet-3-hosts", fleet)):
            if sys.argv[1:] and name not in sys.argv[1:]:
                continue
            folder = base / name.split("-")[1]  # short: paths show in the pictured messages
            folder.mkdir()
            html = make(folder)
            print(name, shoot(html, DOCS / f"{name}.png"), "px")


if __name__ == "__main__":
    main()
