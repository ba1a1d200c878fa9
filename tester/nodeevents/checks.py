"""Raft's safety properties, checked on the node events every node logged during a run.

Linearizability only sees what clients happened to read. Many Raft bugs -- a wrong vote rule,
a follower that commits past what it matched, a quorum miscount, a restart that forgets
applied entries -- diverge the nodes' logs or state machines long before (or without ever) a
read returning a wrong value. The node events (docs/node-events.md: JSON lines with
``"event"``: ``started``, ``role``, ``election``, ``applied``, ``commit``, ``snapshot``) show
that directly. After a run, across every node and every process incarnation:

* **election-safety** -- at most one leader per term (Raft §5.2);
* **follower-leader** -- a node follows, in term T, only the node that led term T (not a
  stale leader of an earlier term);
* **vote-once** -- a node grants at most one vote per term, also across restarts (the vote is
  durable; a wiped data directory starts a new member);
* **election-quorum** -- a leader won with the votes of a majority of the voters, and each
  voter it counted logged that vote;
* **commit-rule** -- a leader commits an index only once a majority of the voters hold it,
  and only an entry of its own term (Figure 8);
* **ack-rule** -- a node answers a client's write ``ok`` only when the entry applied at the
  proposal's index is the proposal (same term), not another leader's entry;
* **state-machine-safety** -- every node that applied index i applied the same entry (term and
  digest) there (§5.4.3), and got the same result from its state machine (the state machines
  did not diverge, e.g. after a snapshot or session restore);
* **commit-monotonic** -- a process's commit index never goes back;
* **applied-contiguous** -- a process applies i+1 after i, from where it started (its restored
  snapshot) or after a snapshot it installed, with no gap;
* **durability** -- a restarted node recovers a log at least up to what it applied before
  (applied entries were persisted, unless the data directory was wiped: ``fresh``);
* **leader-completeness** -- an entry applied by a node while in term c (so committed by term
  c) is in the log of every leader of a later term: that leader won with a log reaching its
  index with a last term no lower than the entry's (§5.4).

Each violation names the nodes, the index, the terms, the digests and the commands logged.
Logs with no node events (e.g. etcd's) give no verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROPERTIES = ("election-safety", "follower-leader", "vote-once", "election-quorum", "commit-rule", "ack-rule",
              "state-machine-safety", "commit-monotonic", "applied-contiguous", "durability",
              "leader-completeness")
MAX_PER_PROPERTY = 20  # violations listed per property (all are counted)
EVENTS = frozenset({"started", "role", "election", "vote", "applied", "commit", "snapshot"})


@dataclass
class Applied:
    """One applied entry as logged: where, in which process and term, and what."""

    node: str
    incarnation: int
    index: int
    term: int
    digest: str
    result: str | None
    command: Any
    node_term: int | None  # the applying node's current term (None: not logged)
    at: float
    reapplied: bool = False  # applied by this node in an earlier incarnation already

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"node": self.node, "term": self.term, "digest": self.digest}
        if self.result is not None:
            d["result"] = self.result
        if self.command is not None:
            d["command"] = self.command
        return d


@dataclass
class Findings:
    """Violations per property, capped for results.json but counted in full."""

    listed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, prop: str, message: str, at: float, **details: Any) -> None:
        self.counts[prop] = self.counts.get(prop, 0) + 1
        rows = self.listed.setdefault(prop, [])
        if len(rows) < MAX_PER_PROPERTY:
            rows.append({"property": prop, "message": message, "at": at, **details})


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _ts(d: dict[str, Any]) -> float:
    t = d.get("ts")
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0


def read_events(nodes_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """node -> its node events in log order, from every JSON line under ``nodes_dir/*/``.

    Log order, not timestamp order: timestamps come from node clocks that the nemesis skews.
    Lines that are not JSON objects with a known ``event`` (text logs, a line torn by kill -9)
    are skipped.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    if not nodes_dir.is_dir():
        return out
    for path in sorted(nodes_dir.glob("*/*")):
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"event"' not in line:
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and d.get("event") in EVENTS:
                    out.setdefault(str(d.get("node", path.parent.name)), []).append(d)
    return out


