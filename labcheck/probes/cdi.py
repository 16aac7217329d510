"""Read the CDI spec folders and ask ``nvidia-ctk cdi list`` what it sees.

A spec that parses is not enough: a driver upgrade leaves behind a spec that mounts
``libcuda.so.<old version>``, which no longer exists, and every container that asks for a GPU then
fails to start. So the probe also records which of the files a spec names exist on this host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from labcheck import cdi, cmd, fsio
from labcheck.remedy import DEFAULT as DEFAULT_SHELL
from labcheck.remedy import Shell, this_host


@dataclass(frozen=True)
class SpecFile:
    path: str
    spec: cdi.Spec | None
    problem: cdi.Problem | None  # the file could not be read as a spec at all
    missing_paths: tuple[str, ...] = ()
    unreadable: bool = False  # not even its bytes could be read (not a regular file, permissions, size, encoding)
    backup: str = ""  # a name no file has, for the copy a fix keeps of it (labcheck.fsio.backup_name; "": none made)


@dataclass(frozen=True)
class CdiFacts:
    dirs: tuple[str, ...]
    files: tuple[SpecFile, ...]
    unreadable_dirs: tuple[str, ...] = ()
    cdi_list: cmd.CmdResult | None = None  # None when nvidia-ctk is not installed
    listed: cdi.CdiList | None = None
    notes: tuple[str, ...] = field(default=())
    spec_path: str = cdi.DEFAULT_SPEC_PATH  # where the fix writes the NVIDIA spec (lab config cdi_spec_path)
    shell: Shell = DEFAULT_SHELL  # who pastes the fixes (no sudo for root)
    ctk: str | None = None  # the nvidia-ctk found (PATH, then extra_bin_dirs); None: not installed

    @property
    def generate_command(self) -> str:
        return cdi.generate_command(self.spec_path, self.shell, self.ctk)

    def backup_of(self, path: str) -> str:
        """The name a fix copies the spec file ``path`` to: the one its probe chose (no file had it), so a second
        fix never overwrites the first one's copy, which may be the user's only one."""
        return next((f.backup for f in self.files if f.path == path and f.backup), "") or fsio.backup_name(path)

    @property
    def nvidia_specs(self) -> list[SpecFile]:
        return [f for f in self.files if f.spec is not None and f.spec.kind == cdi.NVIDIA_KIND]

    def problems(self) -> list[cdi.Problem]:
        """What makes NVIDIA spec files unusable: files of kind nvidia.com/gpu, or named nvidia*, or that mention it;
        and every spec file that cannot be read at all (nobody can tell whose it is)."""
        out: list[cdi.Problem] = []
        for f in self.files:
            named_nvidia = "nvidia" in os.path.basename(f.path).lower()
            if f.problem is not None:
                if f.unreadable or named_nvidia or cdi.NVIDIA_KIND in _safe_read(f.path):
                    out.append(f.problem)
                continue
            spec = f.spec
            if spec.kind == cdi.NVIDIA_KIND or named_nvidia:
                out += spec.problems
                if named_nvidia and spec.kind and spec.kind != cdi.NVIDIA_KIND and not spec.problems:
                    out.append(cdi.Problem(f.path, spec.kind_line,
                                           f"wrong kind {spec.kind!r}: expected {cdi.NVIDIA_KIND}"))
        return out


def _safe_read(path: str) -> str:
    try:
        return fsio.read_text(path)
    except (OSError, fsio.FileProblem):
        return ""


def _denied(p: Path) -> bool:
    try:
        os.stat(p)
    except PermissionError:
        return True
    except OSError:
        return False
    return False


def read_spec_file(path: Path) -> SpecFile:
    backup = fsio.backup_name(path)
    try:
        text = fsio.read_text(path)  # a FIFO named nvidia.yaml is refused, never opened for a blocking read
    except fsio.FileProblem as exc:
        return SpecFile(str(path), None, cdi.Problem(str(path), exc.line, exc.message), unreadable=True,
                        backup=backup)
    except OSError as exc:
        return SpecFile(str(path), None, cdi.Problem(str(path), None, f"cannot read: {exc.strerror or exc}"),
                        unreadable=True, backup=backup)
    parsed = cdi.parse_spec(text, str(path))
    if isinstance(parsed, cdi.Problem):
        return SpecFile(str(path), None, parsed, backup=backup)
    missing = tuple(p for p in parsed.host_paths if not os.path.exists(p))
    return SpecFile(str(path), parsed, None, missing, backup=backup)


def probe_cdi(dirs: tuple[str, ...] | list[str], ctk_path: str | None = None, timeout: float = 30.0,
              spec_path: str = cdi.DEFAULT_SPEC_PATH) -> CdiFacts:
    """Every spec file in ``dirs``, each read once: one folder reached through two names (/var/run/cdi and
    /run/cdi: /var/run is a link to /run) or a file linked into a second folder is one spec, not a conflict."""
    files: list[SpecFile] = []
    unreadable: list[str] = []
    seen_dirs: set[str] = set()
    seen_files: set[tuple[int, int]] = set()
    for d in dirs:
        p = Path(d)
        if not os.path.isdir(p):  # os.path: never raises (Path.is_dir does on a folder we may not search)
            if os.path.lexists(p) or _denied(p):
                unreadable.append(d)
            continue
        real = os.path.realpath(p)
        if real in seen_dirs:
            continue
        seen_dirs.add(real)
        try:
            # CDI skips folders; anything else with a spec suffix (a FIFO, a device) is read, and refused, by name
            entries = sorted(e for e in p.iterdir() if e.suffix in cdi.SPEC_SUFFIXES and not os.path.isdir(e))
        except OSError:
            unreadable.append(d)
            continue
        for e in entries:
            try:
                st = os.stat(e)
                ident = (st.st_dev, st.st_ino)
            except OSError:
                ident = None
            if ident is not None and ident in seen_files:
                continue
            if ident is not None:
                seen_files.add(ident)
            files.append(read_spec_file(e))
    listed = None
    result = None
    if ctk_path:
        result = cmd.run([ctk_path, "cdi", "list"], timeout=timeout)
        if result.ok:
            listed = cdi.parse_cdi_list(result.output)
    return CdiFacts(tuple(dirs), tuple(files), tuple(unreadable), result, listed, spec_path=spec_path,
                    shell=this_host(), ctk=ctk_path)
