"""CDI in the Kind node's containerd: the reader of ``containerd config dump`` and of containerdConfigPatches
(labcheck.containerd), the node check's verdict, the kind config's layout check and the cluster step's reuse test.

The dumps in tests/data/containerd are RECONSTRUCTED from containerd's sources (1.7 and 2.1), not captured from a
node: each says so in its header. Python 3.11's tomllib is the reference reader here (the product targets 3.10,
which has none: those comparisons skip there).
"""

from __future__ import annotations

import shlex
import subprocess

import pytest
import yaml

from labcheck import containerd, kindconfig
from labcheck.clis import Clis
from labcheck.cmd import CmdResult
from labcheck.config import LabConfig
from labcheck.probes.node import NodeState
from labcheck.rerun import Rerun
from labcheck.verdicts import kindconfig as kv
from labcheck.verdicts import node as v
from setup_actions import cluster as cluster_action
from tests.captures import DATA

NASTY = "it's $HOME; x"
RERUN = Rerun(cwd=f"/tmp/run dir {NASTY}", python="/usr/bin/python3", root="/srv/dra",
              lab_config=f"/tmp/l {NASTY}.yaml")
CFG = LabConfig(cluster_name="lab-two", kind_config_path=f"/tmp/kc dir/kind {NASTY}.yaml",
                docker_host="unix:///run/user/1000/docker.sock")
CLI = Clis.of(CFG, RERUN)
NODE, CLUSTER, KC = CFG.node_name, CFG.cluster_name, CFG.kind_config_path
GPU_YAML = DATA / "kindconfig/gpu-host-uniform.yaml"


def dump(name: str) -> str:
    """A reconstructed dump without its header note (containerd prints no comment)."""
    return "".join(ln for ln in (DATA / "containerd" / name).read_text().splitlines(True) if not ln.startswith("#"))


DUMP_17, DUMP_21 = dump("dump-1.7-kind-node.toml"), dump("dump-2.1-kind-node.toml")


def reference(text: str) -> dict:
    """``text`` read by tomllib (Python 3.11+); the test skips where there is none."""
    return pytest.importorskip("tomllib").loads(text)


def ok(out: str) -> CmdResult:
    return CmdResult(("docker", "exec", NODE, "containerd", "config", "dump"), 0, out)


def verdict(text: str, **kw):
    return v.containerd_cdi(containerd.dump_cdi(text), ok(text), NODE, CLUSTER, KC, cli=CLI, **kw)


def parses(fix: str) -> bool:
    return subprocess.run(["bash", "-n"], input=fix, capture_output=True, text=True, timeout=30).returncode == 0


# --- the reader ---------------------------------------------------------------------------------------------------

def test_the_reconstructed_dumps_read_as_containerd_1_7_and_2_x_with_cdi_on():
    for text, version, where in ((DUMP_17, 2, '[plugins."io.containerd.grpc.v1.cri"]'),
                                 (DUMP_21, 3, "[plugins.'io.containerd.cri.v1.runtime']")):
        got = containerd.dump_cdi(text)
        assert (got.problem, got.version, got.enabled) == ("", version, True)
        assert got.spec_dirs == ("/etc/cdi", "/var/run/cdi")
        assert got.layout.shown == where and got.defaulted == ()
        reference(text)  # valid TOML by the reference reader


def test_2_x_reads_the_runtime_table_not_the_grpc_one_it_also_prints():
    """containerd 2.x still prints [plugins.'io.containerd.grpc.v1.cri'] (the CRI service), without enable_cdi: an
    enable_cdi = false put there must not count, nor one in 1.7's runtime table."""
    grpc = "    disable_tcp_service = true\n"
    tricked = DUMP_21.replace(grpc, grpc + "    enable_cdi = false\n")
    assert containerd.dump_cdi(tricked).enabled is True
    off = DUMP_21.replace("    enable_cdi = true\n", "    enable_cdi = false\n")
    got = containerd.dump_cdi(off)
    assert got.enabled is False and got.enabled_line == DUMP_21.splitlines().index("    enable_cdi = true") + 1


def test_a_key_containerd_did_not_print_takes_that_versions_default():
    for text, default in ((DUMP_17, False), (DUMP_21, True)):
        gone = "".join(ln for ln in text.splitlines(True) if "enable_cdi" not in ln and "cdi_spec_dirs" not in ln)
        got = containerd.dump_cdi(gone)
        assert (got.enabled, got.spec_dirs, got.defaulted) == (default, ("/etc/cdi", "/var/run/cdi"),
                                                              ("enable_cdi", "cdi_spec_dirs"))
        assert "not in the dump" in got.where


