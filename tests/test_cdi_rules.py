"""CDI specs judged as the real container-device-interface library judges them: field names in any case, and
the lowest cdiVersion a spec's content allows.

Facts used (read from the sources, not copied):
* tags.cncf.io/container-device-interface pkg/cdi/spec.go ParseSpec reads a spec with sigs.k8s.io/yaml
  UnmarshalStrict: YAML to JSON with each mapping's keys sorted (yaml.go yamlToJSONTarget; json.Marshal sorts a
  map's keys), then encoding/json with unknown fields refused. encoding/json matches a key to a field
  case-insensitively (Unicode simple folding: U+212A KELVIN SIGN is a k, U+017F LONG S an s) and every matching
  key sets the field again (golang/go#43664): of two spellings the last in sorted order stays, an object
  field's two spellings merge.
* specs-go/version.go: the known versions 0.1.0 to 1.1.0 (a leading "v" allowed), vEarliest 0.3.0, and
  requiresV040 ... requiresV110: a mount's type 0.4.0; a device name starting with a digit or a device node's
  hostPath 0.5.0; annotations or a '.' in the kind's class 0.6.0; intelRdt or additionalGids 0.7.0; netDevices,
  intelRdt schemata or enableMonitoring 1.1.0. ValidateVersion refuses a spec below that minimum.

The base is the H100 spec of tests/data/cdi (see its header); every case is a variant of it, in real folders.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from labcheck import cdi
from labcheck.probes.cdi import probe_cdi
from labcheck.remedy import this_host
from labcheck.verdicts import cdi as v
from tests.test_cdi import SPEC, gpu_facts, materialize

SUDO = "" if this_host().root else "sudo "


def _doc(tmp_path: Path) -> dict:
    return yaml.safe_load(materialize(SPEC, tmp_path / "host"))


def _rename_keys(value, rename):
    """``value`` with every mapping key passed through ``rename`` (the H100 spec has no annotations, so every key
    is a field name)."""
    if isinstance(value, dict):
        return {rename(k): _rename_keys(x, rename) for k, x in value.items()}
    if isinstance(value, list):
        return [_rename_keys(x, rename) for x in value]
    return value


def _write(tmp_path: Path, doc: dict | str, name: str = "nvidia.yaml", spec_path: Path | None = None):
    """The spec in a real folder, probed with the configured spec path there (or ``spec_path``)."""
    etc = tmp_path / "etc-cdi"
    etc.mkdir(exist_ok=True)
    if isinstance(doc, str):
        text = doc
    elif name.endswith(".json"):
        text = json.dumps(doc, indent=2, ensure_ascii=False)
    else:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    (etc / name).write_text(text)
    return probe_cdi((str(etc),), None, 10, spec_path=str(spec_path or etc / "nvidia.yaml")), etc / name


def _checks(facts) -> dict:
    gpu = gpu_facts()
    return {"valid": v.spec_valid(facts), "count": v.device_count(facts, gpu), "stale": v.not_stale(facts, gpu),
            "present": v.spec_present(facts)}


# --- 1. field names in any case ------------------------------------------------------------------------------

KELVIN_LONG_S = str.maketrans({"k": "\u212a", "s": "\u017f"})  # runes Go folds into k and s


@pytest.mark.parametrize("name", ["nvidia.yaml", "nvidia.json"])
@pytest.mark.parametrize("rename", [str.lower, str.upper, str.swapcase, lambda k: k.translate(KELVIN_LONG_S)],
                         ids=["lower", "upper", "swapcase", "kelvin-long-s"])
def test_a_spec_with_field_names_in_another_case_reads_as_the_original(tmp_path, rename, name):
    """The runtime reads `DEVICENODES:`, `containeredits:`, `ſ`-for-s exactly like the camelCase names: same
    devices, same device nodes, same files, and every check passes as for the original."""
    doc = _doc(tmp_path)
    original = cdi.parse_spec(yaml.safe_dump(doc), "nvidia.yaml")
    facts, path = _write(tmp_path, _rename_keys(doc, rename), name)
    (spec_file,) = facts.files
    spec = spec_file.spec
    assert spec is not None and spec.problems == (), spec_file
    assert [(d.name, d.device_nodes) for d in spec.devices] == [(d.name, d.device_nodes) for d in original.devices]
    assert all(d.device_nodes for d in spec.devices)
    assert spec.host_paths == original.host_paths and spec.driver_versions == ("580.159.04",)
    assert (spec.cdi_version, spec.kind) == ("0.5.0", cdi.NVIDIA_KIND)
    for check, verdict in _checks(facts).items():
        assert verdict.status == "pass", (check, verdict)


@pytest.mark.parametrize("change, words", [
    (lambda d: d["containerEdits"].update(Env=["NOEQUALS"]) or d["containerEdits"].pop("env"),
     "containerEdits.env[0]: 'NOEQUALS' is not KEY=VALUE"),
    (lambda d: d["containerEdits"]["mounts"][0].update(HOSTPATH=d["containerEdits"]["mounts"][0].pop("hostPath")
                                                       .lstrip("/")), "mounts[0].hostPath: host path"),
    (lambda d: d["devices"][0].update(ContainerEdits={"DeviceNodes": [{"HostPath": "/dev/nvidia0"}]})
     or d["devices"][0].pop("containerEdits"), "path: expected the device's path in the container"),
    (lambda d: d["containerEdits"]["hooks"][0].update(HookName="whenever") or d["containerEdits"]["hooks"][0]
     .pop("hookName"), "hooks[0].hookName: expected one of prestart, createRuntime, createContainer, startContainer, "
                       "poststart, poststop, found 'whenever'"),
    (lambda d: d.update(Kind="nvidia.com/gpus") or d.pop("kind"), "wrong kind 'nvidia.com/gpus'"),
])
def test_what_cdi_refuses_is_found_in_a_field_of_another_case(tmp_path, change, words):
    """A bad value behind a field name in another case is read, so it is judged: no false pass."""
    doc = _doc(tmp_path)
    change(doc)
    verdict = v.spec_valid(_write(tmp_path, doc)[0])
    assert verdict.status == "fail" and words in verdict.message + verdict.details, verdict
    assert "nvidia-ctk cdi generate" in verdict.remediation


def _device_edits(doc: dict, edits: dict) -> dict:
    for d in doc["devices"]:
        d["containerEdits"] = dict(edits)
    return doc


NODES = [{"path": "/dev/nvidia0"}]


@pytest.mark.parametrize("edits, ok", [
    # sorted, "deviceNodes" comes before "devicenodes" ('N' < 'n'), so "devicenodes" is the one kept, in either
    # order in the file
    ({"deviceNodes": [], "devicenodes": NODES}, True),
    ({"devicenodes": NODES, "deviceNodes": []}, True),
    ({"deviceNodes": NODES, "devicenodes": []}, False),
    ({"devicenodes": [], "deviceNodes": NODES}, False),
    ({"DeviceNodes": NODES, "deviceNodes": []}, False),  # "DeviceNodes" < "deviceNodes": the exact name is kept
])
def test_of_two_spellings_of_a_field_the_last_in_sorted_order_is_kept(tmp_path, edits, ok):
    """encoding/json sets a field once for each key that matches it, in the order sigs.k8s.io/yaml's JSON has
    them (sorted); the file's order and which spelling is exact do not matter. Kept empty, the device has no
    edits and CDI refuses the whole spec."""
    root = tmp_path / "host"
    doc = _device_edits(_doc(tmp_path), {k: [{"path": str(root / "dev/nvidia0")}] if n else [] for k, n in
                                         edits.items()})
    verdict = v.spec_valid(_write(tmp_path, doc)[0])
    assert (verdict.status == "pass") == ok, verdict
    if not ok:
        assert "device '0' has no containerEdits" in verdict.message


def test_two_spellings_of_an_object_field_merge(tmp_path):
    """An object field written twice (containerEdits and ContainerEdits) is decoded twice into one struct: the
    device gets the device nodes of one and the env of the other (the exact name alone has no device node)."""
    root = tmp_path / "host"
    doc = _doc(tmp_path)
    for d in doc["devices"]:
        d["ContainerEdits"] = {"deviceNodes": [{"path": str(root / "dev/nvidia0")}]}
        d["containerEdits"] = {"env": ["GPU=1"]}
    facts = _write(tmp_path, doc)[0]
    (spec_file,) = facts.files
    assert spec_file.spec.problems == ()
    assert all(d.device_nodes == (str(root / "dev/nvidia0"),) for d in spec_file.spec.devices)
    for check, verdict in _checks(facts).items():
        assert verdict.status == "pass", (check, verdict)


@pytest.mark.parametrize("loser, words", [
    ({"pth": "/dev/nvidia0"}, "containerEdits.DeviceNodes[0]: unknown field 'pth'"),
    (5, "containerEdits.DeviceNodes: expected a list, found a number"),
])
def test_a_spelling_that_loses_is_still_decoded_and_can_refuse_the_spec(tmp_path, loser, words):
    """The decoder meets every spelling: an unknown field or a wrong type in the one that is overridden still
    makes the runtime refuse the spec."""
    root = tmp_path / "host"
    doc = _device_edits(_doc(tmp_path), {"DeviceNodes": [loser] if isinstance(loser, dict) else loser,
                                         "deviceNodes": [{"path": str(root / "dev/nvidia0")}]})
    verdict = v.spec_valid(_write(tmp_path, doc)[0])
    assert verdict.status == "fail" and words in verdict.message, verdict


def test_null_leaves_an_object_field_as_it_was(tmp_path):
    """`containerEdits: null` next to `ContainerEdits: {...}`: null does not empty a struct (encoding/json), so the
    device keeps its edits."""
    root = tmp_path / "host"
    doc = _doc(tmp_path)
    for d in doc["devices"]:
        d["ContainerEdits"] = {"deviceNodes": [{"path": str(root / "dev/nvidia0")}]}
        d["containerEdits"] = None
    assert v.spec_valid(_write(tmp_path, doc)[0]).status == "pass"


# --- 2. the lowest cdiVersion the content allows ---------------------------------------------------------------

def _named(doc: dict) -> dict:
    """The spec with device names that need no 0.5.0 (the H100 spec's "0" starts with a digit)."""
    for i, d in enumerate(doc["devices"]):
        d["name"] = f"gpu{i}"
    return doc


def _add(where: str, field: str, value):
    def change(doc: dict) -> dict:
        target = doc if where == "spec" else doc["containerEdits"] if where == "edits" else \
            doc["devices"][0]["containerEdits"] if where == "device-edits" else doc["devices"][0]
        target[field] = value
        return doc
    return change


TOO_LOW = [
    # (cdiVersion, change, the version needed, what needs it)
    ("0.4.0", lambda d: d, "0.5.0", "a device name starting with a digit ('0')"),
    ("0.3.0", lambda d: _named(d)["containerEdits"]["deviceNodes"][0].update(hostPath="/dev/nvidia-modeset") or d,
     "0.5.0", "containerEdits.deviceNodes[0].hostPath"),
    ("0.3.0", lambda d: _named(d)["containerEdits"]["mounts"][0].update(type="bind") or d, "0.4.0",
     "containerEdits.mounts[0].type"),
    ("0.5.0", _add("spec", "annotations", {"cdi.k8s.io/x": "y"}), "0.6.0", "the spec's annotations"),
    ("0.5.0", _add("device", "Annotations", {"a": "b"}), "0.6.0", "devices[0].annotations"),
    ("0.6.0", _add("edits", "intelRdt", {}), "0.7.0", "containerEdits.intelRdt"),
    ("0.6.0", _add("device-edits", "additionalGids", [44]), "0.7.0", "devices[0].containerEdits.additionalGids"),
    ("1.0.0", _add("edits", "netDevices", [{"hostInterfaceName": "eth1", "name": "gpu-net"}]), "1.1.0",
     "containerEdits.netDevices"),
    ("0.8.0", _add("device-edits", "intelRdt", {"schemata": ["L3:0=ff"]}), "1.1.0",
     "devices[0].containerEdits.intelRdt.schemata"),
    ("0.2.0", _named, "0.3.0", "every spec"),
]


@pytest.mark.parametrize("version, change, need, what", TOO_LOW,
                         ids=[f"{t[0]}-needs-{t[2]}-{t[3].split()[0]}" for t in TOO_LOW])
def test_a_cdi_version_below_what_the_content_needs_fails_with_version_feature_file_and_fix(
        tmp_path, version, change, need, what):
    doc = change(_doc(tmp_path))
    doc["cdiVersion"] = version
    configured = tmp_path / "my cdi;x" / "nvidia.yaml"  # the lab config's cdi_spec_path: the fix writes there
    facts, path = _write(tmp_path, doc, spec_path=configured)
    verdict = v.spec_valid(facts)
    assert verdict.status == "fail", verdict
    line = path.read_text().splitlines().index(f"cdiVersion: {version}") + 1
    assert f"{path}:{line}: cdiVersion {version} is too low: {what}" in verdict.message, verdict.message
    assert f"needs cdiVersion {need} or later" in verdict.message
    assert f"the spec version must be at least v{need}" in verdict.message  # the runtime's own words
    assert f"set cdiVersion: {need}" in verdict.message
    copy, generate = verdict.remediation.split(" && ")
    *words, aside = shlex.split(copy)
    assert words == [*(["sudo"] if SUDO else []), "mv", str(path)]
    assert re.fullmatch(rf"{re.escape(str(path))}\.labcheck-[0-9]{{14}}(-[0-9]+)?\.bak", aside), aside
    assert shlex.split(generate) == [*(["sudo"] if SUDO else []), "nvidia-ctk", "cdi", "generate",
                                     f"--output={configured}"]
    # the same spec at the version it needs is valid
    doc["cdiVersion"] = need
    assert v.spec_valid(_write(tmp_path, doc, spec_path=configured)[0]).status == "pass"


def test_a_too_low_version_names_the_line_of_what_needs_more(tmp_path):
    doc = _doc(tmp_path)
    doc["cdiVersion"] = "0.4.0"
    facts, path = _write(tmp_path, doc)
    line = path.read_text().splitlines().index("  name: '0'") + 1
    assert f"('0') at line {line} needs cdiVersion 0.5.0" in v.spec_valid(facts).message


def test_the_version_check_reads_fields_in_any_case(tmp_path):
    """`IntelRdt:` is intelRdt to the runtime: 0.6.0 is too low for it; `CDIVERSION: 0.7.0` is enough."""
    doc = _add("edits", "IntelRdt", {"ClosID": "gpu"})(_doc(tmp_path))
    doc["cdiVersion"] = "0.6.0"
    verdict = v.spec_valid(_write(tmp_path, doc)[0])
    assert verdict.status == "fail" and "containerEdits.intelRdt" in verdict.message and "0.7.0" in verdict.message
    doc["CDIVERSION"] = "0.7.0"
    doc.pop("cdiVersion")
    assert v.spec_valid(_write(tmp_path, doc)[0]).status == "pass"


@pytest.mark.parametrize("version, ok", [
    ("0.5.0", True), ("v0.5.0", True), ("1.0.0", True), ("1.1.0", True), ("v1.1.0", True),
    ("0.9.0", False), ("1.2.0", False), ("vv0.5.0", False), ("V0.5.0", False), ("0.5.0-rc1", False),
])
def test_known_cdi_versions_with_or_without_a_leading_v(tmp_path, version, ok):
    """specs-go/version.go knows 0.1.0 to 1.1.0 and trims one leading "v"; anything else is "invalid version"."""
    doc = _doc(tmp_path)
    doc["cdiVersion"] = version
    verdict = v.spec_valid(_write(tmp_path, doc)[0])
    assert (verdict.status == "pass") == ok, verdict
    if not ok:
        assert f"unknown cdiVersion {version!r}" in verdict.message


def test_a_dot_in_the_kinds_class_needs_0_6_0():
    text = SPEC.replace("HOSTROOT", "").replace("kind: nvidia.com/gpu", "kind: nvidia.com/gpu.mig")
    spec = cdi.parse_spec(text, "nvidia.yaml")
    assert any("a '.' in the class of kind 'nvidia.com/gpu.mig'" in p.message and "0.6.0" in p.message
               for p in spec.problems), spec.problems
    assert not cdi.parse_spec(text.replace("cdiVersion: 0.5.0", "cdiVersion: 0.6.0"), "nvidia.yaml").problems


# --- 3. every field's Go type ----------------------------------------------------------------------------------
# specs-go/config.go's types, written out here (not taken from labcheck.cdi): what encoding/json refuses for each
# ("cannot unmarshal string into Go struct field ... of type []specs.Device"), after sigs.k8s.io/yaml has made a
# number or true/false bound for a string that string.

def _at(*where):
    """A change that puts a value at the path ``where`` of the spec (after making every optional object exist)."""
    def change(doc: dict, value) -> dict:
        edits = doc["containerEdits"]
        edits["intelRdt"] = {"closID": "gpu"}
        edits["netDevices"] = [{"hostInterfaceName": "eth1", "name": "gpu-net"}]
        edits["additionalGids"] = [44]
        edits["hooks"][0]["env"] = ["A=1"]
        edits["deviceNodes"][0].update(type="c", major=195, minor=255, fileMode=438, uid=0, gid=0)
        doc["cdiVersion"] = "1.1.0"
        target = doc
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value
        return doc
    return change


WRONG_TYPES = [
    # (where, value, the words of the failing check: the field as written, and what was expected and found)
    (("devices",), "abc", "devices: expected a list, found a string"),
    (("devices",), {"name": "0"}, "devices: expected a list, found a mapping"),
    (("devices", 0), "gpu0", "devices[0]: expected a mapping with name and containerEdits, found a string"),
    (("devices", 0, "name"), ["0"], "devices[0].name: expected a string, found a list"),
    (("devices", 0, "containerEdits"), [], "devices[0].containerEdits: expected a mapping (env, deviceNodes, "
                                           "mounts, hooks), found a list"),
    (("containerEdits",), [], "containerEdits: expected a mapping (env, deviceNodes, mounts, hooks), found a list"),
    (("devices", 0, "containerEdits", "deviceNodes"), {}, "devices[0].containerEdits.deviceNodes: expected a list, "
                                                          "found a mapping"),
    (("devices", 0, "containerEdits", "deviceNodes"), [None], "devices[0].containerEdits.deviceNodes[0]: expected "
                                                              "a mapping with path, found nothing (null)"),
    (("containerEdits", "env"), "A=1", "containerEdits.env: expected a list of strings, found a string"),
    (("containerEdits", "env"), [["A=1"]], "containerEdits.env[0]: expected a string, found a list"),
    (("containerEdits", "env"), [1], "containerEdits.env[0]: '1' is not KEY=VALUE"),  # 1 is "1" to Go
    (("containerEdits", "env"), [None], "containerEdits.env[0]: '' is not KEY=VALUE"),  # null is "" in a []string
    (("containerEdits", "mounts", 0, "options"), "ro", "containerEdits.mounts[0].options: expected a list of "
                                                       "strings, found a string"),
    (("containerEdits", "hooks", 0, "args"), [{}], "containerEdits.hooks[0].args[0]: expected a string, found a "
                                                   "mapping"),
    (("containerEdits", "hooks", 0, "timeout"), "5s", "containerEdits.hooks[0].timeout: expected a whole number "
                                                      "from -9223372036854775808 to 9223372036854775807, found '5s'"),
    (("containerEdits", "hooks", 0, "timeout"), 1.5, "containerEdits.hooks[0].timeout: expected a whole number"),
    (("containerEdits", "deviceNodes", 0, "major"), "195", "containerEdits.deviceNodes[0].major: expected a whole "
                                                           "number"),
    (("containerEdits", "deviceNodes", 0, "minor"), True, "containerEdits.deviceNodes[0].minor: expected a whole "
                                                          "number"),
    (("containerEdits", "deviceNodes", 0, "major"), 2**63, "containerEdits.deviceNodes[0].major: expected a whole "
                                                           "number from -9223372036854775808"),
    (("containerEdits", "deviceNodes", 0, "fileMode"), -1, "containerEdits.deviceNodes[0].fileMode: expected a "
                                                           "whole number from 0 to 4294967295, found -1"),
    (("containerEdits", "deviceNodes", 0, "uid"), 2**32, "containerEdits.deviceNodes[0].uid: expected a whole "
                                                         "number from 0 to 4294967295, found 4294967296"),
    (("containerEdits", "deviceNodes", 0, "gid"), [0], "containerEdits.deviceNodes[0].gid: expected a whole "
                                                       "number from 0 to 4294967295, found a list"),
    (("containerEdits", "deviceNodes", 0, "path"), {"a": 1}, "containerEdits.deviceNodes[0].path: expected a "
                                                             "string, found a mapping"),
    (("containerEdits", "additionalGids"), 44, "containerEdits.additionalGids: expected a list of whole numbers "
                                               "from 0 to 4294967295, found a number"),
    (("containerEdits", "additionalGids"), ["44"], "containerEdits.additionalGids[0]: expected a whole number from "
                                                   "0 to 4294967295, found '44'"),
    (("containerEdits", "intelRdt"), "gpu", "containerEdits.intelRdt: expected a mapping (closID, schemata, ...), "
                                            "found a string"),
    (("containerEdits", "intelRdt", "enableMonitoring"), "true", "containerEdits.intelRdt.enableMonitoring: "
                                                                 "expected true or false, found 'true'"),
    # a value from the spec is shown bounded and on one line (fsio.shown: cut, with its length; escaped)
    (("containerEdits", "intelRdt", "enableMonitoring"), "y" * 300, "containerEdits.intelRdt.enableMonitoring: "
                                                                    f"expected true or false, found '{'y' * 24}... "
                                                                    "(300 characters)"),
    (("containerEdits", "deviceNodes", 0, "major"), "1\n\x1b[2J", "containerEdits.deviceNodes[0].major: expected a "
                                                                "whole number from -9223372036854775808 to "
                                                                "9223372036854775807, found '1\\n\\x1b[2J'"),
    (("containerEdits", "intelRdt", "schemata"), [[]], "containerEdits.intelRdt.schemata[0]: expected a string, "
                                                       "found a list"),
    (("containerEdits", "intelRdt", "closID"), "a/b", "containerEdits.intelRdt.closID: 'a/b' is not a file name"),
    (("containerEdits", "netDevices"), {}, "containerEdits.netDevices: expected a list, found a mapping"),
    (("containerEdits", "netDevices"), [7], "containerEdits.netDevices[0]: expected a mapping with "
                                            "hostInterfaceName and name, found a number"),
    (("containerEdits", "netDevices", 0, "name"), "", "containerEdits.netDevices[0].name: expected a name, found "
                                                      "nothing"),
    (("containerEdits", "netDevices"), [{"hostInterfaceName": "eth1", "name": "a"}] * 2,
     "containerEdits.netDevices[1].hostInterfaceName: 'eth1' is netDevices[0]'s already"),
    (("annotations",), ["a"], "annotations: expected a mapping of names to strings, found a list"),
    (("annotations",), {"cdi.k8s.io/a": {"b": "c"}}, "annotations.cdi.k8s.io/a: expected a string, found a mapping"),
    (("cdiVersion",), ["1.1.0"], "cdiVersion: expected a string, found a list"),
    (("kind",), {"nvidia.com": "gpu"}, "kind: expected a string, found a mapping"),
]


@pytest.mark.parametrize("name", ["nvidia.yaml", "nvidia.json"])
@pytest.mark.parametrize("where, value, words", WRONG_TYPES,
                         ids=[f"{'.'.join(map(str, w))}={json.dumps(x)[:12]}" for w, x, _ in WRONG_TYPES])
def test_a_field_of_the_wrong_type_fails_the_valid_check_naming_file_line_and_field(tmp_path, where, value, words,
                                                                                    name):
    """Every field, at every level, of a YAML or a JSON spec: the runtime refuses the spec, so the valid check fails
    with the file, a line and the field as written; no check raises (they used to skip what they did not read, or
    pass: intelRdt: gpu, fileMode: -1, annotations: [a], enableMonitoring: "true" were called valid)."""
    facts, path = _write(tmp_path, _at(*where)(_doc(tmp_path), value), name)
    checks = {**_checks(facts), "conflicts": v.no_conflicts(facts)}  # every CDI check: none raises
    valid = checks["valid"]
    assert valid.status == "fail" and words in valid.message + valid.details, valid
    assert re.search(rf"{re.escape(str(path))}:\d+: ", valid.message), valid.message
    assert "nvidia-ctk cdi generate" in valid.remediation


ACCEPTED_BY_GO = [
    # (where, value, the device names then): sigs.k8s.io/yaml turns a number or true/false bound for a string into
    # strconv's text of it (FormatFloat(v, 'g', -1, 32) for a float); a whole float reaches an integer field as an
    # integer; a number in annotations is a string
    (("devices", 0, "name"), 7, ("7",)),
    (("devices", 0, "name"), 1.0, ("1",)),
    (("devices", 0, "name"), True, ("true",)),
    (("containerEdits", "deviceNodes", 0, "major"), 195.0, ("0",)),
    (("containerEdits", "deviceNodes", 0, "fileMode"), 0, ("0",)),
    (("annotations",), {"cdi.k8s.io/gpus": 1}, ("0",)),
    (("containerEdits", "intelRdt", "closID"), "/", ("0",)),
]


@pytest.mark.parametrize("where, value, names", ACCEPTED_BY_GO,
                         ids=[f"{'.'.join(map(str, w))}={json.dumps(x)}" for w, x, _ in ACCEPTED_BY_GO])
def test_what_the_runtime_accepts_for_a_field_is_valid(tmp_path, where, value, names):
    doc = _at(*where)(_doc(tmp_path), value)
    doc["devices"] = doc["devices"][:1]
    facts = _write(tmp_path, doc)[0]
    assert v.spec_valid(facts).status == "pass", v.spec_valid(facts)
    assert facts.files[0].spec.device_names == names


def test_plain_scalars_are_read_by_go_yamls_rules_so_mig_names_stay_names(tmp_path):
    """go-yaml v2 has no base-60 numbers, where PyYAML reads an unquoted `1:0` (MIG device 0 of GPU 1, as
    nvidia-ctk names it) as the number 60: that made a GPU index "60" of it, and the device count check compared
    a GPU that does not exist. Unquoted, the names stay names, and are no GPU index."""
    text = materialize(SPEC, tmp_path / "host")
    mig = ("- name: 1:0\n  containerEdits:\n    env: [MIG=1]\n- name: 0:1\n  containerEdits:\n    env: [MIG=2]\n"
           "- name: 1_0\n  containerEdits:\n    env: [N=1]\n")
    text = text.replace("devices:\n", "devices:\n" + mig, 1)
    facts = _write(tmp_path, text)[0]
    spec = facts.files[0].spec
    assert spec.problems == ()
    assert spec.device_names[:3] == ("1:0", "0:1", "10")  # 1_0 is the number 10 to go-yaml too
    assert spec.gpu_indices == ("10", "0")
    assert v.device_count(facts, gpu_facts()).status == "fail"  # "10" is a GPU index this host lacks


MERGED = """cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits: &gpu
    deviceNodes:
    - path: {dev}
- name: all
  containerEdits:
    <<: *gpu
    env: ["ALL=1"]
"""


def test_a_merge_key_is_read_as_the_runtime_reads_it(tmp_path):
    """go-yaml v2 supports merge keys (<<): the merged keys are the mapping's own."""
    dev = tmp_path / "nvidia0"
    dev.touch()
    facts = _write(tmp_path, MERGED.format(dev=dev))[0]
    spec = facts.files[0].spec
    assert spec.problems == () and [d.device_nodes for d in spec.devices] == [(str(dev),), (str(dev),)]
    assert v.spec_valid(facts).status == "pass"


def test_a_key_a_merge_key_has_set_already_fails_as_the_strict_decoder_refuses_it(tmp_path):
    """go-yaml v2's strict mode (sigs.k8s.io/yaml UnmarshalStrict, which CDI uses) refuses a key a merge has set
    already, "key already set in map" (kubernetes-sigs/yaml#46; go-yaml/yaml#410 is still open for v2), where YAML
    itself lets the mapping's own key win: the check says it is the merge, and where the merged key comes from."""
    dev = tmp_path / "nvidia0"
    dev.touch()
    text = MERGED.format(dev=dev).replace('    env: ["ALL=1"]\n', f"    deviceNodes: [{{path: {dev}}}]\n")
    facts, path = _write(tmp_path, text)
    verdict = v.spec_valid(facts)
    assert verdict.status == "fail", verdict
    assert (f"{path}:11: devices[1].containerEdits: 'deviceNodes' is set twice, by a merge key (<<, from line 6) "
            f"and again here") in verdict.message, verdict.message
