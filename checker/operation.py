"""Operations: an invoke record paired with its completion, with Jepsen's semantics.

* ``ok``   -- took effect at one instant between its invoke and its completion;
* ``fail`` -- never took effect: the checker leaves it out;
* ``info`` -- indeterminate: it may take effect at any instant after its invoke, or never.
  An invoke that never completes is ``info`` too.

A process has at most one operation in flight; an invoke while one is in flight, a completion
with no invoke, or a completion whose ``f`` differs from its invoke's is an input error naming
the file and line. Nemesis records are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from checker.history import NEMESIS, HistoryError, Op

#: the types :func:`freeze` rebuilds; any other value is already hashable as it is
_CONTAINERS = frozenset({list, tuple, dict})


def freeze(v: Any) -> Any:
    """JSON-ish value -> hashable value (lists become tuples, dicts sorted item tuples)."""
    t = type(v)
    if t is list or t is tuple:
        return tuple([freeze(x) if type(x) in _CONTAINERS else x for x in v])
    if t is dict:
        return tuple(sorted(((k, freeze(x)) for k, x in v.items()), key=repr))
    return v


class Operation(msgspec.Struct, eq=False, gc=False):
    """One client operation as the search sees it.

    ``input`` is the invoke's value and ``output`` the completion's (``None`` unless ``ok``),
    both frozen so a model may keep them in its (hashable) state. ``call`` and ``ret`` are
    positions in the history (record order); ``ret`` is ``None`` when the operation may take
    effect at any time after its call (``info``).
    """

    id: int
    process: int
    f: str
    key: Any
    input: Any
    output: Any
    status: str  # "ok" | "fail" | "info"
    call: int
    ret: int | None
    invoke: Op
    complete: Op | None
    line: int | None = None  # the invoke's line in the source file, for error messages

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self, text: str | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "process": self.process,
            "f": self.f,
            "key": self.key,
            "input": self.invoke.value,
            "output": self.complete.value if self.ok and self.complete is not None else None,
            "status": self.status,
            "invoke": {"index": self.invoke.index, "time": self.invoke.time},
            "complete": (
                {"index": self.complete.index, "time": self.complete.time}
                if self.complete is not None
                else None
            ),
        }
        if text is not None:
            d["text"] = text
        return d


def pair(
    ops: Sequence[Op], lines: Sequence[int] | None = None, path: str | None = None
) -> list[Operation]:
    """Pair invokes with completions in history order.

    ``lines`` gives the source line of each record (for errors); by default the record's
    position counted from 1. Returns every client operation (``fail`` ones included, so they
    can be counted and drawn), ordered by invoke.
    """
    # This loop runs once per record of every history checked (the simulator checks
    # thousands of small ones), so it avoids per-record calls: values are frozen inline
    # unless they are containers, and an Operation is built from positional arguments.
    out: list[Operation] = []
    inflight: dict[Any, Operation] = {}
    for pos, op in enumerate(ops):
        proc = op.process
        if proc == NEMESIS:
            continue
        if op.type == "invoke":
            line = lines[pos] if lines is not None else pos + 1
            prev = inflight.get(proc)
            if prev is not None:
                raise HistoryError(
                    f"process {proc} invokes {op.f!r} while its {prev.f!r} invoked on line "
                    f"{prev.line} is still in flight (expected a completion first; after an "
                    "info, a worker must continue as a new process)",
                    path,
                    line,
                )
            key, value = op.key, op.value
            o = Operation(
                len(out), proc, op.f,
                freeze(key) if type(key) in _CONTAINERS else key,
                freeze(value) if type(value) in _CONTAINERS else value,
                None, "info", pos, None, op, None, line,
            )
            out.append(o)
            inflight[proc] = o
            continue
        o = inflight.pop(proc, None)
        if o is None:
            raise HistoryError(
                f"{op.type} for process {proc} ({op.f!r}) without an invoke in flight "
                "(expected an invoke first)",
                path,
                lines[pos] if lines is not None else pos + 1,
            )
        if op.f != o.f:
            raise HistoryError(
                f"completion f {op.f!r} does not match process {proc}'s invoke {o.f!r} on line "
                f"{o.line}",
                path,
                lines[pos] if lines is not None else pos + 1,
            )
        key = op.key
        if key is not None:
            if key != o.invoke.key and freeze(key) != o.key:
                raise HistoryError(
                    f"completion key {key!r} does not match the invoke's key "
                    f"{o.invoke.key!r} on line {o.line}",
                    path,
                    lines[pos] if lines is not None else pos + 1,
                )
            if o.key is None:
                o.key = freeze(key)
        o.complete = op
        typ = o.status = op.type
        if typ == "ok":
            o.ret = pos
            value = op.value
            o.output = freeze(value) if type(value) in _CONTAINERS else value
    return out
