"""Living beside other networks on the host: a free subnet, and forwarding past a DROP policy.

Two things break a fleet on a developer's machine that are not the fleet's own doing:

* another fleet (or Docker, or a VPN) already owns the subnet. ``reserve`` picks a free /24
  inside ``POOL`` when none is given, under a host-wide lock held until the caller has put its
  bridge up, so two ``fleet up`` at once never pick the same one;
* Docker sets the FORWARD policy to DROP and loads br_netfilter, after which frames bridged
  between two nodes pass through iptables' FORWARD chain and are dropped. ``allow_bridge``
  inserts one ACCEPT rule for traffic that stays on the fleet's bridge, tagged with the
  fleet's name so that ``disallow_bridge`` (run by ``fleet down``) finds it without state.
"""

from __future__ import annotations

import fcntl
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tester.fleet.base import STATE_ROOT, FleetError, sh, which

POOL = ipaddress.ip_network("10.213.0.0/16")
# auto-picked /24s are searched from here up, then from the pool's start: hand-picked subnets
# (tests, benchmarks, the README's examples) sit low in the pool and are met last
FIRST_AUTO = 128
BR_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def in_use() -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every IPv4 network on this machine's interfaces and routes (Docker's included), each
    with where it was seen."""
    nets: list[tuple[ipaddress.IPv4Network, str]] = []
    for ln in sh(["ip", "-o", "-4", "addr", "show"], check=False).stdout.splitlines():
        parts = ln.split()
        if len(parts) >= 4 and parts[2] == "inet":
            nets.append((ipaddress.ip_interface(parts[3]).network, f"{parts[1]} has {parts[3]}"))
    for ln in sh(["ip", "-4", "route", "show", "table", "all"], check=False).stdout.splitlines():
        dest = ln.split()[0] if ln.split() else ""
        if dest and dest[0].isdigit():
            try:
                nets.append((ipaddress.ip_network(dest, strict=False), f"route {ln.strip()}"))
            except ValueError:
                continue
    return [(n, where) for n, where in nets if n.prefixlen > 0]


def clash(net: ipaddress.IPv4Network) -> str | None:
    """What on this machine already uses ``net``, or None."""
    return next((where for other, where in in_use() if other.overlaps(net)), None)


def parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    """A private IPv4 network, or a FleetError naming ``--subnet``."""
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as e:
        raise FleetError(f"--subnet {subnet!r}: {e}") from None
    if not isinstance(net, ipaddress.IPv4Network) or not net.is_private:
        raise FleetError(f"--subnet {subnet!r}: use a private IPv4 range (e.g. 10.213.5.0/24)")
    return net


def free_subnet(taken: list[ipaddress.IPv4Network] | None = None) -> ipaddress.IPv4Network:
    """The first /24 of ``POOL`` (from ``FIRST_AUTO`` on) that overlaps nothing in use."""
    taken = [n for n, _ in in_use()] if taken is None else taken
    order = [*range(FIRST_AUTO, 256), *range(0, FIRST_AUTO)]
    for third in order:
        net = ipaddress.ip_network(f"{POOL.network_address + third * 256}/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise FleetError(f"no free /24 left in {POOL}; pass --subnet")


@contextmanager
def reserve(subnet: str | None) -> Iterator[ipaddress.IPv4Network]:
    """The subnet to use (given, or picked), held under a host-wide lock for the ``with``.

    The caller creates its bridge (or Docker network) inside the ``with``, so the next
    ``fleet up`` sees it in use.
    """
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(STATE_ROOT / ".subnet.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if subnet is None:
            yield free_subnet()
            return
        net = parse_subnet(subnet)
        why = clash(net)
        if why:
            raise FleetError(f"--subnet {subnet} is already in use on this machine ({why}); "
                             "pick another subnet, or leave --subnet out to get a free one")
        yield net


def _tag(name: str) -> str:
    return f"raftlab-fleet-{name}"


def forward_filtered() -> bool:
    """Whether bridged frames may be dropped: FORWARD policy DROP/REJECT, or br_netfilter on."""
    if which("iptables") is None:
        return False
    head = sh(["iptables", "-w", "-S", "FORWARD"], check=False).stdout.splitlines()
    policy_drops = bool(head) and head[0].split()[-1] != "ACCEPT"
    try:
        netfilter = BR_NETFILTER.read_text().strip() == "1"
    except OSError:
        netfilter = False
    return policy_drops or netfilter


def allow_bridge(name: str, bridge: str) -> bool:
    """Let traffic between the fleet's nodes through FORWARD when the host filters it.

    Returns whether a rule was added. The rule sits first in FORWARD, so it holds whatever
    policy or chains (Docker's DOCKER-USER, ...) come after it.
    """
    if not forward_filtered():
        return False
    sh(["iptables", "-w", "-I", "FORWARD", "1", "-i", bridge, "-o", bridge,
        "-m", "comment", "--comment", _tag(name), "-j", "ACCEPT"])
    return True


def disallow_bridge(name: str) -> list[str]:
    """Remove every FORWARD rule tagged with the fleet's name; returns what was removed."""
    if which("iptables") is None:
        return []
    removed = []
    for ln in sh(["iptables", "-w", "-S", "FORWARD"], check=False).stdout.splitlines():
        if f'--comment {_tag(name)} ' in ln + " " and ln.startswith("-A FORWARD"):
            spec = ln.split()[2:]
            if sh(["iptables", "-w", "-D", "FORWARD", *spec], check=False).returncode == 0:
                removed.append(f"iptables rule FORWARD {' '.join(spec)}")
    return removed
