"""Module 1: Kind cluster `workshop-dra` with in-cluster MPS (../shared/seeds/module1-kind-setup.md)."""

import pytest

from labcheck import kindconfig
from labcheck.cmd import CmdResult
from labcheck.probes import node as nodeprobe
from labcheck.probes.driver_files import BINARIES, LIBRARIES
from labcheck.verdict import failed, warned
from labcheck.verdicts import kindconfig as kv
from labcheck.verdicts import node as v
from setup_actions import node_mps

pytestmark = pytest.mark.module1


# --- setup: config and cluster ------------------------------------------------------------------------

def test_kind_config_generated(kind_config_written, lab_config, m1_host_inspection, pytestconfig, check):
    check(kv.config_generated(kind_config_written, [f.problem for f in m1_host_inspection.problems],
                              pytestconfig.getoption("--no-provision"), lab_config.kind_config_path))


def test_kind_config_valid(kind_config_parsed, check):
    check(kv.config_valid(kind_config_parsed))


def test_kind_config_host_paths_exist(kind_config_parsed, check):
    check(kv.host_paths_exist(kind_config_parsed))


def test_node_image_pinned(lab_config, check):
    check(kv.image_pinned(lab_config.node_image))


@pytest.mark.optional(reason="advisory: NVIDIA's DRA guide asks for Kubernetes 1.34.2; the seed pins v1.34.0")
def test_node_image_kubernetes_for_dra_driver(lab_config, check):
    check(kv.image_kubernetes_for_dra(lab_config.node_image))


def test_host_inotify_limits_for_kind(inotify_facts, fix_shell, check):
    check(kv.inotify_limits(*inotify_facts, fix_shell))


def test_cluster_provisioned(cluster_outcome, check):
    o = cluster_outcome
    check(kv.cluster_provisioned(o.ok, o.message, o.remediation))


# --- the node container ---------------------------------------------------------------------------------

def test_node_container_running(node_state, lab_config, check):
    check(v.node_running(node_state, lab_config.cluster_name, lab_config.kind_config_path))


@pytest.mark.parametrize("name", [*LIBRARIES, *BINARIES])
def test_driver_file_in_node(name, running_node, node_paths, lab_config, check):
    paths = node_paths.files.get(name, [])
    found, res = {}, CmdResult((), 0)
    if paths:
        found, res = nodeprobe.resolve_files(lab_config.node_name, paths, lab_config.command_timeout)
    check(v.node_file(name, paths, found, res, lab_config.node_name, lab_config.cluster_name,
                      lab_config.kind_config_path))


def test_cdi_spec_visible_in_node(running_node, lab_config, check):
    dirs = list(dict.fromkeys(["/etc/cdi", *lab_config.cdi_dirs]))
    files, res = nodeprobe.cdi_spec_files(lab_config.node_name, dirs, lab_config.command_timeout)
    specs: dict = {}
    for f in files:
        r = nodeprobe.read_file(lab_config.node_name, f, lab_config.command_timeout)
        specs[f] = v.cdi_spec_problem(r.stdout) if r.ok else f"unreadable: {r.describe()}"
    check(v.cdi_visible(specs, dirs, res, lab_config.node_name))


def test_nvidia_smi_works_in_node(running_node, node_paths, lab_config, check):
    smi = node_paths.first("nvidia-smi")
    if not smi:
        check(failed(f"{lab_config.kind_config_path} mounts no nvidia-smi into the node", v.REGENERATE))
    env = node_mps.node_env(lab_config, node_paths)
    res = nodeprobe.node_exec(lab_config.node_name, [smi], env, timeout=lab_config.command_timeout)
    check(v.nvidia_smi(res, lab_config.node_name, smi))


def test_node_loader_finds_driver_libraries(running_node, node_libs_outcome, node_paths, lab_config, check):
    o = node_libs_outcome
    check(v.node_loader(o.ok, o.action, o.message, node_paths.lib_dirs, running_node.name,
                        lab_config.kind_config_path))


