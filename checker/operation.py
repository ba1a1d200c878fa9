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
from dataclasses import dataclass
from typing import Any

from checker.history import HistoryError, Op


def freeze(v: Any) -> Any:
    """JSON-ish value -> hashable value (lists become tuples, dicts sorted item tuples)."""
    t = type(v)
    if t is list or t is tuple:
        return tuple([freeze(x) for x in v])
    if t is dict:
        return tuple(sorted(((k, freeze(x)) for k, x in v.items()), key=repr))
    return v


@dataclass(slots=True, eq=False)
class Operation:
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
    out: list[Operation] = []
    inflight: dict[Any, Operation] = {}
    for pos, op in enumerate(ops):
        if op.is_nemesis:
            continue
        line = lines[pos] if lines is not None else pos + 1
        proc = op.process
        if op.type == "invoke":
            prev = inflight.get(proc)
            if prev is not None:
                raise HistoryError(
                    f"process {proc} invokes {op.f!r} while its {prev.f!r} invoked on line "
                    f"{prev.line} is still in flight (expected a completion first; after an "
                    "info, a worker must continue as a new process)",
                    path,
                    line,
                )
            o = Operation(
                id=len(out), process=proc, f=op.f, key=freeze(op.key), input=freeze(op.value),
                output=None, status="info", call=pos, ret=None, invoke=op, complete=None,
                line=line,
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
                line,
            )
        if op.f != o.f:
            raise HistoryError(
                f"completion f {op.f!r} does not match process {proc}'s invoke {o.f!r} on line "
                f"{o.line}",
                path,
                line,
            )
        if op.key is not None and op.key != o.invoke.key and freeze(op.key) != o.key:
            raise HistoryError(
                f"completion key {op.key!r} does not match the invoke's key {o.invoke.key!r} "
                f"on line {o.line}",
                path,
                line,
            )
        if o.key is None and op.key is not None:
            o.key = freeze(op.key)
        o.complete = op
        o.status = op.type
        if op.type == "ok":
            o.ret = pos
            o.output = freeze(op.value)
    return out
