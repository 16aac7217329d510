"""Setup action: the Kind cluster ``workshop-dra``, created with the real ``kind`` CLI or reused.

- ``plan`` (no side effects): reuse (exists and matches the config), create, repair (ours and
  half-made or stale), or blocked (exists, not ours, does not match: we never delete it).
- ``apply``: one pytest-xdist worker creates while the others wait on a file lock, then reuse it.
  A state file written before ``kind create`` (phase ``creating``), given the node container's ID as soon
  as kind has made it, and completed after it makes an interrupted run repairable by the next one, and
  is the ownership record ``--teardown`` needs.
- Ownership (repair and ``teardown``) needs evidence that the suite made THAT node container: the
  container ID the suite recorded is the one running now (:func:`_ours`). A record without an ID (a run
  killed before kind made the node) or with another ID (the user deleted and re-made the cluster since)
  proves nothing: the cluster is then reused if it matches, else left alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path

from labcheck import cmd, containerd, kindconfig, lock, state
from labcheck.clis import Clis
from labcheck.config import LabConfig
from labcheck.probes import docker as docker_probe
from labcheck.probes import kind as kindcli
from labcheck.probes import node as nodeprobe
from labcheck.probes.driver_files import BINARIES, LIBRARIES
from labcheck.progress import step
from labcheck.remedy import with_note
from labcheck.rerun import DEFAULT as DEFAULT_RERUN
from labcheck.rerun import Rerun
from labcheck.verdicts.docker import engine_elsewhere
from labcheck.verdicts.node import replace_cluster
from setup_actions.outcome import Outcome

NODE_WATCH_INTERVAL = 1.0  # seconds between looks at the node container while `kind create` runs


@dataclass(frozen=True)
class ClusterPlan:
    cluster: str
    action: str  # "reuse" | "create" | "repair" | "blocked" | "error"
    reason: str
    owned: bool = False
    node: nodeprobe.NodeState | None = None
    mismatches: tuple[str, ...] = field(default=())
    fix: str = ""

    def describe(self) -> str:
        return f"{self.action}: {self.reason}"


def _create_cmd(cfg: LabConfig, config_path: str) -> str:
    return (f"{Clis.of(cfg).kind} create cluster --name {shlex.quote(cfg.cluster_name)} "
            f"--config {shlex.quote(config_path)} --image {shlex.quote(cfg.node_image)}")


def _delete_cmd(cfg: LabConfig) -> str:
    return f"{Clis.of(cfg).kind} delete cluster --name {shlex.quote(cfg.cluster_name)}"


def _driver_file(path: str) -> bool:
    """Whether ``path`` names one of the driver files the config mounts (a .so.1 link, a versioned file, a tool)."""
    base = os.path.basename(path)
    stems = tuple(lib.split(".so.")[0] + ".so." for lib in LIBRARIES)
    return base in BINARIES or base.startswith(stems)


def mismatches(node: nodeprobe.NodeState, parsed: kindconfig.ParsedConfig, cri: containerd.CriCdi | None = None
               ) -> list[str]:
    """What differs between the running node and the config: mounts by node path and source, image, mounts
    the config no longer has (a node made with the old layout, driver files at their host paths, or the host's
    /var/run/cdi), and CDI (``cri``: the node's ``containerd config dump``, when it could be read) off or without
    its spec folders in the node's containerd while the config's containerdConfigPatches turn it on.

    A device node may reach the node as a bind mount (kind: privileged node) or as ``--device``. Sources are
    compared after resolving symlinks on this host, since Docker may record a bound link or its target.
    """
    out = []
    binds = {os.path.normpath(dst): src for src, dst, _ in node.mounts}
    have = set(binds) | {os.path.normpath(dst) for _, dst in node.devices}
    wanted = {os.path.normpath(m.container_path) for m in parsed.mounts}
    for m in parsed.mounts:
        dst = os.path.normpath(m.container_path)
        if dst not in have:
            out.append(f"mount {m.container_path} missing")
        elif dst in binds and os.path.realpath(binds[dst]) != os.path.realpath(m.host_path):
            out.append(f"mount {m.container_path} comes from {binds[dst]} instead of {m.host_path}")
    for src, dst, _ in node.mounts:
        if os.path.normpath(dst) in wanted:
            continue
        if _driver_file(dst):
            out.append(f"mount {dst} is not in the config (node made with the old layout: driver files at their "
                       "host paths)")
        elif os.path.normpath(dst) in kindconfig.NODE_CDI_DIRS or os.path.normpath(src) in kindconfig.NODE_CDI_DIRS:
            out.append(f"the host's {src} is mounted at {dst}: the node's /var/run/cdi must be its own")
    if parsed.image and node.image and node.image != parsed.image:
        out.append(f"image {node.image} instead of {parsed.image}")
    return out + _cdi_mismatch(parsed, cri)


def _cdi_mismatch(parsed: kindconfig.ParsedConfig, cri: containerd.CriCdi | None) -> list[str]:
    """WHY here: kind applies containerdConfigPatches only when it creates the node, so a node made from a config
    without them (or another cluster) keeps CDI off whatever the config says now; no docker inspect shows it.
    A dump that could not be read proves nothing either way: module 1's containerd check reports it."""
    if cri is None or cri.problem or cri.layout is None or not kindconfig.patches_turn_cdi_on(parsed):
        return []
    if not cri.enabled:
        return [f"CDI is off in the node's containerd ({cri.where}), while the config's containerdConfigPatches "
                "turn it on: the node was made without them"]
    if cri.missing_dirs:
        return [f"the node's containerd does not read CDI specs from {', '.join(cri.missing_dirs)}"]
    return []


def plan(cfg: LabConfig, config_path: str, rerun: Rerun = DEFAULT_RERUN) -> ClusterPlan:
    """What :func:`apply` would do. ``rerun``: this run's (labcheck.rerun.of), for the fixes that rerun the suite.

    An engine on another machine gets no cluster: the kind config mounts this host's driver files and devices."""
    name = cfg.cluster_name
    elsewhere = docker_probe.engine_elsewhere(cfg)
    if elsewhere:
        refused = engine_elsewhere(docker_probe.endpoint(cfg), elsewhere, cfg.docker_host, rerun)
        return ClusterPlan(name, "error", f"no cluster made or looked for: {refused.message}", fix=refused.remediation)
    parsed = kindconfig.load(config_path, rerun)
    if parsed.problems:
        return ClusterPlan(name, "error", f"kind config unusable: {parsed.problems[0]}", fix=parsed.problems[0].fix)
    clusters, res = kindcli.get_clusters(cfg.kind_binary, cfg.command_timeout, docker_host=cfg.docker_host)
    if not res.ok:
        fix = with_note("", "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or set "
                        "kind_binary in lab.yaml)") if res.missing else \
            with_note(f"{Clis.of(cfg).docker} info", "kind needs a running Docker engine")
        return ClusterPlan(name, "error", f"cannot list kind clusters: {kindcli.safe_error(res)}", fix=fix)
    rec = state.read(state.state_dir(cfg.state_dir), name)
    node = nodeprobe.inspect(cfg.node_name, cfg.command_timeout, docker_host=cfg.docker_host)
    owned = _ours(rec, node)
    if name not in clusters and not node.exists:
        return ClusterPlan(name, "create", f"no cluster {name!r} yet", owned, node)
    if name not in clusters:
        # a container with the node's name that kind does not know: not a kind cluster, whatever it matches
        return ClusterPlan(name, "repair" if owned else "blocked", _not_ours(
            f"a container named {cfg.node_name} exists but kind lists no cluster {name!r}", owned, rec, node),
            owned, node)
    if owned and rec.phase == "creating":
        return ClusterPlan(name, "repair", f"cluster {name!r} was left half-made by an interrupted run of this suite",
                           True, node)
    if not node.exists or not node.running:
        what = "has no node container" if not node.exists else f"node container is {node.status}"
        return ClusterPlan(name, "repair" if owned else "blocked", _not_ours(f"cluster {name!r} {what}", owned, rec,
                                                                             node), owned, node)
    cri, _ = nodeprobe.containerd_cdi(cfg.node_name, cfg.command_timeout, docker_host=cfg.docker_host)
    diff = mismatches(node, parsed, cri)
    if diff:
        reason = _not_ours(f"cluster {name!r} does not match {config_path}: {'; '.join(diff)}", owned, rec, node)
        return ClusterPlan(name, "repair" if owned else "blocked", reason, owned, node, tuple(diff))
    return ClusterPlan(name, "reuse", f"cluster {name!r} exists and matches {config_path}", owned, node)


def apply(cfg: LabConfig, config_path: str, *, provision: bool = True, run_id: str = "",
          rerun: Rerun = DEFAULT_RERUN) -> Outcome:
    """Make the cluster exist (under a lock shared by all workers); never touches a cluster it does not own.

    ``run_id`` identifies the pytest run (shared by its xdist workers): a worker that finds the cluster
    made by another worker of the same run reports it as created in this run, not as pre-existing.
    ``rerun``: how this run's suite runs again (labcheck.rerun.of), for the fixes that say so.
    """
    directory = state.state_dir(cfg.state_dir)
    unusable = with_note(f"mkdir -p -- {shlex.quote(str(directory))}",
                         "or set state_dir in lab.yaml to a writable folder")
    timeout = cfg.cluster_create_timeout + 120
    try:
        with lock.held(directory, state.lock_path(directory, cfg.cluster_name).name, timeout):
            return _apply_locked(cfg, config_path, provision, run_id, rerun)
    except lock.LockProblem as exc:
        fix = with_note(f"rm -- {shlex.quote(str(exc.path))}", "only if no other run is alive") if exc.timed_out \
            else exc.fix or unusable
        return Outcome(False, "error", str(exc), fix)
    except OSError as exc:  # the state folder's record cannot be written
        return Outcome(False, "error", f"cannot use the state folder {directory}: {exc}", unusable)


def _apply_locked(cfg: LabConfig, config_path: str, provision: bool, run_id: str, rerun: Rerun) -> Outcome:
    p = plan(cfg, config_path, rerun)
    create_cmd = _create_cmd(cfg, config_path)
    if p.action == "reuse":
        rec = state.read(state.state_dir(cfg.state_dir), cfg.cluster_name)
        if run_id and rec is not None and rec.run_id == run_id and rec.phase == "created" and p.owned:
            return Outcome(True, "create", f"created cluster {cfg.cluster_name!r} in this run (by another "
                                  "pytest-xdist worker)", changed=True)
        return Outcome(True, "reuse", p.reason)
    if p.action == "error":
        return Outcome(False, "error", p.reason, p.fix or rerun.provision())
    if p.action == "blocked":
        return Outcome(False, "blocked", p.reason + " (not created by this suite: left alone)",
                       replace_cluster(cfg.cluster_name, create_cmd, cli=Clis.of(cfg, rerun), ours=False))
    if not provision:
        return Outcome(False, p.action, f"{p.reason}; --no-provision: not changed", create_cmd)
    directory = state.state_dir(cfg.state_dir)
    # the node we are about to repair keeps its ID in the record until it is deleted: a failed delete leaves
    # it provably ours
    creating = state.ClusterRecord(cfg.cluster_name, "creating", p.node.id if p.owned and p.node else "",
                                   str(Path(config_path)), cfg.node_image, run_id=run_id)
    state.write(directory, creating)
    if p.action == "repair":
        res = _delete(cfg, f"deleting half-made/stale cluster {cfg.cluster_name}")
        if not res.ok:
            return Outcome(False, "repair", f"cannot delete our stale cluster: {kindcli.safe_error(res)}",
                                  _delete_cmd(cfg))
    with step(f"creating Kind cluster {cfg.cluster_name} (image {cfg.node_image})") as progress:
        res, seen = _create_recording_node(cfg, config_path, dataclasses.replace(creating, node_id=""))
        if not res.ok:
            progress.fail(kindcli.safe_error(res))
    if not res.ok:
        if not res.timed_out:
            # kind removes the nodes of a create that failed, so nothing of ours is left: forget the record,
            # or a cluster the user creates later (e.g. with the command below) would count as ours and be
            # "repaired" or deleted by --teardown. A create we killed on timeout did leave a half-made node:
            # its record (with that node's ID) stays, and the next run repairs that node, and no other.
            state.forget(directory, cfg.cluster_name)
        return Outcome(False, p.action, f"kind could not create the cluster: {kindcli.safe_error(res)}",
                              create_cmd)
    node = nodeprobe.inspect(cfg.node_name, cfg.command_timeout, docker_host=cfg.docker_host)
    state.write(directory, state.ClusterRecord(cfg.cluster_name, "created", node.id or seen, str(Path(config_path)),
                                               cfg.node_image, run_id=run_id))
    return Outcome(True, p.action, f"created cluster {shlex.quote(cfg.cluster_name)} ({p.reason})", changed=True)


def _create_recording_node(cfg: LabConfig, config_path: str, creating: state.ClusterRecord
                           ) -> tuple[cmd.CmdResult, str]:
    """``kind create``, while a watcher thread writes the node container's ID into the ``creating`` record as soon
    as kind has made it, again if it is replaced, and once more when the create ends (done, timed out, Ctrl-C).
    Returns kind's result and the last ID seen ('' none).

    WHY during the create: a run killed mid-create (kill -9, a lost terminal) gets no chance to look afterwards,
    and without that ID the next run cannot tell the half-made node from one the user made since. (A node that
    was already there makes kind fail at once, and that record is then forgotten.)
    """
    directory, t, host = state.state_dir(cfg.state_dir), cfg.command_timeout, cfg.docker_host
    done, seen = threading.Event(), [""]

    def watch() -> None:
        while True:
            last = done.wait(NODE_WATCH_INTERVAL)
            node = nodeprobe.inspect(cfg.node_name, t, docker_host=host)
            if node.exists and node.id and node.id != seen[0]:  # a new one: kind may retry a node it could not start
                seen[0] = node.id
                with contextlib.suppress(OSError):  # the record written before the create stays
                    state.write(directory, dataclasses.replace(creating, node_id=node.id))
            if last:
                return

    watcher = threading.Thread(target=watch, name=f"labcheck: node of {cfg.cluster_name}", daemon=True)
    watcher.start()
    try:
        res = kindcli.create(cfg.cluster_name, config_path, cfg.node_image, kind=cfg.kind_binary,
                             docker_host=host, timeout=cfg.cluster_create_timeout)
    finally:
        done.set()
        watcher.join()
    return res, seen[0]


def _ours(rec: state.ClusterRecord | None, node: nodeprobe.NodeState) -> bool:
    """The suite made THIS node container: its record names the ID of the container running under the node's
    name. Neither the name, kind's labels nor a record's phase prove it: the user may have deleted and re-made
    the cluster since (the same name and labels, another container)."""
    return rec is not None and bool(rec.node_id) and node.exists and node.id == rec.node_id


def _not_ours(reason: str, owned: bool, rec: state.ClusterRecord | None, node: nodeprobe.NodeState) -> str:
    """``reason``, plus why the suite's own record does not make this node its own (there is one, but for another
    container or none)."""
    if owned or rec is None or not node.exists:
        return reason
    made = f"container {rec.node_id[:12]}" if rec.node_id else "no node container (it never saw one)"
    return f"{reason}; this suite's record names {made}, not this node ({node.id[:12]})"


def owned(cfg: LabConfig) -> bool:
    rec = state.read(state.state_dir(cfg.state_dir), cfg.cluster_name)
    return _ours(rec, nodeprobe.inspect(cfg.node_name, cfg.command_timeout, docker_host=cfg.docker_host))


def _delete(cfg: LabConfig, what: str):
    """``kind delete cluster`` as a progress step (callers have checked the cluster is ours)."""
    with step(what) as progress:
        res = kindcli.delete(cfg.cluster_name, kind=cfg.kind_binary, docker_host=cfg.docker_host,
                             timeout=cfg.command_timeout * 4)
        if not res.ok:
            progress.fail(kindcli.safe_error(res))
    return res


def teardown(cfg: LabConfig) -> Outcome:
    """Delete the cluster if (and only if) this suite created it."""
    if not owned(cfg):
        return Outcome(True, "kept", f"cluster {cfg.cluster_name!r} was not created by this suite: left alone")
    res = _delete(cfg, f"deleting Kind cluster {cfg.cluster_name}")
    if not res.ok:
        return Outcome(False, "delete", f"kind delete failed: {kindcli.safe_error(res)}",
                              _delete_cmd(cfg))
    state.forget(state.state_dir(cfg.state_dir), cfg.cluster_name)
    return Outcome(True, "deleted", f"deleted cluster {shlex.quote(cfg.cluster_name)} (created by this suite)",
                   changed=True)
