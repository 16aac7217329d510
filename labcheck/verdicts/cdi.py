"""Verdicts on the CDI spec the DRA driver discovers GPUs through (module 0, "CDI spec found").

The workshop only tests that /etc/cdi/nvidia.yaml exists. A spec can exist and still be useless:
bad YAML, the wrong kind, no devices, GPUs that are not this host's, library files removed by a
driver upgrade, or a second spec claiming the same device names. Each of these is its own check.
"""

from __future__ import annotations

import os
from shlex import quote as sh

from labcheck import cdi, config, versions
from labcheck.probes.cdi import CdiFacts
from labcheck.probes.gpu import GpuFacts
from labcheck.remedy import with_note
from labcheck.rerun import DEFAULT as DEFAULT_RERUN
from labcheck.rerun import Rerun
from labcheck.verdict import Verdict, failed, passed, skipped


def _backup_then_generate(facts: CdiFacts, path: str, generate: str = "") -> str:
    """Keep a copy of the bad spec, then generate at the configured path (or run ``generate``): copy when it is that
    path (generating replaces it), move it aside otherwise (a second spec would conflict with the generated one)."""
    keep = "cp -p" if os.path.abspath(path) == os.path.abspath(facts.spec_path) else "mv"
    backup = sh(facts.backup_of(path))
    return f"{facts.shell.sudo(f'{keep} {sh(path)} {backup}')} && {generate or facts.generate_command}"


def _where(facts: CdiFacts) -> str:
    return " or ".join(facts.dirs)


def _mounted_dir(facts: CdiFacts) -> str:
    """The host folder the kind config mounts read-only at the node's /etc/cdi, worked out as the config generator
    does (labcheck.cdi.mounted_dir: the first of cdi_dirs that is not the node's own /var/run/cdi; '' none). The
    host's /var/run/cdi is never mounted (the node's is the DRA driver's), so a spec only there is invisible in
    the node; the lab config refuses a cdi_spec_path outside this folder (labcheck.config)."""
    return cdi.mounted_dir(facts.dirs)


def _in_mounted_dir(facts: CdiFacts, path: str) -> bool:
    mounted = _mounted_dir(facts)
    return bool(mounted) and os.path.realpath(os.path.dirname(path)) == os.path.realpath(mounted)


def spec_present(facts: CdiFacts, *, rerun: Rerun = DEFAULT_RERUN) -> Verdict:
    """A spec of kind nvidia.com/gpu in the folder the kind config mounts into the node (:func:`_mounted_dir`): one
    only in /var/run/cdi (toolkit >= 1.18's nvidia-cdi-refresh) or in a later folder of cdi_dirs passes the host but
    never reaches the node, so module 1's "CDI spec visible in the node" would fail. ``rerun``: names the lab
    config the fix of cdi_dirs opens."""
    specs = facts.nvidia_specs
    mounted = _mounted_dir(facts)
    if not mounted:
        return failed(f"cdi_dirs ({_where(facts)}) lists only the node's own CDI folders: the kind config mounts no "
                      f"host folder at the node's {cdi.NODE_STATIC_DIR}, so no spec of kind {cdi.NVIDIA_KIND} "
                      "reaches the node (see the lab config check)",
                      config.edit_setting(rerun.lab_file, "cdi_dirs", f"set cdi_dirs: [{cdi.NODE_STATIC_DIR}, "
                                          f"{cdi.NODE_OWN_DIRS[0]}] (the first folder is the one the kind config "
                                          "mounts into the node)"))
    here = [f for f in specs if _in_mounted_dir(facts, f.path)]
    if here:
        shown = ", ".join(f"{f.path} ({len(f.spec.devices)} devices)" for f in here)
        return passed(f"CDI spec of kind {cdi.NVIDIA_KIND} in {mounted}, the folder the kind config mounts into "
                      f"the node: {shown}")
    problems = facts.problems()
    if problems:
        return failed(f"expected a usable CDI spec of kind {cdi.NVIDIA_KIND} in {mounted}; the only NVIDIA "
                      f"spec is unusable: {problems[0]}",
                      _backup_then_generate(facts, problems[0].path, _generate_mounted(facts, mounted)))
    if specs:
        elsewhere = ", ".join(f.path for f in specs)
        return failed(f"expected a CDI spec of kind {cdi.NVIDIA_KIND} in {mounted} (the folder the kind config "
                      f"mounts into the node); found one only in {elsewhere}, which the node never sees",
                      _generate_mounted(facts, mounted))
    seen = [f.path for f in facts.files]
    found = f"; found only: {', '.join(seen)}" if seen else ""
    unreadable = f"; cannot list {', '.join(facts.unreadable_dirs)}" if facts.unreadable_dirs else ""
    return failed(f"expected a CDI spec of kind {cdi.NVIDIA_KIND} in {mounted} (searched {_where(facts)}), found "
                  f"none{found}{unreadable} (without it the DRA driver sees 0 GPUs)", _generate_mounted(facts, mounted))


