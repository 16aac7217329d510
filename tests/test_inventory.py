"""Reading the instructors' inventory and turning hosts into SSH gateway specs."""

import os

import pytest
from execnet import XSpec

from labcheck import inventory
from labcheck.inventory import InventoryError


def test_yaml_inventory_with_defaults(tmp_path):
    inv = tmp_path / "hosts.yaml"
    inv.write_text("""
defaults:
  python: /usr/bin/python3
  timeout: 900
  ssh_options: ["-o", "StrictHostKeyChecking=accept-new"]
hosts:
  - name: attendee-01
    ssh: ubuntu@10.0.0.11
  - name: attendee-02
    ssh: ubuntu@10.0.0.12
    port: 2222
    python: /opt/venv/bin/python
    timeout: 60
  - gpu-box.example.org
""")
    hosts = inventory.load(inv)
    assert [h.name for h in hosts] == ["attendee-01", "attendee-02", "gpu-box.example.org"]
    assert hosts[0].python == "/usr/bin/python3" and hosts[0].timeout == 900 and hosts[0].port is None
    assert hosts[1].python == "/opt/venv/bin/python" and hosts[1].timeout == 60 and hosts[1].port == 2222
    assert hosts[1].target == "ubuntu@10.0.0.12:2222"
    assert hosts[2].ssh == "gpu-box.example.org"
    assert hosts[0].ssh_options == ("-o", "StrictHostKeyChecking=accept-new")


def test_plain_hosts_file(tmp_path):
    inv = tmp_path / "hosts.txt"
    inv.write_text("# attendees\nubuntu@10.0.0.11\nlab-2 root@10.0.0.12:2200  # the spare\n\n")
    hosts = inventory.load(inv)
    assert [(h.name, h.ssh, h.port) for h in hosts] == [
        ("10.0.0.11", "ubuntu@10.0.0.11", None), ("lab-2", "root@10.0.0.12", 2200)]


def test_xspec_carries_name_python_folder_and_ssh_options():
    host = inventory.Host(name="lab-2", ssh="root@10.0.0.12", port=2200, python="/opt/py/bin/python3",
                          ssh_options=("-i", "/keys/lab"), connect_timeout=7)
    spec = XSpec(host.xspec())
    assert spec.id == "lab-2"
    assert spec.python == "/opt/py/bin/python3"
    assert spec.chdir == ".dra-labcheck-fleet/lab-2"
    assert spec.env == {"LABCHECK_HOST_NAME": "lab-2", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "LABCHECK_FLEET": "1"}
    assert spec.ssh.split() == ["-q", "-o", "BatchMode=yes", "-o", "ConnectTimeout=7", "-o", "ServerAliveInterval=5",
                                "-o", "ServerAliveCountMax=3", "-p", "2200", "-i", "/keys/lab", "root@10.0.0.12"]
    assert host.manual_ssh("true") == "ssh -p 2200 -i /keys/lab root@10.0.0.12 true"


@pytest.mark.parametrize("text, expected", [
    ("hosts:\n  - name: a\n", "`ssh`"),
    ("hosts:\n  - {name: a, ssh: x}\n  - {name: a, ssh: y}\n", "appears twice"),
    ("hosts:\n  - {name: 'bad name', ssh: x}\n", "may only contain"),
    ("hosts:\n  - {ssh: x, colour: red}\n", "unknown key(s) colour"),
    ("hosts:\n  - {ssh: x, port: twenty}\n", "port 'twenty' is no TCP port; expected 1-65535"),
    # YAML ports as strictly as the hosts file's (0 meant ssh's 22, '١٢' 12, true 1, 70000 was passed on)
    ("hosts:\n  - {ssh: x, port: 0}\n", "port 0 is no TCP port"),
    ("hosts:\n  - {ssh: x, port: '١٢'}\n", "is no TCP port"),
    ("hosts:\n  - {ssh: x, port: true}\n", "port True is no TCP port"),
    ("hosts:\n  - {ssh: x, port: 70000}\n", "port 70000 is no TCP port"),
    ("hosts:\n  - {ssh: x, port: -5}\n", "port -5 is no TCP port"),
    # a time limit that is no positive finite number (nan/inf made the host's timer fail or never fire)
    ("hosts:\n  - {ssh: x, timeout: .nan}\n", "timeout nan is no number of seconds"),
    ("hosts:\n  - {ssh: x, timeout: .inf}\n", "timeout inf is no number of seconds"),
    ("hosts:\n  - {ssh: x, connect_timeout: -1}\n", "connect_timeout -1 is no number of seconds"),
    ("hosts:\n  - {ssh: x, connect_timeout: soon}\n", "connect_timeout 'soon' is no number of seconds"),
    ("defaults: {timeout: 0}\nhosts: [x]\n", "timeout 0 is no number of seconds"),
    ("hosts:\n  - {ssh: x, connect_timeout: 0.5}\n", "connect_timeout 0.5 is no number of seconds"),  # ssh's 0
    ("hosts:\n  - {ssh: x, ssh_options: ['-i', 'my key']}\n", "whitespace"),
    ("hosts:\n  - {ssh: x, python: 'a//b'}\n", "'//'"),
    ("hosts: []\n", "no hosts"),
    ("a b c d\n", "expected `[name] user@host[:port]`"),
    ("defaults: [1]\nhosts: [x]\n", "`defaults` must be a mapping"),
])
def test_bad_inventories_say_what_to_write(tmp_path, text, expected):
    inv = tmp_path / "hosts.yaml"
    inv.write_text(text)
    with pytest.raises(InventoryError, match=None) as err:
        inventory.load(inv)
    assert expected in str(err.value)
    assert str(inv) in str(err.value)


