"""Module 1: Kind cluster `workshop-dra` with in-cluster MPS (../shared/seeds/module1-kind-setup.md)."""

import pytest

from labcheck import kindconfig
from labcheck.probes.driver_files import BINARIES, LIBRARIES
from labcheck.verdicts import kindconfig as kv
from labcheck.verdicts import node as v
from setup_actions import node_mps

pytestmark = pytest.mark.module1


# --- setup: config and cluster ------------------------------------------------------------------------

def test_kind_config_generated(kind_config_written, lab_config, m1_host_inspection, pytestconfig, m1_clis, check):
    check(kv.config_generated(kind_config_written, [f.problem for f in m1_host_inspection.problems],
                              pytestconfig.getoption("--no-provision"), lab_config.kind_config_path, cli=m1_clis))


def test_kind_config_valid(kind_config_parsed, check):
    check(kv.config_valid(kind_config_parsed))


def test_kind_config_host_paths_exist(kind_config_parsed, lab_config, check):
    check(kv.host_paths_exist(kind_config_parsed, lab_config.mps_pipe_dir))


def test_node_image_pinned(lab_config, m1_clis, check):
    check(kv.image_pinned(lab_config.node_image, cli=m1_clis))


@pytest.mark.optional(reason="advisory: NVIDIA's DRA guide asks for Kubernetes 1.34.2; the seed pins v1.34.0")
def test_node_image_kubernetes_for_dra_driver(lab_config, m1_clis, check):
    check(kv.image_kubernetes_for_dra(lab_config.node_image, cli=m1_clis))


def test_host_inotify_limits_for_kind(inotify_facts, fix_shell, check):
    check(kv.inotify_limits(*inotify_facts, fix_shell))


def test_cluster_provisioned(cluster_outcome, m1_clis, check):
    o = cluster_outcome
    check(kv.cluster_provisioned(o.ok, o.message, o.remediation, cli=m1_clis))


# --- the node container ---------------------------------------------------------------------------------
# Below: fixtures (fixtures/node.py) gather the facts, labcheck.verdicts.node decides; each test only binds them.

def test_node_container_running(node_state, lab_config, m1_clis, check):
    check(v.node_running(node_state, lab_config.cluster_name, lab_config.kind_config_path, cli=m1_clis,
                         docker_host=lab_config.docker_host))


def test_gpu_device_nodes_on_host(m1_host_inspection, fix_shell, check):
    """Gathered before the cluster is created (m1_host_inspection feeds the config generator)."""
    check(v.host_devices(m1_host_inspection.devices, fix_shell))


