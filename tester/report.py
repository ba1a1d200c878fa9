"""One self-contained ``report.html`` per run: what happened, at a glance, from disk.

The report reads only the run folder (``test.json``, ``history.jsonl``, ``results.json``,
``nodes/<node>/*``) and writes a single HTML file with inline CSS, JavaScript and data: no
network, so it opens from a CI artefact or an e-mail attachment. Every value that comes from
the run is escaped: HTML text through :func:`html.escape`, data through a JSON block that the
page parses and inserts with ``textContent`` only.

Large histories stay small and fast because the per-op data is embedded as column arrays of
integers (microseconds) and drawn on canvases; only the keys that failed the check carry
their full op values (for the linearizability view).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker import visualize
from checker.history import NEMESIS, HistoryError, Op, natural, read_jsonl
from checker.visualize import VERDICT_CLASS, VERDICT_TEXT, verdict_of
from tester import liveness, store
from tester.nemesis import COLORS
from tester.nodeevents import violated
from tester.nodeevents.html import section as node_events_section
from tester.runner import ANSWERED, quantiles

TEMPLATES = Path(__file__).resolve().parent / "templates"


# The colour of each kind of fault when test.json does not name one (``nemesis_colors``);
# kinds raftlab's nemesis does not know (imported histories) take the extra colours in turn.
FAULT_COLOURS = COLORS
_EXTRA_COLOURS = ("#F5B7D0", "#B7E4F5", "#D9C2A7", "#B9D8A5", "#CDB4DB")

# Nemesis ``f`` names beyond raftlab's own ``start-X``/``stop-X``/``heal-all`` (Jepsen's).
_STARTS = {"partition": "partition", "kill": "kill", "pause": "pause", "bump-clock": "clock",
           "strobe-clock": "clock"}
_STOPS = {"heal": "partition", "start": "kill", "resume": "pause", "reset-clock": "clock"}
_STOP_ALL = {"heal-all", "stop-all"}


# --------------------------------------------------------------------------- loading a run


@dataclass
class Run:
    """A run folder, loaded: configuration, history, results and node logs."""

    dir: Path
    test: dict[str, Any]
    ops: list[Op]
    results: dict[str, Any] | None
    node_logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    log_files: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Any:
        return verdict_of((self.results or {}).get("valid"))


def _read_json(path: Path, problems: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path.name} is missing")
    except (OSError, ValueError) as e:
        problems.append(f"{path.name} could not be read: {e}")
    return None


_ETCD_BECAME = re.compile(r"^(\w+) became (follower|pre-candidate|candidate|leader) at term (\d+)$")
_ETCD_LEADER = re.compile(r"^raft\.node: (\w+) (elected|lost) leader (\w+) at term (\d+)$")


def _etcd_event(d: dict[str, Any]) -> dict[str, Any] | None:
    """An etcd (zap JSON) log line as a raftnode-style event, if it is about roles or start.

    ``leader`` holds etcd's member id here; :func:`_read_node_logs` maps ids to node names.
    """
    msg, ts = d.get("msg"), d.get("ts")
    if not isinstance(msg, str) or not isinstance(ts, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    if msg == "starting an etcd server":
        return {"ts": t, "event": "started", "term": None}
    m = _ETCD_BECAME.match(msg)
    if m:
        me, role, term = m.groups()
        return {"ts": t, "event": "role", "role": role, "term": int(term),
                "leader": me if role == "leader" else None, "_self": me}
    m = _ETCD_LEADER.match(msg)
    if m:
        me, what, leader, term = m.groups()
        return {"ts": t, "event": "role", "role": None, "term": int(term),
                "leader": leader if what == "elected" else None, "_self": me}
    return None


def _read_node_logs(nodes_dir: Path) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Events of every node: raftnode's JSON node log, or etcd's JSON log translated to the
    same role events. Other files (stdout, text logs) are only linked."""
    events: dict[str, list[dict]] = {}
    files: dict[str, list[str]] = {}
    if not nodes_dir.is_dir():
        return events, files
    member_ids: dict[str, str] = {}  # etcd member id -> node name
    for node_dir in sorted(p for p in nodes_dir.iterdir() if p.is_dir()):
        node = node_dir.name
        files[node] = []
        evs: list[dict] = []
        for path in sorted(p for p in node_dir.rglob("*") if p.is_file()):
            files[node].append(path.relative_to(nodes_dir.parent).as_posix())
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        if not line.startswith("{"):
                            continue
                        try:
                            d = json.loads(line)
                        except ValueError:
                            continue
                        if not isinstance(d, dict):
                            continue
                        if isinstance(d.get("ts"), (int, float)) and "event" in d:
                            evs.append(d)
                        elif (e := _etcd_event(d)) is not None:
                            if "_self" in e:
                                member_ids[e.pop("_self")] = node
                            evs.append(e)
            except OSError:
                continue
        evs.sort(key=lambda d: d["ts"])
        events[node] = evs
    if member_ids:
        for evs in events.values():
            role = "follower"
            for e in evs:
                if e.get("event") != "role":
                    continue
                if e["role"] is None:  # a leader change: the role stays, the leader is known
                    e["role"] = role
                role = e["role"]
                if e.get("leader") in member_ids:
                    e["leader"] = member_ids[e["leader"]]
    return events, files


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a run folder; a missing or broken part is noted in ``problems``, not fatal."""
    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a run folder (no such directory)")
    problems: list[str] = []
    test = _read_json(d / "test.json", problems)
    if not isinstance(test, dict):
        test = {}
    ops: list[Op] = []
    try:
        ops = read_jsonl(d / "history.jsonl")
    except FileNotFoundError:
        problems.append("history.jsonl is missing")
    except HistoryError as e:
        problems.append(f"history could not be read: {e}")
    results = _read_json(d / "results.json", problems)
    if not isinstance(results, dict):
        results = None
    logs, files = _read_node_logs(d / "nodes")
    return Run(d, test, ops, results, logs, files, problems)


# --------------------------------------------------------------------------- configuration


def _name_of(v: Any) -> str:
    """A db/workload/nemesis setting may be a name, a list of names or a dict with a name."""
    if isinstance(v, dict):
        return str(v.get("name") or json.dumps(v, sort_keys=True))
    if isinstance(v, (list, tuple)):
        return ",".join(_name_of(x) for x in v) or "none"
    return "" if v is None else str(v)


def db_label(test: dict[str, Any]) -> str:
    """The database's name, with any unsafe switches it ran with (they explain a failure)."""
    name = _name_of(test.get("db"))
    unsafe = test.get("unsafe")
    if isinstance(unsafe, list) and unsafe:
        return f"{name} (unsafe: {', '.join(map(str, unsafe))})"
    return name


