"""The set checker: Jepsen's set analysis, with no linearizability search.

The history has, per key, ``add`` operations (the value is the element; each element is
added once) and ``read`` operations (the value is the whole set, as a list). After the
faults heal, the runner reads every key once more: the *final read* (records flagged
``"final": true``; without one, the last read that began after every add had completed).

An element is *known* at a point of the history once its add completed ``ok`` or a
completed read returned it. Then, per key:

* **lost** -- a known element missing from the final read: acknowledged (or seen) and gone;
* **stale** -- a read that began after an element was known and does not contain it,
  although the element is in the final read (it was there all along: the read was stale,
  or the element disappeared for a while after being seen);
* **never-written** -- an element a read returned that no add attempted, or whose every add
  definitely failed.

An ``info`` add may or may not take effect: present or absent, it is no anomaly (until a
read returns it; from then on it is known). Order in the history is real time: the records
are appended as the operations begin and end, so positions compare like instants.

The result has the shape of the linearizability checker's (``valid``, ``partitions`` per
key) plus the anomalies by name and count (``set``), so results.json, the report and the
runner's verdict treat both alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.history import NEMESIS, HistoryError, Op
from checker.operation import Operation, pair
from checker.verdict import UNKNOWN, Verdict, worst

ADD = "add"
READ = "read"
KINDS = ("lost", "stale", "never_written")
DETAILS_PER_KIND = 20  # per key: explained anomalies kept in the result (all are counted)


@dataclass
class SetKey:
    """The analysis of one key's set."""

    key: Any
    valid: Verdict = True
    ops: int = 0
    reason: str | None = None
    attempted: int = 0
    acknowledged: int = 0
    final_size: int | None = None  # None: no final read
    recovered: int = 0  # info adds found in the final read
    lost: list[Any] = field(default_factory=list)
    stale: list[Any] = field(default_factory=list)
    never_written: list[Any] = field(default_factory=list)
    stale_reads: int = 0  # (read, element) pairs: one stale element may miss from many reads
    details: list[dict[str, Any]] = field(default_factory=list)
    time_s: float = 0.0
    violation: None = None  # no linearization to explain: ``details`` says what was found

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "valid": self.valid, "ops": self.ops, "time_s": 0.0,
            "reason": self.reason, "violation": None,
            "set": {"attempted": self.attempted, "acknowledged": self.acknowledged,
                    "final_size": self.final_size, "recovered": self.recovered,
                    "lost": self.lost, "stale": self.stale, "stale_reads": self.stale_reads,
                    "never_written": self.never_written, "details": self.details},
        }


@dataclass
class SetResult:
    """The verdict on a set history, per key, with every anomaly named."""

    valid: Verdict
    keys: list[SetKey]
    stats: dict[str, int]
    time_s: float = 0.0
    model: str = "set"

    # the linearizability checker's CheckResult has these too: raftlab check prints either
    @property
    def partitions(self) -> list[SetKey]:
        return self.keys

    @property
    def violations(self) -> list[SetKey]:
        return [k for k in self.keys if k.valid is False]

    @property
    def reason(self) -> str | None:
        return next(iter(sorted(k.reason for k in self.keys
                                if k.valid == UNKNOWN and k.reason)), None)

    def count(self, kind: str) -> int:
        return sum(len(getattr(k, kind)) for k in self.keys)

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            kind: {"count": self.count(kind),
                   "elements": {str(k.key): getattr(k, kind) for k in self.keys
                                if getattr(k, kind)}}
            for kind in KINDS}
        summary["stale"]["reads"] = sum(k.stale_reads for k in self.keys)
        summary["attempted"] = sum(k.attempted for k in self.keys)
        summary["acknowledged"] = sum(k.acknowledged for k in self.keys)
        summary["recovered"] = sum(k.recovered for k in self.keys)
        return {
            "valid": self.valid, "model": "set", "initial": None,
            "time_s": round(self.time_s, 6),
            "reason": self.reason,
            "stats": dict(self.stats),
            "partitions": [k.to_dict() for k in self.keys],
            "set": summary,
        }


def check_set(history: Iterable[Op]) -> SetResult:
    """Analyse ``history`` (add/read records per key; nemesis records are skipped)."""
    t0 = time.monotonic()
    ops = pair([op for op in history if op.process != NEMESIS])
    stats = {"invokes": len(ops), "ok": 0, "fail": 0, "info": 0, "partitions": 0}
    groups: dict[Any, list[Operation]] = {}
    for o in ops:
        stats[o.status] += 1
        if o.f not in (ADD, READ):
            raise HistoryError(f"the set checker judges add and read, got {o.f!r}",
                               None, o.line)
        groups.setdefault(o.key, []).append(o)
    keys = [check_key(k, g) for k, g in groups.items()]
    stats["partitions"] = len(keys)
    return SetResult(worst(k.valid for k in keys), keys, stats, time.monotonic() - t0)