def test_gpu_device_nodes_in_node(running_node, node_facts, lab_config, m1_clis, cluster_owned, check):
    f = node_facts
    check(v.node_devices(f.devices, f.devices_res, f.device_paths, lab_config.node_name, lab_config.cluster_name,
                         lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


@pytest.mark.parametrize("name", [*LIBRARIES, *BINARIES])
def test_driver_file_in_node(name, running_node, node_driver_files, lab_config, m1_clis, cluster_owned, check):
    d = node_driver_files
    check(v.node_file(name, d.paths[name], d.found, d.res, lab_config.node_name, lab_config.cluster_name,
                      lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_dra_driver_finds_nvml_in_node(running_node, node_facts, lab_config, m1_clis, cluster_owned, check):
    check(v.dra_library(node_facts.dra_files, node_facts.dra_res, lab_config.node_name, lab_config.cluster_name,
                        lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_dra_driver_finds_nvidia_smi_in_node(running_node, node_facts, lab_config, m1_clis, cluster_owned, check):
    check(v.dra_binary(node_facts.dra_files, node_facts.dra_res, lab_config.node_name, lab_config.cluster_name,
                       lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_cdi_dir_writable_in_node(running_node, node_facts, lab_config, m1_clis, cluster_owned, check):
    check(v.cdi_dir_writable(node_facts.cdi_writable, running_node, lab_config.node_name, lab_config.cluster_name,
                             lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_containerd_cdi_enabled_in_node(running_node, node_containerd, lab_config, m1_clis, cluster_owned, check):
    """"Having CDI enabled is a prerequisite for DRA": CDI on in the node's containerd (`containerd config dump`),
    reading /etc/cdi and /var/run/cdi."""
    check(v.containerd_cdi(node_containerd.cri, node_containerd.res, lab_config.node_name, lab_config.cluster_name,
                           lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_gpu_present_label_on_node(running_node, kube_facts, lab_config, m1_clis, cluster_owned, check):
    check(v.gpu_present_label(kube_facts, lab_config.node_name, lab_config.cluster_name,
                              lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_cdi_spec_visible_in_node(running_node, node_cdi, lab_config, m1_clis, check):
    check(v.cdi_in_node(node_cdi.facts, node_cdi.res, lab_config.node_name, cli=m1_clis))


def test_nvidia_smi_works_in_node(running_node, node_facts, lab_config, m1_clis, check):
    check(v.nvidia_smi(node_facts.nvidia_smi, lab_config.node_name, node_facts.smi_path, lab_config.kind_config_path,
                       cli=m1_clis))


def test_nvidia_smi_in_node_lists_every_host_gpu(running_node, node_facts, gpu_facts, lab_config, m1_clis,
                                                 cluster_owned, check):
    """Issue 14: the node sees each host GPU (by UUID), so the DRA driver can publish them all."""
    check(v.gpus_in_node(node_facts.gpu_query, gpu_facts.gpus, lab_config.node_name, lab_config.cluster_name,
                         lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_node_loader_finds_driver_libraries(running_node, node_libs_outcome, node_facts, node_paths, lab_config,
                                            m1_clis, cluster_owned, check):
    o = node_libs_outcome
    check(v.setup_locked(o.message, lab_config.state_dir, cli=m1_clis) if o.action == "locked" else
          v.node_loader(node_facts.loader, node_facts.loader_errors, o.ok, o.message,
                        [n for n in LIBRARIES if node_paths.files.get(n)], lab_config.node_name,
                        lab_config.cluster_name, lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_workshop_nvidia_smi_command_works(running_node, node_facts, lab_config, m1_clis, cluster_owned, check):
    """The workshop's literal `docker exec NODE nvidia-smi` (exit 0 or 14 passes)."""
    check(v.workshop_nvidia_smi(node_facts.workshop_smi, lab_config.node_name, lab_config.cluster_name,
                                lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


def test_mps_control_on_node_default_path(running_node, node_facts, lab_config, m1_clis, cluster_owned, check):
    """The seed's `docker exec NODE nvidia-cuda-mps-control -d` needs the binary on the node's default PATH."""
    check(v.mps_control_on_path(node_facts.mps_control_path, lab_config.node_name, lab_config.cluster_name,
                                lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))


# --- MPS in the node --------------------------------------------------------------------------------------

def test_mps_pipe_dir_not_shared_with_host_daemon(running_node, host_node_pipe_conflict, node_paths, lab_config,
                                                  fix_shell, m1_clis, check):
    host, ps_res = host_node_pipe_conflict
    check(v.shared_pipe_conflict([d.pid for d in host], node_paths.pipe_dir_host, lab_config.node_name, ps_res,
                                 lab_config.kind_config_path, lab_config.mps_pipe_dir, fix_shell, cli=m1_clis,
                                 start_cmd=node_mps.start_command(lab_config, node_paths)))


def test_mps_control_running_in_node(running_node, node_mps_outcome, node_mps_server_facts, node_paths, lab_config,
                                     m1_clis, check):
    o, f = node_mps_outcome, node_mps_server_facts
    check(v.setup_locked(o.message, lab_config.state_dir, cli=m1_clis) if o.action == "locked" else
          v.mps_control(f.procs, f.procs_res, lab_config.node_name, node_mps.start_command(lab_config, node_paths),
                        "" if o.ok else o.message, cli=m1_clis))


def test_mps_server_running_in_node(running_node, node_mps_server_facts, node_paths, lab_config, m1_clis, check):
    f = node_mps_server_facts
    check(v.mps_server(f.procs, f.server_pids, f.client_reason, lab_config.node_name,
                       node_mps.start_command(lab_config, node_paths), f.daemon_running, f.client_where,
                       cli=m1_clis, clients=f.clients, gpus=f.gpus, log_dir=lab_config.mps_log_dir))


def test_seed_ps_aux_shows_daemon_and_server(running_node, node_mps_server_facts, node_paths, lab_config, m1_clis,
                                             check):
    """The seed's verification, literally: `docker exec NODE ps aux` lists the daemon and the server."""
    check(v.seed_ps_aux(node_mps_server_facts.ps_aux, lab_config.node_name,
                        node_mps.start_command(lab_config, node_paths), cli=m1_clis, log_dir=lab_config.mps_log_dir))


def test_shm_size_in_node(running_node, node_facts, lab_config, fix_shell, m1_clis, check):
    check(v.shm(node_facts.shm, lab_config.shm_min_bytes, node_facts.shm_res, lab_config.node_name, fix_shell,
                cli=m1_clis))


# --- Kubernetes -------------------------------------------------------------------------------------------

def test_kubernetes_node_ready(running_node, kube_facts, lab_config, m1_clis, cluster_owned, check):
    check(v.k8s_node_ready(kube_facts, lab_config.node_name, lab_config.cluster_name, cli=m1_clis,
                           ours=cluster_owned))


def test_resource_api_served(running_node, kube_facts, lab_config, m1_clis, cluster_owned, check):
    wanted = kindconfig.served_api_version(kindconfig.k8s_version(lab_config.node_image))
    check(v.resource_api(kube_facts, wanted, lab_config.node_name, lab_config.cluster_name,
                         lab_config.kind_config_path, cli=m1_clis, ours=cluster_owned))



# --- lab config (issue 11: a module 1 run validates it too) ---------------------------------------------
from labcheck.plugin import config_path  # noqa: E402  (imports per section keep merges clean)
from labcheck.verdicts import host as host_v  # noqa: E402


@pytest.mark.optional_without_lab_config(reason="no lab config was read (--lab-config, ./lab.yaml): nothing to "
                                                "validate, the documented defaults apply")
def test_lab_config_valid(check, lab_config_loaded, pytestconfig):
    check(host_v.lab_config(lab_config_loaded[1], config_path(pytestconfig)))
