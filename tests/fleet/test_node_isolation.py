"""Namespace nodes behave like machines, and fleets live beside each other and beside Docker.

Fleets ``ctr`` (10.213.66.0/24) and ``ctr2`` (10.213.67.0/24), or auto-picked subnets.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tester import control, fleet, inventory
from tester.fleet import hostnet

from . import dockerd
from .conftest import skip_unless_root_tools

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_a_node_sees_only_its_own_processes_and_its_own_etc_var_opt_tmp() -> None:
    skip_unless_root_tools()
    with fleet.session("ctr", nodes=2, subnet="10.213.66.0/24") as (f, inv, remotes):
        n1, n2 = remotes["n1"], remotes["n2"]
        n1.run("nohup sleep 300 >/dev/null 2>&1 & echo n1 > /etc/raftlab-probe; "
               "echo n1 > /var/raftlab-probe; echo n1 > /opt/raftlab-probe; "
               "echo n1 > /tmp/raftlab-probe")
        ps1 = n1.run("ps -eo pid=,comm=").stdout.split("\n")
        assert ps1[0].split() == ["1", "sshd"]  # sshd is the node's first process
        assert any(ln.split()[1:] == ["sleep"] for ln in ps1 if ln.strip())
        assert len([ln for ln in ps1 if ln.strip()]) < 10  # not the host's hundreds
        # pkill on n2 reaches nothing of n1's
        assert n2.run("pkill -x sleep", check=False).exit_code == 1
        assert "sleep" in n1.run("ps -eo comm=").stdout
        for d in ("/etc", "/var", "/opt", "/tmp"):
            assert n1.run(f"cat {d}/raftlab-probe").stdout == "n1\n"
            assert n2.run(f"test -e {d}/raftlab-probe", check=False).exit_code == 1, d
            assert not Path(f"{d}/raftlab-probe").exists(), d  # nor does the host see it
        # a node's users and sudoers are its own (the bastion test relies on it)
        n1.run("useradd -M -p '*' ctrprobe")
        assert n2.run("id ctrprobe", check=False).exit_code != 0
        assert subprocess.run(["id", "ctrprobe"], capture_output=True).returncode != 0
    assert fleet.leftovers("ctr") == []


def test_two_fleets_come_up_at_once_without_a_subnet() -> None:
    skip_unless_root_tools()
    names = ["ctr", "ctr2"]
    for n in names:
        fleet.down(n)
    try:
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda n: subprocess.run(
                [sys.executable, "-m", "tester.cli", "fleet", "up", "--name", n, "--nodes", "2"],
                capture_output=True, text=True, timeout=60, cwd=ROOT), names))
        for r in runs:
            assert r.returncode == 0, r.stderr
        nets = []
        for n in names:
            inv = inventory.load(fleet.inventory_path(n))
            net = ipaddress.ip_network(inv.nodes[0].host + "/24", strict=False)
            assert net.subnet_of(hostnet.POOL)
            nets.append(net)
            control.close_all(control.connect(inv.nodes, inv.known_hosts, timeout=5))
        assert nets[0] != nets[1]
    finally:
        for n in names:
            fleet.down(n)
    assert fleet.leftovers("ctr") == [] and fleet.leftovers("ctr2") == []


def test_bridged_traffic_gets_through_a_forward_drop_policy_and_br_netfilter() -> None:
    """The host as Docker leaves it (policy DROP, br_netfilter on), in a namespace of its own."""
    skip_unless_root_tools("iptables", "modprobe", "sysctl")
    with dockerd.netns("rltfwd", forward_drop=True) as ns:
        up = ns.raftlab("fleet", "up", "--name", "ctr2", "--nodes", "2", "--subnet",
                        "10.213.67.0/24")
        try:
            assert up.returncode == 0, up.stderr
            rules = ns.run(["iptables", "-w", "-S", "FORWARD"]).stdout
            assert rules.startswith("-P FORWARD DROP")
            assert "-i ctr2-br -o ctr2-br" in rules and "raftlab-fleet-ctr2" in rules
            d = fleet.fleet_dir("ctr2")
            hop = ns.run(["ssh", "-i", str(d / "id_ed25519"), "-o",
                          f"UserKnownHostsFile={d / 'known_hosts'}", "-o", "BatchMode=yes",
                          "root@10.213.67.11", "python3 -c \"import socket; socket."
                          "create_connection(('10.213.67.12', 22), timeout=3); print('ok')\""])
            assert hop.stdout.strip() == "ok", hop.stderr  # n1 -> n2 across the bridge
        finally:
            down = ns.raftlab("fleet", "down", "--name", "ctr2")
        assert down.returncode == 0, down.stderr
        assert "raftlab-fleet-ctr2" not in ns.run(["iptables", "-w", "-S", "FORWARD"]).stdout
        assert "iptables rule FORWARD" in down.stdout


def test_down_ends_nodes_whose_namespaces_lost_their_names() -> None:
    """A namespace deleted by name (by hand, or from another mount namespace) keeps its sshd
    running; down finds it by the fleet folder on its command line and waits for it to die."""
    skip_unless_root_tools()
    fleet.down("ctr")
    try:
        fleet.up("ctr", nodes=2, subnet="10.213.66.0/24")
        for ns in ("ctr-n1", "ctr-n2"):
            subprocess.run(["ip", "netns", "del", ns], check=True)
        assert any(x.startswith("process") for x in fleet.leftovers("ctr"))
        removed = fleet.down("ctr")
        assert len([r for r in removed if "sshd" in r and "nameless" in r]) == 2
        assert fleet.leftovers("ctr") == []
    finally:
        fleet.down("ctr")
