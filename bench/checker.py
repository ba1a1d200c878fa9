"""Checker speed against Porcupine's reference times, and a large generated history.

    .venv/bin/python bench/checker.py [--repeat 3] [--ops 100000] [--million]
                                      [--porcupine DIR] [--baseline DIR]
                                      [--skip-suites] [--skip-large]

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
Then whole processes, side by side on the same generated kv history (read/write/cas over
1,000 keys, 50 processes, about 1 % crashed ops), as a user runs them: ``raftlab check`` on
it as JSONL and as Jepsen EDN (one map a line), and Porcupine on the JSONL when given a
checkout of it (``--porcupine DIR``: a small Go harness of raftlab's own, bench/porcupine/,
is built against DIR with Debian's golang-go; Porcupine's code is never part of raftlab),
else Porcupine's figure from the issue that set the target (0.6 s for 100,000 ops), and
``raftlab check`` from another checkout when given one (``--baseline DIR``: before and after
a change, side by side); each is run in turn, ``--repeat`` times. Wall
time, CPU time (user + system, the process and its workers) and peak resident memory of
each process; medians of ``--repeat`` runs. Targets: 100,000 ops no slower than Porcupine
in both formats; 1,000,000 ops (``--million``) under 10 s and 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checker import check, load_model  # noqa: E402
from checker.formats import load  # noqa: E402
from checker.history import Op, write_jsonl  # noqa: E402
from checker.models import KV  # noqa: E402

PEER = ROOT.parent / "shared" / "peer-histories" / "porcupine"
#: Porcupine's whole-process time on a generated 100,000-op kv history (the issue's figure)
PORCUPINE_100K = 0.6
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
    ap.add_argument("--skip-suites", action="store_true")
    ap.add_argument("--million", action="store_true",
                    help="also a 1,000,000-op history (takes minutes, needs about 2 GB)")
    ap.add_argument("--porcupine", metavar="DIR",
                    help="a Porcupine checkout: time it in the same run (needs Go)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="another raftlab checkout (e.g. a git worktree of main): time its "
                         "raftlab check in the same run, before/after side by side")
    args = ap.parse_args()

    if args.skip_suites:
        pass
    elif PEER.is_dir():
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
        sizes = [args.ops] + ([1_000_000] if args.million else [])
        with tempfile.TemporaryDirectory(prefix="raftlab-bench-") as tmp:
            harness = build_harness(Path(args.porcupine), Path(tmp)) if args.porcupine else None
            baseline = Path(args.baseline).resolve() if args.baseline else None
            for n in sizes:
                large(n, Path(tmp), args.repeat, harness, baseline)
    return 0


def write_edn(ops: list[Op], path: Path) -> None:
    """The history as Jepsen writes history.edn: one map a line, as Clojure prints it."""
    def edn(v: object) -> str:
        if v is None:
            return "nil"
        if isinstance(v, list):
            return "[" + " ".join(edn(x) for x in v) + "]"
        return f":{v}" if isinstance(v, str) else str(v)

    with open(path, "w") as fh:
        for o in ops:
            fh.write(f"{{:type :{o.type}, :f :{o.f}, :key {o.key}, :value {edn(o.value)}, "
                     f":process {o.process}, :time {o.time}, :index {o.index}}}\n")


# Runs a command and prints its wall time, CPU time, peak memory and exit code. The bench
# holds the generated history (a gigabyte for a million ops), and Linux counts the memory
# of the process a child was started from in the child's peak; started from this small
# launcher instead, the command's peak is its own.
_LAUNCHER = """
import json, os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, u = os.wait4(p.pid, 0)
print(json.dumps([time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024,
                  os.waitstatus_to_exitcode(status)]))
"""


def timed(cmd: list[str], tree: Path = ROOT) -> tuple[float, float, float, int]:
    """(wall s, CPU s of the process and its children, peak RSS MB, exit code) of one run,
    with raftlab imported from ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], cwd=tree, env=env,
                         capture_output=True, text=True, check=True).stdout
    wall, cpu, peak, code = json.loads(out)
    return wall, cpu, peak, code


