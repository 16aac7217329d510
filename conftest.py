"""Root conftest: loads the lab-check plugin, its session fixtures and the reporting hooks.

``pytest_plugins`` is only honoured here (the root), which is why the fixture modules are listed
here rather than in tests_env/.
"""

pytest_plugins = [
    "labcheck.plugin",
    "labcheck.fleet_plugin",
    "reports.plugin",
    "fixtures.facts",
    "fixtures.host",
    "fixtures.docker",
    "fixtures.tools",
    "fixtures.gpu",
    "fixtures.cdi",
    "fixtures.mps",
    "fixtures.cluster",
    "fixtures.node",
    "reports.fleet_plugin",
]