def start_wall_time(test: dict[str, Any]) -> float | None:
    """The wall-clock start of the test (test.json's ``start_time``: epoch seconds or ISO)."""
    v = test.get("start_time")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            t = _dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return t.timestamp()
    return None


def node_names(run: Run) -> list[str]:
    names: list[str] = []
    raw = run.test.get("nodes") or []
    if isinstance(raw, dict):
        raw = list(raw)
    if isinstance(raw, list):
        for n in raw:
            name = n.get("name") if isinstance(n, dict) else n
            if isinstance(name, str) and name not in names:
                names.append(name)
    for n in list(run.node_logs) + list(run.log_files):
        if n not in names:
            names.append(n)
    return names


# --------------------------------------------------------------------------- faults


def _classify(f: str) -> tuple[str, str]:
    """("start"|"stop"|"stop-all"|"point", kind) for a nemesis ``f``."""
    g = f.lower().replace("_", "-").rstrip("!")
    if g in _STOP_ALL:
        return "stop-all", ""
    if g in _STARTS:
        return "start", _STARTS[g]
    if g in _STOPS:
        return "stop", _STOPS[g]
    action, _, kind = g.partition("-")
    if action in ("start", "stop") and kind:
        return action, kind
    return "point", g


def _names(v: Any, nodes: set[str]) -> list[str]:
    if isinstance(v, str):
        return [v] if v in nodes else []
    if isinstance(v, (list, tuple)):
        return [x for x in v if isinstance(x, str) and x in nodes]
    return []


