"""Which area of the lab a check belongs to, and each area's status, for the report's tiles.

The areas come in the order a person fixes them: a host without Docker cannot be judged on its
runtime, a node cannot be judged before its kind config exists. ``AREAS`` is the one table that maps
checks to areas (by check-id prefix, optionally bound to a module); a check no prefix claims falls into
``Other``, so a new check is never dropped from the dashboard, only shown where it is plainly unfiled.

``area_statuses`` is a pure function over check records (reports.results), tested without a browser.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reports.results import NOT_RUN, NOT_VERIFIED, READY, summarize


@dataclass(frozen=True)
class Area:
    key: str  # used in HTML ids and classes
    title: str
    covers: str  # what a person finds in it (the tile's tooltip)
    prefixes: tuple[str, ...]  # "check_prefix" (any module) or "moduleN::check_prefix"


AREAS: tuple[Area, ...] = (
    Area("host", "Host", "lab config, kernel, kind and helm binaries, host limits kind needs, connection",
         ("module0::lab_config", "module1::lab_config", "module0::linux_kernel", "module0::kind_", "module0::helm_",
          "module1::host_", "host_connection")),
    Area("docker", "Docker + NVIDIA runtime", "Docker CLI and engine, daemon.json, the nvidia runtime",
         ("module0::docker_", "module0::nvidia_runtime_")),
    Area("gpu", "Driver + GPUs", "NVIDIA driver, GPUs, compute capability and mode",
         ("module0::nvidia_driver", "module0::gpus_", "module0::gpu_")),
    Area("toolkit", "Toolkit + CDI", "NVIDIA Container Toolkit, CDI specs",
         ("module0::nvidia_container_toolkit", "module0::cdi_")),
    Area("mps", "MPS", "MPS control daemon on the host, its pipe directory, a CUDA client",
         ("module0::mps_",)),
    Area("kind", "Kind config", "the generated kind config, its host paths, the node image",
         ("module1::kind_config", "module1::node_image")),
    Area("cluster", "Cluster + node", "the cluster, the node container, driver files, CDI, MPS and shm in the node",
         ("module1::cluster_", "module1::node_", "module1::gpu_device_nodes", "module1::driver_file",
          "module1::cdi_spec", "module1::nvidia_smi", "module1::workshop_", "module1::mps_", "module1::seed_",
          "module1::shm_")),
    Area("dra", "DRA-driver preflight", "what the DRA driver install needs: its library and binary folders, a writable "
         "/var/run/cdi, CDI on in the node's containerd, the gpu.present label, node Ready, resource API served",
         ("module1::dra_driver_", "module1::cdi_dir_writable", "module1::containerd_cdi", "module1::gpu_present_label",
          "module1::kubernetes_", "module1::resource_api")),
)
OTHER = Area("other", "Other", "checks no area claims yet (reports/areas.py)", ())


def area_of(record: dict) -> Area:
    """The first area whose prefix matches the record's check (``module::check`` or bare check)."""
    check = record.get("check", "")
    key = f"{record.get('module', '')}::{check}"
    for area in AREAS:
        for prefix in area.prefixes:
            if key.startswith(prefix) if "::" in prefix else check.startswith(prefix):
                return area
    return OTHER


def area_rank(record: dict) -> int:
    area = area_of(record)
    return len(AREAS) if area is OTHER else AREAS.index(area)


@dataclass(frozen=True)
class AreaStatus:
    area: Area
    word: str
    counts: dict[str, int]  # verdict -> number of checks (pass, fail, warn, skip; not run if deselected)
    records: tuple[dict, ...]

    @property
    def total(self) -> int:
        return len(self.records)


def area_word(records: Iterable[dict]) -> str:
    """The summary word of the area's records (reports.results.Summary.state: the run's rule, per area).

    One exception: an area with only optional checks and no failure is READY, since nothing in it was
    required (the run's rule would call it NOT VERIFIED: no criterion passed).
    """
    recs = list(records)
    state = summarize(recs).state
    if state == NOT_VERIFIED and recs and not any(r.get("criterion", True) for r in recs):
        return READY
    return state


def area_statuses(records: Iterable[dict]) -> list[AreaStatus]:
    """One status per area that has checks in this run, in the order of AREAS (Other last)."""
    by_area: dict[str, list[dict]] = {}
    for r in records:
        by_area.setdefault(area_of(r).key, []).append(r)
    out = []
    for area in (*AREAS, OTHER):
        recs = by_area.get(area.key)
        if recs:
            counts = {v: sum(r["verdict"] == v for r in recs) for v in ("fail", "warn", "skip", "pass")}
            not_run = sum(r["verdict"] == NOT_RUN for r in recs)
            counts.update({NOT_RUN: not_run} if not_run else {})  # only a narrowed run has them
            out.append(AreaStatus(area, area_word(recs), counts, tuple(recs)))
    return out


def in_area_order(records: Iterable[dict]) -> list[dict]:
    """The records sorted by area (stable: within an area, run order)."""
    return sorted(records, key=area_rank)
