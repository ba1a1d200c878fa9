"""Does raftlab catch every unsafe switch, and how fast? Each switch x N seeds on a local fleet.

    .venv/bin/python bench/detection.py [--seeds 5] [--time-limit 12] [--switch NAME ...]

Each run deploys raftnode with one unsafe switch on a fresh 5-node local fleet ("tsd",
10.213.20.0/24; root only) and runs the nemesis that should expose it. Prints, per switch, how
many runs were caught (verdict invalid) and the median time to detection: the time since the
test began at which the first non-linearizable operation completed. With --safe, the same
schedules run against the safe build: "caught" then counts false alarms (should be 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from raftnode.types import UNSAFE_SWITCHES  # noqa: E402
from tester.runner import RunConfig, Runner  # noqa: E402

#: every run's settings unless the switch's entry in EXPOSERS says otherwise
BASE: dict[str, Any] = {"rate": 200, "keys": 8, "op_timeout": 1.0, "quiet": 1.0,
                        "nemesis_interval": 2.0, "concurrency": 10}

#: the fault that should expose each switch (see docs/raftnode.md, "Unsafe switches")
EXPOSERS: dict[str, dict[str, Any]] = {
    "local-reads": {"nemesis": ["partition"]},
    "lease-no-drift": {
        "nemesis": ["partition", "clock"], "nemesis_interval": 4.0, "concurrency": 20,
        "nemesis_opts": {"schedule": "together", "targets": ["leader"],
                         "partitions": ["leader"], "clock_kinds": ["bump"],
                         "clock_offsets_ms": [-6000]},
        "db": {"election_timeout_ms": "1000-2000", "heartbeat_ms": 100, "faketime_cache": 0},
    },
    "ack-before-sync": {"nemesis": ["kill"], "nemesis_opts": {"targets": ["all"]}},
    # a leader change every second on one hot key: a new leader without its no-op serves a
    # read before it learns that the old leader's last acknowledged write was committed
    "commit-old-terms": {"nemesis": ["partition"], "nemesis_interval": 0.3, "concurrency": 30,
                         "rate": 500, "keys": 1, "nemesis_opts": {"partitions": ["leader"]}},
    "volatile-vote": {"nemesis": ["kill"], "nemesis_opts": {"targets": ["all"]}},
    "no-sessions": {"nemesis": ["partition", "loss"], "nemesis_interval": 1.0, "concurrency": 20},
}


def detection_time(results: dict[str, Any], start_time: float) -> float | None:
    """Seconds since the start at which the first non-linearizable op completed (or, for a
    node-event violation, the node event that showed it: node wall clock)."""
    best = None
    for p in results["checker"].get("partitions") or []:
        v = p.get("violation")
        if p.get("valid") is not False or not v:
            continue
        op = next((o for o in v["operations"] if o["id"] == v["op"]), None)
        if op is None:
            continue
        t = (op.get("complete") or op["invoke"])["time"] / 1e9
        best = t if best is None else min(best, t)
    for v in (results.get("node_events") or {}).get("violations") or []:
        t = v["at"] - start_time  # node wall clock vs the test's start wall time
        best = t if best is None else min(best, t)
    return best


def main() -> None:
    from tester import control, fleet, inventory
    from tester.db import load_db

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=12.0)
    ap.add_argument("--switch", action="append", choices=UNSAFE_SWITCHES)
    ap.add_argument("--safe", action="store_true",
                    help="control runs: each switch's fault schedule against the safe build "
                         "(every run should be valid)")
    a = ap.parse_args()
    switches = a.switch or list(UNSAFE_SWITCHES)
    name = "tsd"
    fleet.down(name)
    remotes: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        f = fleet.up(name, nodes=5, subnet="10.213.20.0/24")
        inv = inventory.load(f.inventory)
        remotes = control.connect(inv.nodes, inv.known_hosts)
        title = "schedule (safe build)" if a.safe else "switch"
        print(f"{title:18} {'caught':>7} {'median detection':>17}  per seed")
        for sw in switches:
            spec = dict(EXPOSERS[sw])
            db_kw = spec.pop("db", {})
            caught, times, marks = 0, [], []
            for seed in range(1, a.seeds + 1):
                with tempfile.TemporaryDirectory() as store:
                    run = {**BASE, "time_limit": a.time_limit, **spec}
                    cfg = RunConfig(name=sw, unsafe=[] if a.safe else [sw], seed=seed,
                                    store=store, **run)
                    out = Runner(cfg, load_db("raftnode", **db_kw), inv.nodes, remotes).run()
                    start = json.loads((out.run_dir / "test.json").read_text())["start_time"]
                if out.valid is False:
                    caught += 1
                    dt = detection_time(out.results, start)
                    if dt is not None:
                        times.append(dt)
                    marks.append(f"{dt:.1f}s" if dt is not None else "yes")
                else:
                    marks.append(str(out.valid).lower())
            med = f"{statistics.median(times):.1f} s" if times else "-"
            print(f"{sw:18} {caught:>3}/{a.seeds:<3} {med:>17}  {' '.join(marks)}", flush=True)
    finally:
        control.close_all(remotes)
        fleet.down(name)
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
