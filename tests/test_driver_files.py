"""Host inspection on real files: libraries in unusual folders, dangling symlinks, missing files."""

from __future__ import annotations

from pathlib import Path

from labcheck.probes import driver_files as df
from tests.captures import first


def make_lib(folder: Path, name: str = "libcuda.so.1", version: str = "580.159.04") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    real = folder / name.replace(".so.1", f".so.{version}")
    real.write_bytes(b"\x7fELF fake")
    (folder / name).symlink_to(real.name)
    return real


def test_parse_ldconfig_on_h100_capture_prefers_cache_order():
    cache = df.parse_ldconfig(first("h100-host/ldconfig-p.txt").output)
    assert cache["libcuda.so.1"] == ["/usr/local/nvidia/lib64/libcuda.so.1", "/lib/libcuda.so.1"]
    assert cache["libnvidia-ptxjitcompiler.so.1"][0].startswith("/usr/local/nvidia/lib64/")


def test_parse_ldconfig_skips_other_architectures():
    text = ("\tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1\n"
            "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\n")
    assert df.parse_ldconfig(text)["libcuda.so.1"] == ["/usr/lib/i386-linux-gnu/libcuda.so.1",
                                                      "/usr/lib/x86_64-linux-gnu/libcuda.so.1"]
    text = "\tlibcuda.so.1 (libc6,AArch64) => /usr/lib/aarch64-linux-gnu/libcuda.so.1\n"
    assert df.parse_ldconfig(text) == {}


def test_library_in_unusual_folder_with_spaces_is_found_and_resolved(tmp_path):
    weird = tmp_path / "opt/nvidia driver; 'v580'/lib64"
    real = make_lib(weird)
    found = df.find_library("libcuda.so.1", {}, [str(tmp_path / "nowhere"), str(weird)])
    assert found.ok
    assert found.path == str(weird / "libcuda.so.1")
    assert found.real == str(real)
    assert found.host_paths == (str(weird / "libcuda.so.1"), str(real))


def test_ldconfig_cache_entry_wins_over_folder_search(tmp_path):
    a, b = make_lib(tmp_path / "a"), make_lib(tmp_path / "b", version="1.0")
    found = df.find_library("libcuda.so.1", {"libcuda.so.1": [str(tmp_path / "b/libcuda.so.1")]}, [str(tmp_path / "a")])
    assert found.real == str(b) and found.real != str(a)


def test_dangling_symlink_is_reported_not_raised(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    (d / "libcuda.so.1").symlink_to("libcuda.so.999.99")
    found = df.find_library("libcuda.so.1", {}, [str(d)])
    assert not found.ok
    assert "dangling symlink" in found.problem and "libcuda.so.999.99" in found.problem


def test_dangling_first_candidate_falls_back_to_a_good_one(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "libcuda.so.1").symlink_to("gone")
    real = make_lib(tmp_path / "good")
    found = df.find_library("libcuda.so.1", {"libcuda.so.1": [str(bad / "libcuda.so.1")]}, [str(tmp_path / "good")])
    assert found.ok and found.real == str(real)


def test_symlink_loop_is_a_problem(tmp_path):
    (tmp_path / "libcuda.so.1").symlink_to("libcuda.so.x")
    (tmp_path / "libcuda.so.x").symlink_to("libcuda.so.1")
    found = df.find_library("libcuda.so.1", {}, [str(tmp_path)])
    assert not found.ok and ("loop" in found.problem or "dangling" in found.problem)


def test_missing_library_names_where_it_looked(tmp_path):
    found = df.find_library("libnvidia-ml.so.1", {}, [str(tmp_path)])
    assert not found.ok
    assert "not found" in found.problem and str(tmp_path) in found.problem


def test_inspect_host_in_given_folders_only(tmp_path):
    libdir, bindir = tmp_path / "lib64", tmp_path / "bin"
    for name in df.LIBRARIES:
        make_lib(libdir, name)
    bindir.mkdir()
    for name in df.BINARIES:
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    (bindir / "nvidia-smi").chmod(0o644)  # not executable
    ins = df.inspect_host([str(libdir)], [str(bindir)], ldconfig_text="", device_patterns=(str(tmp_path / "dev*"),),
                          standard_dirs=False)
    assert all(f.ok for f in ins.libraries)
    assert ins.lib_dirs == (str(libdir),)
    smi = next(f for f in ins.binaries if f.name == "nvidia-smi")
    assert not smi.ok and "not executable" in smi.problem
    assert [f.name for f in ins.problems] == ["nvidia-smi"]


def test_devices_found_by_pattern(tmp_path):
    (tmp_path / "nvidia0").write_text("")
    (tmp_path / "nvidiactl").write_text("")
    devs = df.find_devices([str(tmp_path / "nvidiactl"), str(tmp_path / "nvidia[0-9]*"), str(tmp_path / "absent")])
    assert [d.name for d in devs] == ["nvidiactl", "nvidia0"]


def test_real_ldconfig_runs_with_timeout():
    text, note = df.ldconfig_cache(timeout=10)
    assert text or note  # either the cache or a reason, never an exception
    assert isinstance(note, str)
