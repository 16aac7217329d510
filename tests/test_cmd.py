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


# --- bounded output: a tool that answers without end ---------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_a_command_that_prints_without_end_is_stopped_at_the_bound_not_at_the_timeout():
    """`yes` for 3 s gave 1.1 GB of stdout and 4.2 GB RSS (at the default 30 s: the machine out of memory), and
    the message said "hung". Run in a child so its peak memory is its own: it must stay far below the output."""
    code = ("import resource, sys, time; from labcheck import cmd\n"
            "t = time.monotonic(); r = cmd.run(['yes', 'x' * 1000], timeout=20); t = time.monotonic() - t\n"
            "print(repr(r.overflow), len(r.stdout), r.timed_out, r.rc, round(t, 1),"
            " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
            "print(r.describe())\n")
    child = cmd.run([sys.executable, "-c", code], timeout=60, extra_env={"PYTHONPATH": str(ROOT)})
    assert child.ok, child.describe()
    first, message = child.stdout.splitlines()
    stream, size, timed_out, rc, seconds, peak_mib = first.split()
    assert (stream, int(size), timed_out, rc) == ("'stdout'", cmd.MAX_OUTPUT, "False", "None"), first
    assert float(seconds) < 10 and int(peak_mib) < 200, f"{seconds} s, peak {peak_mib} MiB"
    assert f"printed more than {cmd.MAX_OUTPUT} bytes on stdout" in message and "hung" not in message, message


def test_past_the_bound_the_whole_process_group_is_killed_and_the_stream_named(tmp_path):
    pids = tmp_path / "pids"
    r = cmd.run(["sh", "-c", f"sleep 30 & echo $! > {pids}; yes 'an error' >&2"], timeout=20, max_output=100_000)
    assert r.overflow == "stderr" and r.rc is None and not r.timed_out and len(r.stderr) == 100_000
    assert "on stderr" in r.describe()
    assert _gone(int(pids.read_text())), "the tool's child outlived the stop at the output bound"


def test_output_up_to_the_bound_is_whole_and_one_byte_more_is_stopped():
    exact = cmd.run([sys.executable, "-c", "import sys; sys.stdout.write('x' * 1000)"], max_output=1000)
    assert exact.ok and exact.stdout == "x" * 1000 and not exact.overflow
    over = cmd.run([sys.executable, "-c", "import sys; sys.stdout.write('x' * 1001)"], max_output=1000)
    assert over.overflow == "stdout" and over.stdout == "x" * 1000 and not over.ok


def test_output_is_decoded_as_text_mode_did_and_large_input_is_written_whole():
    """What ``Popen(text=True, errors="replace")`` gave: universal newlines, undecodable bytes replaced; an input
    larger than a pipe's buffer is written while the output is read (no deadlock), and a child that reads none
    of its input is no error (communicate() ignored the broken pipe)."""
    r = cmd.run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'a\\r\\nb\\rc\\xff\\n')"])
    assert r.stdout == "a\nb\nc\ufffd\n"
    big = "line\n" * 400_000  # 2 MB
    assert cmd.run(["cat"], input=big).stdout == big
    assert cmd.run(["true"], input=big).ok
    assert cmd.run(["cat"], input="").stdout == ""