def test_missing_inventory(tmp_path):
    with pytest.raises(InventoryError, match="cannot read inventory"):
        inventory.load(tmp_path / "nope.yaml")


def test_select_hosts():
    hosts = [inventory.Host(name=n, ssh=n) for n in ("a", "b", "c")]
    assert [h.name for h in inventory.select(hosts, ["c", "a"])] == ["a", "c"]
    assert inventory.select(hosts, []) == hosts
    with pytest.raises(InventoryError, match="--fleet-host z: not in the inventory"):
        inventory.select(hosts, ["z"])


def test_a_bare_ipv6_target_in_a_hosts_file_is_an_address_not_a_port(tmp_path):
    """ssh takes `user@2001:db8::1`: its last group is part of the address (it was read as port 1 of host
    `user@2001:db8:`); a port goes with brackets, `user@[2001:db8::1]:2222`, as in URLs, and ssh gets the
    address without them (it cannot resolve "[::1]")."""
    inv = tmp_path / "hosts"
    inv.write_text("a ubuntu@2001:db8::1\nb ubuntu@fe80::a\nc ubuntu@[2001:db8::2]:2222\nd ubuntu@10.0.0.1:22\n"
                   "e [::1]\n")
    hosts = inventory.load(inv)
    assert [(h.ssh, h.port) for h in hosts] == [("ubuntu@2001:db8::1", None), ("ubuntu@fe80::a", None),
                                                ("ubuntu@2001:db8::2", 2222), ("ubuntu@10.0.0.1", 22), ("::1", None)]
    assert [h.target for h in hosts] == ["ubuntu@2001:db8::1", "ubuntu@fe80::a", "ubuntu@[2001:db8::2]:2222",
                                         "ubuntu@10.0.0.1:22", "::1"]
    yaml_inv = tmp_path / "hosts.yaml"
    yaml_inv.write_text("hosts:\n  - {name: f, ssh: 'ubuntu@[fe80::b]', port: 2200}\n")
    assert [(h.ssh, h.port) for h in inventory.load(yaml_inv)] == [("ubuntu@fe80::b", 2200)]


def test_a_port_in_a_yaml_ssh_target_is_the_hosts_port(tmp_path):
    """`ssh: user@host:2222` in YAML (a mapping's ssh or a plain string entry) is read as the hosts file reads it:
    ssh gets `user@host` and `-p 2222` (left whole, ssh could not resolve the host name `host:2222`). A defaults
    port gives way to the entry's own; a different `port:` beside it is an error that names both."""
    inv = tmp_path / "hosts.yaml"
    inv.write_text("defaults: {port: 22}\nhosts:\n  - {name: a, ssh: 'ubuntu@10.0.0.1:2222'}\n"
                   "  - ubuntu@[2001:db8::2]:2200\n  - {name: c, ssh: ubuntu@10.0.0.3:2300, port: 2300}\n"
                   "  - {name: d, ssh: 'ubuntu@fe80::d'}\n  - ubuntu@10.0.0.5\n")
    hosts = inventory.load(inv)
    assert [(h.name, h.ssh, h.port) for h in hosts] == [
        ("a", "ubuntu@10.0.0.1", 2222), ("2001-db8--2-2200", "ubuntu@2001:db8::2", 2200),
        ("c", "ubuntu@10.0.0.3", 2300), ("d", "ubuntu@fe80::d", 22), ("10.0.0.5-22", "ubuntu@10.0.0.5", 22)]
    assert hosts[0].ssh_args()[-3:] == ["-p", "2222", "ubuntu@10.0.0.1"]
    inv.write_text("hosts:\n  - {name: a, ssh: 'ubuntu@10.0.0.1:2222', port: 22}\n")
    with pytest.raises(InventoryError, match=r"hosts entry 1: two ports: 2222 in ssh 'ubuntu@10.0.0.1:2222' and 22"):
        inventory.load(inv)
    inv.write_text("hosts:\n  - {name: a, ssh: 'ubuntu@10.0.0.1:22x'}\n")
    with pytest.raises(InventoryError, match=r"hosts entry 1: port '22x' of 'ubuntu@10.0.0.1:22x' is no TCP port"):
        inventory.load(inv)