def _short(v: Any, limit: int = 160) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _offset(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return _short(ms, 24)
    sign = "+" if ms >= 0 else "−"
    return f"{sign}{abs(ms) / 1000:.3g} s" if abs(ms) >= 1000 else f"{sign}{abs(ms):.3g} ms"


def per_node_effect(kind: str, value: Any, nodes: set[str]) -> dict[str, str]:
    """What a nemesis action did to each node, in words for the timeline.

    Reads the descriptions ``tester.nemesis`` records (``drops``, ``offsets_ms``, ``killed``,
    ``paused``, ...); any other value names its nodes, if it mentions them.
    """
    out: dict[str, str] = {}
    if not isinstance(value, dict):
        return {n: kind for n in _names(value, nodes)}
    drops = value.get("drops")
    if isinstance(drops, dict):  # destination -> sources it drops
        cut: dict[str, set[str]] = {}
        for dest, srcs in drops.items():
            for src in _names(srcs, nodes):
                cut.setdefault(str(dest), set()).add(src)
                cut.setdefault(src, set()).add(str(dest))
        return {n: "cut off from " + ", ".join(sorted(peers)) for n, peers in cut.items()
                if n in nodes}
    offsets = value.get("offsets_ms")
    if isinstance(offsets, dict):
        return {n: f"clock {_offset(ms)}" for n, ms in offsets.items() if n in nodes}
    if value.get("kind") == "strobe":
        return {n: f"clock strobe {_offset(value.get('delta_ms'))}"
                for n in _names(value.get("nodes"), nodes)}
    what = kind
    if isinstance(value.get("probability"), (int, float)):
        what = f"{kind} {value['probability']:.0%} of packets"
    elif isinstance(value.get("delay_ms"), (int, float)):
        what = f"{kind} {_offset(value['delay_ms']).lstrip('+')}"
    for field_, word in (("killed", "killed"), ("paused", "paused"), ("removed", "removed"),
                         ("restarted", "restarted"), ("resumed", "resumed"),
                         ("added", "added back"), ("nodes", what)):
        for n in _names(value.get(field_), nodes):
            out.setdefault(n, word)
    return out


@dataclass
class Faults:
    """The faults of a run, as the plots, the timeline and the fault schedule draw them."""

    # {kind, applying, start, stopping, end (ns), colour, detail, nodes: {node: what it did}}
    intervals: list[dict[str, Any]]
    points: list[dict[str, Any]]  # {kind, time, colour, detail, nodes}: one-off actions
    palette: dict[str, str]  # kind -> colour, in order of first appearance


def _nemesis_actions(ops: Iterable[Op]) -> list[tuple[int, int, str, Any, Any]]:
    """(invoked, completed, f, value, error) per nemesis action; the value and error are the
    completion's (what was done), the invocation's when it never completed.

    Several nemesis threads may act at once (one per fault family), so a completion is paired
    with the open invocation of the same ``f``; an invocation with none counts as a point."""
    out: list[tuple[int, int, str, Any, Any]] = []
    pending: dict[str, Op] = {}
    for op in ops:
        if op.process != NEMESIS:
            continue
        if op.type == "invoke":
            if op.f in pending:
                p = pending[op.f]
                out.append((p.time, p.time, p.f, p.value, None))
            pending[op.f] = op
            continue
        inv = pending.pop(op.f, None)
        value = op.value if op.value is not None or inv is None else inv.value
        out.append((inv.time if inv else op.time, op.time, op.f, value, op.error))
    out.extend((p.time, p.time, p.f, p.value, None) for p in pending.values())
    return sorted(out, key=lambda a: (a[1], a[0]))


def fault_intervals(ops: Iterable[Op], nodes: Iterable[str], end_ns: int,
                    colours: dict[str, str] | None = None) -> Faults:
    """When each fault was in force, and on which nodes, from the nemesis records.

    An interval has four instants (ns): ``applying`` (the start was invoked), ``start`` (it
    completed: the fault is in force), ``stopping`` (the stop or final heal was invoked) and
    ``end`` (it completed). A start that reports an error (e.g. "unsupported") is a marker,
    not an interval; a fault still in force when the history ends lasts until the end.
    """
    node_set = set(nodes)
    palette: dict[str, str] = {}

    def colour(kind: str) -> str:
        if kind not in palette:
            palette[kind] = ((colours or {}).get(kind) or FAULT_COLOURS.get(kind)
                             or _EXTRA_COLOURS[len(palette) % len(_EXTRA_COLOURS)])
        return palette[kind]

    open_: dict[str, list[dict[str, Any]]] = {}
    intervals: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for t0, t, f, value, error in _nemesis_actions(ops):
        what, kind = _classify(f)
        detail = f + ("" if value is None else " " + _short(value))
        if error is not None:
            detail += f" (error: {_short(error, 80)})"
        if what == "start" and error is None:
            iv = {"kind": kind, "applying": t0, "start": t, "stopping": None, "end": None,
                  "colour": colour(kind), "detail": detail,
                  "nodes": per_node_effect(kind, value, node_set)}
            open_.setdefault(kind, []).append(iv)
            intervals.append(iv)
        elif what in ("stop", "stop-all"):
            for k in list(open_) if what == "stop-all" else [kind]:
                for iv in open_.pop(k, []):
                    iv["stopping"], iv["end"] = t0, t
                    iv["detail"] += f"\nended by {f}"
        if (what == "start" and error is not None) or what == "point":
            points.append({"kind": kind, "time": t, "colour": colour(kind), "detail": detail,
                           "nodes": per_node_effect(kind, value, node_set)})
    for iv in intervals:
        if iv["end"] is None:
            iv["stopping"] = iv["end"] = max(end_ns, iv["start"])
            iv["detail"] += "\nstill in force when the history ends"
    return Faults(intervals, points, palette)


# --------------------------------------------------------------------------- cluster timeline


def _role_segments(events: list[dict[str, Any]], start: float, kills: list[int],
                   end_us: int) -> tuple[list[list[Any]], list[list[Any]]]:
    """([start_us, end_us, role, term, leader] segments, [t_us, kind, text] marks) of a node.

    A role lasts until the next role change, a stop, or a kill (a killed process logs nothing).
    """
    segs: list[list[Any]] = []
    marks: list[list[Any]] = []
    cur: list[Any] | None = None
    for ev in events:
        t_us = int(round((ev["ts"] - start) * 1e6))
        name = str(ev.get("event"))
        if name in ("role", "started", "stopped", "error") and cur is not None:
            cur[1] = max(cur[0], t_us)
            segs.append(cur)
            cur = None
        if name == "role":
            cur = [t_us, None, str(ev.get("role", "?")), ev.get("term"), ev.get("leader")]
        elif name == "started":
            marks.append([t_us, "started", f"started (term {ev.get('term')})"])
            cur = [t_us, None, "follower", ev.get("term"), None]
        elif name in ("stopped", "error"):
            text = ev.get("reason") or ev.get("message") or ""
            marks.append([t_us, name, f"{name} {_short(text, 80)}".strip()])
        elif name in ("membership", "snapshot", "peer_rejected", "recovered", "election"):
            fields = {k: v for k, v in ev.items() if k not in ("ts", "node", "event")}
            marks.append([t_us, name, f"{name} {_short(fields, 120)}"])
    if cur is not None:
        cur[1] = max(cur[0], end_us)
        segs.append(cur)
    for k in kills:
        for seg in segs:
            if seg[0] < k < seg[1]:
                seg[1] = k
    return segs, marks


def node_lanes(run: Run, faults: Faults, end_ns: int) -> list[dict[str, Any]]:
    """One lane per node: role segments from its log, and the faults that touched it.

    Node log times are the node's own wall clock, placed on the history's time axis by the
    test's wall-clock start; a node whose clock was moved by a fault is drawn where its own
    clock put it (the clock offset is shown in the lane).
    """
    start = start_wall_time(run.test)
    first_ts = min((e[0]["ts"] for e in run.node_logs.values() if e), default=None)
    if start is None:
        start = first_ts
    lanes = []
    for node in node_names(run):
        kills = [iv["start"] // 1000 for iv in faults.intervals
                 if iv["kind"] == "kill" and node in iv["nodes"]]
        segs, marks = _role_segments(run.node_logs.get(node, []), start or 0.0, kills,
                                     end_ns // 1000)
        effects = [
            [iv["start"] // 1000, iv["stopping"] // 1000, iv["kind"], iv["colour"],
             iv["nodes"][node]]
            for iv in faults.intervals
            if node in iv["nodes"]
        ]
        for p in faults.points:
            if node in p["nodes"]:
                marks.append([p["time"] // 1000, p["kind"], p["nodes"][node]])
        lanes.append({"node": node, "segs": segs, "effects": effects, "marks": marks})
    return lanes


# --------------------------------------------------------------------------- per-op data


#: above this many operations the op timeline shows no values (the page stays small)
VALUE_BUDGET = 200_000


def op_columns(calls: list[visualize.Call]) -> dict[str, Any]:
    """Completed client ops as column arrays (compact JSON) for the plots and the op timeline.

    Times are microseconds since the test started; ``type`` is 0 ok, 1 fail, 2 info; ``node``
    (the node the client sent it to) and ``err`` index ``nodes`` and ``errs``, -1 for none;
    ``ans`` is 1 for a fail that is the system's answer (a cas mismatch), not unavailability;
    ``val`` is the op's value, shortened (its result when it is ok).
    """
    fs: dict[str, int] = {}
    keys: dict[str, int] = {}
    procs: dict[str, int] = {}
    nodes: dict[str, int] = {}
    errs: dict[str, int] = {}
    names = ("t", "lat", "type", "f", "key", "proc", "node", "err", "ans")
    cols: dict[str, list[Any]] = {n: [] for n in (*names, "val")}
    code = {"ok": 0, "fail": 1, "info": 2}
    values = len(calls) <= VALUE_BUDGET
    for c in calls:
        inv, done = c.invoke, c.done
        if done is None:
            continue
        cols["t"].append(inv.time // 1000)
        cols["lat"].append(max(0, (done.time - inv.time) // 1000))
        cols["type"].append(code[done.type])
        cols["f"].append(fs.setdefault(inv.f, len(fs)))
        cols["key"].append(keys.setdefault(_short(visualize.key_label(inv.key), 60), len(keys)))
        cols["proc"].append(procs.setdefault(str(inv.process), len(procs)))
        node = visualize.served_by(inv, done)
        cols["node"].append(-1 if node is None else nodes.setdefault(node, len(nodes)))
        err = None if done.error is None else _short(done.error, 120)
        cols["err"].append(-1 if err is None else errs.setdefault(err, len(errs)))
        cols["ans"].append(int(done.type == "fail" and is_answer(done)))
        if values:
            v = done.value if done.type == "ok" else inv.value
            cols["val"].append("" if v is None else _short(v, 40))
    return {**cols, "fnames": list(fs), "keys": list(keys), "procs": list(procs),
            "nodes": list(nodes), "errs": list(errs)}


def is_answer(done: Op) -> bool:
    """A fail that is the system's answer (a cas mismatch), not unavailability. Errors of
    imported histories may be any value (Jepsen's are often vectors)."""
    return done.type == "fail" and isinstance(done.error, str) and done.error in ANSWERED


def by_f(calls: list[visualize.Call], duration_ns: int) -> list[dict[str, Any]]:
    """Per operation ``f``: completions by type, ok and total throughput (per second of the
    run) and the ok latency quantiles in ms -- a slow read path shows apart from writes."""
    rows: dict[str, dict[str, Any]] = {}
    for c in calls:
        row = rows.setdefault(c.invoke.f, {"f": c.invoke.f, "ok": 0, "fail": 0, "info": 0,
                                           "lat": []})
        typ = c.done.type if c.done is not None else "info"
        row[typ] += 1
        if c.done is not None and typ == "ok":
            row["lat"].append((c.done.time - c.invoke.time) / 1e6)
    secs = duration_ns / 1e9
    out = []
    for f in sorted(rows):
        row = rows[f]
        n = row["ok"] + row["fail"] + row["info"]
        out.append({**{k: v for k, v in row.items() if k != "lat"},
                    "per_s": n / secs if secs > 0 else None,
                    "ok_per_s": row["ok"] / secs if secs > 0 else None,
                    "latency_ms": quantiles(row.pop("lat"))})
    return out


def by_error(calls: list[visualize.Call]) -> list[dict[str, Any]]:
    """Fails and infos grouped by ``f``, type and error, most frequent first. A fail whose
    error is the system's answer (a cas mismatch) is marked: it is not an outage."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for c in calls:
        if c.done is None:
            counts[(c.invoke.f, "info", "never completed")] += 1
        elif c.done.type != "ok":
            err = "(no error given)" if c.done.error is None else _short(c.done.error, 160)
            counts[(c.invoke.f, c.done.type, err)] += 1
    return [{"f": f, "type": t, "error": e, "count": n,
             "answer": t == "fail" and e in ANSWERED}
            for (f, t, e), n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]


def stalls(calls: list[visualize.Call], min_s: float = 1.0) -> list[tuple[int, int]]:
    """(start ns, end ns) of every stretch of at least ``min_s`` in which clients kept asking
    and no request was answered (ok, or a fail that is the system's answer), longest first.

    The stretch begins at the first request made after the last answer, so a pause of the
    clients (the quiet period before the final reads) is not a stall."""
    answers = sorted(c.done.time for c in calls if c.done is not None and (
        c.done.type == "ok" or is_answer(c.done)))
    asks = sorted(c.invoke.time for c in calls)
    out: list[tuple[int, int]] = []
    last = asks[0] if asks else 0
    j = 0
    for t in answers + ([max((c.done.time if c.done else c.invoke.time) for c in calls)]
                        if calls else []):
        while j < len(asks) and asks[j] < last:
            j += 1
        if j < len(asks) and asks[j] < t and (t - asks[j]) / 1e9 >= min_s:
            out.append((asks[j], t))
        last = max(last, t)
    return sorted(out, key=lambda s: s[0] - s[1])


def op_counts(ops: list[Op]) -> dict[str, Any]:
    by_type: Counter[str] = Counter()
    by_f: dict[str, Counter[str]] = {}
    nemesis = 0
    for op in ops:
        if op.process == NEMESIS:
            nemesis += op.type == "invoke"
            continue
        if op.type == "invoke":
            continue
        by_type[op.type] += 1
        by_f.setdefault(op.f, Counter())[op.type] += 1
    invokes = sum(1 for op in ops if op.type == "invoke" and op.process != NEMESIS)
    return {"invokes": invokes, "completed": sum(by_type.values()), "by_type": dict(by_type),
            "by_f": {f: dict(c) for f, c in sorted(by_f.items())}, "nemesis": nemesis,
            "pending": invokes - sum(by_type.values())}


def key_counts(calls: list[visualize.Call]) -> dict[str, Counter[str]]:
    """Completions per key and type, for the per-key table."""
    out: dict[str, Counter[str]] = {}
    for c in calls:
        typ = c.done.type if c.done is not None else "info"
        out.setdefault(visualize.key_label(c.invoke.key), Counter())[typ] += 1
    return out


# --------------------------------------------------------------------------- HTML


def esc(v: Any) -> str:
    """HTML-escape any value (non-strings as JSON) for text and attributes."""
    return html.escape(v if isinstance(v, str) else json.dumps(v, default=str), quote=True)


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict) and d:
        out: list[tuple[str, Any]] = []
        for k, v in d.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, d)]


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "?"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_duration(ns: int) -> str:
    s = ns / 1e9
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {int(s % 60)} s"


def _banner(run: Run, duration_ns: int, first_error: bool) -> str:
    v = run.verdict
    t = run.test
    name = t.get("name") or run.dir.parent.name
    facts = [
        ("db", db_label(t)),
        ("workload", _name_of(t.get("workload"))),
        ("nemesis", _name_of(t.get("nemesis", "none"))),
        ("seed", t.get("seed", "?")),
        ("started", _fmt_time(start_wall_time(t))),
        ("duration", _fmt_duration(duration_ns)),
    ]
    facts_html = "".join(
        f"<span class=\"fact\"><b>{esc(k)}</b> {esc(str(val))}</span>" for k, val in facts
    )
    why = {True: "every key's history is linearizable",
           False: _invalid_reason(run),
           "unknown": unknown_reason(run)}[v]
    checked = (run.results or {}).get("checker")
    if isinstance(checked, dict) and checked.get("model") == "set" and v in (True, False):
        why = ("every acknowledged add was read back and every read is explained" if v is True
               else "adds were lost, or reads missed or invented elements: see Set anomalies")
    return (
        f"<header class=\"banner {VERDICT_CLASS[v]}\"><div class=\"verdict\">{VERDICT_TEXT[v]}"
        f"</div><div><h1>{esc(str(name))}</h1><p class=\"why\">{esc(why)}</p>"
        f"<div class=\"facts\">{facts_html}</div></div>"
        f"{visualize.FIRST_ERROR_LINK if first_error else ''}</header>"
    )


def _invalid_reason(run: Run) -> str:
    """Which check found the run invalid: the history, the nodes' own logs, liveness after
    the heal, or several."""
    res = run.results or {}
    checked = res.get("checker") if isinstance(res.get("checker"), dict) else {}
    broken = violated(res.get("node_events") if isinstance(res.get("node_events"), dict) else None)
    live = res.get("liveness") if isinstance(res.get("liveness"), dict) else {}
    reasons = []
    if checked.get("valid") is False:
        reasons.append("a history that no sequential execution explains was found")
    if broken:
        reasons.append(f"the nodes' logs break Raft's safety: {', '.join(broken)}")
    if live.get("valid") is False:
        reasons.append("liveness after the final heal failed: "
                       + liveness.headline(live).removeprefix("FAILED: "))
    return "; ".join(reasons) or "a history that no sequential execution explains was found"


def _liveness_html(result: Any) -> str:
    """results.json's ``liveness``: the verdict, what kept the cluster from converging, and
    each node's last status (role, term, leader, indexes)."""
    if not isinstance(result, dict):
        return ""
    nodes = result.get("nodes") if isinstance(result.get("nodes"), dict) else {}
    named = {p.get("node") for p in result.get("problems") or [] if isinstance(p, dict)}
    cols = ("role", "term", "leader", "applied", "commit", "last_index")
    rows = "".join(
        f"<tr class=\"{'invalid' if n in named else ''}\"><td>{esc(n)}</td>"
        + ("".join(f"<td>{esc(str(st.get(c, '')))}</td>" for c in cols)
           if isinstance(st, dict) else f"<td colspan=\"{len(cols)}\">does not answer</td>")
        + "</tr>" for n, st in sorted(nodes.items(), key=lambda kv: natural(kv[0])))
    problems = "".join(f"<li>{esc(p.get('text'))}</li>" for p in result.get("problems") or []
                       if isinstance(p, dict))
    table = ("<table class=\"grid small\" id=\"liveness-nodes\"><thead><tr><th>node</th>"
             + "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in cols)
             + f"</tr></thead><tbody>{rows}</tbody></table>" if rows else "")
    return ("<section id=\"liveness\"><h2>Liveness after heal</h2>"
            f"<p>{esc(liveness.headline(result))}</p>"
            + (f"<ul class=\"violations\">{problems}</ul>" if problems else "")
            + table + "</section>")


def unknown_reason(run: Run) -> str:
    """Why a run's verdict is "unknown", in the words of its results (or their absence)."""
    res = run.results
    if res is None:
        return "there is no checker result for this run (results.json is missing or broken)"
    checked = res.get("checker") if isinstance(res.get("checker"), dict) else {}
    if res.get("interrupted"):
        return "the run was interrupted (Ctrl-C) before it finished"
    if checked.get("reason"):
        return f"the checker could not decide: {checked['reason']}"
    if checked.get("valid") is True and res.get("errors"):
        return "every key checked out, but the run had errors, so it proves nothing about the rest"
    if checked.get("valid") is True:
        return "every key checked out, but no operation succeeded, so nothing was tested"
    return "the checker could not decide"


def run_problems(run: Run) -> list[str]:
    """What went wrong while the run ran or was read: shown above everything else."""
    res = run.results or {}
    out = list(run.problems)
    out += [f"run error: {e}" for e in res.get("errors") or []]
    if res.get("partial"):
        out.append("the history is partial: the run did not finish normally")
    return out


def _perf_html(run: Run) -> str:
    """Availability and latency quantiles from results.json (the tester's summary)."""
    res = run.results or {}
    stats = res.get("stats") if isinstance(res.get("stats"), dict) else {}
    perf = res.get("perf") if isinstance(res.get("perf"), dict) else {}
    av = stats.get("availability") if isinstance(stats.get("availability"), dict) else {}
    cells = []
    for label, v in (("available (ok / all)", av.get("overall")),
                     ("during faults", av.get("during_faults")),
                     ("without faults", av.get("without_faults"))):
        if isinstance(v, (int, float)):
            cells.append((label, f"{v:.1%}"))
    if isinstance(perf.get("ops_per_s"), (int, float)):
        cells.append(("ops/s", f"{perf['ops_per_s']:,.1f}"))
    q = perf.get("latency_all_ms") if isinstance(perf.get("latency_all_ms"), dict) else {}
    for k, label in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"), ("1", "max")):
        if isinstance(q.get(k), (int, float)):
            cells.append((f"{label} latency", f"{q[k]:,.2f} ms"))
    checked = res.get("checker") if isinstance(res.get("checker"), dict) else {}
    if isinstance(checked.get("time_s"), (int, float)):
        model = checked.get("model")
        cells.append((f"to check{f' ({model})' if isinstance(model, str) else ''}",
                      f"{checked['time_s']:,.2f} s"))
    if not cells:
        return ""
    return "<div class=\"cards perf\">" + "".join(
        f"<div class=\"card\"><div class=\"n\">{esc(v)}</div><div>{esc(k)}</div></div>"
        for k, v in cells) + "</div>"


def _links(run: Run) -> str:
    items = []
    for fname, label in (("history.jsonl", "raw history"), ("results.json", "results"),
                         ("test.json", "configuration"), ("raftlab.log", "tester log")):
        if (run.dir / fname).exists():
            items.append(f"<a href=\"{esc(fname)}\">{esc(label)}</a>")
    for node, files in run.log_files.items():
        for f in files:
            items.append(f"<a href=\"{esc(f)}\">{esc(node)}: {esc(Path(f).name)}</a>")
    return "<nav class=\"links\">" + " · ".join(items) + "</nav>" if items else ""


def _counts_html(counts: dict[str, Any], faults: Faults, perf: str, table: str) -> str:
    bt = counts["by_type"]
    cards = [
        ("operations", counts["invokes"], ""),
        ("ok", bt.get("ok", 0), "ok"),
        ("fail", bt.get("fail", 0), "fail"),
        ("info (indeterminate)", bt.get("info", 0), "info"),
        ("never completed", counts["pending"], "info"),
        ("faults", len(faults.intervals) + len(faults.points), ""),
    ]
    html_cards = "".join(
        f"<div class=\"card {c}\"><div class=\"n\">{n:,}</div><div>{esc(label)}</div></div>"
        for label, n, c in cards
    )
    return (f"<section><h2>Counts</h2><div class=\"cards\">{html_cards}</div>{perf}{table}"
            "</section>")


def _ms(v: Any) -> str:
    return f"{v:,.1f}" if isinstance(v, (int, float)) else "—"


def _by_f_html(rows: list[dict[str, Any]]) -> str:
    """Counts, throughput and ok latency per operation ``f``."""
    if not rows:
        return ""
    body = "".join(
        f"<tr><td><code>{esc(r['f'])}</code></td><td>{r['ok']:,}</td><td>{r['fail']:,}</td>"
        f"<td>{r['info']:,}</td><td>{_ms(r['per_s'])}</td><td>{_ms(r['ok_per_s'])}</td>"
        + "".join(f"<td>{_ms(r['latency_ms'].get(q))}</td>" for q in ("0.5", "0.95", "0.99", "1"))
        + "</tr>" for r in rows)
    return _table("By operation", "by-f", ("f", "ok", "fail", "info", "ops/s", "ok/s", "p50 ms",
                                           "p95 ms", "p99 ms", "max ms"), body)


def _table(title: str, id_: str, heads: tuple[str, ...], body: str) -> str:
    """A titled small table of the counts section."""
    return (f"<h3>{esc(title)}</h3><table class=\"grid small\" id=\"{id_}\"><thead><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in heads)
            + f"</tr></thead><tbody>{body}</tbody></table>")


#: rows of the error table (results.json and the history keep every one)
ERROR_ROWS = 40


def _errors_html(rows: list[dict[str, Any]]) -> str:
    """Fails and infos by error: what the clients were told, and which of it was an outage."""
    if not rows:
        return ""
    body = "".join(
        f"<tr class=\"{'answer' if r['answer'] else r['type']}\"><td><code>{esc(r['f'])}</code>"
        f"</td><td>{esc(r['type'])}</td><td><code>{esc(r['error'])}</code></td>"
        f"<td>{r['count']:,}</td><td>"
        + ("an answer (the precondition did not hold), not an outage" if r["answer"] else
           "unavailable: it definitely did not happen" if r["type"] == "fail" else
           "indeterminate: it may or may not have happened")
        + "</td></tr>" for r in rows[:ERROR_ROWS])
    more = (f"<p class=\"hint\">{len(rows) - ERROR_ROWS} rarer errors are not listed.</p>"
            if len(rows) > ERROR_ROWS else "")
    return _table("Fails and infos by error", "errors",
                  ("f", "type", "error", "count", "what it means"), body) + more


def _stalls_html(found: list[tuple[int, int]], faults: Faults) -> str:
    """The longest stretches without an answer, and the faults in force during each."""
    if not found:
        return ("<p class=\"hint\" id=\"stalls\">No stall: the clients never waited 1 s or "
                "more without any answer.</p>")
    items = []
    for a, b in found[:5]:
        during = sorted({iv["kind"] for iv in faults.intervals
                         if iv["applying"] < b and iv["end"] > a})
        items.append(f"<li><b>{(b - a) / 1e9:.2f} s</b> without an answer, "
                     f"{a / 1e9:.3f} – {b / 1e9:.3f} s"
                     + (f" (faults in force: {esc(', '.join(during))})" if during else
                        " (no fault in force)") + "</li>")
    return (f"<p id=\"stalls\">{len(found)} stall{'s' if len(found) != 1 else ''} of 1 s or "
            f"more (clients asking, nothing answered); the longest:</p><ul>{''.join(items)}</ul>")


def _keys_html(run: Run, parts: list[visualize.Partition], kc: dict[str, Counter[str]],
               drawn: set[str]) -> str:
    verdicts = {p.label: p for p in parts}
    labels = list(dict.fromkeys(list(verdicts) + list(kc)))
    order = {False: 0, "unknown": 1, True: 2}
    overall = run.verdict

    def verdict(label: str) -> Any:
        p = verdicts.get(label)
        if p is not None:
            return p.valid
        # a key the checker did not list separately: only an overall "valid" decides it
        return True if overall is True else "unknown"

    labels.sort(key=lambda k: (order[verdict(k)], natural(k)))
    rows = []
    for k in labels:
        v = verdict(k)
        c = kc.get(k, Counter())
        p = verdicts.get(k)
        link = ""
        if p is not None and p.valid is False and k in drawn:
            link = f"<a href=\"#lin-{esc(visualize.anchor(k))}\">show the failure</a>"
        elif p is not None and p.note:
            link = esc(p.note)
        rows.append(
            f"<tr class=\"{VERDICT_CLASS[v]}\"><td><code>{esc(k)}</code></td>"
            f"<td><span class=\"pill {VERDICT_CLASS[v]}\">{VERDICT_TEXT[v]}</span></td>"
            f"<td>{c.get('ok', 0):,}</td><td>{c.get('fail', 0):,}</td><td>{c.get('info', 0):,}</td>"
            f"<td>{link}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<section><h2>Per-key verdicts</h2><div class=\"scroll-y\"><table class=\"grid\" id=\"keys\">"
        "<thead><tr><th>key</th><th>verdict</th><th>ok</th><th>fail</th><th>info</th><th></th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


#: anomalies listed per key in the report (results.json keeps the counts of all of them)
ANOMALY_ROWS = 200


def _anomalies_html(checked: Any) -> str:
    """The elements behind a set or list-append verdict, by name: what was lost, stale,
    reordered or never written, per key, with the counts of the set checker."""
    if not isinstance(checked, dict):
        return ""
    model = checked.get("model")
    rows = []
    for p in checked.get("partitions") or []:
        if not isinstance(p, dict) or p.get("valid") is not False:
            continue
        found = ((p.get("set") or {}).get("details")
                 or (p.get("violation") or {}).get("anomalies") or [])
        for a in found[: max(0, ANOMALY_ROWS - len(rows))]:
            rows.append(f"<tr><td><code>{esc(p.get('key'))}</code></td><td>{esc(a.get('kind'))}"
                        f"</td><td><code>{esc(json.dumps(a.get('element'), default=str))}</code>"
                        f"</td><td>{esc(a.get('text'))}</td></tr>")
    counts = ""
    s = checked.get("set")
    if isinstance(s, dict):
        counts = ("<p>" + ", ".join(
            f"{esc(kind.replace('_', '-'))}: <b>{int((s.get(kind) or {}).get('count', 0)):,}</b>"
            for kind in ("lost", "stale", "never_written"))
            + f" (of {int(s.get('acknowledged', 0)):,} acknowledged adds, "
              f"{int(s.get('attempted', 0)):,} attempted)</p>")
    if not rows and not counts:
        return ""
    title = "Set anomalies" if model == "set" else "List anomalies"
    table = ("<div class=\"scroll-y\"><table class=\"grid small\" id=\"anomalies\"><thead><tr>"
             "<th>key</th><th>anomaly</th><th>element</th><th>what happened</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table></div>" if rows else "")
    return f"<section id=\"anomalies\"><h2>{title}</h2>{counts}{table}</section>"


def _fault_table(faults: Faults) -> str:
    """Every fault with when it was in force and what it did to each node."""
    if not faults.intervals and not faults.points:
        return ""
    rows = []
    items = [(iv["start"], iv) for iv in faults.intervals] + [(p["time"], p) for p in faults.points]
    for n, (_, f) in enumerate(sorted(items, key=lambda x: x[0]), start=1):
        when = (f"{f['start'] / 1e9:.3f} – {f['stopping'] / 1e9:.3f} s" if "stopping" in f
                else f"{f['time'] / 1e9:.3f} s")
        nodes = "; ".join(f"{k}: {v}" for k, v in sorted(f["nodes"].items())) or "—"
        rows.append(
            f"<tr><td>{n}</td><td><span class=\"sw\" style=\"background:{esc(f['colour'])}\">"
            f"</span>{esc(f['kind'])}</td><td>{esc(when)}</td><td>{esc(nodes)}</td>"
            f"<td><code>{esc(_short(f['detail'], 300))}</code></td></tr>")
    return (
        "<details class=\"faults\"><summary>Fault schedule: "
        f"{len(rows)} fault{'s' if len(rows) != 1 else ''}</summary><table class=\"grid small\" "
        "id=\"faults\"><thead><tr><th>#</th><th>fault</th><th>in force</th><th>nodes</th>"
        f"<th>what the nemesis did</th></tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def _config_html(run: Run) -> str:
    rows = "".join(
        f"<tr><td><code>{esc(k)}</code></td><td><code>{esc(_short(v, 400))}</code></td></tr>"
        for k, v in _flatten(run.test)
        if k
    )
    return (
        "<section><details><summary><h2>Configuration</h2></summary>"
        f"<table class=\"grid small\" id=\"config\"><tbody>{rows}</tbody></table></details></section>"
    )


#: The failure views of one report share this many bytes of embedded data; keys beyond it are
#: listed but not drawn (``raftlab check HISTORY --html`` draws any of them).
VIEW_BUDGET = 8_000_000


def failure_views(parts: list[visualize.Partition], ops: list[Op]) -> tuple[list[dict], list[str]]:
    """View data for the non-linearizable keys, in key order, within :data:`VIEW_BUDGET`."""
    views: list[dict[str, Any]] = []
    undrawn: list[str] = []
    used = 0
    hist = visualize.HistoryIndex(ops)
    for p in sorted((p for p in parts if p.valid is False), key=lambda p: natural(p.label)):
        if used >= VIEW_BUDGET:
            undrawn.append(p.label)
            continue
        view = visualize.view_data(p, hist)
        used += len(json.dumps(view, default=str))
        views.append(view)
    return views, undrawn


def render_report(run: Run) -> str:
    """The report page of a loaded run."""
    ops = run.ops
    end_ns = max((op.time for op in ops), default=0)
    names = node_names(run)
    faults = fault_intervals(ops, names, end_ns, run.test.get("nemesis_colors"))
    counts = op_counts(ops)
    calls = visualize.pair_ops(ops)
    checker_result = (run.results or {}).get("checker")
    parts = visualize.partitions(checker_result)
    is_set = isinstance(checker_result, dict) and checker_result.get("model") == "set"
    # the set checker does no search: its keys have no linearization to draw
    views, undrawn = failure_views([] if is_set else parts, ops)
    found_stalls = stalls(calls)
    data = {
        "end": end_ns // 1000,
        "stalls": [[a // 1000, b // 1000] for a, b in found_stalls],
        "concurrency": run.test.get("concurrency") if isinstance(
            run.test.get("concurrency"), int) else None,
        "ops": op_columns(calls),
        "faults": [[iv["applying"] // 1000, iv["start"] // 1000, iv["stopping"] // 1000,
                    iv["end"] // 1000, iv["kind"], iv["colour"], iv["detail"]]
                   for iv in faults.intervals],
        "points": [[p["time"] // 1000, p["kind"], p["colour"], p["detail"]] for p in faults.points],
        "palette": faults.palette,
        "lanes": node_lanes(run, faults, end_ns),
        "lin": views,
        # where each drawn failure happened: [invocation µs, key], marked on the plots
        "errors": [[v["ops"][v["fail"]][1], v["key"]] for v in views if v["fail"] is not None],
    }
    problems = "".join(f"<li>{esc(p)}</li>" for p in run_problems(run))
    lin_section = ""
    if views:
        lin_section = (
            "<section id=\"failures\"><h2>Linearizability failures</h2>"
            "<p class=\"hint\">One row per process; bars run from invocation to completion. "
            "Green bars are the longest linearizable prefix, numbered in order with their "
            "linearization points; the red bar is the operation that cannot be linearized "
            "after it. Hover or click a bar for its details and the state after each step.</p>"
            "<div id=\"lin-views\"></div>"
            + (f"<p class=\"hint\">{len(undrawn)} more non-linearizable keys are not drawn here, "
               f"to keep this page small: {esc(', '.join(undrawn[:50]))}"
               f"{' …' if len(undrawn) > 50 else ''}. <code>raftlab check history.jsonl --html "
               "FILE</code> draws them all.</p>" if undrawn else "")
            + "</section>"
        )
    body = (
        _banner(run, end_ns, bool(views))
        + "<main>"
        + _links(run)
        + (f"<section class=\"problems\"><h2>Problems reading this run</h2><ul>{problems}</ul></section>"
           if problems else "")
        + _counts_html(counts, faults, _perf_html(run),
                       _by_f_html(by_f(calls, end_ns)) + _errors_html(by_error(calls)))
        + _keys_html(run, parts, key_counts(calls), {v["key"] for v in views})
        + _anomalies_html(checker_result)
        + lin_section
        + node_events_section((run.results or {}).get("node_events"))
        + _liveness_html((run.results or {}).get("liveness"))
        + "<section><h2>Availability over time</h2><div class=\"legend\" id=\"av-legend\"></div>"
          "<div class=\"plot\"><canvas id=\"availability\"></canvas></div>"
        + _stalls_html(found_stalls, faults)
        + "<h2>Latency</h2><div class=\"legend\" id=\"lat-legend\"></div>"
          "<div class=\"plot\"><canvas id=\"latency\"></canvas></div>"
          "<h2>Throughput</h2><div class=\"legend\" id=\"tp-legend\"></div>"
          "<div class=\"plot\"><canvas id=\"throughput\"></canvas></div>"
          "<div class=\"legend\" id=\"fault-legend\"></div></section>"
        + "<section><h2>Cluster timeline</h2><div class=\"legend\" id=\"tl-legend\"></div>"
          "<div class=\"plot\"><canvas id=\"timeline\"></canvas></div>"
        + _fault_table(faults)
        + "</section>"
        + "<section id=\"ops\"><h2>Operation timeline</h2><p class=\"hint\">Every operation "
          "of the run, as Jepsen's timeline: one column per client worker, time running down, "
          "a bar from invocation to completion (blue ok, red fail, orange info). Faults are "
          "the bands on the left. Hover a bar for its process, key, value, node and error.</p>"
          "<div class=\"zoom\"><button type=\"button\" id=\"ops-out\">− zoom out</button> "
          "<button type=\"button\" id=\"ops-in\">+ zoom in</button> <span id=\"ops-scale\">"
          "</span></div><div class=\"ops-scroll\"><canvas id=\"optimeline\"></canvas></div>"
          "</section>"
        + _config_html(run)
        + "</main><div id=\"tooltip\" role=\"tooltip\"></div>"
    )
    scripts = (
        f"<script type=\"application/json\" id=\"report-data\">{visualize.json_for_script(data)}</script>"
        f"<script>{visualize.SCRIPT}</script><script>{_template('report.js')}</script>"
    )
    name = run.test.get("name") or run.dir.parent.name
    return visualize.page(f"raftlab: {name} {VERDICT_TEXT[run.verdict]}", body,
                visualize.STYLE + _template("report.css"), scripts)


def write_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``report.html`` into the run folder and return its path."""
    run = load_run(run_dir)
    return store.write_atomic(run.dir / "report.html", [render_report(run)])


# --------------------------------------------------------------------------- run indexes


@dataclass
class RunSummary:
    """One line of an index page."""

    dir: Path | None  # None: the run never got a folder (e.g. its fleet was missing)
    name: str
    started: str
    verdict: Any
    db: str
    workload: str
    nemesis: str
    seed: str
    error: str = ""
    bad_keys: list[str] = field(default_factory=list)
    #: liveness after heal, when it failed: the headline (tester.liveness)
    liveness: str = ""

    def href(self, base: Path) -> str | None:
        """The link to the run's report (or its folder) relative to ``base``."""
        if self.dir is None:
            return None
        target = self.dir / "report.html"
        if not target.exists():
            return os.path.relpath(self.dir, base).replace(os.sep, "/") + "/"
        href = os.path.relpath(target, base).replace(os.sep, "/")
        return href + "#first-error" if self.verdict is False and self.bad_keys else href


_STAMP = re.compile(r"^\d{8}T\d{6}")


def summarize(run_dir: str | os.PathLike[str], error: str = "") -> RunSummary:
    """The index line of a run folder, from test.json and results.json only (cheap)."""
    d = Path(run_dir)
    problems: list[str] = []
    test = _read_json(d / "test.json", problems) if d.is_dir() else None
    res = _read_json(d / "results.json", problems) if d.is_dir() else None
    test = test if isinstance(test, dict) else {}
    res = res if isinstance(res, dict) else {}
    ts = start_wall_time(test)
    return RunSummary(
        dir=d,
        name=str(test.get("name") or d.parent.name),
        started=_fmt_time(ts) if ts else d.name,
        verdict=verdict_of(res.get("valid")),
        db=db_label(test),
        workload=_name_of(test.get("workload")),
        nemesis=_name_of(test.get("nemesis", "none")),
        seed=str(test.get("seed", "")),
        error=error or "; ".join(str(e) for e in res.get("errors") or []),
        bad_keys=sorted((p.label for p in visualize.partitions(res.get("checker"))
                         if p.valid is False), key=natural),
        liveness=liveness.headline(live) if isinstance(live := res.get("liveness"), dict)
        and live.get("valid") is False else "",
    )


def find_runs(store: str | os.PathLike[str]) -> list[Path]:
    """Run folders under a store (``<test>/<timestamp>/``), newest first; ``latest`` skipped."""
    root = Path(store)
    runs = []
    if not root.is_dir():
        return runs
    for test_dir in root.iterdir():
        if not test_dir.is_dir() or test_dir.is_symlink():
            continue
        for d in test_dir.iterdir():
            if d.is_dir() and not d.is_symlink() and (_STAMP.match(d.name) or (d / "test.json").exists()):
                runs.append(d)
    runs.sort(key=lambda p: (p.name, p.parent.name), reverse=True)
    return runs


def render_index(title: str, runs: list[RunSummary], base: Path, extra: str = "") -> str:
    """An index page of runs coloured by verdict, with links relative to ``base``."""
    tally = Counter(VERDICT_CLASS[r.verdict] for r in runs)
    rows = []
    for r in runs:
        cls = VERDICT_CLASS[r.verdict]
        href = r.href(base)
        name = f"<a href=\"{esc(href)}\">{esc(r.name)}</a>" if href else esc(r.name)
        bad = ", ".join(r.bad_keys[:8]) + (" …" if len(r.bad_keys) > 8 else "")
        rows.append(
            f"<tr class=\"{cls}\"><td><span class=\"pill {cls}\">{VERDICT_TEXT[r.verdict]}</span></td>"
            f"<td>{name}</td><td>{esc(r.started)}</td>"
            f"<td>{esc(r.db)}</td><td>{esc(r.workload)}</td><td>{esc(r.nemesis)}</td>"
            f"<td>{esc(r.seed)}</td><td>{esc(bad)}</td><td>{esc(r.error)}</td></tr>"
        )
    summary = " ".join(
        f"<span class=\"pill {c}\">{tally.get(c, 0)} {c}</span>" for c in ("invalid", "unknown", "valid")
    )
    worst = "invalid" if tally.get("invalid") else "unknown" if tally.get("unknown") else "valid"
    body = (
        f"<header class=\"banner {worst if runs else 'unknown'}\"><div class=\"verdict\">"
        f"{len(runs)} run{'s' if len(runs) != 1 else ''}</div><div><h1>{esc(title)}</h1>"
        f"<div class=\"facts\">{summary}</div></div></header><main>{extra}"
        "<table class=\"grid\" id=\"runs\"><thead><tr><th>verdict</th><th>test</th><th>started</th>"
        "<th>db</th><th>workload</th><th>nemesis</th><th>seed</th><th>non-linearizable keys</th>"
        "<th>errors</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></main>"
    )
    return visualize.page(title, body, _template("report.css"))
