"""Compact hand-written histories for the checker's tests."""

from __future__ import annotations

from typing import Any

from checker.history import Op


def history(*rows: tuple[Any, ...]) -> list[Op]:
    """Rows of ``(process, type, f, value)`` or ``(process, type, f, value, key)``, in order."""
    ops = []
    for i, row in enumerate(rows):
        proc, typ, f, value = row[:4]
        key = row[4] if len(row) > 4 else None
        ops.append(Op(index=i, time=i * 1000, type=typ, process=proc, f=f, value=value, key=key))
    return ops