@pytest.mark.parametrize(("text", "expected"), [
    (b"ubuntu@h\n\xff\xfe\n", r"is not UTF-8 text"),
    (b"hosts:\n  - {name: a, ssh: u@h, ssh_options: \"-o 'Foo\"}\n", r"ssh_options .* cannot be split"),
    (b"hosts:\n  - {name: a, ssh: u@h, ssh_options: 5}\n", r"ssh_options must be a list of ssh arguments"),
    (b"hosts:\n  - {name: a, ssh: u@h, ssh_options: {a: 1}}\n", r"ssh_options must be a list"),
    (b"hosts:\n  - {name: a, ssh: u@h, ssh_options: [[a]]}\n", r"ssh_options must be a list"),
    (b"hosts:\n  - {1: b, ssh: x}\n", r"unknown key\(s\) 1"),
    (b"hosts:\n  - {name: a, ssh: u@h, workdir: [a]}\n", r"`workdir` must be text, found list"),
    (b"hosts:\n  - {name: a, ssh: u@h, python: {a: 1}}\n", r"`python` must be text, found dict"),
    (b"hosts:\n  - {name: \"ok1\\n\", ssh: u@h}\n", r"host name 'ok1\\n' may only contain"),
    (b"hosts:\n  - {name: a, ssh: u@h, connect_timeout: 1e10}\n", r"connect_timeout '1e10' is no number of seconds"),
    (b"hosts:\n  - {name: a, ssh: u@h, timeout: 10000000000}\n", r"timeout 10000000000 is no number of seconds"),
    (b"hosts:\n  - {name: a, ssh: u@h, workdir: /.}\n", r"workdir '/\.' is the root or the login folder"),
    (b"hosts:\n  - {name: a, ssh: u@h, workdir: /..}\n", r"workdir '/\.\.' is the root"),
    (b"hosts:\n  - name: a\n   ssh: u@h\n", r"hosts\.yaml:3: not valid YAML"),
    (b"hosts:\n  - {name: a, ssh: \"-oProxyCommand=touch${IFS}/tmp/x\"}\n", r"starts with '-', which ssh reads"),
    (b"a -oProxyCommand=id\n", r"ssh target '-oProxyCommand=id' starts with '-'"),
])
def test_a_bad_inventory_is_an_inventory_error_that_says_what_to_write(tmp_path, text, expected):
    """Each of these was an INTERNALERROR (UnicodeDecodeError, shlex's ValueError, TypeError), a silent
    conversion (workdir [a] -> "['a']"), a host that could never start (a name ending in a newline, a timeout
    that overflows ssh's and threads' clocks) or a misleading message (bad YAML read as a hosts file)."""
    inv = tmp_path / "hosts.yaml"
    inv.write_bytes(text)
    with pytest.raises(InventoryError, match=expected):
        inventory.load(inv)


def test_an_inventory_that_is_not_a_regular_file_is_refused_without_a_hang(tmp_path):
    """A FIFO would block the read forever (before: path.read_text); a folder or /dev/zero are refused too."""
    fifo = tmp_path / "hosts"
    os.mkfifo(fifo)
    with pytest.raises(InventoryError, match=r"a FIFO"):
        inventory.load(fifo)
    with pytest.raises(InventoryError, match=r"a folder"):
        inventory.load(tmp_path)
    with pytest.raises(InventoryError, match=r"no such file"):
        inventory.load(tmp_path / "absent.yaml")