def test_workshop_nvidia_smi_command_works(running_node, node_paths, node_libs_outcome, lab_config, check):
    """The workshop's literal `docker exec NODE nvidia-smi` (no PATH/LD_LIBRARY_PATH help): warns, never fails,
    since test_nvidia_smi_works_in_node is the criterion; it tells an attendee why the doc's command may not work."""
    res = nodeprobe.node_exec(lab_config.node_name, ["nvidia-smi"], timeout=lab_config.command_timeout)
    verdict = v.nvidia_smi(res, lab_config.node_name, "nvidia-smi")
    if verdict.status == "fail":
        where = node_paths.first("nvidia-smi") or "nowhere (not mounted)"
        verdict = warned(f"the workshop's `docker exec {lab_config.node_name} nvidia-smi` fails ({res.describe()}); "
                         f"nvidia-smi is mounted at {where}", f"docker exec {lab_config.node_name} {where}")
    check(verdict)


# --- MPS in the node --------------------------------------------------------------------------------------

def test_mps_pipe_dir_not_shared_with_host_daemon(running_node, node_mps_outcome, node_paths, lab_config, check):
    # node_mps_outcome first: provisioning releases a host daemon that this run started (module 0) before
    # the node's daemon takes the pipe dir; what is left on the host after that is a real conflict.
    if not node_paths.pipe_dir_host:
        check(failed(f"{lab_config.kind_config_path} does not mount the MPS pipe directory "
                     f"{lab_config.mps_pipe_dir} into the node", v.REGENERATE))
    host, ps_res = nodeprobe.host_daemon_scan(node_paths.pipe_dir_host, running_node.id, lab_config.command_timeout)
    check(v.shared_pipe_conflict([d.pid for d in host], node_paths.pipe_dir_host, lab_config.node_name, ps_res))


def test_mps_control_running_in_node(running_node, node_mps_outcome, node_paths, lab_config, check):
    procs, res = nodeprobe.processes(lab_config.node_name, lab_config.command_timeout)
    verdict = v.mps_control(procs, res, lab_config.node_name, node_mps.start_command(lab_config, node_paths))
    if verdict.status == "fail" and not node_mps_outcome.ok:
        verdict = failed(f"{verdict.message}; setup: {node_mps_outcome.message}", verdict.remediation)
    check(verdict)


def test_mps_server_running_in_node(running_node, node_mps_server_facts, node_paths, lab_config, check):
    procs, pids, reason, daemon, failure = node_mps_server_facts
    check(v.mps_server(procs, pids, reason, lab_config.node_name, node_mps.start_command(lab_config, node_paths),
                       daemon, failure))


def test_shm_size_in_node(running_node, lab_config, check):
    size, res = nodeprobe.shm_bytes(lab_config.node_name, lab_config.command_timeout)
    check(v.shm(size, lab_config.shm_min_bytes, res, lab_config.node_name))


# --- Kubernetes -------------------------------------------------------------------------------------------

def test_kubernetes_node_ready(running_node, kube_facts, lab_config, check):
    facts, err = kube_facts
    check(v.k8s_node_ready(facts, lab_config.node_name, err))


def test_resource_api_served(running_node, kube_facts, lab_config, check):
    facts, err = kube_facts
    wanted = kindconfig.served_api_version(kindconfig.k8s_version(lab_config.node_image))
    check(v.resource_api(facts, wanted, err, lab_config.node_name))



# --- lab config (issue 11: a module 1 run validates it too) ---------------------------------------------
from labcheck.plugin import config_path  # noqa: E402  (imports per section keep merges clean)
from labcheck.verdicts import host as host_v  # noqa: E402


@pytest.mark.optional(reason="a lab config is not required: without one the documented defaults apply")
def test_lab_config_valid(check, lab_config_loaded, pytestconfig):
    check(host_v.lab_config(lab_config_loaded[1], config_path(pytestconfig)))
