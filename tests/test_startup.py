"""Start-up stays cheap: module 0 must not pay for the kubernetes client (module 1 imports it when needed).

Not a timed test (speed figures are in benchmarks/module0.py): these check what gets imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import module0 as bench

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("kubernetes",)


def _env(**extra: str) -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def test_loading_the_plugins_does_not_import_the_kubernetes_client():
    plugins = bench.conftest_plugins()
    assert "labcheck.plugin" in plugins and "reports.plugin" in plugins
    code = (f"import sys, {', '.join(plugins)}; "
            f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", (
        f"importing the conftest plugins imported {out.stdout.strip()}: import the kubernetes client inside "
        "the module 1 fixture that needs it, so module 0 does not pay for it")


def test_collecting_module0_does_not_import_the_kubernetes_client(tmp_path):
    """Collection imports the check files and every fixture module: none may import kubernetes at the top."""
    out_file = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "--collect-only", "-q",
         "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "_bench_probe"],
        cwd=ROOT, env=_env(LABCHECK_BENCH_OUT=str(out_file)), capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    probe = json.loads(out_file.read_text())
    assert probe["kubernetes_imported"] is False
    assert probe["maxrss_kb"] > 0


def test_benchmark_measure_reports_time_exit_code_and_peak_memory():
    r = bench.measure([sys.executable, "-c", "b = bytearray(64 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"])
    assert r["rc"] == 0 and 0 < r["wall"] < 60
    assert r["maxrss_kb"] > 64 * 1024  # the child touched 64 MiB


def test_benchmark_measure_kills_a_hung_command():
    r = bench.measure(["sleep", "30"], timeout=0.3)
    assert r["rc"] is None and r["wall"] == 0.3


def test_import_times_reads_python_importtime():
    times = bench.import_times(["json"], _env())
    assert 0 < times["json"] < 5
