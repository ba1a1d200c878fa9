"""A run's history and results in Jepsen's own files, ``history.edn`` and ``results.edn``,
written beside the JSON so Jepsen's tooling (and anyone used to it) can read a raftlab run.

``history.edn`` holds one op map a line, as Jepsen's store writes it::

    {:index 0, :time 1200345, :type :invoke, :process 0, :f :write, :value ["k3" 4], :node "n1"}

A keyed op's value is Jepsen's independent tuple ``[key value]``; ``:type``, ``:f`` and the
nemesis process are keywords. ``results.edn`` is results.json with Jepsen's key spelling
(``:valid?``, hyphens for underscores); an unknown verdict is ``:unknown``, as in Jepsen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from checker.edn import Keyword, dumps, keyword_key, plain_keyword
from checker.history import NEMESIS, Op


def op_map(op: Op) -> dict[Any, Any]:
    """One history record as Jepsen's op map (the JSONL record's fields, Jepsen's types)."""
    d: dict[Any, Any] = op.to_dict()
    d.pop("key", None)  # folded into the value, as Jepsen's independent tuple
    d.update(type=Keyword(op.type), f=keyword_key(op.f),
             process=Keyword(NEMESIS) if op.process == NEMESIS else op.process,
             value=op.value if op.key is None else [op.key, op.value])
    return d


def history_lines(ops: Iterable[Op]) -> Iterator[str]:
    """``history.edn``'s lines: one op map each."""
    return (dumps(op_map(op), plain_keyword) for op in ops)


def _verdicts(v: Any) -> Any:
    """results.json's values for EDN: the verdict "unknown" becomes Jepsen's ``:unknown``."""
    if isinstance(v, dict):
        return {k: (Keyword("unknown") if k == "valid" and x == "unknown" else _verdicts(x))
                for k, x in v.items()}
    if isinstance(v, list):
        return [_verdicts(x) for x in v]
    return v


def results_lines(results: dict[str, Any]) -> list[str]:
    """``results.edn``'s one line: the results map with ``:valid?`` first, as Jepsen's is
    read."""
    ordered = {"valid": results.get("valid"), **results}
    return [dumps(_verdicts(ordered))]