@pytest.mark.parametrize("text", [
    # the forms TOML allows and a hand-edited config or patch may use
    'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = true\ncdi_spec_dirs = [\n  "/etc/cdi", # host\n'
    '  "/var/run/cdi",\n]\n',
    "version = 3\nplugins.'io.containerd.cri.v1.runtime'.enable_cdi = false\n",
    'version=2\r\n[ plugins . "io.containerd.grpc.v1.cri" ]  # CRI\r\n  enable_cdi=true\r\n',
    "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n"
    "cdi_spec_dirs = ['''/etc/cdi''', \"\"\"\n/var/run/cdi\"\"\"]\n",
    'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncdi_spec_dirs = ["/etc/\\u0063di", "/var/run/cdi"]\n'
    'x = {a = "}", b = [1]}\nt = 1979-05-27T07:32:00Z\nf = 0.02\n[[a.b]]\nc = 1\n[[a.b]]\nc = 2\n',
    'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ns = """a\\\n   b""""\nq = \'\'\'it\'s\'\'\'\n',
])
def test_the_reader_agrees_with_tomllib_on_what_it_decides(text):
    ref = reference(text)
    version = ref["version"]
    table = ref.get("plugins", {}).get({2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}[version], {})
    got = containerd.dump_cdi(text)
    assert got.problem == "" and got.version == version
    assert got.enabled == table.get("enable_cdi", version == 3)
    assert list(got.spec_dirs) == table.get("cdi_spec_dirs", ["/etc/cdi", "/var/run/cdi"])
    entries = containerd.read_toml(text)
    for key, value in (("s", "ab\""), ("q", "it's")):
        if key in table:
            assert entries.get("plugins", "io.containerd.grpc.v1.cri", key).value == value == table[key]


@pytest.mark.parametrize("text, why", [
    ("", "no top-level `version`"),
    ("<html><body>502 Bad Gateway</body></html>\n", "not TOML"),
    ('{"version": 2}\n', "not TOML"),
    ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"\nenable_cdi = true\n", "line 2"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = "true"\n', 'enable_cdi = true'),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = yes\n', "enable_cdi = yes on line 3"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = true\nenable_cdi = false\n', "set twice"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncdi_spec_dirs = "/etc/cdi"\n', "expected a list"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncdi_spec_dirs = ["/etc/cdi", 5]\n', "expected a list"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncdi_spec_dirs = ["/etc/cdi"\n', "never closed"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncdi_spec_dirs = ["/etc/cdi\n"]\n', "not closed on its line"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox = "a\\qb"\n', "unknown escape"),
    ("version = 4\n", "expected 2 (containerd 1.x) or 3"),
    ("version = '2'\n", "expected 2"),
    ("version = 1\n[plugins.cri]\nenable_cdi = true\n", "expected 2"),
    ("version = 3\n[plugins.'io.containerd.grpc.v1.cri']\nenable_cdi = true\n", "has no [plugins.'io.containerd.cri"),
    ("version = 2 trailing\n", "expected the end of the line"),
    ("version = 2\n" + "x = " + "[" * 40 + "]" * 40 + "\n", "nested more than"),
    ("version = 2\n\x00\x01binary\n", "expected a key"),
    # what was found is shown on one line and bounded (fsio.shown): a printable value as written, cut with the
    # length of the whole (the whole rest of the line, not the part the reader looked at), else escaped
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = "' + "y" * 300 + '"\n',
     "enable_cdi = " + "y" * 105 + "... (300 characters) on line 3"),
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = "a\\tb\\u001b[2J"\n',
     "enable_cdi = 'a\\tb\\x1b[2J' on line 3"),
    ("version = 2 " + "z" * 5000 + "\n", "expected the end of the line, found " + "z" * 25 + "... (5000 characters)"),
])
def test_anything_unreadable_is_a_problem_with_what_was_found_never_a_guess_or_a_crash(text, why):
    got = containerd.dump_cdi(text)
    assert got.problem and why in got.problem, got.problem
    assert "\n" not in got.problem and "\x00" not in got.problem and got.problem.isprintable()
    fail = verdict(text)
    assert fail.status == "fail" and "cannot tell whether CDI is on" in fail.message and why in fail.message
    assert fail.details  # what was printed, for the reader


