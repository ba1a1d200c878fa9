"""When faults start and stop: three schedules.

* ``hunt`` (the default): every enabled family runs its own loop on its own nemesis thread
  (``nemesis:<family>``), starting and stopping its fault after random holds and gaps drawn
  from the swarm's ranges, so faults of different families overlap; a flapping partition
  switches faster than an election timeout. Each loop is bounded by ``MAX_ACTIONS`` and, in
  the runner, by the time limit.
* ``interval``: one action every ``--nemesis-interval`` seconds on one thread: a family chosen
  at random starts its fault or, if it is active, stops it.
* ``together``: every family starts back to back, and an interval later they all stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tester import generator as g

#: no loop acts more often than this in one run, whatever its timings
MAX_ACTIONS = 5000


def thread_of(family: str) -> str:
    """The nemesis thread a hunting family's loop runs on."""
    return f"{g.NEMESIS_THREAD}:{family}"


def _req(action: str, name: str) -> g.Fn:
    return g.Fn(lambda ctx: {"f": f"{action}-{name}", "value": None})


def interval(names: list[str], every: float) -> g.Generator:
    """Every ``every`` seconds one action: each family alternates start and stop."""
    flips = [g.FlipFlop(_req("start", n), _req("stop", n)) for n in names]
    return g.nemesis(g.Delay(every, g.Mix(flips)))


class Together(g.Generator):
    """Every ``interval``: all the start requests back to back, then (next time) all stops."""

    def __init__(self, interval: float, starts: list[dict[str, Any]],
                 stops: list[dict[str, Any]]):
        self.interval, self.batches = interval, [starts, stops]
        self.turn, self.queue = 0, []
        self.next_time: float | None = None

    def next(self, ctx: g.Context) -> g.Result:
        if self.queue:
            return dict(self.queue.pop(0))
        if self.next_time is None:
            self.next_time = ctx.time + self.interval
        if ctx.time < self.next_time:
            return g.Pending(self.next_time)
        self.next_time += self.interval
        self.queue = list(self.batches[self.turn])
        self.turn ^= 1
        return dict(self.queue.pop(0))


def together(names: list[str], every: float, gap: float) -> g.Generator:
    """Start every family (``gap`` seconds apart, in order), stop them all ``every`` later."""
    starts = [{"f": f"start-{n}", "value": None, "delay_s": gap if i else 0.0}
              for i, n in enumerate(names)]
    stops = [{"f": f"stop-{n}", "value": None} for n in reversed(names)]
    return g.nemesis(Together(every, starts, stops))


def _uniform(ctx: g.Context, span: list[float]) -> float:
    return ctx.rng.uniform(float(span[0]), float(span[1]))


class HuntLoop(g.Generator):
    """One family's start/stop loop on its own thread, with random holds and gaps.

    The first start comes after a random part of a gap (loops do not fire in step). With
    ``burst_s``/``rest_s`` the loop works in bursts: start/stop as fast as ``hold_s``/``gap_s``
    say for a burst, then one long rest. ``alive()`` false ends the loop (a family found
    unsupported during the run is never picked again); so does ``MAX_ACTIONS``. ``limit``
    seconds after its first ask the loop stops its fault if it is in force, and ends: left to
    the final heal, a majority killed at the end would keep a membership change in flight
    from completing, and the heal waits for that change.
    """

    def __init__(self, family: str, params: dict[str, Any], alive: Callable[[], bool],
                 limit: float | None = None):
        self.family, self.thread, self.alive = family, thread_of(family), alive
        self.limit, self.deadline = limit, None
        self.hold, self.gap = params["hold_s"], params["gap_s"]
        self.burst, self.rest = params.get("burst_s"), params.get("rest_s")
        self.starting, self.count = True, 0
        self.next_time: float | None = None
        self.burst_until: float | None = None

    def next(self, ctx: g.Context) -> g.Result:
        if ctx.thread != self.thread or self.count >= MAX_ACTIONS or not self.alive():
            return None
        if self.next_time is None:
            self.next_time = ctx.time + ctx.rng.uniform(0.0, float(self.gap[1]))
            if self.limit is not None:
                self.deadline = ctx.time + self.limit
        if self.deadline is not None and ctx.time >= self.deadline:
            if self.starting:  # nothing in force: done
                return None
            self.count = MAX_ACTIONS  # the last action: stop what is in force
            return {"f": f"stop-{self.family}", "value": None}
        if ctx.time < self.next_time:
            wake = self.next_time if self.deadline is None else min(self.next_time,
                                                                     self.deadline)
            return g.Pending(wake)
        self.count += 1
        action = "start" if self.starting else "stop"
        return {"f": f"{action}-{self.family}", "value": None}

    def update(self, ctx: g.Context, completion: g.Request) -> None:
        if ctx.thread != self.thread:
            return
        if self.starting:
            wait = _uniform(ctx, self.hold)
        elif self.burst is not None and self.rest is not None and (
                self.burst_until is None or ctx.time >= self.burst_until):
            wait = _uniform(ctx, self.rest) if self.burst_until is not None else 0.0
            self.burst_until = ctx.time + wait + _uniform(ctx, self.burst)
            wait = wait or _uniform(ctx, self.gap)
        else:
            wait = _uniform(ctx, self.gap)
        self.starting = not self.starting
        self.next_time = ctx.time + wait


def hunt(plan: dict[str, dict[str, Any]], alive: Callable[[str], bool],
         limit: float | None = None) -> g.Generator:
    """Every planned family's loop side by side, each on its own thread, each ending
    ``limit`` seconds after it began with its fault stopped."""
    loops = [HuntLoop(n, fam, (lambda n=n: alive(n)), limit) for n, fam in plan.items()]
    return g.Any(*loops) if loops else g.Seq()
