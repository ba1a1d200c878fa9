"""The fault families by name, their plot colours, and ``--nemesis`` parsing."""

from __future__ import annotations

from tester.nemesis.base import Fault
from tester.nemesis.clock import Clock
from tester.nemesis.disk import Disk
from tester.nemesis.member import Member
from tester.nemesis.network import Delay, Flap, Loss, Partition
from tester.nemesis.process import Kill, Pause

PACKAGES = ("partition", "flap", "clock", "kill", "pause", "loss", "delay", "member", "disk")
COLORS = {
    "partition": "#E9A0A0",
    "flap": "#E97F9C",
    "clock": "#A0C8E9",
    "kill": "#E9C3A0",
    "pause": "#C3A0E9",
    "loss": "#E9E3A0",
    "delay": "#A0E9D5",
    "member": "#A0E9A5",
    "disk": "#B8A088",
}
FAULTS: dict[str, type[Fault]] = {
    c.name: c for c in (Partition, Flap, Clock, Kill, Pause, Loss, Delay, Member, Disk)
}
#: the keys ``--nemesis-opt`` (and a campaign's ``nemesis_opt``) accept, and what they set
OPTIONS = {
    "schedule": "hunt, interval or together",
    "swarm": "false: every family of 'all', not a random subset per seed",
    "together_gap_s": "seconds between the families' starts under the together schedule",
    "targets": "which nodes faults hit (every family)",
    "partitions": "partition shapes to draw from",
    "flap_partitions": "flapping partition shapes to draw from",
    "member_targets": "which nodes membership changes remove",
    "clock_kinds": "bump, strobe, rate",
    "clock_min_ms": "smallest clock bump",
    "clock_max_ms": "largest clock bump",
    "clock_offsets_ms": "fixed clock bumps to draw from",
    "clock_rates": "clock rates to draw from (kind rate)",
    "strobe_s": "how long a clock strobe lasts",
    "system_clock": "move the nodes' system clocks (real VMs only)",
    "loss": "the probability a packet is dropped",
    "delay_ms": "netem delay",
    "disk_modes": "what a disk crash keeps of unsynced writes: random, lose, torn, keep",
}
#: healed at the end of every test even when not chosen: cheap, idempotent and safe
ALWAYS_HEALED = ("partition", "flap", "loss", "clock", "pause", "kill")


def parse(spec: str) -> list[str]:
    """``partition,clock`` / ``all`` / ``none`` -> family names; ValueError names a bad one."""
    spec = (spec or "none").strip()
    if spec in ("none", ""):
        return []
    if spec == "all":
        return list(PACKAGES)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in FAULTS]
    if bad:
        raise ValueError(
            f"--nemesis: unknown fault {bad[0]!r}; expected all, none or a list of "
            f"{', '.join(PACKAGES)}"
        )
    return list(dict.fromkeys(names))
