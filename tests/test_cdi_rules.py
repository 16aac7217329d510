"""CDI specs judged as the real container-device-interface library judges them: field names in any case.

Facts used (read from the sources, not copied):
* tags.cncf.io/container-device-interface pkg/cdi/spec.go ParseSpec reads a spec with sigs.k8s.io/yaml
  UnmarshalStrict: YAML to JSON with each mapping's keys sorted (yaml.go yamlToJSONTarget; json.Marshal sorts a
  map's keys), then encoding/json with unknown fields refused. encoding/json matches a key to a field
  case-insensitively (Unicode simple folding: U+212A KELVIN SIGN is a k, U+017F LONG S an s) and every matching
  key sets the field again (golang/go#43664): of two spellings the last in sorted order stays, an object
  field's two spellings merge.

The base is the H100 spec of tests/data/cdi (see its header); every case is a variant of it, in real folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labcheck import cdi
from labcheck.probes.cdi import probe_cdi
from labcheck.verdicts import cdi as v
from tests.test_cdi import SPEC, gpu_facts, materialize


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
