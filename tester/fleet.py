"""A local fleet: N "hosts" on one machine, each a network + mount + UTS namespace running sshd.

Each node gets a network namespace joined to a bridge by a veth pair (its own IP, no route
off the bridge, no NAT), a private mount namespace in which /opt/raftlab (any adapter's
home), /opt/raftnode, /var/lib/raftnode, /var/log/raftnode (and etcd's directories) are
bind-mounted from a per-node folder on the host, its own hostname, and an sshd on its IP that accepts a generated key. The tester then
treats it exactly like a fleet of VMs: it reads the inventory this module writes and talks SSH.

Everything is named after the fleet (``NAME-br``, ``NAME-nI``), so ``down`` finds and removes
what a killed run left behind without any state file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tester import inventory as inv

DEFAULT_NAME = "raftlab"
DEFAULT_SUBNET = "10.213.0.0/24"
STATE_ROOT = Path(os.environ.get("RAFTLAB_FLEET_DIR", "/var/lib/raftlab/fleets"))
# directories every node sees as its own (bind-mounted from the node's folder on the host);
# a private /root also keeps the host's shell start-up files out of every SSH command
#: bind-mounted per node; /opt/raftlab is where any other adapter installs (tester/db.py)
PRIVATE_DIRS = ("/root", "/opt/raftlab", "/opt/raftnode", "/var/lib/raftnode", "/var/log/raftnode",
                "/var/lib/etcd", "/var/log/etcd")
NODE_OFFSET = 10  # n1 gets the subnet's .11, the bridge (the control node) gets .1
REQUIRED_TOOLS = ("ip", "ssh-keygen", "unshare", "sshd", "hostname", "mount")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")


class FleetError(RuntimeError):
    """A fleet operation cannot proceed; the message says why and what to do."""


class NotRoot(FleetError):
    """Namespaces, bridges and mounts need root."""


@dataclass(frozen=True)
class Fleet:
    """Where a fleet's description lives on the control node."""

    name: str
    inventory: Path
    known_hosts: Path
    key_file: Path
    nodes: list[inv.Node]


@dataclass(frozen=True)
class NodeStatus:
    name: str
    host: str
    namespace: bool
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


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRoot("raftlab fleet needs root: it creates network namespaces, a bridge, veth "
                      "links and mounts (run it with sudo, or as root)")
    missing = missing_tools()
    if missing:
        raise FleetError(f"raftlab fleet needs {', '.join(missing)} (run scripts/bootstrap.sh)")


def missing_tools(extra: tuple[str, ...] = ()) -> list[str]:
    """The programs a local fleet needs that are not installed (sbin included)."""
    return [t for t in (*REQUIRED_TOOLS, *extra) if _which(t) is None]


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _ns(name: str, i: int) -> str:
    return f"{name}-n{i}"


def _bridge(name: str) -> str:
    return f"{name}-br"


