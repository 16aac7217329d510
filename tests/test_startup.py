"""Start-up stays cheap: a run imports only what its selected modules need.

Module 0 must not pay for the kubernetes client (module 1 imports it when needed); no run pays at
start-up for the docker SDK (imported by the engine probe, in its own thread) or PyYAML (imported where a
YAML text is read: a lab config, a YAML CDI spec, a kind config).

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
# Not imported by collecting module 0: the probes and setup steps that need them import them.
LAZY = ("kubernetes", "docker", "concurrent.futures", "yaml")
# What module 0's own code imports at start-up.
MODULE0_CODE = ("labcheck.plugin", "labcheck.fleet_plugin", "reports.plugin", "fixtures.facts", "fixtures.host",
                "fixtures.docker", "fixtures.tools", "fixtures.gpu", "fixtures.cdi", "fixtures.mps",
                "labcheck.config", "labcheck.cdi", "labcheck.inventory", "labcheck.verdicts.cdi",
                "reports.fleet_plugin")


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


def _imported(code: str, watch: tuple[str, ...]) -> list[str]:
    probe = f"{code}; import sys; print(sorted(m for m in {watch!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().replace("'", '"'))


def test_module0_code_imports_neither_the_docker_sdk_nor_pyyaml():
    assert bench.conftest_plugins()[:4] == ["labcheck.plugin", "labcheck.fleet_plugin", "reports.plugin",
                                            "fixtures.facts"]
    found = _imported("import " + ", ".join(MODULE0_CODE), ("docker", "concurrent.futures", "yaml"))
    assert found == [], f"importing module 0's code imported {found}: import it where it is used (lazily)"


def test_pyyaml_is_imported_when_there_is_a_lab_config_to_read(tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text("min_kernel: '6.1'\n")
    code = f"from labcheck import config; c, p = config.load({str(lab)!r}); assert c.min_kernel == '6.1', (c, p)"
    assert _imported(code, ("yaml",)) == ["yaml"]


def test_collecting_module0_imports_none_of_the_lazy_libraries(tmp_path):
    out_file = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "--collect-only", "-q",
         "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "_bench_probe"],
        cwd=ROOT, env=_env(LABCHECK_BENCH_OUT=str(out_file), LABCHECK_BENCH_WATCH=",".join(LAZY)),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    assert json.loads(out_file.read_text())["imported"] == {name: False for name in LAZY}


_FREEZE_SEEN = """
import atexit, gc

def _report():  # registered before the suite's handler, so it runs after it (atexit is last in, first out)
    print("FROZEN", gc.get_freeze_count(), flush=True)

atexit.register(_report)
"""


def test_a_run_freezes_its_objects_at_exit_so_finalisation_skips_the_last_collection(tmp_path):
    """labcheck.shutdown: the exit's full garbage collection was 120-200 ms of a module 0 run here."""
    (tmp_path / "freeze_seen.py").write_text(_FREEZE_SEEN)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_env", "-m", "module0", "--collect-only", "-q",
         "-p", "no:cacheprovider", "-p", "freeze_seen"],
        cwd=ROOT, env=_env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)])),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    frozen = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("FROZEN ")]
    assert frozen and frozen[0] > 1000, (
        f"expected the objects alive at exit to be frozen (gc.freeze via labcheck.shutdown), got {frozen}")


def test_the_freeze_happens_only_at_exit_and_is_registered_once():
    """In-process runs (pytest.main, pytester) must not leave objects frozen: only atexit freezes."""
    code = ("import atexit, gc\n"
            "from labcheck import shutdown\n"
            "shutdown.skip_final_collection(); shutdown.skip_final_collection()\n"
            "print('BEFORE', gc.get_freeze_count(), atexit._ncallbacks())\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    _, frozen, callbacks = proc.stdout.split()
    assert frozen == "0"
    assert callbacks == "1", "registered twice: the freeze must be one atexit handler per process"


def test_benchmark_cuts_the_wall_time_at_the_probe_marks():
    run = {"began": 10.0, "ended": 11.0,
           "probe": {"times": {"imported": 10.2, "sessionstart": 10.4, "collected": 10.5, "sessionfinish": 10.9,
                               "unconfigure": 10.91}}}
    cut = bench.phases(run)
    assert len(cut) == len(bench.PHASES)
    assert abs(sum(cut.values()) - 1.0) < 1e-9
    assert abs(list(cut.values())[-1] - 0.09) < 1e-9
