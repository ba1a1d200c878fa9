"""What a raftnode server does with each ``Ready``, with no sockets, threads or clocks.

The server (``raftnode/server.py``, asyncio) and the simulator (``tester/sim/cluster.py``)
both drive a :class:`NodeHost`, so the simulator runs the server's own rules, not a copy:

1. :meth:`NodeHost.before_persist` -- leadership and events; a leader sends its appends
   before its own write (Raft thesis 10.2.1); committed entries already durable are applied;
   confirmed reads are queued;
2. :meth:`NodeHost.persist` -- the snapshot, then hard state and entries, through
   :class:`~raftnode.storage.Storage` (the only step with I/O: the server runs it in a worker
   thread, the simulator against its simulated disk);
3. :meth:`NodeHost.after_persist` -- everything else is sent (a vote only now that it is
   durable), a received snapshot is installed, the rest is applied, reads are released and
   the log is compacted.

A write is answered ``ok`` only when its entry is applied with the term it was proposed in;
another term there means it was replaced (``fail``); a leader that steps down answers its
pending proposals ``unknown``. What the owner does with answers, messages and events is its
own business: it subclasses :class:`Outlet`.
"""

from __future__ import annotations

from typing import Any, Protocol

from raftnode.core import RaftConfig, RaftCore
from raftnode.nodeevents import applied_record
from raftnode.statemachine import KVStateMachine
from raftnode.storage import Recovered, Storage
from raftnode.types import (
    CONFIG,
    LEADER,
    MSG_APPEND,
    MSG_HEARTBEAT,
    MSG_SNAPSHOT,
    MSG_TIMEOUT_NOW,
    NORMAL,
    Entry,
    Membership,
    Message,
    NotLeader,
    Ready,
    Snapshot,
    SoftState,
)

LEADER_MESSAGES = (MSG_APPEND, MSG_HEARTBEAT, MSG_SNAPSHOT, MSG_TIMEOUT_NOW)



def _once_durable(ev: dict[str, Any]) -> bool:
    """Events logged only after the Ready's write: a granted vote (only then is it sent: a
    vote lost in a crash was never cast) and an installed snapshot (the node events read it
    as applied up to its index, which a crash before the write would take back)."""
    kind = ev.get("event")
    return kind == "vote" or (kind == "snapshot" and ev.get("kind") == "installed")


class Outlet(Protocol):
    """Where a host's results go (the server, the simulator's node). Tokens are the owner's
    own request handles."""

    def send(self, msgs: list[Message]) -> None:
        """Messages to peers (in order)."""
        ...

    def resolve(self, token: Any, result: Any, entry: Entry) -> bool:
        """A proposal's entry was applied in its own term: ``result`` is the state
        machine's answer (``None`` for a configuration entry). False: nobody was answered
        (the client had given up)."""
        ...

    def reject(self, token: Any, status: str, error: str) -> None:
        """A proposal failed (``fail``: never applied) or its outcome is ``unknown``."""
        ...

    def read_ready(self, token: Any) -> None:
        """A read's index is applied: it may be answered from the state machine now."""
        ...

    def read_failed(self, token: Any, leader: str | None) -> None:
        """A read was refused (this node does not lead)."""
        ...

    def on_soft_state(self, ss: SoftState) -> None:
        """Role, term or leader changed."""
        ...

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """The core's structured events (a granted vote only once it is durable)."""
        ...

    def on_membership(self, m: Membership) -> None:
        """The configuration in effect (applied, or restored from a snapshot)."""
        ...

    def on_applied(self, records: list[str]) -> None:
        """Node-event records of the entries just applied (only when ``record_applied``)."""
        ...