def _generate_mounted(facts: CdiFacts, mounted: str) -> str:
    """Generate the spec where the node sees it: at cdi_spec_path when that is in the mounted folder (the lab
    config refuses one that is not), else in the mounted folder itself, saying to set cdi_spec_path there."""
    if _in_mounted_dir(facts, facts.spec_path):
        return facts.generate_command
    target = os.path.join(mounted, "nvidia.yaml")
    return with_note(cdi.generate_command(target, facts.shell, facts.ctk),
                     f"and set cdi_spec_path: {target} in the lab config (the folder the kind config mounts)")


def spec_valid(facts: CdiFacts) -> Verdict:
    problems = facts.problems()
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return failed(f"unusable CDI spec {first}{more}", _backup_then_generate(facts, first.path),
                      details="\n".join(str(p) for p in problems))
    if not facts.files:
        return skipped(f"no CDI spec in {_where(facts)} to validate (see the CDI spec check)")
    specs = facts.nvidia_specs
    if not specs:
        return skipped(f"no spec of kind {cdi.NVIDIA_KIND} to validate (see the CDI spec check)")
    return passed("CDI spec parses: " + ", ".join(
        f"{f.path}: cdiVersion {f.spec.cdi_version}, kind {f.spec.kind}, devices {', '.join(f.spec.device_names)}"
        for f in specs))


def device_count(facts: CdiFacts, gpu: GpuFacts) -> Verdict:
    """Each GPU of this host must be in the spec, by index and by UUID, and no GPU that is not here."""
    specs = [f for f in facts.nvidia_specs if not f.spec.problems]
    if not specs:
        return skipped(f"no usable CDI spec of kind {cdi.NVIDIA_KIND} (see the CDI spec checks)")
    if not gpu.gpus:
        return skipped("no GPU listed by the driver, so the spec's devices cannot be compared (see the GPU checks)")
    want_idx = sorted(str(g.index) for g in gpu.gpus)
    want_uuid = sorted(g.uuid for g in gpu.gpus)
    for f in specs:
        idx, uuids = sorted(f.spec.gpu_indices), sorted(f.spec.gpu_uuids)
        if idx != want_idx or uuids != want_uuid:
            return failed(
                f"{f.path} describes {len(idx)} GPU{'s' * (len(idx) != 1)} (indices {idx}, UUIDs {uuids}); "
                f"this host has {len(want_idx)} (indices {want_idx}, UUIDs {want_uuid})",
                _backup_then_generate(facts, f.path))
    listing = ""
    if facts.cdi_list is not None:
        r = facts.cdi_list
        if not r.ok:
            return failed(f"`nvidia-ctk cdi list` did not work: {r.describe()}", facts.generate_command)
        listed = facts.listed
        names = {n.split("=", 1)[1] for n in listed.names if n.startswith(cdi.NVIDIA_KIND + "=")}
        if listed.count == 0 or not names:
            return failed(f"the spec lists {len(want_idx)} GPU(s) but `nvidia-ctk cdi list` finds "
                          f"{listed.count if listed.count is not None else 'no'} CDI devices (its exit code is 0 "
                          "anyway): runtimes will see no GPU", facts.generate_command)
        missing = [n for n in want_idx + want_uuid if n not in names]
        if missing:
            return failed(f"`nvidia-ctk cdi list` does not list {', '.join(missing)} "
                          f"(it lists {', '.join(sorted(names))})", facts.generate_command)
        listing = f"; `nvidia-ctk cdi list` finds {listed.count} devices"
    return passed(f"CDI spec lists this host's {len(want_idx)} GPU{'s' * (len(want_idx) != 1)} "
                  f"({', '.join(want_uuid)}){listing}")


