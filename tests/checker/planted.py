"""Generated register histories with one planted anomaly each, to measure which op the
checker blames. A history is made linearizable by construction (every op takes effect at a
random instant inside its interval; written values are unique), then one op is changed:

* ``stale-read``: a read returns a value that was overwritten (by an op that completed)
  before the read began;
* ``lost-write``: a write is acknowledged but has no effect: at least two reads that began
  after it completed return the value before it;
* ``impossible-cas``: a cas that succeeded expects instead a value overwritten before it began
  (its effect stays: later reads see its new value);
* ``never-written``: a read returns a value no op wrote.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from checker.history import Op

KINDS = ("stale-read", "lost-write", "impossible-cas", "never-written")


@dataclass
class _Spec:
    proc: int
    f: str
    call: float
    lin: float
    ret: float
    value: int | None = None  # a write's value; a cas's new value
    old: int | None = None  # a cas's expected value
    out: object = None  # a read's result
    ok: bool = True


def _simulate(specs: list[_Spec], lost: _Spec | None = None) -> None:
    """Fill in reads' results and cas outcomes from the linearization order."""
    state = 0
    for s in sorted(specs, key=lambda s: s.lin):
        if s.f == "read":
            s.out = state
        elif s.f == "write":
            if s is not lost:
                state = s.value  # type: ignore[assignment]
        else:
            s.ok = state == s.old
            if s.ok:
                state = s.value  # type: ignore[assignment]


def _changes(specs: list[_Spec]) -> list[_Spec]:
    return [s for s in specs if s.f == "write" or (s.f == "cas" and s.ok)]


def _stale_values(specs: list[_Spec], before: float) -> list[int]:
    """Values certainly overwritten before time ``before``: set by an op A, and some op B
    that began after A completed changed the value and completed before ``before``."""
    changes = _changes(specs)
    out = {0} if any(b.ret < before for b in changes) else set()
    for a in changes:
        if any(a.ret < b.call and b.ret < before for b in changes):
            out.add(a.value)  # type: ignore[arg-type]
    return sorted(out)


def _history(specs: list[_Spec]) -> list[tuple[float, int, dict]]:
    events = []
    for n, s in enumerate(specs):
        inv: object = None
        done: object = None
        if s.f == "write":
            inv = done = s.value
        elif s.f == "cas":
            inv = done = [s.old, s.value]
        else:
            done = s.out
        events.append((s.call, 0, n, {"process": s.proc, "type": "invoke", "f": s.f,
                                      "value": inv}))
        events.append((s.ret, 1, n, {"process": s.proc, "type": "ok" if s.ok else "fail",
                                     "f": s.f, "value": done}))
    events.sort(key=lambda e: e[:3])
    return events


def generate(kind: str, seed: int, n_ops: int = 40, procs: int = 5
             ) -> tuple[list[Op], int] | None:
    """A history with one planted ``kind`` anomaly and the record index of the planted op's
    invoke, or ``None`` if this seed offers no place to plant it."""
    rng = random.Random(seed)
    clock = [0.0] * procs
    specs: list[_Spec] = []
    for j in range(n_ops):
        p = rng.randrange(procs)
        call = clock[p] + rng.uniform(0, 2)
        lin = call + rng.uniform(0, 3)
        ret = lin + rng.uniform(0, 3)
        clock[p] = ret
        f = rng.choice(("read", "read", "read", "write", "write", "cas"))
        specs.append(_Spec(p, f, call, lin, ret, value=j + 1))
    _simulate([s for s in specs if s.f != "cas"])  # a cas expects a value current or past
    for s in specs:
        if s.f == "cas":
            earlier = [t.value for t in specs if t.f == "write" and t.lin < s.lin]
            s.old = earlier[-1] if earlier and rng.random() < 0.6 else rng.choice([0, *earlier])
    _simulate(specs)
    middle = specs[n_ops // 4: 3 * n_ops // 4]
    planted: _Spec | None = None
    if kind in ("stale-read", "never-written"):
        reads = [s for s in middle if s.f == "read"]
        rng.shuffle(reads)
        for r in reads:
            stale = [v for v in _stale_values(specs, r.call) if v != r.out]
            if kind == "never-written":
                r.out, planted = 10**6, r
            elif stale:
                r.out, planted = rng.choice(stale), r
            if planted:
                break
    elif kind == "impossible-cas":
        cases = [s for s in middle if s.f == "cas" and s.ok]
        rng.shuffle(cases)
        for c in cases:
            stale = [v for v in _stale_values(specs, c.call) if v != c.old]
            if stale:
                c.old, planted = rng.choice(stale), c
                break
    elif kind == "lost-write":
        writes = [s for s in middle if s.f == "write"]
        rng.shuffle(writes)
        for w in writes:
            _simulate(specs, lost=w)
            before = [s for s in _changes(specs) if s.lin < w.lin]
            setter = before[-1] if before else None
            u = setter.value if setter else 0
            forced = setter is None or setter.ret < w.call
            witnesses = [s for s in specs if s.f == "read" and s.call > w.ret and s.out == u]
            if forced and len(witnesses) >= 2:
                planted = w
                break
            _simulate(specs)
    else:
        raise ValueError(f"unknown anomaly {kind!r}")
    if planted is None:
        return None
    events = _history(specs)
    ops = [Op(index=i, time=int(t * 1e6), **d) for i, (t, _, _, d) in enumerate(events)]
    target = next(i for i, (_, kind_, n, _) in enumerate(events)
                  if kind_ == 0 and specs[n] is planted)
    return ops, target