class NodeHost:
    """One node's core, state machine and storage, and the proposals and reads in flight."""

    def __init__(self, core: RaftCore, sm: KVStateMachine, storage: Storage, outlet: Outlet,
                 snapshot_entries: int = 0, record_applied: bool = False):
        """``snapshot_entries``: compact after that many applied entries (0: never);
        ``record_applied``: build node-event records of applied entries (the server logs
        them)."""
        self.core = core
        self.sm = sm
        self.storage = storage
        self.outlet = outlet
        self.snapshot_entries = snapshot_entries
        self.record_applied = record_applied
        snap = core.snapshot
        self.applied = snap.index if snap is not None else 0
        self.proposals: dict[int, tuple[int, Any]] = {}  # index -> (term, token)
        self.reads: dict[Any, list[Any]] = {}  # ReadIndex context -> tokens
        self.read_ready: list[tuple[int, list[Any]]] = []  # (read index, tokens)
        self.durable_vote = (core.term, core.vote)
        self.durable_index = storage.last_index()
        self._applied_out: list[str] = []
        self._sent_early = False  # this Ready's leader messages went out before its write
        #: this Ready's events to log only once its write is durable (``_once_durable``)
        self._durable_events: list[dict[str, Any]] = []
        # observers (the simulator's invariants): an entry about to be applied
        self.on_apply: Any = None

    @staticmethod
    def recover(storage: Storage, sm: KVStateMachine, config: RaftConfig,
                membership: Membership) -> tuple[RaftCore, Recovered]:
        """Replay ``storage`` and build the core from it; the state machine starts from the
        snapshot (committed entries after it are handed out again by the core)."""
        rec = storage.recover()
        if rec.snapshot is not None:
            sm.restore(rec.snapshot.data)
        core = RaftCore(config, membership, hard_state=rec.hard_state, snapshot=rec.snapshot,
                        entries=rec.entries)
        return core, rec

    # ---- requests ---------------------------------------------------------------------------

    def propose(self, command: dict[str, Any], token: Any) -> tuple[int, int]:
        """Append a command (raises NotLeader); ``token`` is answered when it applies."""
        index, term = self.core.propose(command)
        self.proposals[index] = (term, token)
        return index, term

    def propose_membership(self, op: str, member: str, addr: str, token: Any) -> int:
        """Append a configuration change (raises NotLeader, ProposalRejected, ValueError)."""
        index = self.core.propose_membership(op, member, addr)
        self.proposals[index] = (self.core.term, token)
        return index

    def read(self, ctx: Any, tokens: list[Any]) -> None:
        """Start one ReadIndex for ``tokens`` (reads that arrived together)."""
        try:
            self.core.read_index(ctx)
        except NotLeader as e:
            for t in tokens:
                self.outlet.read_failed(t, e.leader)
            return
        self.reads[ctx] = tokens

    def drop_all(self) -> None:
        """The process died: nobody will answer what is pending."""
        self.proposals.clear()
        self.reads.clear()
        self.read_ready.clear()

    # ---- one Ready --------------------------------------------------------------------------

    def before_persist(self, rd: Ready) -> None:
        """Everything that may happen before the Ready's write is durable (then the owner
        calls :meth:`persist`, then :meth:`after_persist`)."""
        out = self.outlet
        if rd.soft_state is not None:
            out.on_soft_state(rd.soft_state)
        self._durable_events = []
        if rd.events:
            now: list[dict[str, Any]] = []
            for ev in rd.events:
                (self._durable_events if _once_durable(ev) else now).append(ev)
            if now:
                out.on_events(now)
        hs = rd.hard_state
        # (with nothing to write, every message simply goes out after the empty write)
        self._sent_early = bool(rd.messages) and (rd.entries or rd.snapshot is not None) \
            and self.core.role == LEADER and (hs is None or (hs.term, hs.vote) == self.durable_vote)
        if self._sent_early:
            # Raft thesis 10.2.1: a leader may write its log in parallel with replicating it.
            # Safe because commits are only computed (and clients answered) after the write.
            early = [m for m in rd.messages if m.type in LEADER_MESSAGES]
            if early:
                out.send(early)
        if rd.snapshot is None and rd.committed:
            # Committed entries already on disk are applied (and their clients answered)
            # before this Ready's fsync instead of after it.
            for e in rd.committed:
                if e.index > self.durable_index:
                    break
                self._apply(e)
            self._flush_applied()
        if rd.read_states or rd.read_failures:
            self._take_read_states(rd)

    def persist(self, rd: Ready) -> None:
        """The Ready's snapshot, then its hard state and entries: one write, one fsync."""
        if rd.snapshot is not None:
            self.storage.save_snapshot(rd.snapshot)
        if rd.hard_state is not None or rd.entries:
            self.storage.save(rd.hard_state, rd.entries)

    def after_persist(self, rd: Ready) -> None:
        """Everything that needs the Ready's write durable: sends, snapshot, applies, reads."""
        out = self.outlet
        hs = rd.hard_state
        if rd.entries or rd.snapshot is not None:
            self.durable_index = self.storage.last_index()
        if hs is not None:
            self.durable_vote = (hs.term, hs.vote)
        if self._durable_events:
            out.on_events(self._durable_events)
        if rd.messages:
            if self._sent_early:
                late = [m for m in rd.messages if m.type not in LEADER_MESSAGES]
                if late:
                    out.send(late)
            else:
                out.send(rd.messages)
        snap = rd.snapshot
        if snap is not None and snap.index > self.applied:
            self._install_snapshot(snap)
        if rd.committed:
            for e in rd.committed:
                self._apply(e)
            self._flush_applied()
        if self.read_ready:
            self._release_reads()
        ss = rd.soft_state
        if ss is not None and ss.role != LEADER and self.proposals:
            # leadership lost: what is pending may or may not commit
            for _i, (_t, token) in sorted(self.proposals.items(), key=lambda p: p[0]):
                out.reject(token, "unknown", "leadership-lost")
            self.proposals.clear()
        if self.snapshot_entries > 0 and self.applied - self.core.snap_index >= self.snapshot_entries:
            self.core.compact(self.applied, self.sm.snapshot())  # persisted via the next Ready

    # ---- the pieces ---------------------------------------------------------------------------

    def _take_read_states(self, rd: Ready) -> None:
        for rs in rd.read_states:
            tokens = self.reads.pop(rs.context, None)
            if tokens:
                self.read_ready.append((rs.index, tokens))
        for rf in rd.read_failures:
            for t in self.reads.pop(rf.context, None) or ():
                self.outlet.read_failed(t, rf.leader)
        self._release_reads()

    def _release_reads(self) -> None:
        still = []
        for index, tokens in self.read_ready:
            if index <= self.applied:
                for t in tokens:
                    self.outlet.read_ready(t)
            else:
                still.append((index, tokens))
        self.read_ready = still

    def _install_snapshot(self, snap: Snapshot) -> None:
        self.sm.restore(snap.data)
        self.applied = snap.index
        self.outlet.on_membership(snap.membership)
        for index in [i for i in self.proposals if i <= snap.index]:
            _, token = self.proposals.pop(index)
            self.outlet.reject(token, "unknown", "superseded-by-snapshot")

    def _apply(self, e: Entry) -> None:
        if e.index <= self.applied:
            return
        result: Any = None
        if e.kind == NORMAL:
            result = self.sm.apply(e.data, index=e.index)
        elif e.kind == CONFIG:
            self.sm.applied = e.index
            self.outlet.on_membership(Membership.from_dict(e.data))
        if self.on_apply is not None:
            self.on_apply(e)  # sees self.applied still at the previous entry
        self.applied = e.index
        pending = self.proposals.pop(e.index, None)
        acked = None  # the term of the proposal answered ok here (node events: ack-rule)
        if pending is not None:
            term, token = pending
            if term == e.term:
                if self.outlet.resolve(token, result, e):
                    acked = term
            else:
                self.outlet.reject(token, "fail", "superseded")
        if self.record_applied:
            self._applied_out.append(applied_record(e, result, acked))

    def _flush_applied(self) -> None:
        if self._applied_out:
            out, self._applied_out = self._applied_out, []
            self.outlet.on_applied(out)
