"""dra-labcheck: probes, verdicts and the pytest plugin behind the workshop lab checks.

Imports go at the top of a module. The only exceptions are lazy imports of what start-up must not pay for
(module 0's start-up is measured: tests/test_startup.py) or what is optional: the kubernetes client, pynvml,
the docker SDK, PyYAML (only where a YAML text is read or written),
pytest-xdist/execnet for --hosts runs, pytest-metadata. Each such import carries a ``# lazy: <why>`` comment
on its line or the line above; tests/test_layering.py fails on a function-level import without one.
"""
