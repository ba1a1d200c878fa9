"""Simulator speed and bug-finding power.

Prints simulated seeds per second and client ops per second (200 ops a seed, the checker
included) for 3 and 5 nodes, on one process and on two, for the interpreted sources and for
the compiled modules (``raftlab compile``) side by side: each figure is the median of
``--repeat`` runs, the two builds alternating run by run, every run in a fresh process (the
machine is shared: wall clock swings, CPU per seed is the steadier figure). Then the median
number of seeds ``raftlab sim --unsafe NAME`` needs to catch each unsafe switch, over several
disjoint seed ranges. Usage: ``.venv/bin/python bench/sim.py [--seeds 200] [--repeat 3]
[--samples 5] [--workload registers|append|set]``.

``--cluster`` measures the Dask fan-out instead (docs/sim.md, "On a cluster"): seeds/s on a
local cluster of 1 and of 2 workers, side by side (start-up excluded: each run connects and
warms its workers first), and the wall time of a campaign of 4 short real runs, serial on one
fleet against ``--cluster local:2``, each worker on a fleet of its own that it keeps across its
runs (needs root; fleets dk3 and rlc*).
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


_CLUSTER_RUN = """
import json, sys, time
from tester.cluster import connect, workers
from tester.sim.scan import run_range, scan, SeedRange
if __name__ == "__main__":
    seeds, n = int(sys.argv[1]), int(sys.argv[2])
    with connect(f"local:{n}") as client:
        client.wait_for_workers(n, timeout=60)
        for w in workers(client):  # imports and compiled modules loaded: not timed
            client.submit(run_range, SeedRange(0, 1, 3, 200, frozenset(), False, "mixed", 60),
                          workers=[w], pure=False).result()
        c0 = sum(client.run(time.process_time).values())
        t0 = time.monotonic()
        done = sum(1 for _ in scan(range(1000, 1000 + seeds), cluster=client.scheduler.address,
                                   workload="mixed"))
        wall = time.monotonic() - t0
        cpu = sum(client.run(time.process_time).values()) - c0
    print(json.dumps({"sps": done / wall, "cpu_ms": cpu / done * 1000,
                      "busy": cpu / (wall * n)}))
"""


def cluster_speed(workers: int, seeds: int) -> dict[str, float]:
    """Seeds/s on a fresh local cluster of ``workers`` processes, start-up excluded; the
    workers' CPU per seed, and how much of the wall time each worker got a core ("busy")."""
    out = subprocess.run([sys.executable, "-c", _CLUSTER_RUN, str(seeds), str(workers)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


CAMPAIGN = """name: bench-{mode}
store: {store}
dbs: [raftnode]
workloads: [registers]
nemeses: [partition]
seeds: [1, 2, 3, 4]
fleet_nodes: 3
settings:
  fleet: dk3
  time_limit: 5
"""


def campaign_seconds(cluster: str | None, tmp: Path) -> float:
    """Wall time of the 4-run campaign, serial on fleet dk3 or on ``cluster``."""
    import time

    mode = "serial" if cluster is None else "cluster"
    f = tmp / f"{mode}.yml"
    f.write_text(CAMPAIGN.format(mode=mode, store=tmp / "store"))
    argv = [sys.executable, "-m", "tester.cli", "campaign", str(f)]
    argv += ["--cluster", cluster] if cluster else []
    t0 = time.monotonic()
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    took = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"campaign ({mode}) exited {r.returncode}: {r.stderr[-2000:]}")
    return took


def bench_cluster(seeds: int, repeat: int, campaigns: int) -> None:
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores shared with other work)")
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(max(1, repeat)):
        for n in (1, 2):
            runs[n].append(cluster_speed(n, seeds))
    med = {n: {k: statistics.median(r[k] for r in runs[n]) for k in ("sps", "cpu_ms", "busy")}
           for n in runs}
    print(f"sim on a local Dask cluster, {seeds} seeds (mixed), median of {repeat}:")
    for n in (1, 2):
        m = med[n]
        print(f"  {n} worker(s): {m['sps']:6.1f} seeds/s  samples "
              f"{[round(r['sps'], 1) for r in runs[n]]}; {m['cpu_ms']:.1f} ms CPU a seed; "
              f"each worker on a core {m['busy']:.0%} of the time")
    print(f"  ratio {med[2]['sps'] / med[1]['sps']:.2f}x (target >= 1.8x); CPU a seed "
          f"x{med[2]['cpu_ms'] / med[1]['cpu_ms']:.2f} with 2 workers (the fan-out's cost)")
    if campaigns < 1:
        return
    import tempfile

    from tester import fleet

    times: dict[str, list[float]] = {"serial": [], "cluster": []}
    with tempfile.TemporaryDirectory(prefix="raftlab-bench-") as tmp, \
            fleet.session("dk3", nodes=3, subnet="10.213.72.0/24"):
        for _ in range(campaigns):
            times["serial"].append(campaign_seconds(None, Path(tmp)))
            times["cluster"].append(campaign_seconds("local:2", Path(tmp)))
    s, c = statistics.median(times["serial"]), statistics.median(times["cluster"])
    print(f"campaign of 4 short real runs (raftnode, partition, 5 s, 3 nodes), median of "
          f"{campaigns}:")
    print(f"  serial on one fleet     : {s:5.1f} s  samples {[round(x, 1) for x in times['serial']]}")
    print(f"  2 workers, own fleets   : {c:5.1f} s  samples {[round(x, 1) for x in times['cluster']]}")
    print(f"  ratio {c / s:.0%} of serial (target <= 60 %)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


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
    ap.add_argument("--cluster", action="store_true",
                    help="measure the Dask fan-out: 1 vs 2 local workers, and a campaign")
    ap.add_argument("--campaigns", type=int, default=1,
                    help="with --cluster: campaign pairs to time (0: none)")
    args = ap.parse_args()
    if args.cluster:
        bench_cluster(args.seeds, args.repeat, args.campaigns)
        return
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