def _describe_command(c: Any) -> str:
    if isinstance(c, dict):
        return " ".join(f"{k}={json.dumps(v)}" for k, v in c.items())
    return json.dumps(c)


class _NodeScan:
    """One node's events, walked once: per-process checks, and what the cross-node checks need."""

    def __init__(self, node: str, events: list[dict[str, Any]], found: Findings):
        self.node, self.found = node, found
        self.applied: list[Applied] = []
        self.won: list[dict[str, Any]] = []
        self.leader_terms: dict[int, float] = {}
        self.followed: dict[tuple[int, str], float] = {}  # (term, leader) -> first seen
        self.votes: set[tuple[int, str]] = set()  # (term, candidate) this node voted for
        self._voted: dict[int, tuple[str, float]] = {}  # term -> first candidate (this life)
        self.incarnations = 0
        self.malformed = 0
        self._scan(events)

    def _scan(self, events: list[dict[str, Any]]) -> None:
        inc = 0
        next_index: int | None = None  # the index this process must apply next
        commit: int | None = None
        earlier_max = 0  # highest index applied by earlier incarnations
        this_max = 0
        for ev in events:
            kind, at = ev["event"], _ts(ev)
            if kind == "started":
                if self.incarnations or this_max:
                    inc += 1
                self.incarnations = inc + 1
                earlier_max = max(earlier_max, this_max)
                this_max = 0
                commit = None
                restored = _int(ev.get("applied"))
                if restored is None:
                    restored = _int(ev.get("snapshot_index"))
                next_index = None if restored is None else restored + 1
                self._check_durable(ev, earlier_max, at)
                if ev.get("fresh") is True:
                    earlier_max = 0  # a wiped data directory: a new member, nothing to keep
                    self._voted = {}
            elif kind == "role":
                term = _int(ev.get("term"))
                if ev.get("role") == "leader" and term is not None:
                    self.leader_terms.setdefault(term, at)
                elif term is not None and isinstance(ev.get("leader"), str):
                    self.followed.setdefault((term, ev["leader"]), at)
            elif kind == "election":
                term = _int(ev.get("term"))
                if ev.get("kind") == "won" and term is not None:
                    self.won.append(ev)
            elif kind == "vote":
                term = _int(ev.get("term"))
                if term is not None and isinstance(ev.get("for"), str):
                    self._vote(term, ev["for"], at)
            elif kind == "snapshot":
                idx = _int(ev.get("index"))
                if ev.get("kind") in ("installed", "restored") and idx is not None:
                    if next_index is not None and idx < next_index - 1:
                        self.found.add(
                            "applied-contiguous",
                            f"{self.node} installed a snapshot at index {idx} after applying "
                            f"up to {next_index - 1}: its state went back", at,
                            nodes=[self.node], index=idx)
                    next_index = idx + 1
                    this_max = max(this_max, idx)
            elif kind in ("applied", "commit"):
                if kind == "commit":
                    self._check_commit_rule(ev, at)
                c = _int(ev.get("commit") if kind == "applied" else ev.get("index"))
                if c is not None:
                    if commit is not None and c < commit:
                        self.found.add(
                            "commit-monotonic",
                            f"{self.node}'s commit index went back from {commit} to {c} "
                            "within one process", at, nodes=[self.node], index=c, previous=commit)
                    commit = c if commit is None else max(commit, c)
                if kind == "applied":
                    next_index, this_max = self._take_applied(ev, inc, next_index, earlier_max,
                                                              this_max)

    def _vote(self, term: int, candidate: str, at: float) -> None:
        self.votes.add((term, candidate))
        first = self._voted.setdefault(term, (candidate, at))[0]
        if first != candidate:
            self.found.add(
                "vote-once",
                f"{self.node} voted for {first} and then for {candidate} in term {term}",
                at, nodes=sorted({self.node, first, candidate}), term=term,
                candidates=[first, candidate])

    def _check_commit_rule(self, ev: dict[str, Any], at: float) -> None:
        index, term = _int(ev.get("index")), _int(ev.get("term"))
        acks, voters = ev.get("acks"), ev.get("voters")
        if index is None or term is None:
            return
        entry_term = _int(ev.get("entry_term"))
        if entry_term is not None and entry_term != term:
            self.found.add(
                "commit-rule",
                f"{self.node}, leader of term {term}, committed index {index} whose entry has "
                f"term {entry_term}: a leader commits by counting only entries of its own term",
                at, nodes=[self.node], index=index, term=term, entry_term=entry_term)
        if isinstance(acks, list) and isinstance(voters, list) and voters:
            held = sorted(set(map(str, acks)) & set(map(str, voters)))
            if len(held) < len(voters) // 2 + 1:
                self.found.add(
                    "commit-rule",
                    f"{self.node}, leader of term {term}, committed index {index} held by "
                    f"{len(held)} of {len(voters)} voters ({', '.join(held) or 'none'}): "
                    "not a majority", at, nodes=[self.node], index=index, term=term,
                    acks=held, voters=sorted(map(str, voters)))

    def _check_durable(self, ev: dict[str, Any], earlier_max: int, at: float) -> None:
        last = _int(ev.get("last_index"))
        snap = _int(ev.get("snapshot_index")) or 0
        if last is None or ev.get("fresh") is True:
            return
        recovered = max(last, snap)
        if recovered < earlier_max:
            self.found.add(
                "durability",
                f"{self.node} applied up to index {earlier_max} before it restarted, but "
                f"recovered a log that ends at {recovered}: applied entries were lost", at,
                nodes=[self.node], index=earlier_max, recovered=recovered)

    def _take_applied(self, ev: dict[str, Any], inc: int, next_index: int | None,
                      earlier_max: int, this_max: int) -> tuple[int | None, int]:
        at = _ts(ev)
        node_term = _int(ev.get("term"))
        entries = ev.get("entries")
        if not isinstance(entries, list):
            self.malformed += 1
            return next_index, this_max
        for rec in entries:
            if not (isinstance(rec, list) and len(rec) >= 3 and _int(rec[0]) is not None
                    and _int(rec[1]) is not None and isinstance(rec[2], str)):
                self.malformed += 1
                continue
            index, term = rec[0], rec[1]
            result = rec[3] if len(rec) > 3 and isinstance(rec[3], str) else None
            command = rec[4] if len(rec) > 4 else None
            acked = _int(rec[5]) if len(rec) > 5 else None
            if acked is not None and acked != term:
                self.found.add(
                    "ack-rule",
                    f"{self.node} answered ok to the write it proposed at index {index} in term "
                    f"{acked}, but the entry applied there is of term {term} "
                    f"({_describe_command(command)})", at, nodes=[self.node], index=index,
                    term=term, proposal_term=acked)
            if next_index is not None and index != next_index:
                what = "skipped to" if index > next_index else "went back to"
                self.found.add(
                    "applied-contiguous",
                    f"{self.node} applied index {next_index - 1} and then {what} {index} "
                    "within one process", at, nodes=[self.node], index=index,
                    expected=next_index)
            next_index = index + 1
            this_max = max(this_max, index)
            self.applied.append(Applied(self.node, inc, index, term, rec[2], result, command,
                                        node_term, at, reapplied=index <= earlier_max))
        return next_index, this_max


