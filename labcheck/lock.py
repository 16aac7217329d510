"""The one inter-process file lock of the suite: setup steps that pytest-xdist workers (or two runs) could do at
once take it, so one does the step and the others wait and find it done.

``held(directory, name, timeout)`` creates the folder, takes ``directory/name`` and turns a timeout or an
unusable folder into one :class:`LockProblem` whose text names the lock, how long it waited and who holds it
(each holder leaves its pid next to the lock), and whose ``fix`` says what to run when the folder is refused.

Folders other users can reach are vetted first (:func:`private_folder` for the suite's own temp folder,
:func:`_squatted` for a configured ``state_dir``): see each for what is refused and why exactly that.

WHY flock and not the filelock package (used before): importing filelock took 22 ms after pytest and
55-75 ms alone on the build VM, and it was the first thing the MPS daemon's start did, on the longest
chain of module 0's facts, competing with the docker SDK's import for the interpreter (benchmarks/module0.py
showed 50-140 ms between that fact's start and its first command; 6-40 ms without the import). This
suite runs on Linux only, where ``fcntl.flock`` on a regular file is the whole of what it needed, and
fleet hosts need one package fewer. The lock is the open file description's: it is released when the
descriptor is closed, also when the process dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import shlex
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from labcheck import fsio
from labcheck.remedy import with_note


class LockProblem(Exception):
    """The lock could not be taken; ``str(exc)`` says why. ``timed_out``: another process held it too long.

    ``fix``: the command that makes the folder usable, when the problem is the folder itself (another user's, a
    link, open to others); "" when the caller's own fix fits (wait for the other run, make the folder). Callers
    show ``exc.fix or <their fix>`` in their failing check.
    """

    def __init__(self, text: str, path: Path, *, timed_out: bool, fix: str = "") -> None:
        super().__init__(text)
        self.path = path
        self.timed_out = timed_out
        self.fix = fix


# Where the fix puts the suite's temp folder when the one in /tmp is refused: under the user's home, which no other
# user can write to (XDG_RUNTIME_DIR is preferred where it is the user's own: see _temp_root_fix).
TEMP_ROOT_IN_HOME = (".cache", "dra-labcheck-tmp")


def _owner(uid: int) -> str:
    """The owner in words: "uid 65534 (nobody)", or "uid 4242" for a uid with no name here."""
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _open_to_others(mode: int) -> bool:
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _is_private(path: str | os.PathLike) -> bool:
    """A real folder (not a link) of this user that no one else may write to."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not _open_to_others(st.st_mode)


def _by_root() -> bool:
    """This run is root's (a root shell, or sudo): the fixes differ (see :func:`_temp_root_fix`)."""
    return os.geteuid() == 0


def _aside(folder: Path) -> str:
    """A new name beside ``folder`` to move it to (nothing is deleted: its owner may want what is in it)."""
    return f"{folder}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}"


def _temp_root_fix(folder: Path) -> str:
    """The command that gets the suite's temp folder (``folder``) out of another user's reach.

    As root: move the refused folder aside (root may rename anything in a sticky /tmp). WHY not TMPDIR for root:
    a root run is mostly ``sudo pytest ...``, and sudo, a setuid program, never passes TMPDIR on (the dynamic
    loader strips it from setuid programs' environment), so an exported TMPDIR would not reach the suite and
    the same refusal would come back on every rerun.

    Otherwise TMPDIR: the one fix that works for a user without sudo in a sticky /tmp, who can neither remove nor
    rename a folder another user made there. ``tempfile.gettempdir()`` (hence labcheck.state.temp_dir()) honours
    TMPDIR only when it names a folder it can write to, and silently falls back to /tmp otherwise, so the command
    makes the folder first (0700). $XDG_RUNTIME_DIR is preferred when it is this user's private folder
    (/run/user/UID): a tmpfs emptied at reboot, as /tmp is; else a folder under the home (the MPS daemon's record
    carries the boot id, so one kept across a reboot is not taken for this boot's).
    """
    if _by_root():
        return (f"mv -- {shlex.quote(str(folder))} {shlex.quote(_aside(folder))}"
                "   # as root; nothing in it is deleted: look at it, then remove it")
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and Path(runtime) != folder.parent and _is_private(runtime):
        return f"export TMPDIR={shlex.quote(runtime)}   # then rerun in this shell"
    root = shlex.quote(os.path.join(os.path.expanduser("~"), *TEMP_ROOT_IN_HOME))
    return f"mkdir -p -m 700 {root} && export TMPDIR={root}   # then rerun in this shell"


def _open_folder_fix(folder: Path) -> str:
    """The fix for this user's own temp folder left open to others: ``chmod 700`` when everything in it is this
    user's; when anything in it is not, move the folder aside (its owner may rename it in a sticky /tmp) and let
    the next run make a new one. WHY not delete what others put there: a user cannot delete files inside another
    user's subfolder, so such a fix would fail half-way, and what was planted is evidence worth a look."""
    me = os.geteuid()
    try:
        foreign = any(entry.stat(follow_symlinks=False).st_uid != me for entry in os.scandir(folder))
    except OSError:
        foreign = True
    quoted = shlex.quote(str(folder))
    if not foreign:
        return f"chmod 700 {quoted}"
    return (f"mv -- {quoted} {shlex.quote(_aside(folder))}   # others put files in it while it was open: the next "
            "run makes a new folder; look at the old one, then remove it")


