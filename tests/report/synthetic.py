"""Realistic synthetic run folders for the report tests and the report benchmark.

A run is generated, not recorded: clients read, write and cas a few registers while a nemesis
partitions, kills, pauses and skews nodes, and three node logs tell the matching Raft story.
Every op takes effect at one instant inside its interval, so the history is linearizable by
construction; ``violate=True`` then turns one late read into a stale read (a value that was
overwritten before the read began), which no linearization explains.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from checker.history import Op, write_jsonl

START_WALL = 1_764_168_000.0  # 2025-11-26T14:40:00Z
NODES = ["n1", "n2", "n3"]
MS = 1_000_000


def _ops(n_ops: int, keys: list[str], concurrency: int, duration_ns: int, rng: random.Random):
    """Client ops as (process, key, f, value, start, end, point, type); point None = no effect."""
    per_proc = max(1, n_ops // concurrency)
    gap = max(1, duration_ns // (per_proc + 1))
    raw = []
    for p in range(concurrency):
        t = rng.randrange(0, gap)
        proc = p
        for _ in range(per_proc):
            start = t
            lat = int(rng.lognormvariate(0, 0.6) * 2 * MS)
            end = min(start + lat, duration_ns - 1)
            f = rng.choice(["read", "read", "write", "cas"])
            key = rng.choice(keys)
            typ = "ok"
            if rng.random() < 0.02:
                typ = "info"
            point = rng.randrange(start, end + 1)
            raw.append([proc, key, f, None, start, end, point, typ])
            if typ == "info":
                proc += concurrency
            t = max(end + 1, start + rng.randrange(gap // 2, gap * 3 // 2 + 1))
            if t >= duration_ns - 10 * MS:
                break
    return raw


def make_history(n_ops: int = 400, seed: int = 7, violate: bool | int = False,
                 keys: list[str] | None = None, concurrency: int = 5,
                 duration_s: float = 10.0, hostile: str | None = None):
    """(ops, checker result) for a register history; see the module docstring.

    ``violate``: a stale read on the second key (True), or on that many keys (an int).
    """
    rng = random.Random(seed)
    keys = keys or ["k0", "k1", "k2"]
    duration = int(duration_s * 1e9)
    raw = _ops(n_ops, keys, concurrency, duration, rng)
    # Decide each op's value and outcome in the order of its linearization point.
    state: dict[str, Any] = {k: None for k in keys}
    writes: dict[str, list[tuple[int, int, Any]]] = {k: [] for k in keys}  # (start, end, value)
    counter = 0
    for r in sorted(raw, key=lambda r: r[6]):
        proc, key, f, _, start, end, point, typ = r
        if f == "write":
            counter += 1
            r[3] = (counter, None)
            if typ == "info" and rng.random() < 0.5:
                r[6] = None  # an indeterminate write that never happened
            else:
                state[key] = counter
                writes[key].append((start, end, counter))
        elif f == "read":
            r[3] = (None, state[key])
            if typ == "info":
                r[6] = None
        else:
            cur = state[key]
            expected = cur if rng.random() < 0.6 else (cur or 0) + 1000
            counter += 1
            new = counter
            r[3] = ([expected, new], [expected, new])
            if expected == cur and typ == "ok":
                state[key] = new
                writes[key].append((start, end, new))
            elif typ == "ok":
                r[7] = "fail"
                r[6] = None
            else:
                r[6] = None  # indeterminate cas: never took effect here
    bads = []
    n_bad = int(violate)
    for target in (keys[1:] + keys[:1])[:n_bad]:
        reads = [r for r in raw if r[1] == target and r[2] == "read" and r[7] == "ok"]
        for r in reversed(reads):
            first = writes[target][0] if writes[target] else None
            # a later write that surely came after the first one and before the read
            later = first and [w for w in writes[target] if w[0] > first[1] and w[1] < r[4]]
            if later and first[2] != r[3][1]:
                r[3] = (None, first[2])
                bads.append(r)
                break
        else:
            raise AssertionError(f"no read of {target} suitable for a stale-read violation")
    if hostile is not None:  # one written value becomes the hostile string, everywhere it shows
        first = next(r for r in raw if r[2] == "write" and r[1] == keys[0])
        old = first[3][0]

        def swap(v: Any) -> Any:
            if isinstance(v, list):
                return [swap(x) for x in v]
            return hostile if v == old and not isinstance(v, bool) else v

        for r in raw:
            if r[1] == keys[0]:
                r[3] = (swap(r[3][0]), swap(r[3][1]))

    events = []
    for rid, r in enumerate(raw):
        proc, key, f, vals, start, end, point, typ = r
        inv_val, out_val = vals
        if f == "write":
            out_val = inv_val
        node = NODES[proc % len(NODES)]  # the node this client sends to
        events.append((start, 0, dict(process=proc, type="invoke", f=f, key=key, value=inv_val,
                                      node=node), rid))
        done: dict[str, Any] = dict(process=proc, type=typ, f=f, key=key, value=out_val, node=node)
        if typ == "info":
            done["error"] = "timeout"
        if typ == "fail":
            done["error"] = "cas-mismatch"
        events.append((end, 1, done, None))
    events.extend(e + (None,) for e in _nemesis_events(duration))
    events.sort(key=lambda e: (e[0], e[1]))
    ops = [Op.from_dict(dict(index=i, time=t, **d)) for i, (t, _, d, _) in enumerate(events)]
    # the checker's op id: the position among the client invokes (docs/results.md)
    invoke_of = {rid: n for n, rid in enumerate(e[3] for e in events if e[3] is not None)}
    result: dict[str, Any] = {"valid": not bads,
                              "partitions": [{"key": k, "valid": True} for k in keys]}
    for bad in bads:
        # The longest prefix: the bad key's effects before the stale read began, in order.
        k = bad[1]
        ids = {id(r): rid for rid, r in enumerate(raw)}
        before = sorted((r for r in raw if r[1] == k and r[6] is not None and r[6] < bad[4]),
                        key=lambda r: r[6])
        steps, value = [], None
        for r in before:
            if r[2] == "write":
                value = r[3][0]
            elif r[2] == "cas":
                value = r[3][0][1]
            steps.append({"op": invoke_of[ids[id(r)]],
                          "state": {"value": value, "text": "nil" if value is None else str(value)}})
        part = next(p for p in result["partitions"] if p["key"] == k)
        part["valid"] = False
        part["violation"] = {"op": invoke_of[ids[id(bad)]], "prefix": steps,
                             "initial_state": {"value": None, "text": "nil"}}
    return ops, result


def _nemesis_events(duration: int):
    """The nemesis records as ``tester.runner`` writes them: invoke, then an info completion
    whose value describes what was done to whom."""
    d = duration
    spec = [
        (0.15, "start-partition", {"kind": "one", "drops": {"n1": ["n2", "n3"], "n2": ["n1"],
                                                             "n3": ["n1"]}, "errors": None}),
        (0.35, "stop-partition", {"healed": "network", "errors": None}),
        (0.45, "start-kill", {"target": "one", "killed": ["n3"], "errors": None}),
        (0.55, "stop-kill", {"restarted": ["n3"], "errors": None}),
        (0.62, "start-pause", {"target": "one", "paused": ["n2"], "errors": None}),
        (0.72, "stop-pause", {"resumed": ["n2"], "errors": None}),
        (0.80, "start-clock", {"kind": "bump", "target": "one", "offsets_ms": {"n2": 5000.0},
                               "errors": None}),
        (0.92, "stop-clock", {"kind": "reset", "nodes": NODES, "errors": None}),
        (0.995, "heal-all", {"healed": ["clock", "kill", "partition", "pause"], "errors": None}),
    ]
    out = []
    for frac, f, value in spec:
        t = int(frac * d)
        out.append((t, 0, dict(process="nemesis", type="invoke", f=f, value=None)))
        out.append((t + 2 * MS, 1, dict(process="nemesis", type="info", f=f, value=value)))
    return out


def _node_logs(duration: int) -> dict[str, list[dict[str, Any]]]:
    s = START_WALL
    d = duration / 1e9
    logs = {n: [{"ts": s + 0.01, "node": n, "event": "started", "term": 0, "last_index": 0}] for n in NODES}

    def role(n, t, r, term, leader):
        logs[n].append({"ts": s + t, "node": n, "event": "role", "role": r, "term": term, "leader": leader})

    for n in NODES:
        role(n, 0.02, "follower", 0, None)
    role("n1", 0.25, "candidate", 1, None)
    role("n1", 0.27, "leader", 1, "n1")
    role("n2", 0.27, "follower", 1, "n1")
    role("n3", 0.27, "follower", 1, "n1")
    # partition isolates n1: n2 wins term 2; n1 is deposed when the partition heals
    role("n2", 0.15 * d + 0.3, "candidate", 2, None)
    role("n2", 0.15 * d + 0.32, "leader", 2, "n2")
    role("n3", 0.15 * d + 0.32, "follower", 2, "n2")
    role("n1", 0.35 * d + 0.05, "follower", 2, "n2")
    # n3 is killed and restarts
    logs["n3"].append({"ts": s + 0.55 * d + 0.1, "node": "n3", "event": "started", "term": 2, "last_index": 50})
    role("n3", 0.55 * d + 0.12, "follower", 2, "n2")
    # n2 paused: n1 takes over in term 3
    role("n1", 0.62 * d + 0.3, "candidate", 3, None)
    role("n1", 0.62 * d + 0.32, "leader", 3, "n1")
    role("n3", 0.62 * d + 0.32, "follower", 3, "n1")
    role("n2", 0.72 * d + 0.01, "follower", 3, "n1")
    for n in NODES:
        logs[n].append({"ts": s + d + 0.2, "node": n, "event": "stopped", "reason": "SIGTERM"})
    return logs


def make_run(root: Path, n_ops: int = 400, seed: int = 7, violate: bool | int = False,
             hostile: str | None = None, name: str = "register-partition",
             stamp: str = "20251126T144000", checker_result: Any = None,
             keys: list[str] | None = None, duration_s: float = 10.0, extra_test: dict | None = None) -> Path:
    """Write a complete run folder under ``root/<name>/<stamp>/`` and return it."""
    ops, result = make_history(n_ops, seed, violate, keys=keys, hostile=hostile, duration_s=duration_s)
    if checker_result is not None:
        result = checker_result(ops) if callable(checker_result) else checker_result
    run = root / name / stamp
    (run / "nodes").mkdir(parents=True, exist_ok=True)
    test = {
        "name": name, "db": "raftnode", "workload": "register",
        "nemesis": ["partition", "kill", "pause", "clock"], "seed": seed,
        "start_time": START_WALL, "nodes": NODES, "concurrency": 5, "time_limit": duration_s,
        **(extra_test or {}),
    }
    if hostile is not None:
        test["note"] = hostile
    (run / "test.json").write_text(json.dumps(test, indent=2))
    write_jsonl(ops, run / "history.jsonl")
    (run / "results.json").write_text(json.dumps({
        "valid": result.get("valid", "unknown") if isinstance(result, dict) else "unknown",
        "checker": result, "stats": {}, "perf": {},
    }))
    (run / "raftlab.log").write_text("synthetic run\n")
    for n, evs in _node_logs(int(duration_s * 1e9)).items():
        (run / "nodes" / n).mkdir(exist_ok=True)
        with open(run / "nodes" / n / "node.log", "w") as fh:
            for e in evs:
                fh.write(json.dumps(e) + "\n")
    latest = root / name / "latest"
    if not latest.exists():
        latest.symlink_to(stamp)
    return run


def check(ops: list[Op]) -> dict[str, Any]:
    """The real checker's JSON result for a (synthetic) history."""
    import checker

    client = [op for op in ops if op.process != "nemesis"]
    return checker.check(client, checker.load_model("cas-register"), timeout=30).to_dict()