def _state_machine_safety(applied: list[Applied], found: Findings) -> None:
    by_index: dict[int, dict[tuple[int, str], list[Applied]]] = {}
    for a in applied:
        by_index.setdefault(a.index, {}).setdefault((a.term, a.digest), []).append(a)
    for index in sorted(by_index):
        variants = by_index[index]
        if len(variants) > 1:
            rows = [_variant(v) for v in variants.values()]
            text = "; ".join(f"{', '.join(r['nodes'])} applied term {r['term']} "
                             f"[{r['digest']}] {_describe_command(r.get('command'))}" for r in rows)
            found.add("state-machine-safety",
                      f"index {index}: different entries applied: {text}",
                      min(a.at for v in variants.values() for a in v), index=index,
                      nodes=sorted({a.node for v in variants.values() for a in v}),
                      entries=rows)
            continue
        [(entry, apps)] = variants.items()
        results: dict[str, list[Applied]] = {}
        for a in apps:
            if a.result is not None:
                results.setdefault(a.result, []).append(a)
        if len(results) > 1:
            rows = [{**_variant(v), "result": r} for r, v in results.items()]
            text = "; ".join(f"{', '.join(r['nodes'])} got result [{r['result']}]" for r in rows)
            found.add("state-machine-safety",
                      f"index {index}: the same entry (term {entry[0]}, "
                      f"{_describe_command(apps[0].command)}) gave different results, so the "
                      f"state machines diverged: {text}", min(a.at for a in apps),
                      index=index, nodes=sorted({a.node for a in apps}), entries=rows)


