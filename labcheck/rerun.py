"""The command that runs this suite again the way this run was started: every "rerun the suite" fix.

WHY one helper: a fix that said ``pytest tests_env -m module1`` ran whatever ``pytest`` is first on PATH (not
this interpreter's, which has the suite's packages), found no ``tests_env`` from another folder, and, without the
run's ``--lab-config``, checked and provisioned the default lab (``./lab.yaml`` or the built-in defaults: another
cluster_name, another kind config), right after the fix's first half had deleted the configured cluster.

What the command carries, and why:

- ``cd <the folder the run started in>``: relative paths in the lab config (``kind_config_path``'s default
  ``manifests/kind-config.yaml``) and the default ``./lab.yaml`` are read from there;
- this interpreter, ``<sys.executable> -m pytest``, and the project's ``tests_env`` as an absolute path (pytest
  then finds the project's conftest.py and pyproject.toml whatever the folder);
- ``--lab-config=<absolute path>`` of the lab config the run read (given, or ``./lab.yaml`` found there);
- ``--fix-host`` when the run had it: the user's consent to setup that changes the host is part of how they
  run the suite, and without it a rerun would skip the host steps the run took;
- ``--no-provision`` and ``--teardown`` only in :meth:`Rerun.again` (this run again, narrowed). A fix that lets
  setup do its work (:meth:`Rerun.provision`: regenerate the kind config, create the cluster, run the CUDA
  clients) drops both: it must provision, and the cluster it makes must stay.

Not carried: the report options (``--html``, ``--results-json``: a rerun to fix one thing should not overwrite
the report of the whole run), ``-n``, ``-k``, ``-x``, ``-v`` (they do not change what a check finds).
Every part is shell-quoted, and options that take a value are written with ``=`` (README: pytest reads this
suite's options only after it has chosen the project folder, and takes a separate value for a test path).

Verdicts are pure: they get a :class:`Rerun` (in :class:`labcheck.clis.Clis` or as an argument), built once per
run by :func:`of` from pytest's config.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass

import pytest

from labcheck.plugin import config_path

TESTS = "tests_env"  # the folder of the lab checks, in the project folder
_KEY = pytest.StashKey["Rerun"]()


@dataclass(frozen=True)
class Rerun:
    """How this run was started. The defaults (no folder, ``python3``, a relative ``tests_env``) are what a
    verdict shows when nobody told it better: unit tests of pure verdicts; every check passes :func:`of`'s."""

    cwd: str = ""  # the folder the run started in ('' : none named, no ``cd``)
    python: str = "python3"
    root: str = ""  # the project folder ('' : tests_env relative to cwd)
    lab_config: str | None = None  # the lab config the run read, absolute (None: none, the defaults applied)
    fix_host: bool = False
    no_provision: bool = False
    teardown: bool = False

    def provision(self, module: str = "module1") -> str:
        """The command that lets setup do its work for ``module``: ``--no-provision`` and ``--teardown`` dropped."""
        return self._command([self.tests], module, (), same_run=False)

    def again(self, markexpr: str = "", *extra: str, paths: tuple[str, ...] = ()) -> str:
        """This run again, under ``-m markexpr`` ('' none), with ``extra`` arguments (already shell words, e.g.
        ``--hosts='a b.yaml'``) and the test ``paths`` (node ids included) relative to the project folder
        (default: tests_env): every option of the run that changes what it does is kept."""
        return self._command([self.path(p) for p in paths] or [self.tests], markexpr, extra, same_run=True)

    @property
    def lab_file(self) -> str:
        """The lab config a rerun reads, for the fixes that change it: the one this run read, else ./lab.yaml in the
        rerun's folder (labcheck.plugin.config_path reads it there when no --lab-config is given)."""
        if self.lab_config is not None:
            return self.lab_config
        return os.path.join(self.cwd, "lab.yaml") if self.cwd else "lab.yaml"

    @property
    def tests(self) -> str:
        return self.path(TESTS)

    def path(self, relative: str) -> str:
        """A test path or node id relative to the project folder (as pytest names them), made absolute."""
        return os.path.join(self.root, relative) if self.root else relative

    def _command(self, paths: list[str], markexpr: str, extra: tuple[str, ...], *, same_run: bool) -> str:
        words = [shlex.quote(self.python), "-m", "pytest", *map(shlex.quote, paths)]
        if self.lab_config is not None:
            words.append("--lab-config=" + shlex.quote(self.lab_config))
        flags = [("--fix-host", self.fix_host)]
        if same_run:
            flags += [("--no-provision", self.no_provision), ("--teardown", self.teardown)]
        words += [flag for flag, on in flags if on]
        if markexpr:
            words += ["-m", shlex.quote(markexpr)]
        words += extra
        cd = f"cd {shlex.quote(self.cwd)} && " if self.cwd else ""
        return cd + " ".join(words)


DEFAULT = Rerun()


def of(config: pytest.Config) -> Rerun:
    """This run's :class:`Rerun` (worked out once per run and kept in its stash).

    The lab config is the one :func:`labcheck.plugin.config_path` chose, joined to the folder the run started
    in exactly as the run opened it (no ``~`` expansion: the run did none either).
    """
    found = config.stash.get(_KEY, None)
    if found is not None:
        return found
    start = str(config.invocation_params.dir)
    lab = config_path(config)
    made = Rerun(cwd=start, python=sys.executable or "python3", root=str(config.rootpath),
                 lab_config=None if lab is None else os.path.join(start, lab),
                 fix_host=bool(config.getoption("--fix-host", False)),
                 no_provision=bool(config.getoption("--no-provision", False)),
                 teardown=bool(config.getoption("--teardown", False)))
    config.stash[_KEY] = made
    return made
