"""The namespace driver: N "hosts" on one machine, each a set of Linux namespaces running sshd.

Each node gets a network namespace joined to a bridge by a veth pair (its own IP, no route
off the bridge, no NAT), a PID namespace of its own (``ps`` and ``pkill`` on a node see only
that node, and killing its first process ends everything it ran), its own hostname (UTS) and
a mount namespace in which ``/etc``, ``/var`` and ``/opt`` are copy-on-write overlays of the
host's (writes land in the node's folder), and ``/tmp`` and ``/root`` are the node's own. What
stays shared with the host is listed in docs/fleet.md: above all ``/usr``, so a package
installed on one node is installed on the machine (use the docker driver for that).

Everything is named after the fleet (``NAME-br``, ``NAME-nI``), so ``down`` finds and removes
what a killed run left behind without any state file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tester.fleet import hostnet
from tester.fleet.base import (
    Fleet,
    FleetError,
    NodeStatus,
    NotRoot,
    addresses,
    cmdline,
    fleet_dir,
    make_keys,
    port_open,
    sh,
    wait_for_ssh,
    which,
    write_inventory,
)

# copy-on-write overlays of the host's directories (packages' configuration, state and logs);
# /var last: the node's folder lies under /var, and no overlay can take its upper layer from
# inside another overlay
OVERLAID = ("/etc", "/opt", "/var")
# the node's own empty directories (bind-mounted from its folder on the host)
PRIVATE_DIRS = ("/root", "/tmp")
REQUIRED_TOOLS = ("ip", "ssh-keygen", "unshare", "sshd", "hostname", "mount")
DOWN_TIMEOUT = 15.0  # seconds ``down`` waits for killed processes to be gone


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRoot("raftlab fleet needs root: it creates network namespaces, a bridge, veth "
                      "links and mounts (run it with sudo, or as root)")
    missing = missing_tools()
    if missing:
        raise FleetError(f"raftlab fleet needs {', '.join(missing)} (run scripts/bootstrap.sh)")


def missing_tools(extra: tuple[str, ...] = ()) -> list[str]:
    """The programs a local fleet needs that are not installed (sbin included)."""
    return [t for t in (*REQUIRED_TOOLS, *extra) if which(t) is None]


def _ns(name: str, i: int) -> str:
    return f"{name}-n{i}"


def bridge(name: str) -> str:
    return f"{name}-br"


def existing_namespaces(name: str) -> list[str]:
    out = sh(["ip", "netns", "list"], check=False).stdout
    pat = re.compile(rf"^{re.escape(name)}-n\d+$")
    return [ln.split()[0] for ln in out.splitlines() if ln.split() and pat.match(ln.split()[0])]


def existing_links(name: str) -> list[str]:
    out = sh(["ip", "-o", "link", "show"], check=False).stdout
    pat = re.compile(rf"^{re.escape(name)}-(br|n\d+p?)$")
    links = []
    for ln in out.splitlines():
        parts = ln.split(":")
        if len(parts) > 1:
            link = parts[1].strip().split("@")[0]
            if pat.match(link):
                links.append(link)
    return links


def up(name: str, nodes: int, subnet: str | None, log: Callable[[str], None],
       ssh_timeout: float) -> Fleet:
    """Create the namespace fleet (the caller undoes a failure with ``down``)."""
    d = fleet_dir(name)
    d.mkdir(parents=True)
    d.chmod(0o711)  # a node's non-root users reach authorized_keys; nobody lists the keys
    (d / "driver").write_text("namespace\n")
    names = [f"n{i}" for i in range(1, nodes + 1)]
    key = make_keys(d, names, f"raftlab-{name}")
    br = bridge(name)
    with hostnet.reserve(subnet) as net:
        gateway, ips = addresses(net, nodes)
        _network(name, br, net, gateway, ips)
    if hostnet.allow_bridge(name, br):
        log(f"fleet {name}: the host filters forwarded bridge traffic (FORWARD policy DROP or "
            f"br_netfilter); added an ACCEPT rule for {br}")
    starters = _start_sshd(name, d, names, ips)

    def listening(ip: str, port: int) -> bool:
        for node, p in starters.items():
            if p.poll() is not None:  # fail now, with sshd's (or mount's) own words
                log_tail = (d / "nodes" / node / "sshd.log").read_text().strip()[-400:]
                raise FleetError(f"node {node}: sshd exited (code {p.returncode}): {log_tail}")
        return _port_open(ip, port)

    wait_for_ssh(names, ips, ssh_timeout, probe=listening)
    path, known, inv_nodes = write_inventory(
        name, "namespace", names, ips, gateway,
        [{"raftlab_namespace": _ns(name, i)} for i in range(1, nodes + 1)])
    log(f"fleet {name}: {nodes} nodes up on {net} (bridge {br} {gateway})")
    return Fleet(name=name, inventory=path, known_hosts=known, key_file=key, nodes=inv_nodes,
                 driver="namespace", subnet=str(net))


def _network(name: str, br: str, net: ipaddress.IPv4Network, gateway: str,
             ips: list[str]) -> None:
    """One bridge in the root namespace (the control node), one veth per node."""
    prefix = net.prefixlen
    batch = [f"link add {br} type bridge", f"addr add {gateway}/{prefix} dev {br}",
             f"link set {br} up"]
    for i in range(1, len(ips) + 1):
        ns, veth = _ns(name, i), f"{name}-n{i}"
        batch += [f"netns add {ns}", f"link add {veth} type veth peer name {veth}p",
                  f"link set {veth}p netns {ns}", f"link set {veth} master {br}",
                  f"link set {veth} up"]
    sh(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    for i, ip in enumerate(ips, start=1):
        # only the connected route of the subnet: no default route, nothing leaves the bridge
        sh(["ip", "-n", _ns(name, i), "-batch", "-"], input="\n".join([
            f"link set {name}-n{i}p name eth0", f"addr add {ip}/{prefix} dev eth0",
            "link set eth0 up", "link set lo up"]) + "\n")


def _start_sshd(name: str, d: Path, names: list[str], ips: list[str]
                ) -> dict[str, subprocess.Popen[bytes]]:
    """sshd as the first process of each node's PID namespace, in its own mounts and name."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    sshd = which("sshd")
    starters = {}
    for i, (node, ip) in enumerate(zip(names, ips, strict=True), start=1):
        nd = d / "nodes" / node
        mounts = []
        for private in PRIVATE_DIRS:
            src = nd / "root" / private.strip("/")
            src.mkdir(parents=True)
            src.chmod(0o1777 if private == "/tmp" else 0o700)
            mounts.append(f"mount --bind {src} {private}")
        for top in OVERLAID:
            upper, work = nd / "overlay" / top.strip("/"), nd / "overlay" / f".{top.strip('/')}"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            Path(top).mkdir(exist_ok=True)
            mounts.append(f"mount -t overlay raftlab-{name}-{node} "
                          f"-o lowerdir={top},upperdir={upper},workdir={work} {top}")
        cfg = nd / "sshd_config"
        cfg.write_text("\n".join([
            f"ListenAddress {ip}", "Port 22", f"HostKey {nd / 'ssh_host_ed25519_key'}",
            f"PidFile {nd / 'sshd.pid'}", f"AuthorizedKeysFile {d / 'authorized_keys'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "UseDNS no",
            "MaxStartups 200", "MaxSessions 200", "AcceptEnv LANG LC_*",
            "AllowTcpForwarding yes", "Subsystem sftp internal-sftp", "PrintMotd no", ""]))
        script = " && ".join([f"hostname {node}", *mounts, f"exec {sshd} -D -e -f {cfg}"])
        with open(nd / "sshd.log", "wb") as out:
            # -D: sshd stays the namespace's first process, so it reaps orphans and its death
            # (on down) takes every process of the node with it
            starters[node] = subprocess.Popen(
                ["ip", "netns", "exec", _ns(name, i), "unshare", "--mount", "--uts", "--pid",
                 "--fork", "--mount-proc", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    return starters


_port_open = port_open  # a module global, so a test can interrupt the wait

def ns_pids(ns: str) -> list[int]:
    out = sh(["ip", "netns", "pids", ns], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it holds nothing and counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def down_pass(name: str) -> list[str]:
    """One sweep: processes (waited for), namespaces, links, firewall rules, mounts, folder."""
    removed: list[str] = []
    namespaces = existing_namespaces(name)
    # 1. every process in the fleet's namespaces (sshd, sessions, the databases they started)
    pids = {pid: ns for ns in namespaces for pid in ns_pids(ns)}
    # and a node's sshd whose namespace lost its name (deleted from another mount namespace,
    # or by hand): found by its command line, which names the fleet's folder
    pids.update({pid: "a nameless namespace" for pid in _by_marker(name) if pid not in pids})
    # named first, killed after: killing a node's first process takes the rest of its PID
    # namespace with it, so later names could no longer be read
    removed += [f"process {pid} ({cmdline(pid)[:60]}) in {ns}" for pid, ns in pids.items()
                if alive(pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)] + [p for ns in namespaces for p in ns_pids(ns)
                                                 if p not in pids and alive(p)]
        if not left:
            break
        for p in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.01)
    else:
        raise FleetError(f"fleet {name}: processes {left} survived SIGKILL for "
                         f"{DOWN_TIMEOUT:g} s (stuck in the kernel?); run fleet down again")
    # 2. namespaces (their veth ends go with them), then leftover links and the bridge
    for ns in namespaces:
        sh(["ip", "netns", "del", ns], check=False)
        removed.append(f"namespace {ns}")
    for link in existing_links(name):
        if sh(["ip", "link", "del", link], check=False).returncode == 0:
            removed.append(f"link {link}")
    removed += hostnet.disallow_bridge(name)
    # 3. mounts on the host that point into the fleet's folder (none in normal operation)
    d = fleet_dir(name)
    for mnt in reversed(mounts_under(d)):
        sh(["umount", "-l", mnt], check=False)
        removed.append(f"mount {mnt}")
    return removed


def mounts_under(d: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = str(d) + "/"
    return [ln.split()[1] for ln in lines
            if len(ln.split()) > 1 and (ln.split()[1] + "/").startswith(prefix)]


def leftovers(name: str) -> list[str]:
    """What of the namespace fleet still exists (namespaces, links, mounts, processes)."""
    found = [f"namespace {ns}" for ns in existing_namespaces(name)]
    found += [f"link {link}" for link in existing_links(name)]
    found += [f"mount {m}" for m in mounts_under(fleet_dir(name))]
    found += [f"process {pid} ({cmdline(pid)[:60]})" for pid in _by_marker(name)]
    return found


def _by_marker(name: str) -> list[int]:
    """Running processes whose command line names the fleet's folder (its nodes' sshd)."""
    marker = str(fleet_dir(name)) + "/"
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and marker in cmdline(int(p.name)) and alive(int(p.name))]


def node_state(node_var: str, present: set[str]) -> tuple[bool, list[tuple[int, str]]]:
    """Whether a node's namespace exists, and its processes."""
    if node_var not in present:
        return False, []
    return True, [(pid, cmdline(pid)) for pid in ns_pids(node_var)]


def status_rows(name: str, reach: dict[str, str | None], nodes: list) -> list[NodeStatus]:  # type: ignore[type-arg]
    present = set(existing_namespaces(name))
    out = []
    for node in nodes:
        has, procs = node_state(node.var("raftlab_namespace", ""), present)
        out.append(NodeStatus(name=node.name, host=node.host, namespace=has,
                              reachable=reach[node.name] is None, error=reach[node.name],
                              processes=procs))
    return out