def test_a_huge_answer_is_read_in_linear_time():
    """The runner caps a command's output at 8 MiB: a hostile one that size must not take quadratic time."""
    import time

    big = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = true\n' + "".join(
        f'k{i} = ["{"x" * 40}", \'y\', 1]\n' for i in range(30000))
    start = time.monotonic()
    assert containerd.dump_cdi(big).enabled is True
    assert containerd.dump_cdi('version = 2\ns = "' + "\\\\" * 1_000_000 + "\n").problem
    assert time.monotonic() - start < 20


# --- the node check -----------------------------------------------------------------------------------------------

def test_cdi_on_with_both_folders_passes_and_says_where_it_read_it():
    for text, containerd_major in ((DUMP_17, "containerd 1.x"), (DUMP_21, "containerd 2.x")):
        got = verdict(text)
        assert got.status == "pass" and containerd_major in got.message and "/etc/cdi, /var/run/cdi" in got.message


@pytest.mark.parametrize("ours", [True, False])
def test_cdi_off_fails_with_the_rebuild_from_the_generated_config_and_says_so_when_not_ours(ours):
    off = DUMP_17.replace("    enable_cdi = true\n", "    enable_cdi = false\n")
    got = verdict(off, ours=ours)
    assert got.status == "fail" and "CDI is off" in got.message and "enable_cdi = false" in got.message
    assert '[plugins."io.containerd.grpc.v1.cri"]' in got.message and "containerd 1.x" in got.message
    assert got.remediation == v.rebuild(CLUSTER, KC, cli=CLI, ours=ours)
    engine = "DOCKER_HOST=unix:///run/user/1000/docker.sock"
    if ours:  # the suite's own cluster: deleted and made again from the generated config
        assert got.remediation.startswith(f"{engine} kind delete cluster --name {CLUSTER} && {RERUN.provision()}")
    else:  # someone else's: looked at, never deleted by a pasted line (the delete is only named after '#')
        assert got.remediation.startswith(f"{engine} docker ps -a --filter label=io.x-k8s.kind.cluster={CLUSTER}   # ")
    assert (v.NOT_OURS in got.remediation) is not ours
    assert parses(got.remediation)


def test_the_folders_containerd_reads_must_be_etc_cdi_and_var_run_cdi():
    only_etc = DUMP_21.replace("['/etc/cdi', '/var/run/cdi']", "['/etc/cdi']")
    got = verdict(only_etc)
    assert got.status == "fail" and "missing /var/run/cdi" in got.message and "per-claim" in got.message
    run_cdi = DUMP_21.replace("['/etc/cdi', '/var/run/cdi']", "['/etc/cdi/', '/run/cdi', '/opt/cdi']")
    assert verdict(run_cdi).status == "pass"  # /var/run is /run in the node
    hostile = DUMP_21.replace("['/etc/cdi', '/var/run/cdi']", '["/etc/cdi\\n/var/run/cdi"]')
    got = verdict(hostile)
    assert got.status == "fail" and "\n" not in got.message and "'/etc/cdi\\n/var/run/cdi'" in got.message


def test_no_containerd_a_failing_dump_or_no_answer_fail_with_a_fix():
    not_found = CmdResult(("docker", "exec"), 127, "", 'OCI runtime exec failed: exec: "containerd": executable '
                                                      "file not found in $PATH: unknown")
    got = v.containerd_cdi(None, not_found, NODE, CLUSTER, KC, cli=CLI)
    assert got.status == "fail" and "no containerd" in got.message and "node_image" in got.remediation
    assert got.remediation.startswith(v.rebuild(CLUSTER, KC, cli=CLI)) and parses(got.remediation)
    broken = CmdResult(("docker", "exec"), 1, "", 'containerd: failed to load TOML: /etc/containerd/config.toml: '
                                                  "(12, 3): unexpected token")
    got = v.containerd_cdi(None, broken, NODE, CLUSTER, KC, cli=CLI)
    assert got.status == "fail" and "unexpected token" in got.message and "unexpected token" in got.details
    hung = CmdResult(("docker", "exec"), None, timed_out=True, timeout=30)
    got = v.containerd_cdi(None, hung, NODE, CLUSTER, KC, cli=CLI)
    assert got.status == "fail" and "hung" in got.message and got.remediation.endswith(f"start {NODE}")


# --- the kind config's layout ---------------------------------------------------------------------------------------

def config_with(patches) -> kindconfig.ParsedConfig:
    doc = yaml.safe_load(GPU_YAML.read_text())
    if patches is None:
        del doc["containerdConfigPatches"]
    else:
        doc["containerdConfigPatches"] = patches
    return kindconfig.parse(yaml.safe_dump(doc, sort_keys=False), "kc.yaml", RERUN)


