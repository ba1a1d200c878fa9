"""Units: how a node's SSH options are resolved, and how a free subnet is picked (no root)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from fabric import Connection

from tester import control, inventory
from tester.fleet import hostnet
from tester.fleet.base import FleetError


def test_common_args_become_an_ssh_config_block_for_the_host() -> None:
    block = control.common_args_config(
        "10.0.0.5", "-o ProxyJump=admin@jump:2222 -o 'StrictHostKeyChecking yes' -J ignored "
                    "-i /k -p 2200 -l bob -oUser=carol")
    assert block.splitlines() == [
        "Host 10.0.0.5", "    ProxyJump admin@jump:2222", "    StrictHostKeyChecking yes",
        "    ProxyJump ignored", "    IdentityFile /k", "    Port 2200", "    User bob",
        "    User carol"]
    assert control.common_args_config("h", "") == ""


def _inventory(tmp_path: Path, host_vars: str, common: str = "") -> inventory.Inventory:
    (tmp_path / "inv.yml").write_text(
        f"all:\n  vars: {{{common}}}\n  hosts:\n    n1: {{ansible_host: 10.0.0.5{host_vars}}}\n")
    return inventory.load(tmp_path / "inv.yml")


def test_ssh_config_supplies_user_port_and_jump_host_the_inventory_leaves_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ssh_config").write_text(
        "Host 10.0.0.*\n    User raft\n    Port 2201\n    ProxyJump admin@bastion:2222\n")
    monkeypatch.setenv("RAFTLAB_SSH_CONFIG", str(tmp_path / "ssh_config"))
    node = _inventory(tmp_path, "").node("n1")
    conn = control.connection(node)
    assert (conn.user, conn.port) == ("raft", 2201)
    assert isinstance(conn.gateway, Connection)
    assert (conn.gateway.host, conn.gateway.user, conn.gateway.port) == ("bastion", "admin",
                                                                           2222)


def test_the_inventory_wins_over_its_common_args_which_win_over_ssh_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ssh_config").write_text("Host *\n    User fromconfig\n    ProxyJump cfgjump\n")
    monkeypatch.setenv("RAFTLAB_SSH_CONFIG", str(tmp_path / "ssh_config"))
    node = _inventory(tmp_path, ", ansible_user: explicit",
                      "ansible_ssh_common_args: '-o ProxyJump=argsjump'").node("n1")
    conn = control.connection(node)
    assert conn.user == "explicit"
    assert isinstance(conn.gateway, Connection) and conn.gateway.host == "argsjump"


def test_without_ssh_config_a_node_is_reached_directly_as_the_inventory_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAFTLAB_SSH_CONFIG", str(tmp_path / "absent"))
    conn = control.connection(_inventory(tmp_path, ", ansible_port: 2022").node("n1"))
    assert (conn.host, conn.user, conn.port, conn.gateway) == ("10.0.0.5", "root", 2022, None)


def test_a_free_subnet_skips_what_is_taken_and_starts_high_in_the_pool() -> None:
    net = ipaddress.ip_network
    assert hostnet.free_subnet([]) == net("10.213.128.0/24")
    taken = [net("10.213.128.0/24"), net("10.213.129.0/25"), net("172.17.0.0/16")]
    assert hostnet.free_subnet(taken) == net("10.213.130.0/24")
    assert hostnet.free_subnet([net("10.213.128.0/17")]) == net("10.213.0.0/24")
    with pytest.raises(FleetError, match="no free /24"):
        hostnet.free_subnet([net("10.0.0.0/8")])


@pytest.mark.parametrize("subnet", ["8.8.8.0/24", "nonsense", "fd00::/64"])
def test_a_bad_subnet_is_named(subnet: str) -> None:
    with pytest.raises(FleetError, match=f"--subnet {subnet!r}"):
        hostnet.parse_subnet(subnet)
