"""Simulator speed and bug-finding power.

Prints simulated seeds per second and client ops per second (200 ops a seed, the checker
included) for 3 and 5 nodes, on one process and on two, and the median number of seeds
``raftlab sim --unsafe NAME`` needs to catch each unsafe switch (over several disjoint seed
ranges). Each speed figure is the median of ``--repeat`` runs (the machine is shared: wall
clock swings, CPU per seed is the steadier figure). Usage:
``.venv/bin/python bench/sim.py [--seeds 200] [--repeat 3] [--samples 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from raftnode.types import UNSAFE_SWITCHES  # noqa: E402
from tester.sim.simulator import scan  # noqa: E402

TARGET_SEEDS_PER_S = 100.0


def speed(nodes: int, seeds: int, jobs: int) -> tuple[float, float, float]:
    t0, c0 = time.monotonic(), time.process_time()
    ops = sum(o for _s, _p, o in scan(range(seeds), nodes=nodes, jobs=jobs))
    wall = time.monotonic() - t0
    cpu = time.process_time() - c0
    return seeds / wall, ops / wall, cpu


def seeds_to_catch(switch: str, start: int, limit: int = 2000) -> int | None:
    for i, (_s, prop, _o) in enumerate(scan(range(start, start + limit),
                                            unsafe=frozenset({switch}), jobs=2)):
        if prop is not None:
            return i + 1
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200, help="seeds per speed measurement")
    ap.add_argument("--repeat", type=int, default=3, help="runs per speed figure (median)")
    ap.add_argument("--samples", type=int, default=5, help="seed ranges per unsafe switch")
    args = ap.parse_args()
    print(f"speed: {args.seeds} seeds x 200 client ops, checker included, median of "
          f"{args.repeat} run(s)")
    for nodes in (3, 5):
        for jobs in (1, 2):
            runs = [speed(nodes, args.seeds, jobs) for _ in range(max(1, args.repeat))]
            sps, ops, cpu = (statistics.median(r[i] for r in runs) for i in range(3))
            extra = f", {cpu / args.seeds * 1000:.1f} ms CPU/seed" if jobs == 1 else ""
            print(f"  {nodes} nodes, {jobs} process(es): {sps:7.1f} seeds/s  {ops:9.0f} ops/s"
                  f"  ({sps / TARGET_SEEDS_PER_S:.2f}x the {TARGET_SEEDS_PER_S:.0f} seeds/s "
                  f"target{extra})")
    print(f"seeds needed to catch each unsafe switch (3 nodes; {args.samples} disjoint ranges "
          "of 2000 seeds)")
    for sw in UNSAFE_SWITCHES:
        found = [seeds_to_catch(sw, k * 10_000) for k in range(args.samples)]
        got = [f for f in found if f is not None]
        med = statistics.median(got) if got else None
        print(f"  {sw:18s} median {med if med is not None else 'not caught':>6}  "
              f"samples {found}")


if __name__ == "__main__":
    main()