def _variant(apps: list[Applied]) -> dict[str, Any]:
    a = apps[0]
    d = {"nodes": sorted({x.node for x in apps}), "term": a.term, "digest": a.digest}
    if a.command is not None:
        d["command"] = a.command
    return d


def _election_quorum(scans: list[_NodeScan], found: Findings) -> None:
    """Each won election: a majority of the voters' votes, each one logged by its voter (when
    that voter logs votes at all)."""
    logs_votes = {s.node for s in scans if s.votes}
    votes = {(s.node, term, cand) for s in scans for term, cand in s.votes}
    for s in scans:
        for ev in s.won:
            term, counted, voters = int(ev["term"]), ev.get("votes"), ev.get("voters")
            if not (isinstance(counted, list) and isinstance(voters, list) and voters):
                continue
            granted = sorted(set(map(str, counted)) & set(map(str, voters)))
            if len(granted) < len(voters) // 2 + 1:
                found.add("election-quorum",
                          f"{s.node} won term {term} with {len(granted)} of {len(voters)} "
                          f"voters' votes ({', '.join(granted) or 'none'}): not a majority",
                          _ts(ev), nodes=[s.node], term=term, votes=granted,
                          voters=sorted(map(str, voters)))
            unbacked = sorted(v for v in granted if v != s.node and v in logs_votes
                              and (v, term, s.node) not in votes)
            if unbacked:
                found.add("election-quorum",
                          f"{s.node} won term {term} counting votes from "
                          f"{', '.join(unbacked)}, which never voted for it in term {term}",
                          _ts(ev), nodes=sorted({s.node, *unbacked}), term=term,
                          votes=granted, unbacked=unbacked)


def _leader_completeness(applied: list[Applied], won: list[tuple[str, dict[str, Any]]],
                         found: Findings) -> None:
    """An entry applied at node term c was committed by term c: every leader of a later term
    must have won with it in its log. Re-applications after a restart prove nothing new."""
    committed_by: dict[tuple[int, int, str], tuple[int, Applied]] = {}
    for a in applied:
        if a.node_term is None or a.reapplied:
            continue
        c = max(a.node_term, a.term)
        key = (a.index, a.term, a.digest)
        if key not in committed_by or c < committed_by[key][0]:
            committed_by[key] = (c, a)
    leaders = []
    for node, ev in won:
        li, lt = _int(ev.get("last_index")), _int(ev.get("last_term"))
        if li is not None and lt is not None:
            leaders.append((int(ev["term"]), node, li, lt, _ts(ev)))
    leaders.sort()
    for (index, term, _digest), (c, a) in sorted(committed_by.items()):
        for lterm, node, li, lt, at in leaders:
            if lterm <= c:
                continue
            if li < index or lt < term or (li == index and lt != term):
                found.add(
                    "leader-completeness",
                    f"{node} became leader of term {lterm} with a log ending at index {li} "
                    f"(term {lt}), without the entry at index {index} (term {term}, "
                    f"{_describe_command(a.command)}) that {a.node} had applied in term {c}",
                    at, index=index, nodes=sorted({node, a.node}), leader=node, term=lterm,
                    leader_log={"last_index": li, "last_term": lt},
                    entry={**a.describe(), "committed_by_term": c})
                break  # the first leader that lacks it says it; later ones repeat it