def _elements(o: Operation) -> frozenset[Any]:
    out = o.output
    return frozenset(out) if isinstance(out, tuple) else frozenset()


def _final_read(reads: list[Operation], adds: list[Operation]) -> Operation | None:
    flagged = [r for r in reads if r.invoke.extra.get("final")]
    if flagged:
        return max(flagged, key=lambda r: r.call)
    last_add = max((a.ret if a.ret is not None else a.call for a in adds), default=-1)
    later = [r for r in reads if r.call > last_add]
    return max(later, key=lambda r: r.call) if later else None


def check_key(key: Any, ops: Sequence[Operation]) -> SetKey:
    """One key's set: lost, stale and never-written elements."""
    out = SetKey(key, ops=len(ops))
    adds = [o for o in ops if o.f == ADD]
    reads = sorted((o for o in ops if o.f == READ and o.ok), key=lambda o: o.call)
    attempted = {a.input for a in adds}
    possible = {a.input for a in adds if a.status != "fail"}
    acked = {a.input for a in adds if a.ok}
    out.attempted, out.acknowledged = len(attempted), len(acked)
    final = _final_read(reads, adds)
    final_set = _elements(final) if final is not None else None
    known = known_from(adds, [r for r in reads if r is not final], possible)

    never: dict[Any, Operation] = {}
    for r in reads:
        for e in _elements(r):
            if e not in possible and e not in never:
                never[e] = r
    for e, r in never.items():
        why = "its add failed" if e in attempted else "no add of it was attempted"
        _detail(out, "never_written", e,
                f"the read at record {_index(r.complete)} returned {e!r}, but {why}")
    out.never_written = _sorted(never)

    if final_set is not None:
        out.final_size = len(final_set)
        out.recovered = sum(1 for a in adds if a.status == "info" and a.input in final_set
                            and a.input not in acked)
        for e, (pos, how) in sorted(known.items(), key=lambda kv: kv[1][0]):
            if e not in final_set and pos < final.call:
                out.lost.append(e)
                _detail(out, "lost", e, f"{e!r} is missing from the final read (record "
                                        f"{_index(final.complete)}), but {how}")
    lost = set(out.lost)
    stale: dict[Any, list[Operation]] = {}
    for r in reads:
        if r is final:
            continue
        have = _elements(r)
        for e, (pos, _how) in known.items():
            if pos < r.call and e not in have and e not in lost:
                stale.setdefault(e, []).append(r)
    for e, rs in sorted(stale.items(), key=lambda kv: kv[1][0].call):
        pos, how = known[e]
        _detail(out, "stale", e, f"{e!r} is missing from {len(rs)} read(s), the first at "
                                 f"record {rs[0].invoke.index}, which began after {how}")
    out.stale = _sorted(stale)
    out.stale_reads = sum(len(rs) for rs in stale.values())
    out.lost = _sorted(out.lost)

    if out.lost or out.stale or out.never_written:
        out.valid = False
        out.reason = "; ".join(
            f"{kind.replace('_', '-')} {len(v)}: {_names(v)}"
            for kind, v in (("lost", out.lost), ("stale", out.stale),
                            ("never_written", out.never_written)) if v)
    elif final is None and acked:
        out.valid, out.reason = UNKNOWN, "no final read"
    return out


def known_from(writes: Iterable[Operation], reads: Iterable[Operation], possible: set[Any]
               ) -> dict[Any, tuple[int, str]]:
    """element -> (history position from which it is known, how): the first completion of
    an ``ok`` write of it (an add, an append) or of an ok read that returned it. ``possible``
    are the elements some write may have written (a read of another one is no evidence)."""
    known: dict[Any, tuple[int, str]] = {}
    for a in writes:
        if a.ok and a.ret is not None and (a.input not in known or a.ret < known[a.input][0]):
            known[a.input] = (a.ret, f"its {a.f} was acknowledged at record {_index(a.complete)}")
    for r in reads:
        if not r.ok or r.ret is None:
            continue
        for e in _elements(r):
            if e in possible and (e not in known or r.ret < known[e][0]):
                known[e] = (r.ret, f"the read at record {_index(r.complete)} returned it")
    return known


def _index(op: Op | None) -> Any:
    return op.index if op is not None else "?"


def _detail(out: SetKey, kind: str, element: Any, text: str) -> None:
    if sum(1 for d in out.details if d["kind"] == kind) < DETAILS_PER_KIND:
        out.details.append({"kind": kind.replace("_", "-"), "element": element, "text": text})


def _sorted(xs: Iterable[Any]) -> list[Any]:
    return sorted(xs, key=lambda e: (type(e).__name__, e) if isinstance(e, int | str)
                  else (type(e).__name__, repr(e)))


def _names(xs: list[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(x) for x in xs[:limit])
    return shown + (f" and {len(xs) - limit} more" if len(xs) > limit else "")
