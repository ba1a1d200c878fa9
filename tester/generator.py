"""Composable operation generators, after Jepsen's: what each worker does next, and when.

A generator is asked for the next operation by one *thread* (a client worker, numbered from 0,
or the nemesis, named ``"nemesis"``) through a :class:`Context`. It answers with

* an operation request (a dict: ``{"f": ..., "key": ..., "value": ...}``),
* :class:`Pending` -- nothing yet, ask again at ``until`` (or when another op completes), or
* ``None`` -- exhausted for this thread: the thread is done.

The interpreter (``tester.runner``) calls every generator under one lock, so generators are
plain single-threaded objects. All randomness comes from ``ctx.rng``, a per-thread
``random.Random`` derived from the test's seed, and all time from ``ctx.time`` (seconds since
the test began): the same seed and the same sequence of contexts give the same operations,
which :func:`simulate` uses to prove determinism and boundedness without any I/O.

Building blocks: :class:`Fn`, :class:`Once`, :class:`Seq`, :class:`Mix`, :class:`Limit`,
:class:`TimeLimit`, :class:`Stagger` (random 0..2*dt between ops: a total rate),
:class:`Delay` (a fixed interval), :class:`Sleep`, :class:`Phases`, :class:`EachThread`,
:class:`OnThreads` (``clients``/``nemesis`` routing), :class:`Any`, :class:`FlipFlop`,
:class:`UntilOk`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

NEMESIS_THREAD = "nemesis"

Thread = Union[int, str]  # noqa: UP007 - readable on 3.10
Request = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pending:
    """Nothing to do yet. ``until``: the earliest time worth asking again (None: after any
    completion, or a short poll)."""

    until: float | None = None


@dataclass
class Context:
    """What a generator may know when asked: the time, the asking thread and its randomness."""

    time: float
    thread: Thread
    rng: random.Random
    threads: tuple[Thread, ...] = ()  # every thread the interpreter runs
    process: int | str | None = None


Result = Union[Request, Pending, None]  # noqa: UP007


class Generator:
    """Base class. ``next`` gives the next request; ``update`` hears each completion."""

    def next(self, ctx: Context) -> Result:
        raise NotImplementedError

    def update(self, ctx: Context, completion: Request) -> None:
        """A completion (``{"type": "ok"|"fail"|"info", "f", "key", "value"}``) arrived."""


GenLike = Union[Generator, Request, Callable[[Context], Any], None]  # noqa: UP007


def lift(g: GenLike) -> Generator:
    """Turn a dict into a one-shot generator, a function into an endless one."""
    if isinstance(g, Generator):
        return g
    if isinstance(g, dict):
        return Once(g)
    if callable(g):
        return Fn(g)
    raise TypeError(f"not a generator: {g!r}")


def soonest(a: Pending, b: Pending) -> Pending:
    if a.until is None:
        return b if b.until is not None else a
    if b.until is None:
        return a
    return a if a.until <= b.until else b


class Fn(Generator):
    """Endless: ``fn(ctx)`` builds each request (None from fn exhausts it)."""

    def __init__(self, fn: Callable[[Context], Request | None]):
        self.fn = fn

    def next(self, ctx: Context) -> Result:
        return self.fn(ctx)


class Once(Generator):
    """One request, to the first thread that asks."""

    def __init__(self, request: Request):
        self.request: Request | None = dict(request)

    def next(self, ctx: Context) -> Result:
        r, self.request = self.request, None
        return r


class Seq(Generator):
    """Each generator in turn, moving on when one is exhausted (no waiting for idle threads)."""

    def __init__(self, *gens: GenLike):
        self.gens = [lift(g) for g in gens]

    def next(self, ctx: Context) -> Result:
        while self.gens:
            r = self.gens[0].next(ctx)
            if r is not None:
                return r
            self.gens.pop(0)
        return None

    def update(self, ctx: Context, completion: Request) -> None:
        if self.gens:
            self.gens[0].update(ctx, completion)


class Mix(Generator):
    """A random choice among generators for every request; exhausted ones drop out."""

    def __init__(self, gens: Iterable[GenLike], weights: Iterable[float] | None = None):
        self.gens = [lift(g) for g in gens]
        self.weights = list(weights) if weights is not None else [1.0] * len(self.gens)

    def next(self, ctx: Context) -> Result:
        pending: Pending | None = None
        tried: set[int] = set()
        while True:
            live = [
                i for i, g in enumerate(self.gens) if i not in tried and not isinstance(g, _Done)
            ]
            if not live:
                return pending
            i = ctx.rng.choices(live, [self.weights[j] for j in live])[0]
            r = self.gens[i].next(ctx)
            if isinstance(r, dict):
                return r
            tried.add(i)
            if r is None:
                self.gens[i] = _Done()  # exhausted for good
            else:
                pending = r if pending is None else soonest(pending, r)

    def update(self, ctx: Context, completion: Request) -> None:
        for g in self.gens:
            g.update(ctx, completion)


class _Done(Generator):
    def next(self, ctx: Context) -> Result:
        return None


class Limit(Generator):
    """At most ``n`` requests in total (over all threads)."""

    def __init__(self, n: int, gen: GenLike):
        self.left, self.gen = int(n), lift(gen)

    def next(self, ctx: Context) -> Result:
        if self.left <= 0:
            return None
        r = self.gen.next(ctx)
        if isinstance(r, dict):
            self.left -= 1
        return r

    def update(self, ctx: Context, completion: Request) -> None:
        self.gen.update(ctx, completion)


class TimeLimit(Generator):
    """Exhausted ``dt`` seconds after its first request was asked for."""

    def __init__(self, dt: float, gen: GenLike):
        self.dt, self.gen = float(dt), lift(gen)
        self.deadline: float | None = None

    def next(self, ctx: Context) -> Result:
        if self.deadline is None:
            self.deadline = ctx.time + self.dt
        if ctx.time >= self.deadline:
            return None
        r = self.gen.next(ctx)
        if isinstance(r, Pending):
            until = self.deadline if r.until is None else min(r.until, self.deadline)
            return Pending(until)
        return r

    def update(self, ctx: Context, completion: Request) -> None:
        self.gen.update(ctx, completion)


class Stagger(Generator):
    """Spaces requests by a random 0..2*dt (mean dt) over all threads: a total rate of 1/dt."""

    def __init__(self, dt: float, gen: GenLike):
        self.dt, self.gen = float(dt), lift(gen)
        self.next_time: float | None = None

    def next(self, ctx: Context) -> Result:
        if self.next_time is None:
            self.next_time = ctx.time
        if ctx.time < self.next_time:
            return Pending(self.next_time)
        r = self.gen.next(ctx)
        if isinstance(r, dict):
            # a slow system must not build up a burst of owed ops: never lag more than one dt
            self.next_time = max(self.next_time, ctx.time - self.dt)
            self.next_time += ctx.rng.uniform(0, 2 * self.dt)
        return r

    def update(self, ctx: Context, completion: Request) -> None:
        self.gen.update(ctx, completion)


class Delay(Generator):
    """Requests exactly ``dt`` apart, the first ``dt`` after the first ask (fault schedules)."""

    def __init__(self, dt: float, gen: GenLike):
        self.dt, self.gen = float(dt), lift(gen)
        self.next_time: float | None = None

    def next(self, ctx: Context) -> Result:
        if self.next_time is None:
            self.next_time = ctx.time + self.dt
        if ctx.time < self.next_time:
            return Pending(self.next_time)
        r = self.gen.next(ctx)
        if isinstance(r, dict):
            self.next_time += self.dt
        return r

    def update(self, ctx: Context, completion: Request) -> None:
        self.gen.update(ctx, completion)


class Sleep(Generator):
    """Each asking thread waits ``dt`` seconds once, then this generator is exhausted for it."""

    def __init__(self, dt: float):
        self.dt = float(dt)
        self.until: dict[Thread, float] = {}

    def next(self, ctx: Context) -> Result:
        t = self.until.setdefault(ctx.thread, ctx.time + self.dt)
        return Pending(t) if ctx.time < t else None


class OnThreads(Generator):
    """Routes: only the threads that ``pred`` accepts see ``gen``; others see it exhausted."""

    def __init__(self, pred: Callable[[Thread], bool], gen: GenLike):
        self.pred, self.gen = pred, lift(gen)

    def next(self, ctx: Context) -> Result:
        return self.gen.next(ctx) if self.pred(ctx.thread) else None

    def update(self, ctx: Context, completion: Request) -> None:
        if self.pred(ctx.thread):
            self.gen.update(ctx, completion)


def is_nemesis(thread: Thread) -> bool:
    """The nemesis thread, or one of several (``"nemesis:<family>"``)."""
    return isinstance(thread, str) and (thread == NEMESIS_THREAD
                                        or thread.startswith(NEMESIS_THREAD + ":"))


def clients(gen: GenLike) -> Generator:
    """Only client workers get ops from ``gen``."""
    return OnThreads(lambda t: not is_nemesis(t), gen)


def nemesis(gen: GenLike) -> Generator:
    """Only the nemesis gets ops from ``gen``."""
    return OnThreads(lambda t: t == NEMESIS_THREAD, gen)


class Any(Generator):
    """The first of several generators with a request for this thread (e.g. clients+nemesis)."""

    def __init__(self, *gens: GenLike):
        self.gens = [lift(g) for g in gens]

    def next(self, ctx: Context) -> Result:
        pending: Pending | None = None
        for g in self.gens:
            r = g.next(ctx)
            if isinstance(r, dict):
                return r
            if isinstance(r, Pending):
                pending = r if pending is None else soonest(pending, r)
        return pending

    def update(self, ctx: Context, completion: Request) -> None:
        for g in self.gens:
            g.update(ctx, completion)


class EachThread(Generator):
    """Every thread gets its own fresh copy of the generator ``factory()`` builds."""

    def __init__(self, factory: Callable[[], GenLike]):
        self.factory = factory
        self.copies: dict[Thread, Generator] = {}

    def _copy(self, thread: Thread) -> Generator:
        if thread not in self.copies:
            self.copies[thread] = lift(self.factory())
        return self.copies[thread]

    def next(self, ctx: Context) -> Result:
        return self._copy(ctx.thread).next(ctx)

    def update(self, ctx: Context, completion: Request) -> None:
        self._copy(ctx.thread).update(ctx, completion)


class Phases(Generator):
    """Generators one after another; a phase starts only when every thread has finished the
    previous one (each thread asking and hearing "exhausted" means it is idle)."""

    def __init__(self, *gens: GenLike):
        self.gens = [lift(g) for g in gens]
        self.done: set[Thread] = set()

    def next(self, ctx: Context) -> Result:
        while self.gens:
            if ctx.thread in self.done:
                waiting = set(ctx.threads) - self.done
                if waiting:
                    return Pending(None)
                self.gens.pop(0)
                self.done.clear()
                continue
            r = self.gens[0].next(ctx)
            if r is not None:
                return r
            self.done.add(ctx.thread)
        return None

    def update(self, ctx: Context, completion: Request) -> None:
        if self.gens:
            self.gens[0].update(ctx, completion)


class FlipFlop(Generator):
    """Alternates between two generators: a, b, a, b... (fault, heal, fault, heal...)."""

    def __init__(self, a: GenLike, b: GenLike):
        self.gens = [lift(a), lift(b)]
        self.turn = 0

    def next(self, ctx: Context) -> Result:
        r = self.gens[self.turn].next(ctx)
        if isinstance(r, dict):
            self.turn ^= 1
        return r


class UntilOk(Generator):
    """Requests from ``gen`` until one of them completes ``ok`` (per thread), e.g. final reads."""

    def __init__(self, gen: GenLike):
        self.gen = lift(gen)
        self.satisfied = False
        self.in_flight: set[Thread] = set()

    def next(self, ctx: Context) -> Result:
        if self.satisfied:
            return None
        if self.in_flight:
            return Pending(None)
        r = self.gen.next(ctx)
        if isinstance(r, dict):
            self.in_flight.add(ctx.thread)
        return r

    def update(self, ctx: Context, completion: Request) -> None:
        self.in_flight.discard(ctx.thread)
        if completion.get("type") == "ok":
            self.satisfied = True
        self.gen.update(ctx, completion)


def thread_rng(seed: int, thread: Thread) -> random.Random:
    """The per-thread random stream: a function of the test seed and the thread only."""
    return random.Random(f"{seed}/{thread}")


@dataclass(order=True)
class _Event:
    time: float
    seq: int
    thread: Thread = field(compare=False)
    completion: Request | None = field(compare=False, default=None)


def simulate(
    gen: Generator,
    threads: Iterable[Thread],
    seed: int = 0,
    latency: Callable[[random.Random, Request], float] | None = None,
    max_ops: int = 100_000,
    max_time: float = 3600.0,
) -> list[tuple[float, Thread, Request]]:
    """Run ``gen`` on a simulated clock with no I/O; returns (time, thread, request) in order.

    Every op "completes" ``ok`` after ``latency(rng, op)`` seconds (default 1 ms). Bounded by
    ``max_ops`` and ``max_time``: a generator that would run forever shows up as hitting them.
    """
    ths = tuple(threads)
    rngs = {t: thread_rng(seed, t) for t in ths}
    lat = latency or (lambda rng, op: 0.001)
    queue: list[_Event] = []
    seq = 0
    for t in ths:
        heapq.heappush(queue, _Event(0.0, seq, t))
        seq += 1
    out: list[tuple[float, Thread, Request]] = []
    waiting: list[Thread] = []  # threads pending "until anything completes"
    while queue and len(out) < max_ops:
        ev = heapq.heappop(queue)
        if ev.time > max_time:
            break
        ctx = Context(ev.time, ev.thread, rngs[ev.thread], ths)
        if ev.completion is not None:
            gen.update(ctx, ev.completion)
            for w in waiting:  # a completion may unblock them
                heapq.heappush(queue, _Event(ev.time, seq, w))
                seq += 1
            waiting.clear()
        r = gen.next(ctx)
        if r is None:
            continue
        if isinstance(r, Pending):
            if r.until is None:
                waiting.append(ev.thread)
                if len(waiting) == len(ths):  # everyone waits on everyone: poll forward
                    for w in waiting:
                        heapq.heappush(queue, _Event(ev.time + 0.01, seq, w))
                        seq += 1
                    waiting.clear()
            else:
                heapq.heappush(queue, _Event(max(r.until, ev.time), seq, ev.thread))
                seq += 1
            continue
        out.append((ev.time, ev.thread, r))
        done = ev.time + lat(rngs[ev.thread], r)
        completion = dict(r, type="ok")
        heapq.heappush(queue, _Event(done, seq, ev.thread, completion))
        seq += 1
    return out