def _tmpdir_unused(folder: Path) -> str:
    """Why an exported TMPDIR did not move ``folder`` (a TMPDIR that is not a writable folder), or ""."""
    wanted = os.environ.get("TMPDIR", "")
    if wanted and Path(os.path.abspath(wanted)) != folder.parent:
        return (f" (TMPDIR={wanted} is set but not used: Python takes it only when it names a folder it can write "
                f"to; it took {folder.parent})")
    return ""


def _where(parent: Path) -> str:
    try:
        open_to_all = bool(os.stat(parent).st_mode & stat.S_IWOTH)
    except OSError:
        open_to_all = False
    return f"in {parent}, where anyone may create files" if open_to_all else f"in {parent}"


def _components(folder: Path) -> list[Path]:
    """The folders from / down to ``folder``, as written and as resolved (links followed), each once."""
    out: list[Path] = []
    for path in (Path(os.path.abspath(folder)), Path(os.path.realpath(folder))):
        for part in (*reversed(path.parents), path):
            if part not in out and part.parent != part:
                out.append(part)
    return out


def _squatted(folder: Path, what: str, path: Path, fix: str = "", *, above: bool = False, note: str = "") -> None:
    """Raise LockProblem (for the lock ``path``) when a folder on the way to ``folder``, or ``folder`` itself
    (unless ``above``), is in a folder anyone may write to (/tmp) and belongs to another user than this one or
    root. ``fix``: what to run then (by default: set state_dir elsewhere); ``note``: said after the message.

    WHY exactly that, and no more, for a configured ``state_dir``: the user chose that folder, so its permissions
    and links are theirs to choose (a symlink they made to a folder of theirs, a folder shared with their group on
    purpose); refusing those broke real setups. What the user cannot have chosen is a folder that someone else made
    first at the name in a world-writable folder such as /tmp: its owner can hold or delete the suite's locks there
    and plant or swap its records, and only it can undo that. Every step of the path counts (another user's
    /tmp/lab makes /tmp/lab/state theirs to swap), as written and as resolved (a link to /tmp/lab/state too).
    Root's folders are trusted (root can do anything anyway), so are folders in folders others cannot write to
    (root running in a user's home with ``sudo -E`` uses that user's folder: fine, no one else can swap it).
    Folders not there yet are not judged: the mkdir that follows makes them this user's.
    """
    me = os.geteuid()
    itself = {Path(os.path.abspath(folder)), Path(os.path.realpath(folder))}
    for part in _components(folder):
        if above and part in itself:
            continue
        try:
            st = os.lstat(part)
            parent_mode = os.stat(part.parent).st_mode
        except OSError:  # absent (made next) or unreadable: the mkdir or the open says so
            continue
        if not parent_mode & stat.S_IWOTH or st.st_uid in (me, 0):
            continue
        kind = "" if stat.S_ISDIR(st.st_mode) else f" ({fsio.kind_of(st.st_mode)})"
        named = f"the {what} {folder}{kind}" if part in itself else f"{part}{kind}, on the way to the {what} {folder},"
        raise LockProblem(f"{named} belongs to {_owner(st.st_uid)}, not to you (uid {me}), and is "
                          f"{_where(part.parent)}: whoever made it can hold or delete the suite's locks and plant "
                          f"its records there, so it is not used (nothing in it was changed){note}", path,
                          timed_out=False,
                          fix=fix or with_note(f"ls -ld -- {shlex.quote(str(part))}", "set state_dir in the lab "
                                               f"config to a folder of your own, not in {part.parent}"))


