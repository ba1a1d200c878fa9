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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tester.nodeevents.events import (
    Applied,
    Findings,
    as_int,
    describe_command,
    read_events,
    ts_of,
)
from tester.nodeevents.process import NodeScan

PROPERTIES = ("election-safety", "follower-leader", "vote-once", "election-quorum",
              "commit-rule", "ack-rule", "state-machine-safety", "commit-monotonic",
              "applied-contiguous", "durability", "leader-completeness")


def _state_machine_safety(applied: list[Applied], found: Findings) -> None:
    by_index: dict[int, dict[tuple[int, str], list[Applied]]] = {}
    for a in applied:
        by_index.setdefault(a.index, {}).setdefault((a.term, a.digest), []).append(a)
    for index in sorted(by_index):
        variants = by_index[index]
        if len(variants) > 1:
            rows = [_variant(v) for v in variants.values()]
            text = "; ".join(f"{', '.join(r['nodes'])} applied term {r['term']} "
                             f"[{r['digest']}] {describe_command(r.get('command'))}" for r in rows)
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
                      f"{describe_command(apps[0].command)}) gave different results, so the "
                      f"state machines diverged: {text}", min(a.at for a in apps),
                      index=index, nodes=sorted({a.node for a in apps}), entries=rows)


def _variant(apps: list[Applied]) -> dict[str, Any]:
    """One version of an index: who applied it (a process after a restart is named as such:
    a node may disagree with its own earlier process), its term, digest and command."""
    a = apps[0]
    who = {x.node if x.incarnation == 0 else f"{x.node} after restart {x.incarnation}"
           for x in apps}
    d = {"nodes": sorted(who), "term": a.term, "digest": a.digest}
    if a.command is not None:
        d["command"] = a.command
    return d


def _election_quorum(scans: list[NodeScan], found: Findings) -> None:
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
                          ts_of(ev), nodes=[s.node], term=term, votes=granted,
                          voters=sorted(map(str, voters)))
            unbacked = sorted(v for v in granted if v != s.node and v in logs_votes
                              and (v, term, s.node) not in votes)
            if unbacked:
                found.add("election-quorum",
                          f"{s.node} won term {term} counting votes from "
                          f"{', '.join(unbacked)}, which never voted for it in term {term}",
                          ts_of(ev), nodes=sorted({s.node, *unbacked}), term=term,
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
        li, lt = as_int(ev.get("last_index")), as_int(ev.get("last_term"))
        if li is not None and lt is not None:
            leaders.append((int(ev["term"]), node, li, lt, ts_of(ev)))
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
                    f"{describe_command(a.command)}) that {a.node} had applied in term {c}",
                    at, index=index, nodes=sorted({node, a.node}), leader=node, term=lterm,
                    leader_log={"last_index": li, "last_term": lt},
                    entry={**a.describe(), "committed_by_term": c})
                break  # the first leader that lacks it says it; later ones repeat it


def check_events(events: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """Every property over ``node -> events``; None when no node logged node events."""
    if not any(events.values()):
        return None
    found = Findings()
    scans = [NodeScan(node, evs, found) for node, evs in sorted(events.items())]
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

