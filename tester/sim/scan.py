"""Many seeds, in order, on worker processes: what ``raftlab sim``, the tests and the bench run.

Kept out of the compiled simulator modules (``raftnode/accel.py``): it is process plumbing,
not hot, and a generator's clean-up (stopping the worker pool when the caller stops early)
must run as Python runs it.
"""

from __future__ import annotations

from collections.abc import Iterator

from tester.sim.simulator import plan_for, run_plan


def _run_one(args: tuple[int, int, int, frozenset[str], bool, str]
             ) -> tuple[int, str | None, int]:
    seed, nodes, ops, unsafe, lease, workload = args
    r = run_plan(plan_for(seed, nodes, ops, unsafe, lease, workload))
    return seed, (r.violation.prop if r.violation else None), r.stats.get("ops", 0)


def scan(seeds: range, nodes: int = 3, ops: int = 200, unsafe: frozenset[str] = frozenset(),
         jobs: int = 1, lease: bool = False, workload: str = "registers"
         ) -> Iterator[tuple[int, str | None, int]]:
    """Yield (seed, violated property or None, ops) in seed order, on ``jobs`` processes."""
    work = [(s, nodes, ops, frozenset(unsafe), lease, workload) for s in seeds]
    if jobs <= 1:
        yield from map(_run_one, work)
        return
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        yield from pool.imap(_run_one, work, chunksize=4)