def cdi_problems(parsed) -> list[str]:
    return [str(p) for p in kindconfig.layout_problems(parsed) if "CDI" in p.message or "containerdConfig" in p.message]


def test_the_generated_config_turns_cdi_on_and_its_patch_is_required():
    assert kindconfig.layout_problems(kindconfig.load(GPU_YAML)) == []
    assert containerd.patches_cdi([kindconfig.CONTAINERD_CDI_PATCH]).enabled is True
    found = cdi_problems(config_with(None))
    assert len(found) == 1 and "does not turn CDI on" in found[0] and "no containerdConfigPatches entry" in found[0]
    valid = kv.config_valid(config_with(None))
    assert valid.status == "fail" and "does not turn CDI on" in valid.message
    assert RERUN.provision() in valid.remediation


@pytest.mark.parametrize("patches, why", [
    (["version = 3\n[plugins.'io.containerd.cri.v1.runtime']\nenable_cdi = true\n"], "states version = 3"),
    ([kindconfig.CONTAINERD_CDI_PATCH, '[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = false\n'],
     "containerdConfigPatches[1] turns it off"),
    (['[plugins."io.containerd.grpc.v1.cri"]\nenable_cdi = "true"\n'], "expected true or false"),
    (["version = 2\n[plugins.'io.containerd.grpc.v1.cri'\nenable_cdi = true\n"], "cannot be read as the TOML"),
    ([kindconfig.CONTAINERD_CDI_PATCH + '\n  cdi_spec_dirs = ["/etc/cdi"]\n'], "without /var/run/cdi"),
])
def test_a_patch_kind_skips_or_that_turns_cdi_off_or_cannot_be_read_fails_the_layout(patches, why):
    found = cdi_problems(config_with(patches))
    assert any(why in p for p in found), found
    assert all(p.startswith("kc.yaml:") for p in found), found  # the patch's line


def test_patches_kind_applies_are_the_unversioned_and_version_2_ones_the_last_wins():
    on = '[plugins."io.containerd.grpc.v1.cri"]\n  enable_cdi = true\n'
    assert containerd.patches_cdi([on]).enabled is True  # no version: kind applies it
    assert containerd.patches_cdi(["version = 3\n" + on]).skipped == ((0, 3),)
    assert containerd.patches_cdi([on, "version = 2\n" + on.replace("true", "false")]).enabled is False
    assert containerd.patches_cdi(['plugins."io.containerd.grpc.v1.cri".enable_cdi = true']).enabled is True
    parsed = config_with([on])
    (text, line), = parsed.patches
    assert text == on and yaml.safe_dump(parsed.doc, sort_keys=False).splitlines()[line - 1].startswith("- ")


# --- the cluster step's reuse test -----------------------------------------------------------------------------------

def node_like(parsed) -> NodeState:
    """A running node that matches ``parsed`` in every mount and its image."""
    return NodeState(NODE, True, True, image=parsed.image,
                     mounts=tuple((m.host_path, m.container_path, not m.read_only) for m in parsed.mounts))


def test_reuse_notices_a_node_whose_containerd_has_cdi_off_while_the_config_turns_it_on():
    parsed = kindconfig.load(GPU_YAML)
    node = node_like(parsed)
    assert cluster_action.mismatches(node, parsed) == []
    assert cluster_action.mismatches(node, parsed, containerd.dump_cdi(DUMP_17)) == []
    off = containerd.dump_cdi(DUMP_17.replace("    enable_cdi = true\n", "    enable_cdi = false\n"))
    diff = cluster_action.mismatches(node, parsed, off)
    assert len(diff) == 1 and "CDI is off in the node's containerd" in diff[0] and "made without them" in diff[0]
    no_run = containerd.dump_cdi(DUMP_21.replace("['/etc/cdi', '/var/run/cdi']", "['/etc/cdi']"))
    assert cluster_action.mismatches(node, parsed, no_run) == [
        "the node's containerd does not read CDI specs from /var/run/cdi"]
    # a dump that cannot be read proves nothing, and a config that does not turn CDI on asks for nothing
    assert cluster_action.mismatches(node, parsed, containerd.dump_cdi("garbage")) == []
    unpatched = config_with(None)
    assert cluster_action.mismatches(node_like(unpatched), unpatched, off) == []


def test_the_fix_carries_hostile_names_as_single_words():
    got = verdict(DUMP_17.replace("    enable_cdi = true\n", "    enable_cdi = false\n"), ours=True)
    words = shlex.split(got.remediation.split("   # ")[0])
    assert f"/tmp/l {NASTY}.yaml" in " ".join(words) and CLUSTER in words
