"""Verdicts on module 1's setup: the generated kind config, the node image, the cluster, the host's limits.

Pure functions over facts (the config step's Outcome, a ParsedConfig, sysctl values); tests_env/test_module1.py only
binds fixtures to them. Every remediation is built from the configured names, shell-quoted.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from labcheck import config, kindconfig
from labcheck.clis import DEFAULT as DEFAULT_CLIS
from labcheck.clis import Clis
from labcheck.kindconfig import ParsedConfig
from labcheck.remedy import DEFAULT, Shell, with_note
from labcheck.verdict import Verdict, failed, passed, skipped, warned
from labcheck.verdicts.node import kind_config  # problems with file:line as one verdict (shared with node checks)

if TYPE_CHECKING:  # annotations only: labcheck never imports setup_actions at run time (it is built on labcheck)
    from setup_actions.outcome import Outcome

DEFAULT_IMAGE_HINT = "kindest/node:v1.34.0"
# kind's known issues: many clusters or nodes run out of inotify watches/instances at the kernel defaults.
INOTIFY_MINIMUMS = {"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 512}
INOTIFY_PERSIST_FILE = "/etc/sysctl.d/99-kind-inotify.conf"


def _q(s: str) -> str:
    return shlex.quote(s)


def config_generated(written: Outcome, host_problems: Sequence[str], no_provision: bool, path: str,
                     *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    """Whether the kind config at ``path`` is the one this host needs (written now, or already there).

    ``written``: setup_actions.kind_config's outcome (its ``plan`` under --no-provision). A file there that this
    suite did not write (no generator header) is never replaced silently: the verdict says so and names the backup
    (a warning), or, under --no-provision, says the next run will replace it.
    """
    w = written
    if not w.ok:
        return failed(w.message, w.remediation, details=w.details)
    if host_problems:
        return failed("host inspection: " + "; ".join(host_problems),
                      with_note("nvidia-smi && ldconfig -p | grep -E 'libcuda|libnvidia-ml|ptxjit'",
                                "is the NVIDIA driver installed? else set extra_lib_dirs / extra_bin_dirs in lab.yaml"))
    if w.action != "none" and no_provision:
        what = "does not exist" if w.action == "create" else "differs from what this host needs (diff in details)"
        if w.action == "replace":
            what += "; it was not written by this suite (your own config): a run without --no-provision backs it " \
                    "up next to it and replaces it"
        return failed(f"{path} {what}; --no-provision: not written", with_note(
            cli.rerun.provision(), "without --no-provision: writes it (a changed file is backed up first)"),
            details=w.details)
    if w.action == "replace":
        # '--': a relative kind_config_path (and so its backup) may start with '-', which diff would take as options
        return warned(w.message, with_note(f"diff -u -- {_q(w.backup)} {_q(path)}", "move what you need into lab.yaml "
                      "(extra_lib_dirs, cdi_dirs, ...) or set kind_config_path to another file"), details=w.details)
    return passed(w.message, details=w.details)


def config_valid(parsed: ParsedConfig) -> Verdict:
    """Valid kind config (every field type-checked) AND the GPU node layout the workshop needs."""
    found = [*parsed.problems, *kindconfig.layout_problems(parsed)]
    if not found:
        return passed(f"{parsed.path} is a valid kind config: GPU device nodes, driver files under /usr/lib/<triplet> "
                      "and /usr/bin, label nvidia.com/gpu.present, /etc/cdi read-only, the node's own /var/run/cdi, "
                      "CDI turned on in the node's containerd (containerdConfigPatches)")
    return kind_config(found, parsed.path)


def host_paths_exist(parsed: ParsedConfig, pipe_dir: str = "") -> Verdict:
    """Every hostPath exists; a missing folder is a pass with its fix (``pipe_dir``: the node's MPS pipe folder,
    lab.yaml's mps_pipe_dir: its fix makes it the user's)."""
    if parsed.problems or not parsed.mounts:
        # nothing to look at is not "every hostPath exists": say why instead of passing
        why = parsed.problems[0] if parsed.problems else "it has no extraMounts"
        return skipped(f"no usable kind config to check the host paths of ({why}); see test_kind_config_valid")
    files, dirs = kindconfig.missing_host_paths(parsed, pipe_dir)
    if files:
        return kind_config(files, parsed.path)
    if dirs:  # Docker creates a missing folder (empty) when the node starts: what a fresh host looks like
        folders = "; ".join(str(d) for d in dirs)
        return passed(f"every driver file hostPath in {parsed.path} exists; folders Docker creates empty when the "
                      f"node starts: {folders} (to own them yourself first: "
                      + "; ".join(d.fix for d in dirs) + ")")
    return passed(f"every hostPath in {parsed.path} exists")


def image_pinned(image: str, *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    """``cli``: its rerun names the lab config the fix opens (at node_image's line)."""
    problem = kindconfig.image_problem(image)
    if problem:
        return failed(problem, config.edit_setting(cli.rerun.lab_file, "node_image", "set node_image to a tag listed "
                                                   f"in your kind release's notes, e.g. {DEFAULT_IMAGE_HINT}"))
    return passed(f"node image {image} is pinned")


def image_kubernetes_for_dra(image: str, *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    """Advisory: NVIDIA's DRA install guide asks for Kubernetes >= 1.34.2; the seed's v1.34.0 stays the default.
    ``cli``: its rerun names the lab config the fix opens."""
    release = kindconfig.k8s_release(image)
    want = ".".join(map(str, kindconfig.DRA_GUIDE_K8S))
    if release is None:
        return skipped(f"node image {image!r} has no vMAJOR.MINOR.PATCH tag: its Kubernetes version is unknown")
    have = ".".join(map(str, release))
    if release < kindconfig.DRA_GUIDE_K8S:
        return warned(f"node image {image} runs Kubernetes {have}, below {want}, which NVIDIA's DRA install guide "
                      "asks for GPU allocation (the workshop's seed pins v1.34.0; it may work)",
                      config.edit_setting(cli.rerun.lab_file, "node_image", f"set node_image to kindest/node:"
                                          f"v{want} or later built for your kind release (see its release notes)"))
    return passed(f"node image {image} runs Kubernetes {have} >= {want} (NVIDIA's DRA install guide)")


def cluster_provisioned(ok: bool, message: str, remediation: str, *, cli: Clis = DEFAULT_CLIS) -> Verdict:
    return passed(message) if ok else failed(message, remediation or cli.rerun.provision())


def inotify_limits(values: Mapping[str, int | None], errors: Mapping[str, str], shell: Shell = DEFAULT) -> Verdict:
    """kind's known issue: too few inotify watches/instances break kubelet and node containers.

    ``values``: sysctl name => value read from /proc/sys (None when unreadable, ``errors`` says why).
    """
    unreadable = [f"{n}: {errors.get(n, 'unreadable')}" for n in INOTIFY_MINIMUMS if values.get(n) is None]
    if unreadable:
        return failed("cannot read the inotify limits kind needs: " + "; ".join(unreadable),
                      with_note("sysctl " + " ".join(INOTIFY_MINIMUMS), "a Linux host with /proc mounted is needed"))
    low = {n: need for n, need in INOTIFY_MINIMUMS.items() if (values.get(n) or 0) < need}
    shown = ", ".join(f"{n} = {values.get(n)}" for n in INOTIFY_MINIMUMS)
    if not low:
        return passed(f"inotify limits are enough for kind: {shown}")
    settings = " ".join(f"{n}={need}" for n, need in low.items())
    lines = "".join(f"{n} = {need}\\n" for n, need in low.items())
    fix = with_note(f"{shell.sudo(f'sysctl -w {settings}')} && printf {_q(lines)} | "
                    f"{shell.sudo(f'tee {INOTIFY_PERSIST_FILE}')}", "the file keeps the limits after a reboot")
    return failed(f"inotify limits too low for kind ({shown}; needs "
                  + ", ".join(f"{n} >= {need}" for n, need in low.items()) + ")", fix)
