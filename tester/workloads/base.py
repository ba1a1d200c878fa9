"""What every workload shares: per-key bookkeeping, the workload record, the final reads.

A workload's generator is endless; the runner bounds it by rate, time and count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.history import NEMESIS, Op
from tester.generator import Context, Fn, Generator, Pending, Request, Result

READ_FS = frozenset({"read"})


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
    """A workload: the client generator, the keys it touched and what judges its history.

    ``checker`` is ``"linearizability"`` (the search, with ``model``) or ``"set"``
    (:mod:`checker.set`, which needs no search).
    """

    name: str
    model: str
    keys: KeySpace
    generator: Generator
    fs: tuple[str, ...]
    read_fs: frozenset[str] = READ_FS
    checker: str = "linearizability"

    def check(self, ops: Sequence[Op], timeout: float | None = None, explain: bool = True
              ) -> Any:
        """This workload's verdict on a history (client records; nemesis ones are skipped):
        a ``CheckResult`` or a ``SetResult``, both with ``valid`` and ``to_dict()``."""
        if self.checker == "set":
            from checker.set import check_set

            return check_set(ops)
        # submodules, not the package: a tests/checker folder can shadow the package name
        from checker.linearizability import check
        from checker.models import load_model

        return check([op for op in ops if op.process != NEMESIS], load_model(self.model),
                     timeout=timeout, explain=explain)

    def final_reads(self, attempts: int = 3) -> Generator:
        """After healing: one successful read of every key touched (retried a few times)."""
        return FinalReads([k for k, n in self.keys.used.items() if n > 0], attempts)


#: how one kind of operation is made: (key space, context, key) -> the request's value
MakeValue = Callable[[KeySpace, Context, int], Any]


def new_value(keys: KeySpace, ctx: Context, key: int) -> int:
    return keys.new_value(key)


def no_value(keys: KeySpace, ctx: Context, key: int) -> None:
    return None


def cas_value(keys: KeySpace, ctx: Context, key: int) -> list[int | None]:
    old = keys.old_value(ctx, key)
    return [old, keys.new_value(key)]


def op_mix(keys: KeySpace, mix: dict[str, tuple[float, MakeValue]]) -> Fn:
    """A generator of single-key ops: ``f`` drawn by weight, its value made by ``mix[f]``."""
    fs = tuple(mix)
    weights = tuple(w for w, _ in mix.values())

    def make(ctx: Context) -> Request:
        key = keys.pick(ctx)
        f = ctx.rng.choices(fs, weights)[0]
        return {"f": f, "key": key, "value": mix[f][1](keys, ctx, key)}

    return Fn(make)


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
