"""labcheck.cmd against real processes: missing binaries, hangs, exit codes, no shell."""

import sys
import time

from labcheck import cmd


def test_runs_and_captures():
    r = cmd.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (r.rc, r.stdout.strip(), r.stderr.strip()) == (3, "out", "err")
    assert "exited 3" in r.describe()


def test_missing_binary_is_a_value_not_an_exception():
    r = cmd.run(["labcheck-no-such-binary", "--version"])
    assert r.missing and r.rc is None
    assert r.describe() == "`labcheck-no-such-binary` not found on PATH"


def test_hung_command_times_out_and_is_killed_with_its_children():
    start = time.monotonic()
    r = cmd.run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    assert r.timed_out and r.rc is None
    assert time.monotonic() - start < 10
    assert "hung: no answer within 0.5s" in r.describe()


def test_arguments_are_not_interpreted_by_a_shell(tmp_path):
    evil = "x; touch " + str(tmp_path / "pwned")
    r = cmd.run(["echo", evil])
    assert r.stdout.strip() == evil
    assert not (tmp_path / "pwned").exists()


def test_stdin_is_passed():
    r = cmd.run(["cat"], input="get_server_list\n")
    assert r.stdout == "get_server_list\n"
