"""Swarm testing: each run enables a random subset of fault families and, within each, a
random subset of its kinds and timings, all drawn from the run's seed.

Why: a schedule that always mixes everything averages every fault's effect away (a kill that
restarts the whole cluster hides the stale read a flapping partition would have shown); runs
that each stress a few things hard, differently every time, find more over many seeds
(Groce et al., "Swarm testing"). The same seed gives the same choice, so a failing run's
schedule can be replayed, and the choice is recorded in test.json and results.json.

With ``all`` (every family asked for) each family is enabled with probability ``P_FAMILY``,
at least ``MIN_FAMILIES`` of them; a named list enables every family it names (``--nemesis
partition,clock`` promises partitions and clock faults) and draws only their parameters.
"""

from __future__ import annotations

import random
from typing import Any

from tester.nemesis.network import FLAP_KINDS, PARTITION_KINDS

P_FAMILY = 0.75
MIN_FAMILIES = 3


def _some(rng: random.Random, items: tuple[str, ...] | list[str], p: float = 0.6) -> list[str]:
    """A random non-empty subset, in the given order."""
    got = [x for x in items if rng.random() < p]
    return got or [rng.choice(list(items))]


def _span(lo: float, his: tuple[float, ...], rng: random.Random) -> list[float]:
    return [lo, rng.choice(his)]


def _family(name: str, rng: random.Random) -> dict[str, Any]:
    """One family's parameters: fault options, and how long a fault holds (``hold_s``) and how
    long the family rests between faults (``gap_s``), each a [min, max] seconds range."""
    if name == "partition":
        return {"opts": {"partitions": _some(rng, PARTITION_KINDS, 0.5)},
                "hold_s": _span(0.3, (1.5, 3.0, 6.0), rng), "gap_s": _span(0.2, (1.0, 3.0), rng)}
    if name == "flap":
        # on/off faster than an election timeout, in bursts
        return {"opts": {"flap_partitions": _some(rng, FLAP_KINDS)},
                "hold_s": _span(0.05, (0.3, 0.8), rng), "gap_s": _span(0.05, (0.3, 0.8), rng),
                "burst_s": _span(1.0, (3.0, 6.0), rng), "rest_s": _span(0.5, (2.0, 5.0), rng)}
    if name == "kill":
        return {"opts": {"targets": _some(rng, ("leader", "one", "majority", "all"))},
                "hold_s": _span(0.2, (1.0, 3.0), rng), "gap_s": _span(0.5, (2.0, 5.0), rng)}
    if name == "pause":
        return {"opts": {"targets": _some(rng, ("leader", "one", "minority"))},
                "hold_s": _span(0.2, (1.0, 3.0), rng), "gap_s": _span(0.3, (2.0, 4.0), rng)}
    if name == "clock":
        return {"opts": {"targets": _some(rng, ("leader", "one", "minority")),
                         "clock_kinds": _some(rng, ("bump", "strobe")),
                         "clock_min_ms": 250, "clock_max_ms": rng.choice((4000, 16000, 60000)),
                         "strobe_s": 1.0},
                # held at least 1 s: libfaketime's default cache sees a new offset within 1 s
                "hold_s": _span(1.0, (2.0, 5.0), rng), "gap_s": _span(0.3, (2.0, 4.0), rng)}
    if name == "member":
        return {"opts": {"member_targets": _some(rng, ("leader", "one"))},
                "hold_s": _span(1.0, (3.0, 6.0), rng), "gap_s": _span(0.5, (2.0, 5.0), rng)}
    if name == "loss":
        return {"opts": {"targets": _some(rng, ("one", "minority", "majority", "all", "leader")),
                         "loss": rng.choice((0.1, 0.2, 0.35))},
                "hold_s": _span(0.5, (2.0, 4.0), rng), "gap_s": _span(0.3, (2.0, 4.0), rng)}
    if name == "delay":
        return {"opts": {"targets": _some(rng, ("one", "minority", "all", "leader")),
                         "delay_ms": rng.choice((20, 50, 200))},
                "hold_s": _span(0.5, (2.0, 4.0), rng), "gap_s": _span(0.3, (2.0, 4.0), rng)}
    raise ValueError(f"no swarm parameters for fault family {name!r}")


def draw(seed: int, names: list[str], subset: bool) -> dict[str, dict[str, Any]]:
    """The run's families and their parameters, a function of ``seed`` and ``names`` only.

    ``subset``: enable a random subset of ``names`` (the ``all`` case); otherwise all of them.
    Every family's parameters are drawn whether or not it is enabled, so enabling one family
    never changes another's parameters for the same seed.
    """
    rng = random.Random(f"{seed}/swarm")
    params = {n: _family(n, random.Random(f"{seed}/swarm/{n}")) for n in names}
    if not subset or len(names) <= MIN_FAMILIES:
        return params
    chosen = [n for n in names if rng.random() < P_FAMILY]
    while len(chosen) < MIN_FAMILIES:
        extra = rng.choice([n for n in names if n not in chosen])
        chosen = [n for n in names if n in chosen or n == extra]
    return {n: params[n] for n in chosen}


def describe(plan: dict[str, dict[str, Any]]) -> str:
    """One line: each family with its kinds/targets, e.g. ``partition(leader,ring) kill(all)``."""
    parts = []
    for name, fam in plan.items():
        o = fam["opts"]
        what = (o.get("partitions") or o.get("flap_partitions") or o.get("member_targets")
                or o.get("targets") or [])
        extra = o.get("clock_kinds") or ([f"p={o['loss']}"] if "loss" in o else [])
        parts.append(f"{name}({','.join(map(str, list(what) + list(extra)))})")
    return " ".join(parts) or "none"
