"""Setup action: write manifests/kind-config.yaml from this host's driver files, and make the MPS pipe folder it mounts.

``plan`` returns what writing would do (create / none / update / replace, the unified diff) without writing;
``apply`` writes atomically, backing up a different existing file first. Running it twice on an unchanged host
changes nothing (the generated text is deterministic). Both return the one setup outcome
(:class:`setup_actions.outcome.Outcome`): ``action`` is one of

- ``"none"``: the file there is the generated text already;
- ``"create"``: there was no file;
- ``"update"``: a file this suite wrote (maybe edited since) differs: backed up, then replaced;
- ``"replace"``: a file this suite did not write (no generator header: the user's own config) is there: backed up,
  replaced, and said so in the terminal and in the report, never silently;
- ``"error"``: it could not be read or written (``ok`` is False, ``remediation`` says what to do).

``details`` holds the unified diff, ``backup`` the copy of the file replaced.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from labcheck import fsio, kindconfig
from labcheck.config import LabConfig
from labcheck.probes.driver_files import Inspection, inspect_host
from setup_actions.outcome import Outcome
from setup_actions.privilege import sudo_invoker

NONE, CREATE, UPDATE, REPLACE, ERROR = "none", "create", "update", "replace", "error"


def inspect(cfg: LabConfig) -> Inspection:
    return inspect_host(cfg.extra_lib_dirs, cfg.extra_bin_dirs, timeout=cfg.command_timeout)


def generate(cfg: LabConfig, inspection: Inspection) -> str:
    return kindconfig.render(kindconfig.build(inspection, cfg))


def plan(cfg: LabConfig, inspection: Inspection) -> Outcome:
    return plan_write(cfg.kind_config_path, generate(cfg, inspection))


def apply(cfg: LabConfig, inspection: Inspection) -> Outcome:
    """Create the MPS pipe folder the config mounts (else Docker creates it, root-owned, when the node starts), then
    write the config. A pipe folder this run could not give to the invoking user makes the outcome not ok."""
    folder = make_pipe_folder(cfg.mps_pipe_dir)
    written = write(cfg.kind_config_path, generate(cfg, inspection))
    if folder.ok:
        return written
    return dataclasses.replace(written, ok=False, message=f"{written.message}; {folder.message}",
                               remediation=folder.remediation)


def cannot(path: str, message: str) -> Outcome:
    """The outcome of a write that could not happen (a lock, a FIFO at the path, no permission): ``message``."""
    folder = os.path.dirname(os.path.abspath(path))
    return Outcome(False, ERROR, message,
                   f"ls -ld {shlex.quote(folder)}   # is the folder writable? or set kind_config_path in lab.yaml")


# --- the file --------------------------------------------------------------------------------------------

def _said(path: str, action: str, backup: str = "") -> str:
    """What writing did, in the words the terminal and the report show (the backup named wherever there is one)."""
    if action == REPLACE:
        return (f"{path} was not written by this suite: replaced by the generated kind config; your file is kept as "
                f"{backup} (it had no generator header)")
    if action == UPDATE:
        return f"{path} updated; previous version kept as {backup}"
    return f"{path} {'created' if action == CREATE else 'unchanged'}"


def plan_write(path: str | Path, text: str) -> Outcome:
    """What writing ``text`` would do, touching nothing (``changed`` False). Raises fsio.FileProblem for a path
    that is not a regular file (a FIFO, a device, a folder): it is never read, let alone replaced."""
    p = str(Path(path))
    try:
        old = fsio.read_text(p)
    except FileNotFoundError:
        return Outcome(True, CREATE, f"{p} would be created", details=kindconfig.unified_diff("", text, p))
    if old == text:
        return Outcome(True, NONE, _said(p, NONE))
    action = UPDATE if kindconfig.written_by_suite(old) else REPLACE
    return Outcome(True, action, f"{p} would be backed up and replaced", details=kindconfig.unified_diff(old, text, p))


def write(path: str | Path, text: str) -> Outcome:
    """Write atomically (fsio: through a symlink, mode kept), backing up a different existing file first; no-op
    when equal."""
    planned = plan_write(path, text)
    if planned.action == NONE:
        return planned
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    backup = "" if planned.action == CREATE else fsio.backup(p)
    fsio.write_atomic(p, text)
    return dataclasses.replace(planned, message=_said(str(p), planned.action, backup), changed=True, backup=backup)


# --- the MPS pipe folder ---------------------------------------------------------------------------------

def make_pipe_folder(path: str, environ: Mapping[str, str] = os.environ) -> Outcome:
    """Create the MPS pipe folder (and missing folders above it), owned by the user who runs the workshop.

    WHY that user: module 0's fix starts the host daemon as the attendee (``nvidia-cuda-mps-control -d``, no sudo,
    module0-prerequisites.md 6), and a daemon run by a user creates its pipes in this folder; a root-owned folder
    (under sticky /tmp the user can neither write nor remove it) stops it. Root in the node (module 1's daemon, the
    DRA driver's) writes there whoever owns it. So a suite run as root through ``sudo`` gives the folders it created
    to SUDO_UID:SUDO_GID. A folder that was there already is never touched (nor chowned): it may be the user's,
    or another workshop's. Cannot create it (no permission)? Not this action's failure: the host-paths check says so,
    and Docker creates it when the node starts.
    """
    missing = []
    here = Path(os.path.abspath(path))
    while not os.path.lexists(here) and here != here.parent:
        missing.append(here)
        here = here.parent
    created = []
    for folder in reversed(missing):  # top first, so each mkdir has its parent
        try:
            os.mkdir(folder)
        except FileExistsError:  # another worker (or process) made it: not ours to chown; the folders below
            continue             # it that are still missing are made here, as ours
        except OSError as exc:
            return Outcome(True, NONE, f"cannot create the MPS pipe folder {folder}: {exc.strerror or exc}")
        created.append(folder)
    if not created:
        return Outcome(True, NONE, f"{path} is there" if os.path.isdir(path) else f"{path} is not a folder")
    if os.geteuid() != 0:
        return Outcome(True, CREATE, f"created {path}", changed=True)
    try:
        owner = sudo_invoker(environ)
    except ValueError as exc:
        return Outcome(False, CREATE, f"created the MPS pipe folder {path} owned by root, not by the user who ran "
                       f"sudo: {exc}", _give_back(created), changed=True)
    if owner is None:  # root itself runs the suite (no sudo): root's folder is the user's folder
        return Outcome(True, CREATE, f"created {path}", changed=True)
    uid, gid = owner
    for folder in created:
        try:
            os.chown(folder, uid, gid, follow_symlinks=False)
        except OSError as exc:
            return Outcome(False, CREATE, f"created the MPS pipe folder {path} but cannot give {folder} to "
                           f"{uid}:{gid} (SUDO_UID:SUDO_GID): {exc.strerror or exc}", _give_back(created),
                           changed=True)
    return Outcome(True, CREATE, f"created {path} for {uid}:{gid} (SUDO_UID:SUDO_GID, who ran sudo)", changed=True)


def _give_back(folders: list[Path]) -> str:
    """The fix for folders left root-owned: pasted by the user in their own shell, so ``$(id -u)`` is theirs; with
    ``sudo`` whoever runs the suite (they ran it through sudo). Only the folders this run created, not -R: what is
    inside may be a daemon's."""
    return (f'sudo chown "$(id -u):$(id -g)" {" ".join(shlex.quote(str(f)) for f in folders)}   '
            "# in your own shell, not as root")
