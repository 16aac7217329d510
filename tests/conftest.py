"""Fixtures and hooks for the project's own tests."""

import pytest

from tests import needs

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"needs(*things): skip unless each is here, before any fixture runs ({', '.join(needs.CHECKS)}; "
                   "tests/needs.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose ``needs`` are missing before its fixtures are set up (so none is torn down either)."""
    for mark in item.iter_markers("needs"):
        needs.skip_unless(*mark.args)
