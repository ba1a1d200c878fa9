"""Checking a whole history: pairing, partitions, the search per partition, explanations.

This is the public entry point (re-exported as ``checker.check``)::

    from checker import check, load_model
    from checker.formats import load

    history = load("history.jsonl")
    result = check(history, load_model("cas-register"), timeout=60)
    print(result.valid, result.to_dict())

Partitions (one per key for keyed models) are independent (P-compositionality), so each is
searched on its own; when the history is large and there are several cores, partitions are
searched in parallel worker processes. ``docs/results.md`` documents ``CheckResult.to_dict``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.formats import History
from checker.history import HistoryError, Op, paused_gc
from checker.model import Model, State
from checker.operation import Operation, pair
from checker.search import UNSETTLED, SearchResult, search
from checker.verdict import UNKNOWN, Verdict, worst

#: a history this large (ops to search) is worth worker processes when partitions allow
PARALLEL_MIN_OPS = 20_000
#: seconds the partitions the one pass leaves are searched here before the rest goes to
#: worker processes: a worker forked from a process holding a long history costs about as
#: much CPU again as its search (it copies each page of the history it touches), so only a
#: search that is still running after this long is worth them
SERIAL_FIRST_S = 2.0
#: seconds allowed, in all, to compute per-op partial linearizations of invalid partitions
EXPLAIN_BUDGET_S = 10.0
#: at most this many ops are tried, per invalid partition, when looking for the culprit
CULPRIT_TRIES = 64
#: and for at most this many times the partition's own search time, within these bounds
#: (seconds): when no single op explains a violation every try fails, and a key with many
#: anomalies would otherwise spend seconds finding that out
CULPRIT_TIME = (5.0, 0.05, 0.5)
#: what a read that returned nil means: Knossos' "unknown" (legal in any state), or "value"
#: (the register held nil, i.e. the key was absent)
NIL_READS = ("unknown", "value")
#: the reason given for an empty history (no client operation): nothing was tested
EMPTY = "empty"


@dataclass
class PartitionResult:
    key: Any
    valid: Verdict
    ops: int
    time_s: float
    reason: str | None = None
    violation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "valid": self.valid,
            "ops": self.ops,
            "time_s": round(self.time_s, 6),
            "reason": self.reason,
            "violation": self.violation,
        }


@dataclass
class CheckResult:
    """The verdict on one history, per partition, with violations explained."""

    valid: Verdict
    model: str
    initial: Any
    time_s: float
    reason: str | None
    stats: dict[str, int]
    partitions: list[PartitionResult] = field(default_factory=list)
    nil_reads: str = "value"

    @property
    def violations(self) -> list[PartitionResult]:
        return [p for p in self.partitions if p.valid is False]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``docs/results.md``."""
        return {
            "valid": self.valid,
            "model": self.model,
            "initial": self.initial,
            "nil_reads": self.nil_reads,
            "time_s": round(self.time_s, 6),
            "reason": self.reason,
            "stats": dict(self.stats),
            "partitions": [p.to_dict() for p in self.partitions],
        }


@dataclass
class _Partition:
    key: Any
    init: State
    ops: list[Operation]  # the ops to search, in invoke order
    shown: list[Operation]  # every op of the partition (fail and pruned ones too)


