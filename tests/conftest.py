"""Fixtures and hooks for the project's own tests."""

import sys

import pytest

from labcheck import progress
from tests import needs

pytest_plugins = ["pytester", "tests.planted"]  # tests.planted: the sticky_tmp fixture


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"needs(*things): skip unless each is here, before any fixture runs ({', '.join(needs.CHECKS)}; "
                   "tests/needs.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose ``needs`` are missing before its fixtures are set up (so none is torn down either)."""
    for mark in item.iter_markers("needs"):
        needs.skip_unless(*mark.args)


def _to_captured_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # sys.stderr as of now: the test's capture


@pytest.fixture(autouse=True)
def _progress_lines_stay_with_their_test():
    """Progress lines of setup steps a test calls in-process go to that test's captured output.

    WHY: reports.plugin (loaded by the root conftest for ``pytest tests_env``) sends them past output
    capture to the terminal, so a passing test that makes a step fail on purpose would print
    "[labcheck] creating Kind cluster ... failed" into a green run. Captured, they show only with the
    report of a test that fails, where they help.
    """
    previous = progress.set_writer(_to_captured_stderr)
    yield
    progress.set_writer(previous)
