"""Raft's safety properties, checked continuously while a simulation runs.

* election safety -- at most one leader per term;
* leader completeness -- a new leader's log holds every entry committed in an earlier term
  (an entry's commit term is bounded by the term of the first node that applied it; a leader
  elected in an older term, whose election messages were merely late, need not have it);
* state machine safety -- no two nodes apply different entries at the same index;
* log matching -- two logs with an entry of the same index and term agree up to it;
* no acknowledged write lost -- an entry acknowledged to a client is in every later leader's
  log and is what every node applies at its index;
* apply order -- a node applies every index once, in order, with no gap (a snapshot it
  installs is the only way to skip ahead);
* replication progress -- a leader never counts a follower of its own term as holding an
  entry the follower does not have (what it commits by).

The first violation raises :class:`Violation`; the simulator stops there.
"""

from __future__ import annotations

from typing import Any

from raftnode.types import LEADER, Entry, Ready


class Violation(Exception):
    """A broken property; ``prop`` names it (e.g. ``election-safety``)."""

    def __init__(self, prop: str, message: str):
        super().__init__(f"{prop}: {message}")
        self.prop = prop
        self.message = message


class Invariants:
    """Observers for ``SimNode`` hooks, plus whole-cluster checks."""

    def __init__(self) -> None:
        self.leaders: dict[int, str] = {}  # term -> leader
        self.applied: dict[int, tuple[int, str, Any]] = {}  # index -> (term, kind, data)
        # index -> a term at or after the one the entry was committed in: the term of the
        # first node that applied it
        self.committed_by: dict[int, int] = {}
        self.acked: dict[int, int] = {}  # index -> term of entries acknowledged to a client

    def on_ready(self, node: Any, rd: Ready) -> None:
        ss = rd.soft_state
        if ss is None or ss.role != LEADER:
            return
        prev = self.leaders.setdefault(ss.term, node.id)
        if prev != node.id:
            raise Violation("election-safety", f"two leaders in term {ss.term}: {prev} and "
                            f"{node.id}")
        core = node.core
        for index, term in self.acked.items():
            # acknowledged by the leader of ``term`` once committed: in that very term
            if term < ss.term and index > core.snap_index and core.term_at(index) != term:
                raise Violation("acknowledged-write-lost",
                                f"entry {index} (term {term}) was acknowledged to a client but "
                                f"the new leader {node.id} of term {ss.term} has "
                                f"{_describe(core, index)}")
        bound = self.committed_by
        for index, (term, _k, _d) in self.applied.items():
            if bound[index] >= ss.term:
                continue
            have = core.term_at(index)
            if index >= core.snap_index and have != term:
                raise Violation("leader-completeness",
                                f"committed entry {index} (term {term}) is missing from the log "
                                f"of {node.id}, leader of term {ss.term}, which has "
                                f"{_describe(core, index)}")

    def on_apply(self, node: Any, e: Entry) -> None:
        if e.index != node.applied + 1:
            raise Violation("apply-order",
                            f"{node.id} applied entry {e.index} (term {e.term}) right after "
                            f"entry {node.applied}: "
                            + ("it skipped " + (f"entry {node.applied + 1}"
                                                if e.index == node.applied + 2 else
                                                f"entries {node.applied + 1}..{e.index - 1}")
                               if e.index > node.applied else "out of order"))
        seen = self.applied.get(e.index)
        mine = (e.term, e.kind, e.data)
        if seen is None:
            self.applied[e.index] = mine
            self.committed_by[e.index] = node.core.term
            acked = self.acked.get(e.index)
            if acked is not None and acked != e.term:
                raise Violation("acknowledged-write-lost",
                                f"{node.id} applied entry {e.index} of term {e.term} where an "
                                f"entry of term {acked} was acknowledged to a client")
        elif seen != mine:
            raise Violation("state-machine-safety",
                            f"{node.id} applied entry {e.index} of term {e.term} ({e.data!r}) "
                            f"but another node applied term {seen[0]} ({seen[2]!r}) there")

    def on_ack(self, node: Any, index: int, term: int) -> None:
        self.acked[index] = term

    def check_logs(self, cores: list[Any]) -> None:
        """Log matching across every pair of logs (quadratic in nodes, linear in entries), and
        each leader's view of what its followers hold."""
        by_id = {c.id: c for c in cores}
        for lead in cores:
            if lead.role == LEADER:
                self._check_progress(lead, by_id)
        for i, a in enumerate(cores):
            for b in cores[i + 1:]:
                lo = max(a.snap_index, b.snap_index) + 1
                hi = min(a.last_index(), b.last_index())
                top = 0
                for idx in range(hi, lo - 1, -1):
                    if a.term_at(idx) == b.term_at(idx):
                        top = idx
                        break
                for idx in range(lo, top + 1):
                    ea, eb = a.entry(idx), b.entry(idx)
                    # replicated entries are usually the very same object: skip the deep compare
                    if ea is not eb and ea != eb:
                        raise Violation("log-matching",
                                        f"{a.id} and {b.id} agree on entry {top} (term "
                                        f"{a.term_at(top)}) but differ at {idx}: {ea} vs {eb}")


    def _check_progress(self, lead: Any, by_id: dict[str, Any]) -> None:
        """A follower in the leader's term accepts entries from that leader only, so the match
        index the leader keeps for it (and commits by) must be an entry both logs share."""
        for peer, pr in lead.prs.items():
            f = by_id.get(peer)
            k = pr.match
            if f is None or f.term != lead.term or k <= max(f.snap_index, lead.snap_index):
                continue
            theirs, mine = f.term_at(k), lead.term_at(k)
            if mine is not None and theirs != mine:
                held = (f"a log ending at {f.last_index()}" if theirs is None
                        else f"term {theirs} there")
                raise Violation("replication-progress",
                                f"leader {lead.id} (term {lead.term}) counts {peer} as holding "
                                f"entry {k} (term {mine}) but {peer} has {held}")


def _describe(core: Any, index: int) -> str:
    if index > core.last_index():
        return f"a log ending at {core.last_index()}"
    return f"term {core.term_at(index)} there"