def build_harness(porcupine: Path, tmp: Path) -> Path:
    """Build bench/porcupine/main.go against the Porcupine checkout ``porcupine``, in
    ``tmp``."""
    if not (porcupine / "porcupine.go").is_file():
        sys.exit(f"--porcupine {porcupine}: not a Porcupine checkout (no porcupine.go)")
    out = tmp / "porcupine-harness"
    out.mkdir()
    (out / "main.go").write_text((ROOT / "bench" / "porcupine" / "main.go").read_text())
    (out / "go.mod").write_text(
        "module raftlabbench\n\ngo 1.19\n\nrequire github.com/anishathalye/porcupine v0.0.0\n"
        f"\nreplace github.com/anishathalye/porcupine => {porcupine.resolve()}\n")
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off")
    subprocess.run(["go", "build", "-o", "harness", "."], cwd=out, env=env, check=True)
    return out / "harness"


def large(n: int, tmp: Path, repeat: int, harness: Path | None,
          baseline: Path | None = None) -> None:
    """One generated history, checked whole-process by raftlab (JSONL, EDN), Porcupine, and
    raftlab from the ``baseline`` tree (another checkout), each run in turn."""
    hist = generate_kv(n, keys=1000, procs=50)
    jsonl, edn = tmp / f"kv{n}.jsonl", tmp / f"kv{n}.edn"
    write_jsonl(hist, jsonl)
    write_edn(hist, edn)
    raftlab = [sys.executable, "-m", "tester.cli", "check", "--model", "kv"]
    runs: dict[str, tuple[list[str], Path]] = {
        "raftlab check, JSONL": ([*raftlab, str(jsonl)], ROOT),
        "raftlab check, EDN": ([*raftlab, str(edn)], ROOT)}
    if baseline is not None:
        runs["baseline, JSONL"] = ([*raftlab, str(jsonl)], baseline)
        runs["baseline, EDN"] = ([*raftlab, str(edn)], baseline)
    if harness is not None:
        runs["Porcupine (Go)"] = ([str(harness), str(jsonl)], ROOT)
    print(f"generated kv history: {n} ops, {len(hist)} records, 1000 keys, 50 processes; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  {'checker':<22} {'wall s':>7} {'cpu s':>7} {'peak MB':>8}  verdict")
    medians: dict[str, tuple[float, float]] = {}
    results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in runs}
    for _ in range(repeat):  # in turn, so that a busy spell of the machine hits them all
        for name, (cmd, tree) in runs.items():
            results[name].append(timed(cmd, tree))
    for name, got in results.items():
        wall = statistics.median(g[0] for g in got)
        cpu = statistics.median(g[1] for g in got)
        peak = max(g[2] for g in got)
        verdict = {0: "linearizable", 1: "NOT linearizable"}.get(got[0][3], f"exit {got[0][3]}")
        medians[name] = (wall, cpu)
        print(f"  {name:<22} {wall:7.2f} {cpu:7.2f} {peak:8.0f}  {verdict}", flush=True)
    ref = medians.get("Porcupine (Go)")
    if ref is None and n == 100_000:
        ref = (PORCUPINE_100K, PORCUPINE_100K)
        print(f"  Porcupine (Go): {PORCUPINE_100K} s, the reference figure (no --porcupine)")
    for name in ("raftlab check, JSONL", "raftlab check, EDN"):
        if ref is not None:
            print(f"  {name} / Porcupine: wall {medians[name][0] / ref[0]:.2f}, "
                  f"cpu {medians[name][1] / ref[1]:.2f}")
    if n >= 1_000_000:
        print("  target for 1,000,000 ops: under 10 s and 2048 MB")
        return
    # one read changed to a value never written: both must catch it, raftlab must blame it
    reads = [o for o in hist if o.type == "ok" and o.f == "read"]
    bad = reads[len(reads) // 2]
    bad.value = 99
    write_jsonl(hist, jsonl)
    out = subprocess.run([*raftlab, "--json", str(jsonl)], cwd=ROOT, capture_output=True,
                         text=True)
    doc = json.loads(out.stdout)["histories"][0]
    part = next(p for p in doc["partitions"] if p["valid"] is False)
    blamed = next(o for o in part["violation"]["operations"]
                  if o["id"] == part["violation"]["op"])
    line = (f"  one read corrupted: raftlab {doc['valid']}, blames the corrupted read: "
            f"{blamed['complete']['index'] == bad.index}")
    if harness is not None:
        line += f"; Porcupine exit {timed([str(harness), str(jsonl)])[3]} (1: not linearizable)"
    print(line)


if __name__ == "__main__":
    sys.exit(main())
