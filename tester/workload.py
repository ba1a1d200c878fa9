"""Workloads: which operations the clients perform, and which checker model judges them.

* ``registers`` -- Jepsen's independent registers: many keys, each a cas-register, with
  read/write/cas; every write (and cas's new value) is unique per key, so a stale read is
  visible; each key receives at most ``ops_per_key`` operations, then a fresh key replaces it
  (short per-key histories keep the linearizability search fast).
* ``kv`` -- a small fixed set of keys with read/write/cas/delete on all of them for the whole
  run (the multi-key kv model, checked per key).

A workload's generator is endless; the runner bounds it by rate, time and count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tester.generator import Context, Fn, Generator, Pending, Request, Result

READ_FS = frozenset({"read"})
WORKLOADS = ("registers", "kv")
ALIASES = {"register": "registers", "cas-register": "registers"}


@dataclass
class KeySpace:
    """Per-key bookkeeping shared by the client threads (the interpreter holds one lock)."""

    active: int
    ops_per_key: int | None
    slots: list[int] = field(default_factory=list)
    used: dict[int, int] = field(default_factory=dict)  # key -> ops issued
    written: dict[int, list[int]] = field(default_factory=dict)  # key -> values written
    next_key: int = 0

    def __post_init__(self) -> None:
        for _ in range(self.active):
            self.slots.append(self._fresh())

    def _fresh(self) -> int:
        k = self.next_key
        self.next_key += 1
        self.used[k] = 0
        self.written[k] = []
        return k

    def pick(self, ctx: Context) -> int:
        slot = ctx.rng.randrange(len(self.slots))
        k = self.slots[slot]
        self.used[k] += 1
        if self.ops_per_key is not None and self.used[k] >= self.ops_per_key:
            self.slots[slot] = self._fresh()  # retire the key: its history stays short
        return k

    def new_value(self, key: int) -> int:
        """A value never written to ``key`` before (1, 2, 3...)."""
        vals = self.written[key]
        vals.append(len(vals) + 1)
        return vals[-1]

    def old_value(self, ctx: Context, key: int) -> int | None:
        """A plausible expected value for cas: a recent write, or nothing-yet (None)."""
        vals = self.written[key]
        if not vals:
            return None
        return ctx.rng.choice(vals[-3:])


@dataclass
class Workload:
    """A workload: the client generator, the keys it touched and the checker model."""

    name: str
    model: str
    keys: KeySpace
    generator: Generator
    fs: tuple[str, ...]
    read_fs: frozenset[str] = READ_FS

    def final_reads(self, attempts: int = 3) -> Generator:
        """After healing: one successful read of every key touched (retried a few times)."""
        return FinalReads([k for k, n in self.keys.used.items() if n > 0], attempts)


def _op_fn(keys: KeySpace, fs: tuple[str, ...], weights: tuple[float, ...]) -> Fn:
    def make(ctx: Context) -> Request:
        key = keys.pick(ctx)
        f = ctx.rng.choices(fs, weights)[0]
        if f == "write":
            return {"f": "write", "key": key, "value": keys.new_value(key)}
        if f == "cas":
            old = keys.old_value(ctx, key)
            return {"f": "cas", "key": key, "value": [old, keys.new_value(key)]}
        return {"f": f, "key": key, "value": None}

    return Fn(make)


def registers(keys: int = 10, ops_per_key: int | None = 200) -> Workload:
    """Independent cas-registers (read 50 %, write 25 %, cas 25 %)."""
    ks = KeySpace(keys, ops_per_key)
    fs = ("read", "write", "cas")
    return Workload("registers", "cas-register", ks, _op_fn(ks, fs, (2, 1, 1)), fs)


def kv(keys: int = 5, ops_per_key: int | None = None) -> Workload:
    """A fixed key set with read/write/cas/delete (delete makes a key read null again)."""
    ks = KeySpace(keys, ops_per_key)
    fs = ("read", "write", "cas", "delete")
    return Workload("kv", "kv", ks, _op_fn(ks, fs, (4, 2, 2, 1)), fs)


def make(name: str, keys: int, ops_per_key: int | None) -> Workload:
    """The workload called ``name`` (one of WORKLOADS); ValueError names the choices."""
    name = ALIASES.get(name, name)
    if name == "registers":
        return registers(keys, ops_per_key)
    if name == "kv":
        return kv(keys, ops_per_key)
    raise ValueError(f"--workload {name!r}: expected one of {', '.join(WORKLOADS)}")


class FinalReads(Generator):
    """Reads every key until one read of it is ok, at most ``attempts`` times per key."""

    def __init__(self, keys: list[Any], attempts: int = 3):
        self.queue = list(keys)
        self.tries: dict[Any, int] = dict.fromkeys(keys, 0)
        self.attempts = attempts
        self.in_flight = 0

    def next(self, ctx: Context) -> Result:
        if self.queue:
            k = self.queue.pop(0)
            self.tries[k] += 1
            self.in_flight += 1
            return {"f": "read", "key": k, "value": None, "final": True}
        return Pending(None) if self.in_flight else None

    def update(self, ctx: Context, completion: Request) -> None:
        if not completion.get("final"):
            return
        self.in_flight -= 1
        k = completion.get("key")
        if completion.get("type") != "ok" and self.tries.get(k, self.attempts) < self.attempts:
            self.queue.append(k)
