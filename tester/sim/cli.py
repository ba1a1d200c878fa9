"""``raftlab sim``: run many seeded simulations, stop at the first violation, shrink it.

Exit codes: 0 every seed clean, 1 a violation found, 2 some seeds could not be run (their
workers died twice, or a seed ran past its time bound: named), 254 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from checker.history import write_jsonl
from checker.verdict import EXIT_BAD_INPUT, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID
from raftnode import accel
from raftnode.types import UNSAFE_SWITCHES
from tester.cluster import ClusterError, parse_address
from tester.sim.scan import IN_PROCESS_BELOW, SEED_BOUND, SeedRange, scan
from tester.sim.simulator import MIXED, SIM_WORKLOADS, SimResult, plan_for, run_plan
from tester.workloads import make

SIM_FS = {"registers": ("read", "write", "cas"), "append": ("read", "append"),
          "set": ("read", "add")}

TRACE_TAIL = 40  # trace lines shown for a violation


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sim",
        help="deterministic simulation: thousands of fault schedules against the Raft core",
        description="Run raftnode's Raft core under seeded simulated faults and check Raft's "
                    "invariants and linearizability. Seeds S..S+N-1 run in order; the first "
                    "violation is shrunk, printed with its trace and written out as a history.",
    )
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="how many seeds to run (default 1000, or 1 with --seed)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="first seed (default 0)")
    p.add_argument("--nodes", type=int, default=3, metavar="K", help="voters (3-7, default 3)")
    p.add_argument("--unsafe", action="append", default=[], metavar="NAME",
                   help=f"raftnode unsafe switch (repeatable): {', '.join(UNSAFE_SWITCHES)}")
    p.add_argument("--steps", type=int, default=200, metavar="M",
                   help="client operations per seed (default 200)")
    p.add_argument("--workload", default=MIXED, metavar="W",
                   help="what the clients do: registers (read/write/cas), append (lists: a "
                        "lost write stays visible), set (lost adds by name), or mixed (the "
                        "default: one of the three per seed, drawn from the seed)")
    p.add_argument("--out", default="reports/sim", metavar="DIR",
                   help="where a failing seed's history, trace and plan go (default reports/sim)")
    p.add_argument("--lease", action="store_true",
                   help="serve reads from the leader's lease, with clock faults kept inside "
                        "the documented drift bound")
    p.add_argument("--no-shrink", action="store_true", help="report the failing seed as is")
    p.add_argument("--trace", action="store_true",
                   help="print the whole trace of every seed (for replaying one seed)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                   help="worker processes of the local Dask cluster (default: one per CPU; "
                        "results stay in seed order)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the seed ranges on this Dask cluster's workers (tcp://HOST:PORT, "
                        "as raftlab cluster up prints; or local:N) instead of a local one")
    p.add_argument("--seed-timeout", type=float, default=SEED_BOUND, metavar="S",
                   help=f"seconds one seed may run before it is reported as stuck "
                        f"(default {SEED_BOUND:g})")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def _bad(msg: str) -> int:
    print(f"raftlab sim: error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    unknown = [u for u in args.unsafe if u not in UNSAFE_SWITCHES]
    if unknown:
        return _bad(f"--unsafe {unknown[0]!r} is not a switch; choose from "
                    f"{', '.join(UNSAFE_SWITCHES)}")
    n = args.seeds if args.seeds is not None else (1000 if args.seed is None else 1)
    args.seed = 0 if args.seed is None else args.seed
    if n < 1:
        return _bad(f"--seeds must be at least 1, got {n}")
    if args.seed < 0:
        return _bad(f"--seed must be >= 0, got {args.seed}")
    if not 3 <= args.nodes <= 7:
        return _bad(f"--nodes must be between 3 and 7, got {args.nodes}")
    if not 1 <= args.steps <= 100_000:
        return _bad(f"--steps must be between 1 and 100000, got {args.steps}")
    if not 1 <= args.jobs <= 64:
        return _bad(f"--jobs must be between 1 and 64, got {args.jobs}")
    if not args.seed_timeout > 0:
        return _bad(f"--seed-timeout must be positive, got {args.seed_timeout:g}")
    try:
        parse_address(args.cluster)
    except ClusterError as e:
        return _bad(str(e))
    from tester.workloads import ALIASES

    args.workload = ALIASES.get(args.workload, args.workload)
    if args.workload not in (*SIM_WORKLOADS, MIXED):
        return _bad(f"--workload {args.workload!r}: the simulator runs "
                    f"{', '.join(SIM_WORKLOADS)} or {MIXED}")
    unsafe = frozenset(args.unsafe)
    t0 = time.monotonic()
    last_progress = t0
    used, why = accel.status()
    build = "compiled" if used else f"interpreted, {why}: raftlab compile doubles the speed"
    ops = 0
    seeds = range(args.seed, args.seed + n)
    jobs = 1 if args.trace else args.jobs
    lost: list[tuple[SeedRange, str]] = []

    def note(msg: str) -> None:
        if not args.quiet:
            print(f"\r{msg}", file=sys.stderr, flush=True)

    def on_lost(r: SeedRange, why: str) -> None:
        lost.append((r, why))
        print(f"\r{r} not run: {why}", file=sys.stderr, flush=True)

    where = args.cluster or (f"{jobs} local processes" if jobs > 1 and n >= IN_PROCESS_BELOW
                             else "this process")
    runs = scan(seeds, args.nodes, args.steps, unsafe, jobs, args.lease, args.workload,
                cluster=None if args.trace else args.cluster, bound=args.seed_timeout,
                on_lost=on_lost, note=note)
    found: tuple[SimResult, int] | None = None
    i = -1
    try:
        for i, (seed, prop, seed_ops) in enumerate(runs):
            ops += seed_ops
            if args.trace or prop is not None:
                result = run_plan(plan_for(seed, args.nodes, args.steps, unsafe, args.lease,
                                           args.workload))
                if args.trace:
                    sys.stdout.write(result.trace_text())
                if result.violation is not None:
                    found = (result, i + 1)
                    break
            now = time.monotonic()
            if not args.quiet and (now - last_progress > 1.0 or i + 1 == n):
                last_progress = now
                rate = (i + 1) / max(now - t0, 1e-9)
                print(f"\rseeds {i + 1}/{n} clean ({rate:.1f} seeds/s, {ops} ops, {build}, "
                      f"{where})", end="", file=sys.stderr, flush=True)
    except ClusterError as e:  # the cluster could not be reached: nothing was run
        print(file=sys.stderr)
        return _bad(str(e))
    finally:
        runs.close()  # stop the workers before shrinking
    if found is not None:
        if not args.quiet:
            print(file=sys.stderr)
        try:
            return _report(args, found[0], found[1], time.monotonic() - t0)
        except BrokenPipeError:  # e.g. piped into head: the verdict still stands
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_INVALID
    if not args.quiet:
        print(file=sys.stderr)
    if lost:
        spans: list[list[int]] = []
        for r, _ in sorted(lost, key=lambda x: x[0].start):
            if spans and spans[-1][1] == r.start:
                spans[-1][1] = r.stop
            else:
                spans.append([r.start, r.stop])
        missing = sum(b - a for a, b in spans)
        print(f"UNKNOWN: {i + 1} seeds clean, {missing} not run (seeds "
              f"{', '.join(f'{a}..{b - 1}' for a, b in spans)}): {lost[0][1]}")
        return EXIT_UNKNOWN
    print(f"{n} seeds clean (seeds {args.seed}..{args.seed + n - 1}, {args.nodes} nodes, "
          f"{args.steps} ops each, workload {args.workload}"
          f"{', lease reads' if args.lease else ''}"
          f"{', unsafe ' + ','.join(sorted(unsafe)) if unsafe else ''})")
    return EXIT_VALID


def write_run(root: str, result: SimResult) -> Path:
    """Store a failing seed as a run folder (``reports/<test>/<stamp>/``) the checker and the
    report read: history, results with the checker's verdict, node logs, trace and plan."""
    from tester.store import RunStore

    plan, v = result.plan, result.violation
    store = RunStore(root, f"seed-{plan.seed}")
    started = store.started
    write_jsonl(result.history, store.history)
    nodes = sorted({n for _t, n, _e in result.node_log})
    workload = make(plan.workload, plan.keys, None)
    store.write_test({"test": "sim", "seed": plan.seed, "start_time": started,
                      "nodes": nodes, "db": "raftnode (simulated)", "model": workload.model,
                      "workload": f"{plan.workload}: {'/'.join(SIM_FS[plan.workload])} over "
                                  f"{plan.keys} keys",
                      "nemesis": ",".join(sorted({f.kind for f in plan.faults})) or "none",
                      "plan": plan.to_dict(), "time_unit": "simulated ms"})
    res = workload.check(result.history, timeout=60)
    store.write_results({
        "valid": False if v is not None else res.valid,
        "checker": res.to_dict(),
        "violation": {"property": v.prop, "message": v.message} if v is not None else None,
        "stats": dict(result.stats), "perf": {},
    })
    for n in nodes:
        lines = [json.dumps({"ts": started + t / 1000.0, "node": node, **ev})
                 for t, node, ev in result.node_log if node == n]
        (store.node_dir(n) / "raftnode.log").write_text("\n".join(lines) + "\n")
    (store.path / "trace.txt").write_text(result.trace_text())
    (store.path / "plan.json").write_text(json.dumps(plan.to_dict(), indent=2) + "\n")
    store.write_report()
    return store.path