def not_stale(facts: CdiFacts, gpu: GpuFacts) -> Verdict:
    """Every file the spec mounts exists and it names the running driver's version."""
    specs = [f for f in facts.nvidia_specs if not f.spec.problems]
    if not specs:
        return skipped(f"no usable CDI spec of kind {cdi.NVIDIA_KIND} (see the CDI spec checks)")
    running = gpu.driver
    for f in specs:
        if not f.spec.host_paths:  # "every mounted file exists" of no file is no evidence, and injects no GPU
            return failed(f"{f.path} names no device node, library or hook to give a container: nothing to check "
                          "for staleness, and a container given these devices would get no GPU",
                          _backup_then_generate(facts, f.path))
        if f.missing_paths:
            shown = ", ".join(f.missing_paths[:3]) + (f" (+{len(f.missing_paths) - 3} more)"
                                                        if len(f.missing_paths) > 3 else "")
            return failed(f"{f.path} is stale: it mounts files that do not exist: {shown}; "
                          "containers asking for a GPU would fail to start", _backup_then_generate(facts, f.path),
                          details="\n".join(f.missing_paths))
        if running:
            other = [v for v in f.spec.driver_versions if versions.parse(v) != versions.parse(running)]
            if other:
                return failed(f"{f.path} is stale: it was generated for driver {', '.join(other)}, "
                              f"the running driver is {running}", _backup_then_generate(facts, f.path))
    if not running:
        note = " (driver version unknown: only file existence checked)"
    elif not any(f.spec.driver_versions for f in specs):  # nothing was compared with the running driver
        note = f" (the spec names no driver version: only file existence checked; running driver {running})"
    else:
        note = f" and driver {running}"
    return passed(f"CDI spec is current: every mounted file exists{note}: "
                  + ", ".join(f"{f.path} ({len(f.spec.host_paths)} paths)" for f in specs))


def no_conflicts(facts: CdiFacts) -> Verdict:
    """Two spec files claiming the same kind and device names: which one a runtime uses depends on folder order."""
    specs = facts.nvidia_specs
    if not specs:
        return skipped(f"no CDI spec of kind {cdi.NVIDIA_KIND} (see the CDI spec check)")
    owner: dict[str, str] = {}
    for f in specs:
        for name in f.spec.device_names:
            first = owner.setdefault(name, f.path)
            if first != f.path:
                clash = sorted(set(f.spec.device_names) & {n for n, p in owner.items() if p == first})
                # keep the spec the node sees (the configured folder's); move the other (/var/run/cdi's) aside
                aside = f.path if _in_mounted_dir(facts, first) or not _in_mounted_dir(facts, f.path) else first
                return failed(f"conflicting CDI specs: {first} and {f.path} both define {cdi.NVIDIA_KIND} devices "
                              f"{', '.join(clash)}",
                              with_note(facts.shell.move_aside(aside, facts.backup_of(aside)),
                                        f"keeps {_mounted_dir(facts)}'s spec, the one the kind node mounts; toolkit "
                                        ">= 1.18 rewrites /var/run/cdi/nvidia.yaml at boot and on driver changes: "
                                        "stop that with " + facts.shell.sudo("systemctl disable --now "
                                                                             "nvidia-cdi-refresh.path "
                                                                             "nvidia-cdi-refresh.service")))
    return passed(f"one spec per device name ({len(specs)} spec file{'s' * (len(specs) != 1)} of kind "
                  f"{cdi.NVIDIA_KIND})")


def with_generation(verdict: Verdict, outcome) -> Verdict:
    """Say what --fix-host's ``nvidia-ctk cdi generate`` did (an Outcome, or None when it did not run)."""
    if outcome is None:
        return verdict
    if not outcome.ok and verdict.status == "fail":
        return failed(f"{verdict.message}; --fix-host could not generate it: {outcome.message}",
                      outcome.remediation or verdict.remediation, verdict.details)
    if outcome.changed and verdict.status == "pass":
        return passed(f"{verdict.message} ({outcome.message})", verdict.details)
    return verdict
