"""Probe the NVIDIA driver and GPUs: ``nvidia-smi``, cross-checked with NVML (nvidia-ml-py).

``nvidia-smi`` is what attendees know and what the workshop runs, so it must work on the host: its answer is the
driver version and the GPU list. NVML reads the same driver through ``libnvidia-ml.so.1`` without a subprocess; it is
a cross-check (two sources that disagree point at a half-upgraded driver) and fills in what an old nvidia-smi cannot
say (compute_cap), never a substitute: a host where nvidia-smi is missing or fails while NVML answers is not ready.
nvidia-smi is also looked for in the configured extra folders (/usr/local/nvidia/bin), where GPU hosts and
containers often keep it. :func:`smi_exit` is the one reading of its exit status, on the host and in the node.
"""

from __future__ import annotations

import contextlib
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from labcheck import cmd, fsio, versions

QUERY_FIELDS = ("index", "uuid", "name", "driver_version", "compute_cap", "compute_mode", "memory.total")
QUERY_ARGS = (f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits")
# NVML compute modes (nvml.h: NVML_COMPUTEMODE_*), spelled the way nvidia-smi prints them.
NVML_COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}
_CUDA_LINE = re.compile(r"CUDA Version\s*:\s*(\S+)")
_PROC_VERSION = re.compile(r"Kernel Module(?: for \S+)?\s+([0-9]+\.[0-9]+(?:\.[0-9]+)?)(?=\s|$)")
_DRIVER = re.compile(r"^[0-9]{3}\.[0-9]+(\.[0-9]+)?$")  # 535.183.01, 580.159.04, 570.86 (ASCII digits only)
# nvidia-smi -L / --query-gpu=uuid: GPU-683e20a0-8269-a95e-460e-0a9073519f0d (tests/data/h100-host)
MAX_PROC_VERSION = 64 * 1024  # two short lines in /proc/driver/nvidia/version
_UUID = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    compute_cap: tuple[int, int] | None
    compute_mode: str
    memory_mib: int | None = None

    @property
    def cc_text(self) -> str:
        return f"{self.compute_cap[0]}.{self.compute_cap[1]}" if self.compute_cap else "unknown"


@dataclass(frozen=True)
class SmiExit:
    """How one nvidia-smi run ended: ``works`` (its answer counts) and ``how`` ("exit 0", the infoROM exit, or
    what went wrong: :meth:`labcheck.cmd.CmdResult.describe`)."""

    works: bool
    how: str


# nvidia-smi(1), RETURN VALUE: "14 - infoROM is corrupted": the board's infoROM failed its checksum; nvidia-smi still
# answers in full, and the workshop counts 0 or 14 as success (../shared/FIELD-NOTES.md).
INFOROM_RC = 14
INFOROM_OK = "exit 14: infoROM warning, counted as working like the workshop does"


def smi_exit(res: cmd.CmdResult) -> SmiExit:
    """The one reading of nvidia-smi's exit, on the host (module 0) and in the node (module 1): it worked when it
    exited 0, or 14 while printing its infoROM warning; any other end (another code, 14 without that warning, no
    exit at all: missing, hung) is a failure."""
    if res.ok:
        return SmiExit(True, "exit 0")
    if res.rc == INFOROM_RC and "inforom" in res.output.lower():
        return SmiExit(True, INFOROM_OK)
    return SmiExit(False, res.describe())


def smi_failure(res: cmd.CmdResult, lines: int = 3) -> str:
    """What a failed nvidia-smi run printed, for a message: its exit and first ``lines`` lines (and the last, when
    there are more): the first says what it could not do ("Failed to initialize NVML: Driver/library version
    mismatch"), while describe() shows only the last. Each line cut at 200 characters."""
    if res.rc is None:  # missing, hung, could not start, printed too much: describe() says which
        return res.describe()
    out = [ln.strip()[:200] for ln in res.output.splitlines() if ln.strip()]
    shown = out[:lines] + ([f"... {out[-1]}"] if len(out) > lines else [])
    return f"`{res.cmdline}` exited {res.rc}: " + (" | ".join(shown) or "no output")


@dataclass(frozen=True)
class SmiQuery:
    """One ``nvidia-smi --query-gpu`` run and what it parsed into."""

    path: str | None
    result: cmd.CmdResult | None
    gpus: tuple[Gpu, ...] = ()
    driver: str = ""
    error: str = ""  # why nothing could be read (missing, hung, exit code, unparsable)
    strays: tuple[str, ...] = ()  # lines that are no GPU row (query_csv_strays): a GPU nvidia-smi could not read
    warnings: tuple[str, ...] = ()  # the infoROM warning of an exit 14 (smi_exit), said in the driver check

    @property
    def exit(self) -> SmiExit:
        return smi_exit(self.result) if self.result is not None else SmiExit(False, self.error)


