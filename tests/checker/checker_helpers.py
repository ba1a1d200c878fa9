"""Compact hand-written histories for the checker's tests."""

from __future__ import annotations

from typing import Any

from checker.history import Op
from checker.model import Model


def history(*rows: tuple[Any, ...]) -> list[Op]:
    """Rows of ``(process, type, f, value)`` or ``(process, type, f, value, key)``, in order."""
    ops = []
    for i, row in enumerate(rows):
        proc, typ, f, value = row[:4]
        key = row[4] if len(row) > 4 else None
        ops.append(Op(index=i, time=i * 1000, type=typ, process=proc, f=f, value=value, key=key))
    return ops


class Counter(Model):
    """A user's own model, as docs/checker.md shows: add n, read the total."""

    name = "counter"
    functions = frozenset({"add", "read"})

    def init(self, key=None):
        return 0 if self.initial is None else self.initial

    def step(self, state, op):
        if op.f == "add":
            return True, state + op.input
        return op.output == state, state

    def read_only(self, op):
        return op.f == "read"


def concurrent_adds(n: int, final_read: int) -> list[Op]:
    """n overlapping adds of distinct powers of two, then a read: 2**n reachable totals."""
    rows = [(p, "invoke", "add", 1 << p) for p in range(n)]
    rows += [(p, "ok", "add", 1 << p) for p in range(n)]
    rows += [(n, "invoke", "read", None), (n, "ok", "read", final_read)]
    return history(*rows)