def _report(args: argparse.Namespace, result: SimResult, tried: int, took: float) -> int:
    """Shrink the failure, store it as a run folder, then print what was found."""
    v = result.violation
    assert v is not None
    first = result
    shrunk_note = ""
    if not args.no_shrink:
        from tester.sim.shrink import shrink

        def progress(msg: str) -> None:
            if not args.quiet:
                print(f"\r{msg}    ", end="", file=sys.stderr, flush=True)

        small, sr, runs = shrink(result.plan, v.prop, progress=progress)
        if not args.quiet:
            print(file=sys.stderr)
        shrunk_note = (f"shrunk in {runs} runs: {len(result.plan.faults)} -> "
                       f"{len(small.faults)} faults, {result.plan.ops} -> {small.ops} ops")
        if sr.violation is not None:
            shrunk_note += f"\n  shrunk: {sr.violation.message}"
        result = sr
    plan = result.plan
    out = write_run(args.out, result)  # first, so a broken pipe cannot lose it
    print(f"VIOLATION at seed {plan.seed} after {tried} seed(s) in {took:.1f}s: {v.prop}")
    print(f"  {first.violation.message if first.violation else ''}")
    if shrunk_note:
        print(shrunk_note)
    print("faults:")
    for f in plan.faults:
        print("  " + f.describe())
    print(f"trace (last {TRACE_TAIL} lines):")
    for line in result.trace[-TRACE_TAIL:]:
        print("  " + line)
    model = make(plan.workload, plan.keys, None).model
    print(f"run:     {out}  (history.jsonl: raftlab check --model {model}; raftlab report)")
    print(f"replay:  raftlab sim --seed {plan.seed} --seeds 1 --nodes {args.nodes} "
          f"--steps {args.steps}" + (" --lease" if args.lease else "")
          + f" --workload {plan.workload}"
          + "".join(f" --unsafe {u}" for u in sorted(plan.unsafe)))
    return EXIT_INVALID