def private_folder(folder: Path, path: Path) -> None:
    """Make the suite's own temp folder (labcheck.state.temp_dir(): /tmp/dra-labcheck-UID) 0700, or vet the one
    there; raise LockProblem (for the lock ``path`` in it) with the fix when it is not this user's alone.

    WHY: any local user can create /tmp/dra-labcheck-UID first (for root too: /tmp/dra-labcheck-0). Its owner could
    then hold or delete the Docker runtime and CDI locks and plant or swap the MPS daemon's record. So the folder is
    made with mkdir(0700), never through a link (mkdir does not follow one; the lstat after it sees what is really
    there, also one made in between), and one that exists is used only when it is a real folder, this user's and
    not writable by group or others. Unlike a configured state_dir (:func:`_squatted`), nobody chooses this folder:
    the suite makes it, so anything else at its name was not made by the suite. The fixes: ``chmod 700`` for this
    user's own folder left open; TMPDIR elsewhere (:func:`_temp_root_fix`) for anything else, since whatever is
    there may not be this user's to remove (a user without sudo cannot remove another's folder in a sticky /tmp),
    and it is left exactly as it is.
    """
    move, note = _temp_root_fix(folder), _tmpdir_unused(folder)
    _squatted(folder, "suite's temp folder", path, move, above=True, note=note)  # TMPDIR=/tmp/x, x another's
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    st = os.lstat(folder)
    me = os.geteuid()
    if st.st_uid != me:
        what = "a folder" if stat.S_ISDIR(st.st_mode) else fsio.kind_of(st.st_mode)
        raise LockProblem(f"the suite's temp folder {folder} is {what} that belongs to {_owner(st.st_uid)}, not to "
                          f"you (uid {me}), {_where(folder.parent)}: another user made it first, and could hold or "
                          f"delete the suite's locks there or plant its records; it is not used, and nothing in it "
                          f"was changed{note}", path, timed_out=False, fix=move)
    if not stat.S_ISDIR(st.st_mode):
        what, also = fsio.kind_of(st.st_mode), ""
        if stat.S_ISLNK(st.st_mode):
            with contextlib.suppress(OSError):
                what += f" to {os.readlink(folder)}"
            also = f" (the link is yours: removing it, rm {shlex.quote(str(folder))}, also works)"
        raise LockProblem(f"the suite's temp folder {folder} is {what}, not a folder: the suite uses only a real "
                          f"folder there, never a link; it is not used, and nothing was changed{note}{also}", path,
                          timed_out=False, fix=move)
    if _open_to_others(st.st_mode):
        raise LockProblem(f"the suite's temp folder {folder} is writable by others (mode "
                          f"{stat.S_IMODE(st.st_mode):04o}): anyone could hold or delete the suite's locks there or "
                          f"plant its records; it is not used until it is closed to others", path, timed_out=False,
                          fix=_open_folder_fix(folder))


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def holder(path: Path) -> str:
    """Who last took the lock at ``path`` ("pid N on HOST"), or "" when unknown (also when something other than
    a regular file is in the holder's place: a FIFO there hung every run that timed out waiting for the lock)."""
    with contextlib.suppress(OSError, fsio.FileProblem):
        return fsio.read_text(_holder_file(path), 512, follow_symlinks=False).strip()
    return ""


def _write_holder(path: Path) -> None:
    """Leave this process's name next to the lock, for the message of a run that waits too long for it."""
    fd = _open_regular(_holder_file(path), os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")


def _open_regular(path: Path, flags: int) -> int:
    """A descriptor of the regular file ``path``, created (0644) if absent, opened with ``flags``.

    WHY so careful: lock files live in shared folders (the Docker lock and its holder in /tmp/dra-labcheck-UID,
    where any user may create a name first). A symlink there is never followed (root would write through it), a FIFO
    never blocks the open (it hung the run), a device is never opened: OSError(EINVAL) naming what is there.
    """
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{path} is {fsio.kind_of(mode)}, not a regular file (remove it; the suite "
                                        "makes a new one)")
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the lstat
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


def _acquire(fd: int, timeout: float) -> bool:
    """Take the exclusive lock on ``fd`` within ``timeout`` seconds: False if another process held it longer.

    Polls a non-blocking flock, first every millisecond, then up to every 50 ms: a lock that is free is
    taken at once, a held one is retried soon after it is released, without a thread parked in a
    blocking call that a timeout could not end.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


@contextlib.contextmanager
def held(directory: str | os.PathLike, name: str, timeout: float, *, private: bool = False) -> Iterator[Path]:
    """Hold the lock ``directory/name`` for the with-block (waiting at most ``timeout`` seconds).

    ``private``: ``directory`` is the suite's own temp folder (labcheck.state.temp_dir()), made and vetted by
    :func:`private_folder`; otherwise (a configured state_dir) it is made as needed and refused only when another
    user's folder in a world-writable one is on its way (:func:`_squatted`).

    Raises LockProblem (before the block runs) when another process holds it longer, or when the folder
    cannot be made or used; exceptions of the block itself pass through unchanged.
    """
    folder = Path(directory)
    path = folder / name
    try:
        if private:
            private_folder(folder, path)
        else:
            _squatted(folder, "state folder", path)  # before the mkdir: nothing is made in another user's folder
            folder.mkdir(parents=True, exist_ok=True)
            _squatted(folder, "state folder", path)  # and after: one made at the name meanwhile
        fd = _open_regular(path, os.O_RDWR)
    except OSError as exc:
        raise LockProblem(f"cannot use the state folder {folder} for the lock {name}: {exc.strerror or exc}",
                          path, timed_out=False) from None
    try:
        try:
            got = _acquire(fd, timeout)
        except OSError as exc:  # ENOLCK and the like (a file system without flock): not a held lock
            raise LockProblem(f"cannot lock {path}: {exc.strerror or exc} (the state folder {folder} must be on a "
                              "local file system; set state_dir in the lab config)", path, timed_out=False) from None
        if not got:
            who = holder(path)
            raise LockProblem(f"another labcheck run ({who or 'holder unknown'}) held the lock {path} for over "
                              f"{timeout:g}s", path, timed_out=True)
        with contextlib.suppress(OSError):  # only for the message above: a lock without it still locks
            _write_holder(path)
        yield path
    finally:
        os.close(fd)  # closing the only descriptor of this open file releases its flock
