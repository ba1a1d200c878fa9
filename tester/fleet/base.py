"""What every fleet driver shares: names, the state folder, keys, addresses and the inventory.

A driver (namespace, docker/podman) makes N SSH-reachable nodes; everything around that — the
fleet's folder under ``STATE_ROOT``, the client key and per-node host keys, the known_hosts
file and the Ansible inventory the tester reads — is the same for all of them and lives here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tester import inventory as inv

DEFAULT_NAME = "raftlab"
STATE_ROOT = Path(os.environ.get("RAFTLAB_FLEET_DIR", "/var/lib/raftlab/fleets"))
NODE_OFFSET = 10  # n1 gets the subnet's .11, the bridge (the control node) gets .1
_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")


class FleetError(RuntimeError):
    """A fleet operation cannot proceed; the message says why and what to do."""


class NotRoot(FleetError):
    """Namespaces, bridges, mounts and container engines need root."""


@dataclass(frozen=True)
class Fleet:
    """Where a fleet's description lives on the control node."""

    name: str
    inventory: Path
    known_hosts: Path
    key_file: Path
    nodes: list[inv.Node]
    driver: str = "namespace"
    subnet: str = ""


@dataclass(frozen=True)
class NodeStatus:
    name: str
    host: str
    namespace: bool  # the node's namespace (or container) exists
    reachable: bool
    error: str | None
    processes: list[tuple[int, str]]


def fleet_dir(name: str) -> Path:
    return STATE_ROOT / name


def inventory_path(name: str = DEFAULT_NAME) -> Path:
    """Where ``raftlab fleet up --name NAME`` writes the fleet's inventory."""
    return fleet_dir(name) / "inventory.yml"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise FleetError(f"fleet name {name!r}: use 1-10 lower-case letters and digits, "
                         "starting with a letter (it prefixes interface names, max 15 chars)")
    return name


def which(tool: str) -> str | None:
    """A program's path, sbin included (sshd and ip often are not on a user's PATH)."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")


def sh(args: list[str], input: str | None = None, check: bool = True,
       timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run a host command; a failure under ``check`` is a FleetError quoting its stderr."""
    try:
        p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise FleetError(f"{args[0]}: not installed (run scripts/bootstrap.sh)") from None
    except subprocess.TimeoutExpired:
        raise FleetError(f"{' '.join(args)}: no answer within {timeout:g} s") from None
    if check and p.returncode != 0:
        raise FleetError(f"{' '.join(args)} failed (exit {p.returncode}): {p.stderr.strip()}")
    return p


def addresses(net: ipaddress.IPv4Network, n: int) -> tuple[str, list[str]]:
    """The control node's (gateway) address and the nodes' addresses in ``net``."""
    hosts = list(net.hosts())
    if len(hosts) < NODE_OFFSET + n:
        raise FleetError(f"--subnet {net}: too small for {n} nodes "
                         f"(needs {NODE_OFFSET + n} addresses)")
    return str(hosts[0]), [str(hosts[NODE_OFFSET + i - 1]) for i in range(1, n + 1)]


def make_keys(d: Path, names: list[str], comment: str) -> Path:
    """One client key for the fleet and one host key per node, generated in parallel."""
    key = d / "id_ed25519"
    procs = [subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                               "-f", str(key)])]
    for node in names:
        (d / "nodes" / node).mkdir(parents=True, exist_ok=True)
        procs.append(subprocess.Popen(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{node}.{comment}",
             "-f", str(d / "nodes" / node / "ssh_host_ed25519_key")]))
    if any(p.wait() != 0 for p in procs):
        raise FleetError("ssh-keygen failed")
    (d / "authorized_keys").write_text((d / "id_ed25519.pub").read_text())
    return key


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_ssh(names: list[str], ips: list[str], timeout: float,
                 probe: Callable[[str, int], bool] = port_open) -> None:
    """Block until every node's sshd listens; a FleetError names the first that never did."""
    deadline = time.monotonic() + timeout
    for node, ip in zip(names, ips, strict=True):
        while not probe(ip, 22):
            if time.monotonic() > deadline:
                raise FleetError(f"node {node} ({ip}): sshd did not start listening")
            time.sleep(0.02)


def write_inventory(name: str, driver: str, names: list[str], ips: list[str],
                    gateway: str, node_vars: list[dict[str, Any]]) -> tuple[Path, Path,
                                                                              list[inv.Node]]:
    """known_hosts (from the host keys made by ``make_keys``) and the fleet's inventory."""
    d = fleet_dir(name)
    known = d / "known_hosts"
    host_keys = [(d / "nodes" / node / "ssh_host_ed25519_key.pub").read_text().split()[:2]
                 for node in names]
    known.write_text("".join(f"{ip} {kind} {b64}\n"
                             for ip, (kind, b64) in zip(ips, host_keys, strict=True)))
    key = d / "id_ed25519"
    nodes = [inv.Node(name=node, host=ip, port=22, user="root", key_file=str(key), vars=v)
             for node, ip, v in zip(names, ips, node_vars, strict=True)]
    common = {
        "raftlab_fleet": name,
        "raftlab_fleet_driver": driver,
        "raftlab_known_hosts": str(known),
        "raftlab_control_ip": gateway,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_pipelining": True,
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} "
                                   "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
    }
    return inv.write(inventory_path(name), nodes, common), known, nodes


def driver_of(name: str) -> str | None:
    """The driver that made fleet ``name`` (recorded in its folder), or None when unknown."""
    try:
        return (fleet_dir(name) / "driver").read_text().strip() or None
    except OSError:
        return None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()