@dataclass(frozen=True)
class NvmlFacts:
    driver: str = ""
    cuda: str = ""
    gpus: tuple[Gpu, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class GpuFacts:
    smi: SmiQuery
    nvml: NvmlFacts
    cuda_version: str = ""
    kernel_module: str = ""  # /proc/driver/nvidia/version: the loaded kernel module's version
    notes: tuple[str, ...] = field(default=())

    @property
    def driver(self) -> str:
        """The driver version nvidia-smi reports; "" when nvidia-smi did not work (NVML's alone is no evidence)."""
        return self.smi.driver

    @property
    def answered(self) -> bool:
        """nvidia-smi answered (so an empty GPU list means: no GPU)."""
        return bool(self.smi.driver) or (self.smi.result is not None and self.smi.exit.works and not self.smi.error)

    @property
    def gpus(self) -> tuple[Gpu, ...]:
        """nvidia-smi's list, with NVML filling in what nvidia-smi could not say (old drivers lack compute_cap); none
        when nvidia-smi gave none, whatever NVML lists."""
        by_uuid = {g.uuid: g for g in self.nvml.gpus}
        out = []
        for g in self.smi.gpus:
            n = by_uuid.get(g.uuid)
            if g.compute_cap is None and n is not None and n.compute_cap is not None:
                g = Gpu(g.index, g.uuid, g.name, n.compute_cap, g.compute_mode, g.memory_mib)
            out.append(g)
        return tuple(out)

    def list_problems(self) -> list[str]:
        """:func:`gpu_list_problems` of :attr:`gpus`, and what only the raw answers show: a line of nvidia-smi's
        listing that is no GPU row (a GPU it could not read, e.g. the last one, leaves no gap in the indexes) and
        NVML counting other GPUs than nvidia-smi lists."""
        problems = gpu_list_problems(self.gpus)
        problems += [f"nvidia-smi printed {fsio.shown(line, 200)} where a GPU line (index, uuid, ...) was expected"
                     for line in self.smi.strays]
        if self.smi.gpus and self.nvml.gpus and len(self.smi.gpus) != len(self.nvml.gpus):
            problems.append(f"NVML counts {len(self.nvml.gpus)} GPUs, nvidia-smi lists {len(self.smi.gpus)}")
        return problems


def missing_indexes(gpus: tuple[Gpu, ...] | list[Gpu]) -> list[int]:
    """The indexes below the highest listed that no GPU has: the driver numbers GPUs 0..n-1 and keeps the number
    of one it cannot read, so GPUs 0, 1, 3 mean GPU 2 is there but unreadable. Only below twice the GPUs listed
    (at most half a host's GPUs missing is named one by one): a garbled index of 10**12 must not list 10**12."""
    listed = {g.index for g in gpus}
    return [i for i in range(min(max(listed, default=0), 2 * len(listed))) if i not in listed]


def gpu_list_problems(gpus: tuple[Gpu, ...] | list[Gpu]) -> list[str]:
    """What makes a GPU list unusable for per-GPU work (a CUDA client per GPU, CDI devices by UUID): a UUID that
    is not one, two GPUs with one UUID or one index, indexes that are not 0..n-1 (a GPU missing between them).
    Empty when every GPU is named once by index and UUID.

    WHY: each MPS client is pinned with CUDA_VISIBLE_DEVICES=<UUID>; a duplicated or garbled UUID would pin two
    clients to one GPU (or to none) and a GPU would pass unproven."""
    problems = [f"GPU {g.index} has UUID {g.uuid!r}, expected GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
                for g in gpus if not _UUID.match(g.uuid)]
    for what, key in (("UUID", lambda g: g.uuid.lower()), ("index", lambda g: g.index)):
        seen: dict = {}
        for g in gpus:
            seen.setdefault(key(g), []).append(g)
        problems += [f"{len(same)} GPUs report the same {what} {getattr(same[0], what.lower())}: "
                     + ", ".join(f"GPU {g.index} ({g.uuid})" for g in same)
                     for same in seen.values() if len(same) > 1 and (what == "index" or _UUID.match(same[0].uuid))]
    indexes = sorted({g.index for g in gpus})
    if indexes != list(range(len(indexes))):
        gap = ", ".join(map(str, missing_indexes(gpus)))
        problems.append(f"nvidia-smi lists GPU indexes {', '.join(map(str, indexes))}, expected 0..{len(indexes) - 1}"
                        + (f": GPU {gap} not listed (a GPU the driver cannot read)" if gap else ""))
    return problems


def _cc(text: str) -> tuple[int, int] | None:
    """``9.0`` as (9, 0); None for anything else. ASCII digits (:func:`labcheck.versions.ascii_int`): "١٢.٠"
    (which ``int`` reads as 12.0) or a 5000-digit part (``int`` raises: no GPU at all) is no compute capability."""
    m = re.fullmatch(r"\s*([0-9]+)\.([0-9]+)\s*", text or "")
    major, minor = (versions.ascii_int(m[1]), versions.ascii_int(m[2])) if m else (None, None)
    return (major, minor) if major is not None and minor is not None else None


def _int(text: str) -> int | None:
    """The ASCII number that starts ``81559`` (memory.total, nounits) or ``81559 MiB``; None when there is none
    (``[N/A]``, "８١٥٥٩", "81559٥", 5000 digits)."""
    m = re.match(r"\s*([0-9]+)(?:\s|$)", text or "")
    return versions.ascii_int(m[1]) if m else None


def _gpu_row(line: str, fields: tuple[str, ...]) -> tuple[Gpu, str] | None:
    """The GPU one --query-gpu line describes and its driver version, or None when it is no GPU row (too short,
    no ASCII index). WHY per line: csv before Python 3.11 raises on a NUL byte; one bad line must not hide others."""
    try:
        row = next(csv.reader([line], skipinitialspace=True), [])
    except csv.Error:
        return None
    if len(row) < len(fields):
        return None
    f = dict(zip(fields, (c.strip() for c in row), strict=False))
    index = versions.ascii_int(f["index"])  # "²", "١٢", 5000 digits: no index (str.isdigit/int would take them)
    if index is None:
        return None
    return (Gpu(index, f.get("uuid", ""), f.get("name", ""), _cc(f.get("compute_cap", "")),
                f.get("compute_mode", ""), _int(f.get("memory.total", ""))), f.get("driver_version", ""))


def _header(line: str, fields: tuple[str, ...]) -> bool:
    """The csv header (a query without noheader): the field names, units in brackets (``memory.total [MiB]``)."""
    return [c.split("[")[0].strip() for c in line.split(",")][:len(fields)] == list(fields)


def parse_query_csv(text: str, fields: tuple[str, ...] = QUERY_FIELDS) -> tuple[list[Gpu], str]:
    """Parse the --query-gpu output for ``fields`` (noheader or not, units or not): (gpus, driver version).
    Lines that are no GPU row are left out here; :func:`query_csv_strays` names them."""
    rows = [r for r in (_gpu_row(line, fields) for line in text.splitlines()) if r is not None]
    return [g for g, _driver in rows], next((d for _g, d in rows if d), "")


def query_csv_strays(text: str, fields: tuple[str, ...] = QUERY_FIELDS) -> list[str]:
    """The lines of --query-gpu output that are neither a GPU row, the header nor blank (CRLF and trailing blanks
    are fine). nvidia-smi prints such a line in place of a GPU it cannot reach ("Unable to determine the device
    handle for GPU 0000:3B:00.0: Unknown Error"): a list without that GPU must not pass as the host's GPUs."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and _gpu_row(line, fields) is None and not _header(line, fields)]


def parse_cuda_version(smi_version_text: str) -> str:
    """``nvidia-smi --version`` prints "CUDA Version : 13.0"; the plain ``nvidia-smi`` header too."""
    m = _CUDA_LINE.search(smi_version_text or "")
    return m.group(1) if m else ""


def cuda_from_int(v: int) -> str:
    """NVML's CUDA driver version integer (13000) as people write it (13.0)."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def parse_proc_version(text: str) -> str:
    """The kernel module's version in /proc/driver/nvidia/version ("" when none, or a part is past 18 digits)."""
    m = _PROC_VERSION.search(text or "")
    return m.group(1) if m and versions.parse(m.group(1)) is not None else ""


def query_smi(smi_path: str | None, timeout: float) -> SmiQuery:
    if smi_path is None:
        return SmiQuery(None, None, error="nvidia-smi not found on PATH or in the extra driver folders")
    fields = QUERY_FIELDS
    r = cmd.run([smi_path, *QUERY_ARGS], timeout=timeout)
    if not smi_exit(r).works and "not a valid field" in r.output:
        # Drivers before compute_cap existed reject the whole query: ask again without it (NVML fills it in).
        fields = tuple(f for f in QUERY_FIELDS if f != "compute_cap")
        r = cmd.run([smi_path, f"--query-gpu={','.join(fields)}", QUERY_ARGS[1]], timeout=timeout)
    ended = smi_exit(r)
    if not ended.works:  # whatever it printed: a row before "Failed to initialize NVML" is no answer
        return SmiQuery(smi_path, r, error=smi_failure(r))
    gpus, driver = parse_query_csv(r.stdout, fields)
    if not gpus:
        # Exit 0 with no GPU line is not "no GPU": without GPUs nvidia-smi exits non-zero ("No devices were found").
        printed = r.stdout.strip()
        shown = f"printed nothing parsable: {fsio.shown(printed, 200)}" if printed else "printed nothing"
        return SmiQuery(smi_path, r, error=f"nvidia-smi ended with {ended.how} but {shown} (`{r.cmdline}`; expected "
                                           f"one CSV line per GPU: {', '.join(fields)})")
    if not _DRIVER.match(driver) or versions.parse(driver) is None:  # None: a part past 18 digits
        return SmiQuery(smi_path, r, error=f"nvidia-smi printed GPU lines without a driver version (found "
                                           f"{fsio.shown(driver, 40)}, expected e.g. 580.159.04): `{r.cmdline}`")
    # exit 14's warning line (stdout or stderr) is no GPU row: said by the driver check, not taken for a lost GPU
    warnings = tuple(ln.strip() for ln in r.output.splitlines() if r.rc == INFOROM_RC and "inforom" in ln.lower())
    strays = tuple(ln for ln in query_csv_strays(r.stdout, fields) if ln not in warnings)
    return SmiQuery(smi_path, r, tuple(gpus), driver, strays=strays, warnings=warnings)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe_nvml() -> NvmlFacts:
    """Read the driver through NVML; every NVML error is recorded, never raised."""
    try:
        import pynvml  # lazy: optional (nvidia-ml-py), and only the NVML probe needs it
    except ImportError:
        return NvmlFacts(error="nvidia-ml-py is not installed (pip install nvidia-ml-py)")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return NvmlFacts(error=f"NVML: {exc}")
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = ""
        with contextlib.suppress(Exception):
            cuda = cuda_from_int(int(pynvml.nvmlSystemGetCudaDriverVersion()))
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            try:
                cc = tuple(int(x) for x in pynvml.nvmlDeviceGetCudaComputeCapability(h))
            except Exception:
                cc = None
            try:
                mode = NVML_COMPUTE_MODES.get(int(pynvml.nvmlDeviceGetComputeMode(h)), "unknown")
            except Exception:
                mode = "unknown"
            try:
                mem = int(pynvml.nvmlDeviceGetMemoryInfo(h).total) // (1024 * 1024)
            except Exception:
                mem = None
            gpus.append(Gpu(i, _text(pynvml.nvmlDeviceGetUUID(h)), _text(pynvml.nvmlDeviceGetName(h)),
                            cc, mode, mem))  # type: ignore[arg-type]
        return NvmlFacts(driver, cuda, tuple(gpus))
    except Exception as exc:
        return NvmlFacts(error=f"NVML: {exc}")
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def probe_gpus(extra_bin_dirs: tuple[str, ...] = (), timeout: float = 30.0, use_nvml: bool = True,
               proc_version: Path = Path("/proc/driver/nvidia/version")) -> GpuFacts:
    smi_path = cmd.which("nvidia-smi", extra_bin_dirs)
    smi = query_smi(smi_path, timeout)
    if smi.result is not None and smi.result.timed_out:
        # NVML runs in this process with no timeout: a driver wedged enough to hang nvidia-smi would hang
        # nvmlInit too, and with it the whole run. The hung nvidia-smi already decides the verdict.
        nvml = NvmlFacts(error=f"NVML not consulted: {smi.result.describe()}")
    elif use_nvml:
        nvml = probe_nvml()
    else:
        nvml = NvmlFacts(error="NVML not consulted")
    cuda = nvml.cuda
    if not cuda and smi_path and not smi.error:
        cuda = parse_cuda_version(cmd.run([smi_path, "--version"], timeout=timeout).stdout)
    try:  # bounded and regular files only (procfs files are): the path is a parameter
        kmod = parse_proc_version(fsio.read_text(proc_version, MAX_PROC_VERSION, errors="replace"))
    except (OSError, fsio.FileProblem):
        kmod = ""
    return GpuFacts(smi, nvml, cuda, kmod)