def default_max_rss() -> int:
    """Half the memory available now, at most 8 GiB: the memory guard's default."""
    avail = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return min(8 << 30, avail // 2) if avail else 4 << 30


def check(
    history: History | Sequence[Op],
    model: Model,
    *,
    timeout: float | None = None,
    max_memory: int | None = None,
    parallel: bool | None = None,
    explain: bool = True,
    first_violation: bool = False,
    nil_reads: str | None = None,
    allow_empty: bool = True,
) -> CheckResult:
    """Check that ``history`` is linearizable with respect to ``model``.

    ``timeout`` (seconds) and ``max_memory`` (bytes of resident memory, default
    :func:`default_max_rss`) turn a search that would run too long or too big into the
    verdict ``"unknown"``. ``parallel`` forces worker processes on or off (default: when the
    history is large). ``explain`` adds, for each violation, every op's longest partial
    linearization (the rest of the explanation is always there). ``first_violation`` stops
    at the first invalid partition, as Porcupine does: the verdict is then already false,
    and the partitions not searched are reported ``"unknown"`` with reason ``"skipped"``.
    ``nil_reads`` says what an ``ok`` read (a read-only op) that returned nil means:
    ``"unknown"`` -- Knossos' convention, the read is legal in any state -- or ``"value"``
    (the value was nil: the key was absent); the default is the history format's
    (``History.nil_reads``: ``"unknown"`` for Jepsen EDN), else ``"value"``. Without
    ``allow_empty`` a history with no client operation is ``"unknown"`` with reason
    ``"empty"``: nothing was tested (a gate must not pass a run that never happened).
    Bad input raises :class:`checker.history.HistoryError` naming the file and line.
    """
    scratch: list[Any] = []
    with paused_gc():
        result = _check(history, model, timeout, max_memory, parallel, explain,
                        first_violation, nil_reads, allow_empty, scratch)
        if RETAIN is not None:
            RETAIN.append(scratch)
        return result


#: when a list, each check leaves in it what it built (operations, partitions) instead of
#: freeing it on return: a program that ends after its output (``raftlab check``) need not
#: free 100,000 operations one by one (tester.cli.entry)
RETAIN: list[Any] | None = None


def _check(history: History | Sequence[Op], model: Model, timeout: float | None,
           max_memory: int | None, parallel: bool | None, explain: bool,
           first_violation: bool, nil_reads: str | None, allow_empty: bool,
           scratch: list[Any]) -> CheckResult:
    t0 = time.monotonic()
    deadline = t0 + timeout if timeout is not None else None
    max_rss = max_memory if max_memory is not None else default_max_rss()
    if isinstance(history, History):
        path, lines, ops = history.path, history.lines, history.ops
        nil_reads = nil_reads or history.nil_reads
    else:
        path, lines, ops = None, None, list(history)
    nil_reads = nil_reads or "value"
    if nil_reads not in NIL_READS:
        raise ValueError(f"nil_reads must be one of {', '.join(NIL_READS)}, got {nil_reads!r}")
    operations = pair(ops, lines, path)
    scratch.append(operations)
    stats = {"invokes": len(operations), "ok": 0, "fail": 0, "info": 0, "checked": 0,
             "partitions": 0, "nil_reads": 0}
    for o in operations:
        stats[o.status] += 1
        msg = model.validate(o)
        if msg is not None:
            raise HistoryError(msg, path, o.line)
    if not operations and not allow_empty:
        return CheckResult(UNKNOWN, model.name, model.initial, time.monotonic() - t0, EMPTY,
                           stats, [], nil_reads)
    unknown_reads = _unknown_reads(model, operations) if nil_reads == "unknown" else set()
    stats["nil_reads"] = len(unknown_reads)
    parts = _partitions(model, operations, unknown_reads)
    scratch.append(parts)
    stats["checked"] = sum(len(p.ops) for p in parts)
    stats["partitions"] = len(parts)

    outcomes = _search_all(model, parts, deadline, max_rss, parallel, first_violation)

    results: list[PartitionResult] = []
    explain_until = time.monotonic() + EXPLAIN_BUDGET_S
    if deadline is not None:
        explain_until = min(explain_until, deadline)
    for part, (sr, took) in zip(parts, outcomes, strict=True):
        pr = PartitionResult(part.key, sr.valid, len(part.ops), took, sr.reason)
        if sr.valid is False:
            culprit = None
            if explain and time.monotonic() < explain_until:
                sr = _with_partials(model, part, sr, explain_until, max_rss)
                factor, least, most = CULPRIT_TIME
                budget = min(max(factor * took, least), most)
                culprit = find_culprit(model, part.init, part.ops, sr,
                                       min(explain_until, time.monotonic() + budget), max_rss)
            pr.violation = _violation(model, part, sr, culprit)
        results.append(pr)
    verdict = worst(r.valid for r in results)
    reason = None
    if verdict == UNKNOWN:
        reasons = {r.reason for r in results if r.valid == UNKNOWN}
        reason = next((r for r in ("timeout", "memory", "skipped") if r in reasons), None)
    return CheckResult(
        valid=verdict,
        model=model.name,
        initial=model.initial,
        time_s=time.monotonic() - t0,
        reason=reason,
        stats=stats,
        partitions=results,
        nil_reads=nil_reads,
    )


#: one operation for :func:`check_operations`: (process, call time, return time or None,
#: input, output); input is ``(f, value)`` or ``(f, key, value)``
OperationTuple = tuple[Any, float, "float | None", Any, Any]


def check_operations(model: Model, operations: Sequence[OperationTuple], **options: Any
                     ) -> CheckResult:
    """Check a plain list of operations, as Porcupine's ``CheckOperations`` takes them.

    Each operation is ``(process, call_time, return_time, input, output)``: ``input`` is
    ``(f, value)`` or ``(f, key, value)`` (e.g. ``("write", 3)``, ``("read", "x", None)``),
    ``output`` what it returned (a read's value; ``None`` for a write). A ``return_time``
    of ``None`` is a crashed op: it may take effect at any time after its call, or never.
    Calls come before returns at equal times (the ops overlap). ``options`` are
    :func:`check`'s. Operations of one process must not overlap.
    """
    events: list[tuple[float, int, int, Op]] = []
    for n, row in enumerate(operations):
        try:
            process, call, ret, inp, output = row
            f, key, value = (inp[0], None, inp[1]) if len(inp) == 2 else inp
        except (TypeError, ValueError):
            raise HistoryError(f"operation {n}: expected (process, call_time, return_time, "
                               f"(f, value) or (f, key, value), output), got {row!r}") from None
        events.append((call, 0, n, Op(0, int(call), "invoke", process, f, value, key)))
        if ret is not None:
            done = output if output is not None else value
            events.append((ret, 1, n, Op(0, int(ret), "ok", process, f, done, key)))
    events.sort(key=lambda e: e[:3])
    ops = []
    for i, (_, _, _, op) in enumerate(events):
        op.index = i
        ops.append(op)
    return check(ops, model, **options)


def _unknown_reads(model: Model, operations: Sequence[Operation]) -> set[int]:
    """The ids of ``ok`` read-only ops that returned nil: under Knossos' convention such a
    read is legal in any state, so (like an ``info`` read) it constrains nothing."""
    return {o.id for o in operations
            if o.output is None and o.status == "ok" and model.read_only(o)}


def _partitions(model: Model, operations: Sequence[Operation],
                unknown_reads: set[int] | frozenset[int] = frozenset()) -> list[_Partition]:
    groups: dict[Any, list[Operation]] = {}
    partition = model.partition
    for o in operations:
        key = partition(o)
        group = groups.get(key)
        if group is None:
            groups[key] = [o]
        else:
            group.append(o)
    parts = []
    for key, shown in groups.items():
        live = [o for o in shown
                if (o.status == "ok" and o.id not in unknown_reads)
                or (o.status == "info" and not model.read_only(o))]
        parts.append(_Partition(key, model.init(key), model.prune(live), shown))
    return parts


def _search_one(
    model: Model, part: _Partition, deadline: float | None, max_rss: int | None,
    full: bool = True,
) -> tuple[SearchResult, float]:
    t = time.monotonic()
    sr = search(model, part.init, part.ops, deadline, max_rss, full=full, witness=False)
    return sr, time.monotonic() - t


def _search_all(
    model: Model, parts: list[_Partition], deadline: float | None, max_rss: int | None,
    parallel: bool | None, first_violation: bool,
) -> list[tuple[SearchResult, float]]:
    """Every partition's outcome. Worker processes cost more than they save unless the
    search has much to do, so (unless ``parallel`` says) the one linear pass settles what
    it can here first, and only when the partitions left hold PARALLEL_MIN_OPS ops or
    more, and are still not all searched here after SERIAL_FIRST_S seconds, is the rest
    searched in parallel."""
    workers = min(os.cpu_count() or 1, 8)
    if parallel is False or workers < 2 or len(parts) < 2:
        return _search_serial(model, parts, deadline, max_rss, first_violation)
    if parallel is True:
        return _search_parallel(model, parts, deadline, max_rss, workers, first_violation)
    if sum(len(p.ops) for p in parts) < PARALLEL_MIN_OPS:
        return _search_serial(model, parts, deadline, max_rss, first_violation)
    out = [_search_one(model, p, deadline, max_rss, full=False) for p in parts]
    hard = [k for k, (sr, _) in enumerate(out) if sr.reason == UNSETTLED]
    rest = [parts[k] for k in hard]
    if sum(len(p.ops) for p in rest) >= PARALLEL_MIN_OPS and len(rest) > 1:
        done = _search_serial(model, rest, deadline, max_rss, first_violation,
                              until=time.monotonic() + SERIAL_FIRST_S)
        left = [j for j, o in enumerate(done) if o is None]
        if left:
            more = _search_parallel(model, [rest[j] for j in left], deadline, max_rss,
                                    workers, first_violation)
            for j, outcome in zip(left, more, strict=True):
                done[j] = outcome
    else:
        done = _search_serial(model, rest, deadline, max_rss, first_violation)
    for k, outcome in zip(hard, done, strict=True):
        out[k] = outcome
    return out


def _search_serial(
    model: Model, parts: list[_Partition], deadline: float | None, max_rss: int | None,
    first_violation: bool, until: float | None = None,
) -> list[Any]:
    """Each partition's outcome, searched here. With ``until`` (a ``time.monotonic()``
    instant) no partition is started after it: those left are ``None``, for workers."""
    out: list[Any] = [None] * len(parts)
    # small partitions first: a quick violation ends a first-violation check early, and a
    # hard partition cannot starve the easy ones of time
    for k in sorted(range(len(parts)), key=lambda k: len(parts[k].ops)):
        if until is not None and time.monotonic() > until:
            return out
        out[k] = _search_one(model, parts[k], deadline, max_rss)
        if first_violation and out[k][0].valid is False:
            break
    skipped = (SearchResult(UNKNOWN, "skipped"), 0.0)
    return [o if o is not None else skipped for o in out]


# The parallel search forks workers that inherit the job (model, partitions) from this
# module global instead of pickling it: user models need not be picklable.
_JOB: tuple[Model, list[_Partition], float | None, int | None] | None = None


def _work(chunk: list[int]) -> list[tuple[int, SearchResult, float]]:
    assert _JOB is not None
    model, parts, deadline, max_rss = _JOB
    out = []
    for k in chunk:
        sr, took = _search_one(model, parts[k], deadline, max_rss)
        sr.linearization = None  # the parent never reads it: not worth sending back
        out.append((k, sr, took))
    return out


def _search_parallel(
    model: Model,
    parts: list[_Partition],
    deadline: float | None,
    max_rss: int | None,
    workers: int,
    first_violation: bool,
) -> list[tuple[SearchResult, float]]:
    global _JOB
    import multiprocessing  # here: most checks never start a worker (7 ms of start-up)

    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return [_search_one(model, p, deadline, max_rss) for p in parts]
    # each worker gets an equal share of the memory limit
    share = max_rss // workers if max_rss is not None else None
    _JOB = (model, parts, deadline, share)
    out: list[tuple[SearchResult, float] | None] = [None] * len(parts)
    # big ones first (they bound the total time), unless the first violation ends the check
    order = sorted(range(len(parts)), key=lambda k: len(parts[k].ops) * (1 if first_violation
                                                                         else -1))
    size = max(1, len(parts) // (workers * 16))
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    pool = ctx.Pool(workers)
    try:
        it = pool.imap_unordered(_work, chunks)
        stop = False
        for _ in range(len(chunks)):
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) + 1.0
            try:
                done = it.next(timeout=wait)
            except multiprocessing.TimeoutError:
                break  # a worker is stuck past the deadline (e.g. in a slow step)
            for k, sr, took in done:
                out[k] = (sr, took)
                stop = stop or (first_violation and sr.valid is False)
            if stop:
                break
    finally:
        pool.terminate()
        pool.join()
        _JOB = None
    missing = "skipped" if first_violation and any(
        o is not None and o[0].valid is False for o in out) else "timeout"
    return [o if o is not None else (SearchResult(UNKNOWN, missing), 0.0) for o in out]


def _with_partials(
    model: Model, part: _Partition, sr: SearchResult, until: float, max_rss: int | None,
) -> SearchResult:
    """Search again, recording each op's longest partial linearization (until ``until``)."""
    again = search(model, part.init, part.ops, until, max_rss, partials=True)
    if again.valid is False:
        return again
    return sr  # ran out of time: keep the first answer, without partials


#: why an op is the culprit, by how the partition became linearizable
_CULPRIT_WHY = {
    "without": "no state explains it: without this op the history is linearizable",
    "unconditional": "no state explains it: the history is linearizable if this op took "
                     "effect whatever the state",
}


def find_culprit(model: Model, init: State, ops: Sequence[Operation], sr: SearchResult,
                 until: float, max_rss: int | None = None) -> tuple[int, str] | None:
    """The op a person should look at in an invalid partition: ``(position in ops, how)``.

    Where the search stopped is not necessarily where the history went wrong (it often stops
    at an always-legal write a few ops before a stale read). The culprit is the ``ok`` op
    whose result no state explains: the partition becomes linearizable without it
    (``"without"``: a stale read, a lost write), or with it taking effect whatever the state
    (``"unconditional"``: a cas that cannot have succeeded though its effect was seen). Ops
    that a state can refuse (reads, cas) are tried before ops every state allows (writes),
    nearest to where the search stopped first; ``None`` when no single op explains it (or
    time ran out).
    """
    if sr.blocking is None:
        return None
    states = {init, *(s for _, s in sr.prefix)}

    def refusable(o: Operation) -> bool:
        return model.read_only(o) or any(not model.step(s, o)[0] for s in states)

    stop = ops[sr.blocking].call
    order = sorted((i for i, o in enumerate(ops) if o.ok),
                   key=lambda i: (not refusable(ops[i]), abs(ops[i].call - stop), i))
    for i in order[:CULPRIT_TRIES]:
        for how, alt in (("without", None), ("unconditional", model.unconditional(ops[i]))):
            if how == "unconditional" and alt is None:
                continue
            if time.monotonic() >= until:
                return None
            trial = [*ops[:i], *([alt] if alt is not None else []), *ops[i + 1:]]
            if search(model, init, trial, until, max_rss).valid is True:
                return i, how
    return None


def _state(model: Model, state: State) -> dict[str, Any]:
    return {"value": model.state_json(state), "text": model.describe_state(state)}


def _violation(model: Model, part: _Partition, sr: SearchResult,
               culprit: tuple[int, str] | None = None) -> dict[str, Any]:
    ops = part.ops

    def steps(path: list[tuple[int, State]]) -> list[dict[str, Any]]:
        return [{"op": ops[i].id, "state": _state(model, s)} for i, s in path]

    longest: dict[int, int] = {}
    if sr.partials is not None:
        longest = {ops[i].id: k for i, k in sr.partials.items()}
    shown = []
    for o in part.shown:
        d = o.to_dict(model.describe_op(o))
        d["longest"] = longest.get(o.id)
        shown.append(d)
    stopped = ops[sr.blocking].id if sr.blocking is not None else None
    out = {
        "op": ops[culprit[0]].id if culprit is not None else stopped,
        "culprit": ({"op": ops[culprit[0]].id, "why": _CULPRIT_WHY[culprit[1]]}
                    if culprit is not None else None),
        "stopped_at": stopped,
        "initial_state": _state(model, part.init),
        "prefix": steps(sr.prefix),
        "operations": shown,
        "partial_linearizations": [steps(p) for p in (sr.partial_paths or [])],
        "partial": sr.partials is None,
    }
    anomalies = model.anomalies(part.shown)
    if anomalies:
        out["anomalies"] = anomalies
    return out
