"""Checker speed against Porcupine's reference times, and a large generated history.

    .venv/bin/python bench/checker.py [--repeat 3] [--ops 100000] [--skip-large]

Suites (Porcupine's own test data, read in place from ../shared/peer-histories/porcupine):
etcd (102 Jepsen etcd logs, cas-register, initial null), kv partitioned and kv unpartitioned
(6 logs, kv, every key initially ""; unpartitioned: the 1- and 10-client logs, as in
Porcupine's own benchmark). Each suite is timed in two modes:

* ``porcupine`` -- what Porcupine's benchmark measures: the verdict only (no explanation),
  stopping at the first invalid partition (Porcupine's CheckEvents does that);
* ``full`` -- raftlab's default: every partition searched, violations explained with
  per-op partial linearizations.

Times are parse-excluded medians of ``--repeat`` runs, wall clock and CPU time of this
process (the machine may be shared: CPU time is the steadier figure; the parallel check of
the large history also uses worker processes); the ratio is ours / Porcupine's
(Go 1.19 on a 2-vCPU machine: etcd 0.58 s, kv partitioned 0.18 s, kv unpartitioned 5.3 s).
Then a generated linearizable kv history (read/write/cas, 1,000 keys, 50 processes, some
crashed ops) is checked: target under 60 s and 2 GB peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker import check, load_model  # noqa: E402
from checker.formats import load  # noqa: E402
from checker.history import Op  # noqa: E402
from checker.models import KV  # noqa: E402

PEER = ROOT.parent / "shared" / "peer-histories" / "porcupine"
REFERENCE = {"etcd": 0.58, "kv partitioned": 0.18, "kv unpartitioned": 5.3}
# single histories Porcupine's benchmark names: (file, partitioned, seconds)
NOTABLE = [("jepsen/etcd_002.log", True, 0.26), ("jepsen/etcd_007.log", True, 0.17),
           ("kv/c50-ok.txt", True, 0.17), ("kv/c10-ok.txt", False, 2.6),
           ("kv/c10-bad.txt", False, 2.7)]


def etcd_expected() -> dict[str, bool]:
    src = (PEER / "SOURCE.md").read_text()
    good = set(re.search(r"etcd linearizable[^:]*: ([\d ]+)\(", src).group(1).split())
    out = {}
    for f in sorted((PEER / "jepsen").glob("etcd_*.log")):
        if f.stat().st_size:
            out[str(f)] = f.name[5:8] in good
    return out


def suites() -> dict[str, list[tuple[object, object, bool]]]:
    """suite -> [(history, model factory, expected verdict)], histories parsed once."""
    out: dict[str, list[tuple[object, object, bool]]] = {}
    out["etcd"] = [(load(f), lambda h: load_model("cas-register"), v)
                   for f, v in etcd_expected().items()]
    kv = sorted((PEER / "kv").glob("*.txt"))
    # Porcupine benchmarks (and tests) the unpartitioned kv model on its 1- and 10-client
    # logs only; its 5.3 s reference is c10-ok + c10-bad
    few = [f for f in kv if not f.name.startswith("c50")]
    for name, part, files in (("kv partitioned", True, kv), ("kv unpartitioned", False, few)):
        out[name] = [
            (load(f), (lambda h, part=part: KV(h.default_initial, partitioned=part)),
             f.name.endswith("-ok.txt"))
            for f in files
        ]
    return out


def run_suite(items, mode: str, timeout: float) -> tuple[float, float, list[str]]:
    """(wall seconds, CPU seconds of this process, wrong verdicts) for one pass."""
    total = 0.0
    cpu = 0.0
    wrong = []
    for hist, factory, expected in items:
        model = factory(hist)
        t, c = time.perf_counter(), time.process_time()
        r = check(hist, model, timeout=timeout, explain=(mode == "full"),
                  first_violation=(mode == "porcupine"))
        total += time.perf_counter() - t
        cpu += time.process_time() - c
        if r.valid != expected:
            wrong.append(f"{Path(hist.path).name}: got {r.valid}, expected {expected}")
    return total, cpu, wrong


def generate_kv(n_ops: int, keys: int, procs: int, seed: int = 7) -> list[Op]:
    """A linearizable kv history: ops take effect at a random instant inside their interval;
    about 1 % crash (info, no completion; half of them take effect), after which the worker
    continues as a new process, as Jepsen does."""
    rng = random.Random(seed)
    events = []  # (time, order, kind, op-spec)
    ops = []  # (lin time, proc, f, key, value, invoke t, complete t or None, applies)
    clock = [0.0] * procs
    pid = list(range(procs))
    for j in range(n_ops):
        w = j % procs
        t0 = clock[w] + rng.uniform(0, 2)
        lin = t0 + rng.uniform(0, 5)
        t1 = lin + rng.uniform(0, 5)
        key = rng.randrange(keys)
        f = rng.choice(("read", "read", "write", "cas"))
        crashed = rng.random() < 0.01
        ops.append([lin, pid[w], f, key, t0, None if crashed else t1,
                    (not crashed) or rng.random() < 0.5])
        clock[w] = t1
        if crashed:
            pid[w] += procs
    store: dict[int, int | None] = {}
    for o in sorted(ops, key=lambda o: o[0]):
        lin, proc, f, key, t0, t1, applies = o
        cur = store.get(key)
        if f == "read":
            inv, res, typ = None, cur, "ok"
        elif f == "write":
            v = rng.randrange(5)
            inv = res = v
            typ = "ok"
            if applies:
                store[key] = v
        else:
            old, new = rng.randrange(5), rng.randrange(5)
            inv = res = [old, new]
            typ = "ok" if cur == old else "fail"
            if applies and cur == old:
                store[key] = new
        events.append((t0, 0, {"type": "invoke", "process": proc, "f": f, "key": key,
                               "value": inv}))
        if t1 is not None:
            events.append((t1, 1, {"type": typ, "process": proc, "f": f, "key": key,
                                   "value": res}))
    events.sort(key=lambda e: (e[0], e[1]))
    return [Op(index=i, time=int(t * 1e6), **d) for i, (t, _, d) in enumerate(events)]


def peak_rss_mb() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()

    if PEER.is_dir():
        all_suites = suites()
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(wall times suffer when the machine is shared; CPU time less so)")
        print(f"{'suite':<21} {'mode':<10} {'wall s':>7} {'cpu s':>7} {'Porcupine s':>11} "
              f"{'ratio':>6} {'cpu ratio':>9}  verdicts")
        for name, items in all_suites.items():
            for mode in ("porcupine", "full"):
                times, cpus = [], []
                wrong: list[str] = []
                for _ in range(args.repeat):
                    t, c, wrong = run_suite(items, mode, args.timeout)
                    times.append(t)
                    cpus.append(c)
                med, cpu = statistics.median(times), statistics.median(cpus)
                ref = REFERENCE[name]
                ok = "all correct" if not wrong else f"WRONG: {'; '.join(wrong)}"
                print(f"{name:<21} {mode:<10} {med:7.3f} {cpu:7.3f} {ref:11.2f} "
                      f"{med / ref:6.2f} {cpu / ref:9.2f}  {ok}", flush=True)
        print(f"{'history':<21} {'mode':<10} {'wall s':>7} {'cpu s':>7} {'Porcupine s':>11} "
              f"{'ratio':>6} {'cpu ratio':>9}")
        for rel, part, ref in NOTABLE:
            hist = load(PEER / rel)
            if rel.startswith("kv"):
                model = KV(hist.default_initial, partitioned=part)
            else:
                model = load_model("cas-register")
            walls, cpus = [], []
            for _ in range(args.repeat):
                t, c = time.perf_counter(), time.process_time()
                check(hist, model, timeout=args.timeout, explain=False, first_violation=True)
                walls.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            med, cpu = statistics.median(walls), statistics.median(cpus)
            label = Path(rel).name + ("" if part else " (1 part.)")
            print(f"{label:<21} {'porcupine':<10} {med:7.3f} {cpu:7.3f} {ref:11.2f} "
                  f"{med / ref:6.2f} {cpu / ref:9.2f}")
    else:
        print(f"Porcupine histories not found at {PEER}; suites skipped")

    if not args.skip_large:
        t = time.perf_counter()
        hist = generate_kv(args.ops, keys=1000, procs=50)
        gen = time.perf_counter() - t
        t = time.perf_counter()
        r = check(hist, load_model("kv"), timeout=args.timeout)
        took = time.perf_counter() - t
        me, kids = peak_rss_mb()
        print(f"generated kv: {args.ops} ops, {len(hist)} records, 1000 keys, 50 processes "
              f"(generated in {gen:.1f} s)")
        print(f"  verdict {r.valid}, checked {r.stats['checked']} ops in "
              f"{r.stats['partitions']} partitions in {took:.2f} s (target < 60 s); "
              f"peak RSS {me:.0f} MB here, {kids:.0f} MB in a worker (target < 2048 MB)")
        # the same history with one read changed to a value never written: must be caught
        reads = [o for o in hist if o.type == "ok" and o.f == "read"]
        reads[len(reads) // 2].value = 99
        t = time.perf_counter()
        r = check(hist, load_model("kv"), timeout=args.timeout)
        took = time.perf_counter() - t
        bad = [p for p in r.partitions if p.valid is False]
        print(f"  with one read corrupted: verdict {r.valid} ({len(bad)} invalid key) in "
              f"{took:.2f} s, explained: {bad[0].violation is not None if bad else False}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
