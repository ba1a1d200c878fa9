"""What every fault family shares: the environment faults act on, target choice, the Fault
base class, and the claims that keep two process faults off one node."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tester import bounds

log = logging.getLogger("raftlab")

#: how long one step on every node (a heal, a setup, a log download) may take in all
EACH_TIMEOUT = 60.0

#: what a family hits when no targets are given
DEFAULT_TARGETS = ("one", "minority", "majority", "all", "leader")
#: every target spec: also ``isolated``, the nodes a network fault now holds in a minority
#: (the leader when none is): a clock fault there keeps an old leader cut off from the
#: majority from noticing it lost them, the stale-leader case (reads, answers, leases)
TARGETS = (*DEFAULT_TARGETS, "isolated")


class Unsupported(RuntimeError):
    """The fault cannot be injected on this host or database (e.g. no netem qdisc)."""


class Claims:
    """Nodes held by process faults (kill, pause) and membership changes, shared by every
    family's loop.

    A node that is killed or paused must not be removed from the cluster (the removal wipes it,
    and the kill's restart would bring it back with the old peers), and a node being removed or
    added must not be killed: a node held by one of them is left alone by the other. Owners
    named in ``share`` may hold a node together (kill and pause undo each other harmlessly).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, set[str]] = {}

    def take(self, owner: str, nodes: list[Any], share: tuple[str, ...] = ()) -> list[Any]:
        """The subset of ``nodes`` now held by ``owner``: those no other owner holds, except
        owners in ``share``."""
        ok = {owner, *share}
        with self._lock:
            got = [n for n in nodes if self._owners.get(n.name, set()) <= ok]
            for n in got:
                self._owners.setdefault(n.name, set()).add(owner)
            return got

    def release(self, owner: str, names: list[str]) -> None:
        with self._lock:
            for name in names:
                owners = self._owners.get(name, set())
                owners.discard(owner)
                if not owners:
                    self._owners.pop(name, None)

    def held(self) -> dict[str, list[str]]:
        with self._lock:
            return {n: sorted(o) for n, o in self._owners.items()}


class Isolation:
    """The nodes each network fault now cuts off in a minority (shared by every loop), so
    another family can aim at them: ``isolated`` targets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_owner: dict[str, list[str]] = {}

    def set(self, owner: str, names: list[str]) -> None:
        with self._lock:
            self._by_owner[owner] = sorted(names)

    def clear(self, owner: str) -> None:
        with self._lock:
            self._by_owner.pop(owner, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted({n for names in self._by_owner.values() for n in names})


def minority(nodes: list[str], drops: dict[str, list[str]]) -> list[str]:
    """The nodes of ``nodes`` that can exchange messages both ways with fewer than a majority
    (themselves included) when ``drops`` (destination -> sources it refuses) is in force."""
    quorum = len(nodes) // 2 + 1

    def linked(a: str, b: str) -> bool:
        return b not in drops.get(a, ()) and a not in drops.get(b, ())

    return [x for x in nodes if 1 + sum(linked(x, y) for y in nodes if y != x) < quorum]


@dataclass
class Env:
    """What faults act on: the DB adapter, the nodes and a command runner per node."""

    db: Any
    nodes: list[Any]
    remotes: dict[str, Any]
    rng: random.Random
    claims: Claims = field(default_factory=Claims)
    isolation: Isolation = field(default_factory=Isolation)

    def sh(self, node: Any, cmd: str, check: bool = True) -> Any:
        return self.remotes[node.name].run(cmd, timeout=20, check=check)

    def each(self, nodes: list[Any], fn: Callable[[Any], None]) -> list[str]:
        """Run ``fn(node)`` on every node in parallel; return the errors (node: message)."""
        outs = bounds.each(nodes, fn, EACH_TIMEOUT, "node step")
        # one deadline for all; a node whose step never returns is an error, not a silence
        return [f"{nd.name}: {o.error}" if o.done else
                f"{nd.name}: did not finish in {EACH_TIMEOUT:g} s"
                for nd, o in zip(nodes, outs, strict=True) if not o.done or o.error is not None]

    def leader(self) -> Any | None:
        try:
            name = self.db.leader(self.nodes)
        except Exception:
            name = None
        return next((n for n in self.nodes if n.name == name), None)

    def fork(self, stream: str) -> Env:
        """The same nodes and claims with a random stream of its own (one per fault loop, so
        loops running side by side do not reorder each other's choices)."""
        return Env(self.db, self.nodes, self.remotes, random.Random(stream), self.claims,
                   self.isolation)


def pick_targets(env: Env, spec: str) -> list[Any]:
    """Nodes for a target spec: one, minority, majority, all, leader (falls back to one),
    isolated (falls back to leader)."""
    nodes = list(env.nodes)
    n = len(nodes)
    if spec == "isolated":
        cut = set(env.isolation.names())
        if cut:
            return [nd for nd in nodes if nd.name in cut]
        spec = "leader"
    if spec == "leader":
        ld = env.leader()
        return [ld] if ld is not None else [env.rng.choice(nodes)]
    count = {"one": 1, "minority": max(1, (n - 1) // 2), "majority": n // 2 + 1, "all": n}[spec]
    return env.rng.sample(nodes, count)


class Fault:
    """A fault family. ``start``/``stop`` return a description of what was done to whom."""

    name = "fault"

    def __init__(self, opts: dict[str, Any]):
        self.opts = opts
        self.targets = opts.get("targets", list(DEFAULT_TARGETS))

    def probe(self, env: Env) -> str | None:
        """Why this fault cannot run here (checked once, before the test), or None."""
        return None

    def start(self, env: Env) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, env: Env) -> dict[str, Any]:
        raise NotImplementedError

    def heal(self, env: Env) -> list[str]:
        """Undo this fault everywhere, whatever state it is in; returns errors."""
        self.stop(env)
        return []

    def _targets(self, env: Env) -> tuple[str, list[Any]]:
        spec = env.rng.choice(self.targets)
        return spec, pick_targets(env, spec)
