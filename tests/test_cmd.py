"""labcheck.cmd against real processes: missing binaries, hangs, exit codes, no shell."""

import sys
import time
from pathlib import Path

from labcheck import cmd


def test_runs_and_captures():
    r = cmd.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (r.rc, r.stdout.strip(), r.stderr.strip()) == (3, "out", "err")
    assert "exited 3" in r.describe()


def test_missing_binary_is_a_value_not_an_exception():
    r = cmd.run(["labcheck-no-such-binary", "--version"])
    assert r.missing and r.rc is None
    assert r.describe() == "`labcheck-no-such-binary` not found on PATH"


def _gone(pid: int, within: float = 5) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie waiting for its parent: it runs no more)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_hung_command_times_out_and_is_killed_with_its_children(tmp_path):
    """The shell's background children and their own children must die with it: SIGKILL to the shell alone
    (proc.kill) would leave them running, and a hung `kind create` would go on after the check gave up."""
    pids = tmp_path / "pids"
    script = f"sh -c 'sleep 30 & echo $! >> {pids}; wait' & echo $! >> {pids}; sleep 30 & echo $! >> {pids}; wait"
    start = time.monotonic()
    r = cmd.run(["sh", "-c", script], timeout=1.0)
    assert r.timed_out and r.rc is None
    assert time.monotonic() - start < 10
    assert "hung: no answer within 1s" in r.describe()
    left = [int(p) for p in pids.read_text().split()]
    assert len(left) == 3, left  # a child shell, its sleep (a grandchild), and a sleep of the first shell
    assert [p for p in left if not _gone(p)] == [], "children of the hung command survived its timeout"


def test_arguments_are_not_interpreted_by_a_shell(tmp_path):
    evil = "x; touch " + str(tmp_path / "pwned")
    r = cmd.run(["echo", evil])
    assert r.stdout.strip() == evil
    assert not (tmp_path / "pwned").exists()


def test_stdin_is_passed():
    r = cmd.run(["cat"], input="get_server_list\n")
    assert r.stdout == "get_server_list\n"
