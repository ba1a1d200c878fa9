"""The fault families by name, their plot colours, and ``--nemesis`` parsing."""

from __future__ import annotations

from tester.nemesis.base import Fault
from tester.nemesis.clock import Clock
from tester.nemesis.member import Member
from tester.nemesis.network import Delay, Flap, Loss, Partition
from tester.nemesis.process import Kill, Pause

PACKAGES = ("partition", "flap", "clock", "kill", "pause", "loss", "delay", "member")
COLORS = {
    "partition": "#E9A0A0",
    "flap": "#E97F9C",
    "clock": "#A0C8E9",
    "kill": "#E9C3A0",
    "pause": "#C3A0E9",
    "loss": "#E9E3A0",
    "delay": "#A0E9D5",
    "member": "#A0E9A5",
}
FAULTS: dict[str, type[Fault]] = {
    c.name: c for c in (Partition, Flap, Clock, Kill, Pause, Loss, Delay, Member)
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
