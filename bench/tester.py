"""How many history ops per second the tester records: its own ceiling, and against raftnode.

    .venv/bin/python bench/tester.py [--seconds 10] [--clients 64] [--no-fleet]

1. memdb (the in-process fake answering instantly): the tester's own ceiling -- generator,
   workers, history writing -- with no network at all.
2. raftnode on a local 5-node fleet (root only; fleet "tsb" on 10.213.20.0/24), 64 clients,
   no nemesis, unlimited rate: the rate the tester records against a real database.

Prints completed ops/s (invoke+completion pairs) for each, and the ratio to the 5,000 ops/s
target. Each figure is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tester.memdb import FakeFleet, MemDB  # noqa: E402
from tester.runner import RunConfig, Runner  # noqa: E402

TARGET = 5000.0


def one_run(db, nodes, remotes, seconds: float, clients: int, store: str) -> float:
    cfg = RunConfig(name="bench", nemesis=[], time_limit=seconds, concurrency=clients, rate=0,
                    keys=64, ops_per_key=400, store=store, quiet=0.0, final_time=5.0,
                    op_timeout=2.0, check_timeout=30.0)
    runner = Runner(cfg, db, nodes, remotes)
    out = runner.run()
    ops = [op for op in runner.rec.ops if op.type != "invoke"
           and op.process != "nemesis" and not op.extra.get("final")]
    return len(ops) / out.results["timings"]["workload"]


def bench_memdb(seconds: float, clients: int, repeat: int) -> list[float]:
    rates = []
    for _ in range(repeat):
        fleet = FakeFleet(5)
        with tempfile.TemporaryDirectory() as store:
            rates.append(one_run(MemDB(fleet), fleet.nodes, fleet.remotes, seconds, clients,
                                 store))
    return rates


def bench_raftnode(seconds: float, clients: int, repeat: int) -> list[float]:
    from tester import fleet
    from tester.db import load_db

    name = "tsb"
    with fleet.session(name, nodes=5, subnet="10.213.20.0/24") as (_f, inv, remotes):
        rates = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as store:
                rates.append(one_run(load_db("raftnode"), inv.nodes, remotes, seconds, clients,
                                     store))
        return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-fleet", action="store_true", help="skip the raftnode measurement")
    a = ap.parse_args()
    t = time.monotonic()
    mem = bench_memdb(a.seconds, a.clients, a.repeat)
    m = statistics.median(mem)
    print(f"memdb (instant answers), {a.clients} clients: median {m:,.0f} ops/s "
          f"(runs {', '.join(f'{x:,.0f}' for x in mem)}); {m / TARGET:.2f}x the 5,000 ops/s target")
    if not a.no_fleet:
        rn = bench_raftnode(a.seconds, a.clients, a.repeat)
        r = statistics.median(rn)
        print(f"raftnode on a 5-node local fleet, {a.clients} clients: median {r:,.0f} ops/s "
              f"(runs {', '.join(f'{x:,.0f}' for x in rn)}); tester ceiling / raftnode = "
              f"{m / r:.1f}x")
    print(f"total {time.monotonic() - t:.0f} s")


if __name__ == "__main__":
    main()
