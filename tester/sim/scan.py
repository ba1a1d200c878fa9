"""Many seeds, reported in order, run as seed ranges on a Dask cluster's workers: what
``raftlab sim``, the campaign, the tests and the bench run.

Kept out of the compiled simulator modules (``raftnode/accel.py``): it is process plumbing,
not hot, and a generator's clean-up (closing the cluster when the caller stops early) must
run as Python runs it. The fan-out itself, its retries and its time bound are
``tester.cluster``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tester.cluster import ClusterError, Lost, Stuck, bounded_map, connect, fan_out, workers
from tester.sim.simulator import plan_for, run_plan

#: seconds one seed may run before it is reported as stuck (a healthy seed takes ~10 ms of
#: CPU; the simulator bounds its events, so only a bug in the harness gets near this)
SEED_BOUND = 60.0
#: how many seeds a task runs at most: small enough that progress streams, a lost worker costs
#: little and a stop waits little (a running task is not interrupted), large enough that the
#: scheduler's ~1-2 ms a task is noise (a seed is ~5-10 ms)
MAX_RANGE = 25

#: fewer seeds than this run in this process unless a cluster is named: starting a local
#: cluster and its workers costs ~1-3 s on this 2-core machine, what ~250 seeds gain from a
#: second process (docs/sim.md)
IN_PROCESS_BELOW = 250

Seed = tuple[int, "str | None", int]


@dataclass(frozen=True)
class SeedRange:
    """One task: seeds ``start..stop-1`` of one simulation configuration."""

    start: int
    stop: int
    nodes: int
    ops: int
    unsafe: frozenset[str]
    lease: bool
    workload: str
    bound: float

    def __str__(self) -> str:
        return f"seeds {self.start}..{self.stop - 1}"


def _run_one(args: tuple[int, SeedRange]) -> Seed:
    seed, r = args
    res = run_plan(plan_for(seed, r.nodes, r.ops, r.unsafe, r.lease, r.workload))
    return seed, (res.violation.prop if res.violation else None), res.stats.get("ops", 0)


def run_range(r: SeedRange) -> list[Seed]:
    """Run one seed range (on a worker), each seed within the time bound."""
    return bounded_map(_run_one, [(s, r) for s in range(r.start, r.stop)], r.bound,
                       describe=lambda a: f"seed {a[0]}")


def scan(seeds: range, nodes: int = 3, ops: int = 200, unsafe: frozenset[str] = frozenset(),
         jobs: int = 1, lease: bool = False, workload: str = "registers", *,
         cluster: str | None = None, bound: float = SEED_BOUND,
         on_lost: Callable[[SeedRange, str], None] | None = None,
         note: Callable[[str], None] = lambda s: None) -> Iterator[Seed]:
    """Yield (seed, violated property or None, ops) in seed order.

    ``cluster`` is a scheduler's address (``tcp://host:port``) or ``local:N``; without it,
    ``jobs`` > 1 uses this process's local cluster of that many workers (started on first
    use), and ``jobs`` = 1 or fewer than ``IN_PROCESS_BELOW`` seeds run here. A
    range no worker could finish is skipped and handed to ``on_lost`` (without it: raised as
    a ClusterError naming the seeds).
    """
    def lost(r: SeedRange, why: str) -> None:
        if on_lost is None:
            raise ClusterError(f"{r}: {why}")
        on_lost(r, why)

    def ranges(size: int, ramp: int = 1) -> list[SeedRange]:
        """Seed ranges of ``size``; the first ones small (1, 2, 4, ... seeds, ``ramp`` of each
        size) so an early violation is reported, and the others cancelled, at once."""
        out: list[SeedRange] = []
        s = seeds.start
        while s < seeds.stop:
            k = min(size, 1 << (len(out) // ramp))
            out.append(SeedRange(s, min(s + k, seeds.stop), nodes, ops, frozenset(unsafe),
                                 lease, workload, bound))
            s += k
        return out

    if cluster is None and (jobs <= 1 or len(seeds) < IN_PROCESS_BELOW):
        for r in ranges(MAX_RANGE):
            try:
                yield from run_range(r)
            except Exception as e:  # Stuck, or a simulator crash: named, not a traceback
                lost(r, str(e) if isinstance(e, Stuck) else f"{type(e).__name__}: {e}")
        return
    with connect(cluster, None if cluster else jobs) as client:
        n = max(1, len(workers(client)))
        work = ranges(max(1, min(MAX_RANGE, len(seeds) // (n * 8))), ramp=n)
        done: dict[int, list[Seed] | Lost] = {}
        nxt = 0
        for i, res in fan_out(client, run_range, work, note=note):
            done[i] = res
            while nxt in done:
                got = done.pop(nxt)
                if isinstance(got, Lost):
                    lost(work[nxt], got.reason)
                else:
                    yield from got
                nxt += 1
