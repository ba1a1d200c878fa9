"""The inventory is read like Ansible reads it, and bad ones are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from tester import inventory
from tester.inventory import InventoryError, Node


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "inventory.yml"
    p.write_text(text)
    return p


def test_hosts_inherit_vars_from_all_and_groups_and_own_vars_win(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k")
    p = write(tmp_path, f"""
all:
  vars: {{ansible_user: admin, ansible_ssh_private_key_file: {key}, raftnode_port: 7000}}
  hosts:
    n1: {{ansible_host: 10.0.0.11}}
  children:
    db:
      vars: {{raftnode_port: 7100}}
      hosts:
        n2: {{ansible_host: 10.0.0.12, ansible_port: 2222, ansible_user: root}}
        n3:
""")
    inv = inventory.load(p)
    assert inv.names == ["n1", "n2", "n3"]
    n1, n2, n3 = inv.nodes
    assert (n1.host, n1.port, n1.user, n1.key_file) == ("10.0.0.11", 22, "admin", str(key))
    assert n1.var("raftnode_port") == 7000
    assert (n2.host, n2.port, n2.user, n2.var("raftnode_port")) == ("10.0.0.12", 2222, "root",
                                                                     7100)
    assert n3.host == "n3"  # no ansible_host: the name is the address, as in Ansible


def test_write_then_load_round_trips_nodes_and_vars(tmp_path: Path) -> None:
    nodes = [Node("n1", "10.1.0.11", 22, "root", None, {"raftlab_namespace": "x-n1"}),
             Node("n2", "10.1.0.12", 2200, "ops", None, {})]
    inventory.write(tmp_path / "inv.yml", nodes, {"raftlab_fleet": "x"})
    back = inventory.load(tmp_path / "inv.yml")
    assert back.nodes == nodes
    assert back.nodes[0].var("raftlab_namespace") == "x-n1"
    assert back.nodes[1].var("raftlab_fleet") == "x"


@pytest.mark.parametrize(("body", "host", "field"), [
    ("n1: {ansible_host: 10.0.0.1, ansible_port: 70000}", "n1", "ansible_port"),
    ("n1: {ansible_host: 10.0.0.1, ansible_port: ssh}", "n1", "ansible_port"),
    ("n2: {ansible_host: 10.0.0.300}", "n2", "ansible_host"),
    ("n3: {ansible_host: ''}", "n3", "ansible_host"),
    ("n4: {ansible_host: 10.0.0.4, ansible_user: 'a b'}", "n4", "ansible_user"),
    ("n5: {ansible_host: 10.0.0.5, ansible_ssh_private_key_file: /nonexistent/key}", "n5",
     "ansible_ssh_private_key_file"),
])
def test_bad_host_field_error_names_host_and_field(tmp_path: Path, body: str, host: str,
                                                    field: str) -> None:
    p = write(tmp_path, f"all:\n  hosts:\n    {body}\n")
    with pytest.raises(InventoryError) as e:
        inventory.load(p)
    msg = str(e.value)
    assert f"host {host!r}" in msg and f"field {field!r}" in msg and str(p) in msg


def test_host_given_as_list_is_rejected_naming_the_host(tmp_path: Path) -> None:
    p = write(tmp_path, "all:\n  hosts:\n    n1: [10.0.0.1]\n")
    with pytest.raises(InventoryError, match="host 'n1'.*mapping"):
        inventory.load(p)


@pytest.mark.parametrize(("text", "match"), [
    ("all: {hosts: {}}", "lists no hosts"),
    ("- n1\n- n2\n", "top-level 'all'"),
    ("all:\n  hosts: [n1, n2]\n", "group 'all', field 'hosts'"),
    ("all:\n  hots: {n1: {}}\n", "unknown key"),
    ("all:\n  hosts:\n    n1: {ansible_host: 10.0.0.1\n", "not valid YAML"),
])
def test_malformed_inventory_is_rejected_with_a_reason(tmp_path: Path, text: str,
                                                       match: str) -> None:
    with pytest.raises(InventoryError, match=match):
        inventory.load(write(tmp_path, text))


def test_missing_inventory_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="nope.yml: cannot read"):
        inventory.load(tmp_path / "nope.yml")


def test_older_ansible_ssh_spellings_are_accepted(tmp_path: Path) -> None:
    p = write(tmp_path, "all:\n  hosts:\n    n1: {ansible_ssh_host: 10.0.0.1, ansible_ssh_port: 2200,"
                        " ansible_ssh_user: ops}\n")
    (n1,) = inventory.load(p).nodes
    assert (n1.host, n1.port, n1.user, n1.vars) == ("10.0.0.1", 2200, "ops", {})


def test_two_hosts_at_one_address_are_rejected(tmp_path: Path) -> None:
    p = write(tmp_path, "all:\n  hosts:\n    n1: {ansible_host: 10.0.0.1}\n"
                        "    n2: {ansible_host: 10.0.0.1}\n")
    with pytest.raises(InventoryError, match="host 'n2', field 'ansible_host'.*already host 'n1'"):
        inventory.load(p)
