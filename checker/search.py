"""The linearizability search for one partition (Wing & Gong / Lowe, as in Porcupine).

Operations are numbered in invoke order. A *configuration* is the set of operations
linearized so far (a bitset in a Python int) and the model state they lead to. The
candidates to take effect next are the operations not yet linearized that were invoked
before the earliest completion of any ``ok`` operation not yet linearized (an operation
cannot take effect after an operation that completed before it was invoked). The search is
a depth-first walk over configurations that tries each candidate whose step is legal and
backtracks from dead ends; the history is linearizable iff it reaches a configuration in
which every ``ok`` operation is linearized (``info`` ops left over "never happened").

Reductions keep it small; none of them weakens the check:

* a first pass tries the order of completion (every ``ok`` op taking effect at its
  completion, or just after one other op still pending then): that order respects real
  time, so when it is legal the partition is linearizable without a search; any other
  partition is searched in full;
* a cache of visited configurations (Lowe's memoisation): a configuration that failed once
  fails again; states are cached by ``Model.state_key`` (states no remaining op can tell
  apart share a key);
* ``info`` dominance: ``info`` ops are optional and never complete, so a configuration that
  used *more* of them than a visited one with the same ``ok`` ops and state cannot do better;
  identical ``info`` ops are interchangeable (only the earliest unused one is tried), and
  one that would not change the state is not tried;
* read-only ops (``Model.read_only``) are taken as soon as they are legal, without branching:
  they leave the state unchanged, so taking them early never rules out a linearization;
* read guards (``Model.read_guard``): a configuration in which a waiting or upcoming read
  can never become legal is abandoned at once;
* footprints (``Model.footprint``): only ops sharing the footprint of the op that must
  complete next are branched on (a persistent-set partial-order reduction);
* order: steps that make a waiting read legal first, then by earliest completion, then
  ``info`` ops.

The search honours a deadline (checked every few hundred steps, and by ``SIGALRM`` inside a
slow model step when run on the main thread) and a memory limit on the process's resident
set; both give the verdict ``"unknown"`` with the best partial result found so far.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.model import Model, State
from checker.operation import Operation
from checker.verdict import UNKNOWN, Verdict

#: one step of a linearization: (position of the op in the partition's list, state after it)
Step = tuple[int, State]

#: the reason of a partition the one pass did not settle (``search(..., full=False)``)
UNSETTLED = "unsettled"
_CHECK_EVERY = 256  # loop iterations between deadline checks
_MEMORY_EVERY = 32768  # loop iterations between resident-set checks
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class SearchResult:
    """The outcome of searching one partition.

    ``linearization`` is a full linearization when valid. Otherwise ``blocking`` is the op
    whose completion the search never got past, ``prefix`` the longest linearizable prefix
    found (also when the search gave up), and ``partials`` maps each op to the longest
    partial linearization containing it (only when asked for).
    """

    valid: Verdict
    reason: str | None = None
    linearization: list[Step] | None = None
    blocking: int | None = None
    prefix: list[Step] = field(default_factory=list)
    partials: dict[int, int] | None = None
    partial_paths: list[list[Step]] | None = None
    steps: int = 0


class _Timeout(Exception):
    pass


def rss_bytes() -> int:
    """The current resident set size of this process (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _path(node: Any) -> list[Step]:
    out: list[Step] = []
    while node is not None:
        node, i, state = node
        out.append((i, state))
    out.reverse()
    return out


def search(
    model: Model,
    init: State,
    ops: Sequence[Operation],
    deadline: float | None = None,
    max_rss: int | None = None,
    partials: bool = False,
    full: bool = True,
    witness: bool = True,
) -> SearchResult:
    """Search for a linearization of ``ops`` (one partition) starting from state ``init``.

    ``ops`` must be ordered by ``call``; ``fail`` ops must already be left out. ``deadline``
    is a ``time.monotonic()`` instant; ``max_rss`` a limit in bytes. Without ``full`` only
    the one linear pass is tried: a partition it does not settle comes back ``"unknown"``
    with reason :data:`UNSETTLED`. Without ``witness`` a partition the one pass settles as
    linearizable comes back without its linearization.
    """
    alarm = (
        deadline is not None
        and threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
    )
    armed = [False]
    old_handler: Any = None
    if alarm:
        remaining = deadline - time.monotonic()  # type: ignore[operator]
        if remaining <= 0:
            return SearchResult(UNKNOWN, "timeout")

        def _on_alarm(signum: int, frame: Any) -> None:
            if armed[0]:
                raise _Timeout()

        old_handler = signal.signal(signal.SIGALRM, _on_alarm)
        armed[0] = True
        signal.setitimer(signal.ITIMER_REAL, remaining + 0.05)
    try:
        easy = _in_completion_order(model, init, ops, witness)
        if easy is not None:
            return easy
        if not full:
            return SearchResult(UNKNOWN, UNSETTLED)
        return _search(model, init, ops, deadline, max_rss, partials)
    except _Timeout:  # the alarm fired just outside the search loop
        return SearchResult(UNKNOWN, "timeout")
    finally:
        while alarm:
            try:
                armed[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old_handler)
                alarm = False
            except _Timeout:  # fired before the first line above ran: do it again
                continue


def _in_completion_order(model: Model, init: State, ops: Sequence[Operation],
                         witness: bool = True) -> SearchResult | None:
    """A linearization found in one pass, if the history makes that easy; else ``None``.

    Every ``ok`` op takes effect at its completion, in completion order. One that is not
    legal there may instead take effect earlier: a read-only op in any state that was
    current at some instant since its invoke (it changes nothing, so nothing after it
    notices), or any op just after a single op still pending at that instant (invoked
    before it, and not completed yet, or ``info``) after which it is legal; ``info`` ops
    that are not needed never happen. Every op then takes effect inside its own interval,
    so a walk that gets through is a linearization. Most partitions of a well-behaved
    system get through (a simulator checks thousands of small histories, a long run has
    keys of thousands of ops); any other is searched in full, so verdicts and explanations
    stay what the search says. Without ``witness`` a valid result carries no linearization
    (``check`` never reads one, and building it is a fifth of this pass).
    """
    step, read_only = model.step, model.read_only
    state = init
    # each step of the linearization with its sort key (instant, then order at an instant)
    placed: list[tuple[tuple[int, float], int, State]] = []
    # the states the walk went through: each one's first instant and the key of its step
    since: list[int] = [-1]
    states: list[State] = [init]
    keys: list[tuple[int, float]] = [(-1, 0.0)]
    n = len(ops)
    taken = bytearray(n)
    # invoked before the current completion, not yet taken, in invoke order (a dict, so
    # that taking one costs the same however many info ops stay pending)
    pending: dict[int, None] = {}
    admitted = 0
    budget = 4 * n + 64  # steps for trying other placements: linear time, whatever the history
    rets = [o.ret for o in ops]
    calls = [o.call for o in ops]
    order = [i for i, r in enumerate(rets) if r is not None]
    order.sort(key=rets.__getitem__)

    def place(ret: int, i: int, before: State, after: State) -> None:
        key = (ret, float(len(placed)))
        if witness:
            placed.append((key, i, after))
        if after != before:
            since.append(ret)
            states.append(after)
            keys.append(key)

    for x in order:
        if taken[x]:
            continue  # taken early, to make an earlier completion legal
        ret: int = rets[x]  # type: ignore[assignment]
        while admitted < n and calls[admitted] < ret:
            pending[admitted] = None
            admitted += 1
        if x not in pending:
            return None  # completed before its invoke: not a history to take shortcuts on
        del pending[x]
        op = ops[x]
        legal, after = step(state, op)
        if not legal and read_only(op):
            # a state current since its invoke: the k-th lasted until the (k+1)-th began
            k = len(states) - 2
            while k >= 0 and since[k + 1] > op.call and budget > 0:
                budget -= 1
                if step(states[k], op)[0]:
                    t, at = keys[k + 1]
                    if witness:  # just before it changed
                        placed.append(((t, at - 0.5), x, states[k]))
                    taken[x] = 1
                    break
                k -= 1
            if taken[x]:
                continue
        if not legal:
            budget -= len(pending)
            if budget < 0:  # too many pending ops (e.g. many info ops): leave it to the search
                return None
            for w in pending:
                took, mid = step(state, ops[w])
                if took and mid != state:  # (an op that changes nothing cannot help)
                    legal, after = step(mid, op)
                    if legal:
                        del pending[w]  # (the loop stops here)
                        taken[w] = 1
                        place(ret, w, state, mid)
                        state = mid
                        break
            if not legal:
                return None
        taken[x] = 1
        if after != state:  # (place(), inlined: most ops come this way)
            key = (ret, float(len(placed)))
            since.append(ret)
            states.append(after)
            keys.append(key)
        if witness:
            placed.append(((ret, float(len(placed))), x, after))
        state = after
    if not witness:
        return SearchResult(True)
    placed.sort()  # by key: no two are equal, so the op and state are never compared
    return SearchResult(True, linearization=[(i, st) for _, i, st in placed])


def _search(
    model: Model,
    init: State,
    ops: Sequence[Operation],
    deadline: float | None,
    max_rss: int | None,
    partials: bool,
) -> SearchResult:
    # ok ops and info ops, each in invoke order; window_*[p]: how many of them were invoked
    # before the completion of the p-th ok op (by completion order), i.e. may go next
    ok_order: list[int] = []
    info_order: list[int] = []
    for i, o in enumerate(ops):
        (info_order if o.ret is None else ok_order).append(i)
    by_ret = sorted(ok_order, key=lambda i: ops[i].ret)
    nok = len(by_ret)
    okmask = 0
    for i in by_ret:
        okmask |= 1 << i
    ok_calls = [ops[i].call for i in ok_order]
    info_calls = [ops[i].call for i in info_order]
    rets = [ops[i].ret for i in by_ret]
    window_ok = [bisect_left(ok_calls, r) for r in rets] + [len(ok_order)]
    window_info = [bisect_left(info_calls, r) for r in rets] + [len(info_order)]
    # info ops with the same f, key and input are interchangeable: only the earliest unused
    # of each class is tried (it is available whenever a later one is)
    klass = {i: (ops[i].f, ops[i].key, ops[i].input) for i in info_order}
    read_only = [model.read_only(o) for o in ops]
    # admitting ok ops is slicing: read-only ones and the others, each in invoke order, and
    # ro_upto[k]: how many of the first k ok ops are read-only
    ro_order = tuple(i for i in ok_order if read_only[i])
    rw_order = tuple(i for i in ok_order if not read_only[i])
    ro_upto = [0]
    for i in ok_order:
        ro_upto.append(ro_upto[-1] + read_only[i])
    info_tuple = tuple(info_order)
    step = model.step
    feet = _footprints(model, ops)
    doomed = _Guards(model, ops, read_only, feet, ok_order)
    retpos = [o.ret if o.ret is not None else 0 for o in ops]

    # A configuration carries the ops invoked so far but not linearized, split into
    # read-only ok ops (taken as soon as legal), other ok ops and info ops, plus ``nxt``, the
    # number of ok / info ops (in invoke order) admitted so far.
    def settle(lin: int, state: State, p: int, nxt: int, nxi: int, ro: tuple[int, ...],
               rw: tuple[int, ...], info: tuple[int, ...], node: Any,
               changed: Any = None) -> tuple[Any, ...]:
        """Admit newly invokable ops and take every legal read-only one.

        ``changed`` is the footprint of the op just applied: waiting reads of other
        footprints saw no change and need no second look (``None``: look at all)."""
        if feet and changed is not None:
            stay = [r for r in ro if feet[r] != changed]
            todo = [r for r in ro if feet[r] == changed]
        else:
            stay, todo = [], list(ro)
        while True:
            while p < nok and (lin >> by_ret[p]) & 1:
                p += 1
            w = window_ok[p]
            if nxt < w:
                a, b = ro_upto[nxt], ro_upto[w]
                todo += ro_order[a:b]
                rw += rw_order[nxt - a:w - b]
                nxt = w
            if not todo:
                break
            took = False
            for i in todo:
                if step(state, ops[i])[0]:
                    lin |= 1 << i
                    node = (node, i, state)
                    took = True
                else:
                    stay.append(i)
            todo = []
            if not took:
                break
        wi = window_info[p]
        if nxi < wi:
            info += info_tuple[nxi:wi]
            nxi = wi
        return lin, p, nxt, nxi, tuple(stay), rw, info, node

    def candidates(state: State, p: int, ro: tuple[int, ...], rw: tuple[int, ...],
                   info: tuple[int, ...]) -> list[tuple[int, State]]:
        """The legal next steps ``(op, new state)``, most promising first: those after
        which a waiting read-only op becomes legal, then by earliest completion.

        With footprints, only ops sharing the footprint of the op that must complete next
        are tried: if any linearization exists, one starts with such an op (the first op
        of that footprint in it commutes with everything before it, and real time allows
        moving it to the front since it was invoked before any pending op completed)."""
        if feet:
            f = feet[by_ret[p]]
            rw = tuple(i for i in rw if feet[i] == f)
            info = tuple(i for i in info if feet[i] == f)
        scored = []
        for i in rw:
            legal, s2 = step(state, ops[i])
            if legal:
                enables = False
                for r in (ro if not feet else [r for r in ro if feet[r] == feet[i]]):
                    if step(s2, ops[r])[0]:
                        enables = True
                        break
                scored.append((not enables, retpos[i], i, s2))
        scored.sort()
        out = [(i, s2) for _, _, i, s2 in scored]
        if info:
            seen = set()
            for i in info:
                c = klass[i]
                if c not in seen:
                    seen.add(c)
                    legal, s2 = step(state, ops[i])
                    if legal and s2 != state:  # an info op with no effect here is never better
                        out.append((i, s2))
        return out

    steps = 0
    try:
        lin, p, nxt, nxi, ro, rw, info, node = settle(0, init, 0, 0, 0, (), (), (), None)
        if p == nok:
            return SearchResult(True, linearization=_path(node))
        best = (p, 0)
        best_node = node
        canon = model.state_key(ops) or _identity
        cache: dict[tuple[int, Any], list[int]] = {(lin & okmask, canon(init)): [lin & ~okmask]}
        # per op: (length, node) of the longest partial linearization containing it
        longest: dict[int, tuple[int, Any]] = {}
        # frame: [lin, state, p, nxt, nxi, ro, rw, info, candidates, next candidate, node,
        #         depth, had_child]
        stack: list[list[Any]] = [
            [lin, init, p, nxt, nxi, ro, rw, info, candidates(init, p, ro, rw, info), 0, node, 0,
             False]
        ]
        deadline_check = _CHECK_EVERY
        memory_check = _MEMORY_EVERY
        while stack:
            steps += 1
            deadline_check -= 1
            if deadline_check == 0:
                deadline_check = _CHECK_EVERY
                if deadline is not None and time.monotonic() > deadline:
                    raise _Timeout()
                memory_check -= _CHECK_EVERY
                if memory_check <= 0:
                    memory_check = _MEMORY_EVERY
                    if max_rss is not None and rss_bytes() > max_rss:
                        cache.clear()
                        return _give_up("memory", best_node, by_ret, best[0], steps)
            frame = stack[-1]
            cands = frame[8]
            k = frame[9]
            if k == len(cands):
                stack.pop()
                if partials and not frame[12]:
                    _record(longest, frame[10])
                continue
            frame[9] = k + 1
            i, s2 = cands[k]
            is_ok = (okmask >> i) & 1
            rw = frame[6]
            info = frame[7]
            if is_ok:
                at = rw.index(i)
                rw = rw[:at] + rw[at + 1:]
            else:
                at = info.index(i)
                info = info[:at] + info[at + 1:]
            lin2, p2, nxt2, nxi2, ro2, rw2, info2, node2 = settle(
                frame[0] | (1 << i), s2, frame[2], frame[3], frame[4], frame[5], rw, info,
                (frame[10], i, s2), feet[i] if feet else None)
            if p2 == nok:
                return SearchResult(True, linearization=_path(node2), steps=steps)
            depth = frame[11] + 1
            if (p2, depth) > best:  # a legal prefix, even if doomed below
                best = (p2, depth)
                best_node = node2
            if doomed.active and doomed(lin2, s2, ro2, nxt2, feet[i] if feet else None, feet):
                if partials:
                    _record(longest, node2)  # a dead end, but a legal partial linearization
                continue  # a read (waiting, or next to come) can never become legal from here
            okpart = lin2 & okmask
            infopart = lin2 ^ okpart
            key = (okpart, canon(s2))
            seen = cache.get(key)
            if seen is None:
                cache[key] = [infopart]
            else:
                dominated = False
                for used in seen:
                    if used & ~infopart == 0:
                        dominated = True
                        break
                if dominated:
                    continue
                seen.append(infopart)
            frame[12] = True
            stack.append([lin2, s2, p2, nxt2, nxi2, ro2, rw2, info2,
                          candidates(s2, p2, ro2, rw2, info2), 0,
                          node2, depth, False])
    except _Timeout:
        return _give_up("timeout", best_node if steps else None, by_ret,
                        best[0] if steps else None, steps)
    result = SearchResult(False, blocking=by_ret[best[0]], prefix=_path(best_node), steps=steps)
    if partials:
        result.partials, result.partial_paths = _flatten(longest)
    return result


class _Guards:
    """``Model.read_guard`` applied during the search, to waiting and upcoming reads.

    For a read ``r``, the ops that may still take effect before it are the state-changing
    ops not yet linearized that were invoked before ``r`` completed (and, with footprints,
    share its footprint). The model's guard for ``r`` given exactly those ops is built on
    first use and memoised by (read, that set).
    """

    AHEAD = 2  # upcoming (not yet invoked) reads checked besides the waiting ones

    def __init__(self, model: Model, ops: Sequence[Operation], read_only: list[bool],
                 feet: list[Any], ok_order: list[int]):
        self.active = type(model).read_guard is not Model.read_guard
        if not self.active:
            return
        self.model, self.ops = model, ops
        # per footprint, the state-changing ops by invoke order and prefix[k], the mask of
        # the first k of them: a read takes the prefix of those invoked before it completed
        groups: dict[Any, list[tuple[int, int]]] = {}
        for i, o in enumerate(ops):
            if not read_only[i]:
                groups.setdefault(feet[i] if feet else None, []).append((o.call, i))
        sweep: dict[Any, tuple[list[int], list[int]]] = {}
        for f, members in groups.items():
            members.sort()
            prefix = [0]
            for _, i in members:
                prefix.append(prefix[-1] | (1 << i))
            sweep[f] = ([c for c, _ in members], prefix)
        self.before: dict[int, int] = {}
        for i, o in enumerate(ops):
            if read_only[i] and o.ret is not None:
                got = sweep.get(feet[i] if feet else None)
                self.before[i] = got[1][bisect_left(got[0], o.ret)] if got else 0
        # ahead[k]: the next few reads at or after position k of ok_order
        ahead: list[tuple[int, ...]] = [()] * (len(ok_order) + 1)
        nxt: tuple[int, ...] = ()
        for k in range(len(ok_order) - 1, -1, -1):
            i = ok_order[k]
            if i in self.before:
                nxt = ((i,) + nxt)[: self.AHEAD]
            ahead[k] = nxt
        self.ahead = ahead
        self.memo: dict[tuple[int, int], Callable[[State], bool] | None] = {}

    def __call__(self, lin: int, state: State, waiting: Sequence[int], nxt: int,
                 changed: Any, feet: list[Any]) -> bool:
        """True if some waiting or upcoming read can never become legal from here.

        Skipping a read is always safe (this only prunes): with footprints, waiting reads
        of a footprint other than ``changed`` are not looked at again."""
        memo, before = self.memo, self.before
        if changed is not None:
            waiting = [r for r in waiting if feet[r] == changed]
        for r in (*waiting, *self.ahead[nxt]):
            key = (r, before[r] & ~lin)
            g = memo.get(key, _MISSING)
            if g is _MISSING:
                g = memo[key] = self.model.read_guard(self.ops[r], _ops_of(self.ops, key[1]))
            if g is not None and not g(state):
                return True
        return False


_MISSING: Any = object()  # not in a memo yet (None is a memoised "no guard")


def _footprints(model: Model, ops: Sequence[Operation]) -> list[Any]:
    """Each op's footprint, or ``[]`` when some op has none (then no reduction applies).

    Models that do not define footprints are not asked once per op."""
    if type(model).footprint is Model.footprint:
        return []
    feet = [model.footprint(o) for o in ops]
    return [] if any(f is None for f in feet) else feet


def _ops_of(ops: Sequence[Operation], mask: int) -> list[Operation]:
    out = []
    while mask:
        low = mask & -mask
        out.append(ops[low.bit_length() - 1])
        mask ^= low
    return out


def _identity(state: State) -> State:
    return state


def _give_up(reason: str, node: Any, by_ret: list[int], p: int | None, steps: int) -> SearchResult:
    blocking = by_ret[p] if p is not None and p < len(by_ret) else None
    return SearchResult(UNKNOWN, reason, blocking=blocking, prefix=_path(node), steps=steps)


def _record(longest: dict[int, tuple[int, Any]], node: Any) -> None:
    """A dead end: every op on its path is in a partial linearization this long."""
    depth = 0
    walk = node
    while walk is not None:
        depth += 1
        walk = walk[0]
    walk = node
    while walk is not None:
        i = walk[1]
        have = longest.get(i)
        if have is None or have[0] < depth:
            longest[i] = (depth, node)
        walk = walk[0]


def _flatten(longest: dict[int, tuple[int, Any]]) -> tuple[dict[int, int], list[list[Step]]]:
    index: dict[int, int] = {}
    paths: list[list[Step]] = []
    by_op: dict[int, int] = {}
    for i, (_, node) in longest.items():
        k = index.get(id(node))
        if k is None:
            k = index[id(node)] = len(paths)
            paths.append(_path(node))
        by_op[i] = k
    return by_op, paths
