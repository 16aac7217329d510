"""labcheck.redact: what the Environment section may not show."""

import pytest

from labcheck import redact

KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi...
    server: https://127.0.0.1:41231
  name: kind-workshop-dra
kind: Config
users:
- name: kind-workshop-dra
  user:
    client-key-data: LS0tLS1CRUdJTiBSU0Eg...
"""


@pytest.mark.parametrize("key", ["API_TOKEN", "GITLAB_USER_EMAIL", "AWS_SECRET_ACCESS_KEY", "DOCKER_PASSWORD",
                                 "KUBECONFIG", "ssh_key", "NGC_API_KEY", "HF_TOKEN", "registry_auth"])
def test_secret_keys(key):
    assert redact.is_secret_key(key)


@pytest.mark.parametrize("key", ["GPU", "NVIDIA driver", "Docker", "Kernel", "Python", "Platform", "Plugins",
                                 "CI_COMMIT_SHA", "Setup steps", "Compute capability", "monkey"])
def test_ordinary_keys(key):
    assert not redact.is_secret_key(key)


@pytest.mark.parametrize(("value", "expected"), [
    ("https://bob:ghp_abc@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
    ("https://oauth2:glpat-x@gitlab.example.com/g/r", "https://***@gitlab.example.com/g/r"),
    ("ssh://git@host/repo", "ssh://***@host/repo"),
    ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"),
])
def test_urls_lose_their_credentials(value, expected):
    assert redact.scrub(value) == expected


@pytest.mark.parametrize("value", [KUBECONFIG, "-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
                                   "-----BEGIN CERTIFICATE-----\nMIIC", "Authorization: Bearer eyJhbGciOi",
                                   "token: abcdef"])
def test_key_material_is_replaced_whole(value):
    out = redact.scrub(value)
    assert out.startswith(redact.REDACTED) and "LS0t" not in out and "eyJ" not in out


def test_redact_in_place_keeps_the_dict_object_and_nested_values():
    metadata = {"Python": "3.11", "GIT_URL": "https://u:p@h/r", "API_TOKEN": "x",
                "node-1": {"GPU": "H100", "kubeconfig": "/root/.kube/config", "CA": KUBECONFIG}}
    same = metadata
    changed = redact.redact_in_place(metadata)
    assert metadata is same
    assert sorted(changed) == ["API_TOKEN", "GIT_URL", "node-1"]
    assert metadata["Python"] == "3.11" and metadata["GIT_URL"] == "https://***@h/r"
    assert metadata["API_TOKEN"] == redact.REDACTED
    assert metadata["node-1"]["GPU"] == "H100"
    assert metadata["node-1"]["kubeconfig"] == redact.REDACTED
    assert metadata["node-1"]["CA"].startswith(redact.REDACTED)