def check_events(events: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """Every property over ``node -> events``; None when no node logged node events."""
    if not any(events.values()):
        return None
    found = Findings()
    scans = [_NodeScan(node, evs, found) for node, evs in sorted(events.items())]
    leaders_by_term: dict[int, dict[str, float]] = {}
    for s in scans:
        for term, at in s.leader_terms.items():
            leaders_by_term.setdefault(term, {})[s.node] = at
    for term, leaders in sorted(leaders_by_term.items()):
        if len(leaders) > 1:
            names = sorted(leaders)
            found.add("election-safety",
                      f"term {term} had {len(names)} leaders: {', '.join(names)}",
                      sorted(leaders.values())[1], term=term, nodes=names, leaders=names)
    logged = {s.node for s in scans}
    for s in scans:
        for (term, leader), at in sorted(s.followed.items()):
            if leader in logged and leader not in leaders_by_term.get(term, {}):
                led = sorted(t for t, ls in leaders_by_term.items() if leader in ls and t < term)
                also = f" (it led term {led[-1]})" if led else ""
                found.add("follower-leader",
                          f"{s.node} followed {leader} in term {term}, but {leader} never led "
                          f"term {term}{also}", at, nodes=sorted({s.node, leader}), term=term,
                          leader=leader)
    _election_quorum(scans, found)
    applied = [a for s in scans for a in s.applied]
    _state_machine_safety(applied, found)
    _leader_completeness(applied, [(s.node, ev) for s in scans for ev in s.won], found)
    violations = [v for p in PROPERTIES for v in found.listed.get(p, [])]
    return {
        "valid": not found.counts,
        "properties": {p: found.counts.get(p, 0) for p in PROPERTIES},
        "violations": violations,
        "nodes": len(scans),
        "incarnations": sum(s.incarnations for s in scans),
        "terms": len(leaders_by_term),
        "applied": len(applied),
        "indexes": len({a.index for a in applied}),
        "malformed": sum(s.malformed for s in scans),
    }


def check(nodes_dir: Path) -> dict[str, Any] | None:
    """:func:`check_events` over a run folder's ``nodes/`` directory."""
    return check_events(read_events(nodes_dir))


def elections(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The election-safety part in results.json's older ``elections`` shape
    (``{"valid", "terms", "violations": [{"term", "leaders", "at"}]}``)."""
    if result is None:
        return None
    bad = [{"term": v["term"], "leaders": v["leaders"], "at": v["at"]}
           for v in result["violations"] if v["property"] == "election-safety"]
    return {"valid": not bad, "terms": result["terms"], "violations": bad}


def violated(result: dict[str, Any] | None) -> list[str]:
    """``["state-machine-safety (3)", ...]``: the properties a result violates, with counts."""
    if not result:
        return []
    return [f"{p} ({n})" for p, n in result.get("properties", {}).items() if n]


def iter_messages(result: dict[str, Any] | None) -> Iterator[str]:
    """Each listed violation's one-line message."""
    for v in (result or {}).get("violations") or []:
        yield f"{v['property']}: {v['message']}"