def _sh(args: list[str], input: str | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(args, input=input, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise FleetError(f"{' '.join(args)} failed (exit {p.returncode}): {p.stderr.strip()}")
    return p


def _addresses(subnet: str, n: int) -> tuple[ipaddress.IPv4Network, str, list[str]]:
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as e:
        raise FleetError(f"--subnet {subnet!r}: {e}") from None
    if not isinstance(net, ipaddress.IPv4Network) or not net.is_private:
        raise FleetError(f"--subnet {subnet!r}: use a private IPv4 range (e.g. {DEFAULT_SUBNET})")
    hosts = list(net.hosts())
    if len(hosts) < NODE_OFFSET + n:
        raise FleetError(f"--subnet {subnet}: too small for {n} nodes "
                         f"(needs {NODE_OFFSET + n} addresses)")
    return net, str(hosts[0]), [str(hosts[NODE_OFFSET + i - 1]) for i in range(1, n + 1)]


def _existing_namespaces(name: str) -> list[str]:
    out = _sh(["ip", "netns", "list"], check=False).stdout
    pat = re.compile(rf"^{re.escape(name)}-n\d+$")
    return [ln.split()[0] for ln in out.splitlines() if ln.split() and pat.match(ln.split()[0])]


def _existing_links(name: str) -> list[str]:
    out = _sh(["ip", "-o", "link", "show"], check=False).stdout
    pat = re.compile(rf"^{re.escape(name)}-(br|n\d+p?)$")
    links = []
    for ln in out.splitlines():
        parts = ln.split(":")
        if len(parts) > 1:
            link = parts[1].strip().split("@")[0]
            if pat.match(link):
                links.append(link)
    return links


def _subnet_in_use(net: ipaddress.IPv4Network) -> str | None:
    out = _sh(["ip", "-o", "-4", "addr", "show"], check=False).stdout
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 4 and parts[2] == "inet":
            iface = ipaddress.ip_interface(parts[3])
            if iface.network.overlaps(net):
                return f"{parts[1]} has {parts[3]}"
    return None


def up(name: str = DEFAULT_NAME, nodes: int = 5, subnet: str = DEFAULT_SUBNET,
       log: Callable[[str], None] = lambda s: None, ssh_timeout: float = 15.0) -> Fleet:
    """Create the fleet and return where its inventory is; undo everything on failure."""
    check_name(name)
    require_root()
    if not 1 <= nodes <= 200:
        raise FleetError(f"--nodes {nodes}: expected 1-200")
    net, bridge_ip, ips = _addresses(subnet, nodes)
    if _existing_namespaces(name) or _existing_links(name) or fleet_dir(name).exists():
        raise FleetError(f"fleet {name!r} is already up (or left over from a killed run); "
                         f"run: raftlab fleet down --name {name}")
    clash = _subnet_in_use(net)
    if clash:
        raise FleetError(f"--subnet {subnet} is already in use on this machine ({clash}); "
                         "pick another subnet")
    try:
        return _up(name, nodes, net, bridge_ip, ips, log, ssh_timeout)
    except BaseException:
        down(name)
        raise


def _up(name: str, n: int, net: ipaddress.IPv4Network, bridge_ip: str, ips: list[str],
        log: Callable[[str], None], ssh_timeout: float) -> Fleet:
    d = fleet_dir(name)
    d.mkdir(parents=True, mode=0o700)
    names = [f"n{i}" for i in range(1, n + 1)]
    key = d / "id_ed25519"
    # keys: one client key for the fleet, one host key per node (generated in parallel)
    procs = [subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                               f"raftlab-{name}", "-f", str(key)])]
    for node in names:
        (d / "nodes" / node).mkdir(parents=True)
        procs.append(subprocess.Popen(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{node}.{name}",
             "-f", str(d / "nodes" / node / "ssh_host_ed25519_key")]))
    if any(p.wait() != 0 for p in procs):
        raise FleetError("ssh-keygen failed")
    (d / "authorized_keys").write_text((d / "id_ed25519.pub").read_text())

    # network: one bridge in the root namespace (the control node), one veth per node
    br = _bridge(name)
    prefix = net.prefixlen
    batch = [f"link add {br} type bridge", f"addr add {bridge_ip}/{prefix} dev {br}",
             f"link set {br} up"]
    for i in range(1, n + 1):
        ns, veth = _ns(name, i), f"{name}-n{i}"
        batch += [f"netns add {ns}", f"link add {veth} type veth peer name {veth}p",
                  f"link set {veth}p netns {ns}", f"link set {veth} master {br}",
                  f"link set {veth} up"]
    _sh(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    for i, ip in enumerate(ips, start=1):
        ns = _ns(name, i)
        # only the connected route of the subnet: no default route, nothing leaves the bridge
        _sh(["ip", "-n", ns, "-batch", "-"], input="\n".join([
            f"link set {name}-n{i}p name eth0", f"addr add {ip}/{prefix} dev eth0",
            "link set eth0 up", "link set lo up"]) + "\n")

    # sshd per node inside its own mount + UTS namespace
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    sshd = _which("sshd")
    starters = []
    for i, (node, ip) in enumerate(zip(names, ips, strict=True), start=1):
        nd = d / "nodes" / node
        binds = []
        for private in PRIVATE_DIRS:
            src = nd / "root" / private.lstrip("/")
            src.mkdir(parents=True)
            Path(private).mkdir(parents=True, exist_ok=True)  # the mount point on the host
            binds.append(f"mount --bind {src} {private}")
        cfg = nd / "sshd_config"
        cfg.write_text("\n".join([
            f"ListenAddress {ip}", "Port 22", f"HostKey {nd / 'ssh_host_ed25519_key'}",
            f"PidFile {nd / 'sshd.pid'}", f"AuthorizedKeysFile {d / 'authorized_keys'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "UseDNS no",
            "MaxStartups 200", "MaxSessions 200", "AcceptEnv LANG LC_*",
            "Subsystem sftp internal-sftp", "PrintMotd no", ""]))
        script = " && ".join([f"hostname {node}", *binds, f"exec {sshd} -f {cfg}"])
        starters.append(subprocess.Popen(
            ["ip", "netns", "exec", _ns(name, i), "unshare", "--mount", "--uts",
             "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for node, p in zip(names, starters, strict=True):
        _, err = p.communicate()
        if p.returncode != 0:
            raise FleetError(f"node {node}: starting sshd failed: {err.strip()}")
    deadline = time.monotonic() + ssh_timeout
    for node, ip in zip(names, ips, strict=True):
        while not _port_open(ip, 22):
            if time.monotonic() > deadline:
                raise FleetError(f"node {node} ({ip}): sshd did not start listening")
            time.sleep(0.02)

    known = d / "known_hosts"
    host_keys = [(d / "nodes" / node / "ssh_host_ed25519_key.pub").read_text().split()[:2]
                 for node in names]
    known.write_text("".join(f"{ip} {kind} {b64}\n"
                             for ip, (kind, b64) in zip(ips, host_keys, strict=True)))
    nodes = [inv.Node(name=node, host=ip, port=22, user="root", key_file=str(key),
                      vars={"raftlab_namespace": _ns(name, i)})
             for i, (node, ip) in enumerate(zip(names, ips, strict=True), start=1)]
    common = {
        "raftlab_fleet": name,
        "raftlab_known_hosts": str(known),
        "raftlab_control_ip": bridge_ip,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_pipelining": True,
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} "
                                   "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
    }
    path = inv.write(inventory_path(name), nodes, common)
    log(f"fleet {name}: {n} nodes up on {net} (bridge {br} {bridge_ip})")
    return Fleet(name=name, inventory=path, known_hosts=known, key_file=key, nodes=nodes)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _ns_pids(ns: str) -> list[int]:
    out = _sh(["ip", "netns", "pids", ns], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it holds nothing and counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


@contextmanager
def session(name: str, nodes: int = 5, subnet: str = DEFAULT_SUBNET
            ) -> Iterator[tuple[Fleet, inv.Inventory, dict[str, Any]]]:
    """A fresh fleet with SSH connections to every node, removed afterwards whatever happens.

    Leftovers of an earlier, killed run under the same name are removed first. Tests and
    benchmarks use this so that no fleet outlives them.
    """
    from tester import control  # paramiko is only needed once a fleet is driven

    down(name)
    remotes: dict[str, Any] = {}
    try:
        f = up(name, nodes=nodes, subnet=subnet)
        inventory = inv.load(f.inventory)
        remotes = control.connect(inventory.nodes, inventory.known_hosts)
        yield f, inventory, remotes
    finally:
        control.close_all(remotes)
        down(name)


def down(name: str = DEFAULT_NAME, log: Callable[[str], None] = lambda s: None) -> list[str]:
    """Remove every process, namespace, link, mount and file of the fleet; idempotent.

    Works from names alone, so it also cleans up after a run that was killed mid-way; it
    repeats until a pass finds nothing, since a killed ``up`` may leave an ``ip`` child that
    is still adding links. Returns what was removed (empty when there was nothing).
    """
    check_name(name)
    require_root()
    removed: list[str] = []
    for attempt in range(20):
        found = _down_pass(name)
        removed += found
        if not found and attempt > 0:
            break
        time.sleep(0.05 if found else 0.02)
    for r in removed:
        log(f"removed {r}")
    return removed


def _down_pass(name: str) -> list[str]:
    removed: list[str] = []
    namespaces = _existing_namespaces(name)
    # 1. every process in the fleet's namespaces (sshd, sessions, the databases they started)
    pids = {pid: ns for ns in namespaces for pid in _ns_pids(ns)}
    for pid in pids:
        cmd = _cmdline(pid)[:60]
        try:
            os.kill(pid, signal.SIGKILL)
            removed.append(f"process {pid} ({cmd}) in {pids[pid]}")
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    # 2. namespaces (their veth ends go with them), then leftover links and the bridge
    for ns in namespaces:
        _sh(["ip", "netns", "del", ns], check=False)
        removed.append(f"namespace {ns}")
    for link in _existing_links(name):
        if _sh(["ip", "link", "del", link], check=False).returncode == 0:
            removed.append(f"link {link}")
    # 3. mounts on the host that point into the fleet's folder (none in normal operation)
    d = fleet_dir(name)
    for mnt in reversed(_mounts_under(d)):
        _sh(["umount", "-l", mnt], check=False)
        removed.append(f"mount {mnt}")
    # 4. the fleet's folder: inventory, keys, node folders
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)
        removed.append(f"folder {d}")
    return removed


def _mounts_under(d: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = str(d) + "/"
    return [ln.split()[1] for ln in lines
            if len(ln.split()) > 1 and (ln.split()[1] + "/").startswith(prefix)]


def leftovers(name: str) -> list[str]:
    """What of the fleet still exists (namespaces, links, mounts, processes, folder)."""
    found = [f"namespace {ns}" for ns in _existing_namespaces(name)]
    found += [f"link {link}" for link in _existing_links(name)]
    found += [f"mount {m}" for m in _mounts_under(fleet_dir(name))]
    marker = str(fleet_dir(name)) + "/"
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and marker in _cmdline(int(p.name)):
            found.append(f"process {p.name} ({_cmdline(int(p.name))[:60]})")
    if fleet_dir(name).exists():
        found.append(f"folder {fleet_dir(name)}")
    return found


def status(name: str = DEFAULT_NAME, timeout: float = 5.0) -> list[NodeStatus]:
    """Each node of the fleet: namespace present, reachable over SSH, its processes."""
    check_name(name)
    require_root()
    path = inventory_path(name)
    if not path.exists():
        raise FleetError(f"fleet {name!r} is not up (no {path}); run: raftlab fleet up "
                         f"--name {name}")
    from tester import control  # paramiko is imported only when needed

    fleet = inv.load(path)
    present = set(_existing_namespaces(name))

    def probe(node: inv.Node) -> str | None:
        try:
            with control.Remote(node, fleet.known_hosts, timeout=timeout) as r:
                r.run("true", timeout=timeout)
            return None
        except control.ControlError as e:
            return str(e)

    with ThreadPoolExecutor(max_workers=max(1, min(32, len(fleet.nodes)))) as pool:
        reach = dict(zip([n.name for n in fleet.nodes], pool.map(probe, fleet.nodes),
                         strict=True))
    out = []
    for node in fleet.nodes:
        ns = node.var("raftlab_namespace", "")
        procs = [(pid, _cmdline(pid)) for pid in _ns_pids(ns)] if ns in present else []
        out.append(NodeStatus(name=node.name, host=node.host, namespace=ns in present,
                              reachable=reach[node.name] is None, error=reach[node.name],
                              processes=procs))
    return out
