"""Simulator speed and bug-finding power.

Prints simulated seeds per second and client ops per second (200 ops a seed, the checker
included) for 3 and 5 nodes, on one process and on two, for the interpreted sources and for
the compiled modules (``raftlab compile``) side by side: each figure is the median of
``--repeat`` runs, the two builds alternating run by run, every run in a fresh process (the
machine is shared: wall clock swings, CPU per seed is the steadier figure). Then the median
number of seeds ``raftlab sim --unsafe NAME`` needs to catch each unsafe switch, over several
disjoint seed ranges. Usage: ``.venv/bin/python bench/sim.py [--seeds 200] [--repeat 3]
[--samples 5] [--workload registers|append|set]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raftnode import accel  # noqa: E402
from raftnode.types import UNSAFE_SWITCHES  # noqa: E402
from tester.sim.scan import scan  # noqa: E402

TARGET_SEEDS_PER_S = 100.0

_RUN = """
import json, sys, time
from raftnode import accel
from tester.sim.scan import scan
seeds, nodes, jobs = (int(a) for a in sys.argv[1:4])
t0, c0 = time.monotonic(), time.process_time()
ops = sum(o for _s, _p, o in scan(range(seeds), nodes=nodes, jobs=jobs, workload=sys.argv[4]))
wall, cpu = time.monotonic() - t0, time.process_time() - c0
print(json.dumps({"sps": seeds / wall, "ops": ops / wall, "cpu_ms": cpu / seeds * 1000,
                  "compiled": accel.status()[0]}))
"""


def speed(pure: bool, nodes: int, seeds: int, jobs: int, workload: str = "registers"
          ) -> dict[str, float]:
    """One run in a fresh process (the build is chosen at import time)."""
    env = {k: v for k, v in os.environ.items() if k != "RAFTLAB_PURE"}
    if pure:
        env["RAFTLAB_PURE"] = "1"
    out = subprocess.run([sys.executable, "-c", _RUN, str(seeds), str(nodes), str(jobs), workload],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["compiled"] is not pure, "the run did not use the build it was meant to"
    return result


def seeds_to_catch(switch: str, start: int, limit: int = 2000, workload: str = "registers"
                   ) -> int | None:
    for i, (_s, prop, _o) in enumerate(scan(range(start, start + limit),
                                            unsafe=frozenset({switch}), jobs=2,
                                            workload=workload)):
        if prop is not None:
            return i + 1
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200, help="seeds per speed measurement")
    ap.add_argument("--repeat", type=int, default=3, help="runs per speed figure (median)")
    ap.add_argument("--samples", type=int, default=5, help="seed ranges per unsafe switch")
    ap.add_argument("--workload", default="registers", choices=("registers", "append", "set"),
                    help="what the simulated clients do (default registers)")
    args = ap.parse_args()
    compiled, why = accel.status()
    builds = [("interpreted", True)] + ([("compiled", False)] if compiled else [])
    print(f"speed: {args.seeds} seeds x 200 client ops ({args.workload}), checker included, "
          f"median of {args.repeat} run(s); compiled modules: {why}")
    for nodes in (3, 5):
        for jobs in (1, 2):
            runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in builds}
            for _ in range(max(1, args.repeat)):
                for name, pure in builds:
                    runs[name].append(speed(pure, nodes, args.seeds, jobs, args.workload))
            base = None
            for name, _ in builds:
                sps, ops, cpu = (statistics.median(r[k] for r in runs[name])
                                 for k in ("sps", "ops", "cpu_ms"))
                base = base or cpu
                extra = f", {cpu:.1f} ms CPU/seed" if jobs == 1 else ""
                vs = (f", CPU x{cpu / base:.2f} of interpreted"
                      if name != "interpreted" and jobs == 1 else "")
                print(f"  {nodes} nodes, {jobs} process(es), {name:11s}: {sps:6.1f} seeds/s "
                      f"{ops:8.0f} ops/s  ({sps / TARGET_SEEDS_PER_S:.2f}x the "
                      f"{TARGET_SEEDS_PER_S:.0f} seeds/s target{extra}{vs})")
    print(f"seeds needed to catch each unsafe switch (3 nodes; {args.samples} disjoint ranges "
          f"of 2000 seeds; {'compiled' if compiled else 'interpreted'})")
    for sw in UNSAFE_SWITCHES:
        found = [seeds_to_catch(sw, k * 10_000, workload=args.workload)
                 for k in range(args.samples)]
        got = [f for f in found if f is not None]
        med = statistics.median(got) if got else None
        print(f"  {sw:18s} median {med if med is not None else 'not caught':>6}  "
              f"samples {found}")


if __name__ == "__main__":
    main()
