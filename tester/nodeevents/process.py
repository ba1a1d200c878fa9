"""The checks within one node's log: per process incarnation (commit-monotonic,
applied-contiguous, the commit rule of its leader decisions, the ack rule), across its restarts
(durability, vote-once), and what the cross-node checks need from it."""

from __future__ import annotations

from typing import Any

from tester.nodeevents.events import Applied, Findings, as_int, describe_command, ts_of


class NodeScan:
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
            kind, at = ev["event"], ts_of(ev)
            if kind == "started":
                if self.incarnations or this_max:
                    inc += 1
                self.incarnations = inc + 1
                earlier_max = max(earlier_max, this_max)
                this_max = 0
                commit = None
                restored = as_int(ev.get("applied"))
                if restored is None:
                    restored = as_int(ev.get("snapshot_index"))
                next_index = None if restored is None else restored + 1
                self._check_durable(ev, earlier_max, at)
                if ev.get("fresh") is True:
                    earlier_max = 0  # a wiped data directory: a new member, nothing to keep
                    self._voted = {}
            elif kind == "role":
                term = as_int(ev.get("term"))
                if ev.get("role") == "leader" and term is not None:
                    self.leader_terms.setdefault(term, at)
                elif term is not None and isinstance(ev.get("leader"), str):
                    self.followed.setdefault((term, ev["leader"]), at)
            elif kind == "election":
                term = as_int(ev.get("term"))
                if ev.get("kind") == "won" and term is not None:
                    self.won.append(ev)
            elif kind == "vote":
                term = as_int(ev.get("term"))
                if term is not None and isinstance(ev.get("for"), str):
                    self._vote(term, ev["for"], at)
            elif kind == "snapshot":
                idx = as_int(ev.get("index"))
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
                c = as_int(ev.get("commit") if kind == "applied" else ev.get("index"))
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
        index, term = as_int(ev.get("index")), as_int(ev.get("term"))
        acks, voters = ev.get("acks"), ev.get("voters")
        if index is None or term is None:
            return
        entry_term = as_int(ev.get("entry_term"))
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
        last = as_int(ev.get("last_index"))
        snap = as_int(ev.get("snapshot_index")) or 0
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
        at = ts_of(ev)
        node_term = as_int(ev.get("term"))
        entries = ev.get("entries")
        if not isinstance(entries, list):
            self.malformed += 1
            return next_index, this_max
        for rec in entries:
            if not (isinstance(rec, list) and len(rec) >= 3 and as_int(rec[0]) is not None
                    and as_int(rec[1]) is not None and isinstance(rec[2], str)):
                self.malformed += 1
                continue
            index, term = rec[0], rec[1]
            result = rec[3] if len(rec) > 3 and isinstance(rec[3], str) else None
            command = rec[4] if len(rec) > 4 else None
            acked = as_int(rec[5]) if len(rec) > 5 else None
            if acked is not None and acked != term:
                self.found.add(
                    "ack-rule",
                    f"{self.node} answered ok to the write it proposed at index {index} in term "
                    f"{acked}, but the entry applied there is of term {term} "
                    f"({describe_command(command)})", at, nodes=[self.node], index=index,
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

