"""Why a list-append history is not linearizable, element by element.

The ``list-append`` model (:class:`checker.models.ListAppend`) lets the search decide; this
module names what went wrong, for the explanation. Every element is appended once, and a
list only grows at its end, so in any linearizable history every read is a prefix of the
final list, and real time orders what reads see. Each anomaly below is enough on its own to
make a key non-linearizable:

* **duplicated** -- an element appears twice in one read (an append applied twice);
* **never-written** -- a read returned an element no append attempted, or whose appends all
  definitely failed;
* **lost** -- an element missing from a read that began after it was known (its append was
  acknowledged, or a completed read returned it), when a read after it also misses it;
* **stale** -- the same, when a later read has the element again (the read was stale);
* **reordered** -- two reads disagree on the order of the same elements, or a read puts an
  element before one whose append completed before its own began;
* **diverged** -- two reads neither of which is a prefix of the other (different elements
  at one position).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checker.operation import Operation
from checker.set import known_from

MAX_ANOMALIES = 12  # per key: enough to explain; the search's verdict is what counts


def _items(o: Operation) -> tuple[Any, ...]:
    out = o.output
    return out if isinstance(out, tuple) else ()


def _at(o: Operation | None) -> str:
    if o is None:
        return "?"
    return f"record {o.invoke.index}" if o.complete is None else f"record {o.complete.index}"


def anomalies(ops: Sequence[Operation]) -> list[dict[str, Any]]:
    """The anomalies of one key's ops (``append`` and ``read``), each with the element it
    concerns and a sentence saying what happened: ``{"kind", "element", "text"}``."""
    appends = [o for o in ops if o.f == "append"]
    reads = sorted((o for o in ops if o.f == "read" and o.ok and o.ret is not None),
                   key=lambda o: o.call)
    possible = {a.input for a in appends if a.status != "fail"}
    attempted = {a.input for a in appends}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, Any]] = set()

    def add(kind: str, element: Any, text: str) -> None:
        if (kind, element) not in seen and len(out) < MAX_ANOMALIES:
            seen.add((kind, element))
            out.append({"kind": kind, "element": element, "text": text})

    for r in reads:
        items = _items(r)
        counted: set[Any] = set()
        for e in items:
            if e in counted:
                add("duplicated", e, f"{e!r} appears twice in the read at {_at(r)}: its append "
                                     "was applied twice")
            counted.add(e)
            if e not in possible:
                why = "its append failed" if e in attempted else "no append of it was attempted"
                add("never-written", e, f"the read at {_at(r)} returned {e!r}, but {why}")

    # what is known before each read begins: acknowledged appends and earlier reads' elements
    known = known_from(appends, reads, possible)
    for i, r in enumerate(reads):
        have = set(_items(r))
        for e, (pos, how) in sorted(known.items(), key=lambda kv: kv[1][0]):
            if pos < r.call and e not in have:
                back = any(e in set(_items(later)) for later in reads[i + 1:])
                add("stale" if back else "lost", e,
                    f"{e!r} is missing from the read at {_at(r)}, which began after {how}"
                    + ("; a later read has it again" if back else "; no later read has it"))

    # order: every read must be a prefix of the longest one, and respect real time
    for i, r in enumerate(reads):
        a_items = _items(r)
        for s in reads[i + 1:]:
            b_items = _items(s)
            n = min(len(a_items), len(b_items))
            k = next((j for j in range(n) if a_items[j] != b_items[j]), n)
            if k == n:
                continue
            x, y = a_items[k], b_items[k]
            if x in b_items and y in a_items:
                add("reordered", x, f"the read at {_at(r)} has {x!r} before {y!r}, the read at "
                                    f"{_at(s)} has {y!r} before {x!r}")
            else:
                add("diverged", x, f"the reads at {_at(r)} and {_at(s)} differ at position {k}: "
                                   f"{x!r} in one, {y!r} in the other")
    done = {a.input: a for a in appends if a.ok and a.ret is not None}
    begun = {a.input: a for a in appends}
    for r in reads:
        items = _items(r)
        where = {e: j for j, e in enumerate(items)}
        for e, j in where.items():
            a = begun.get(e)
            for x in items[j + 1:]:
                b = done.get(x)
                if a is not None and b is not None and b.ret is not None and b.ret < a.call:
                    add("reordered", x, f"the read at {_at(r)} has {e!r} before {x!r}, but the "
                                        f"append of {x!r} completed ({_at(b)}) before the append "
                                        f"of {e!r} began")
                    break
    return out
