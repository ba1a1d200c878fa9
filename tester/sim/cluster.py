"""Raft nodes in one process: the real ``RaftCore`` and state machine, a modelled disk, and a
message queue -- the deterministic harness under both the core's unit tests and the simulator.

A :class:`SimNode` does what the raftnode server does with each ``Ready`` (persist, send,
apply, answer reads), against a :class:`SimDisk` that models what survives a crash: durable
data, plus the two storage-level unsafe switches (``ack-before-sync`` keeps entries and hard
state in a process buffer flushed only on a timer; ``volatile-vote`` never persists term and
vote, so a restart comes back at term 0 with no vote, like raftnode's storage).

:class:`Cluster` holds the nodes and the messages in flight. Delivery order and timing are the
caller's: unit tests call ``deliver_all()``; the simulator pops messages by simulated time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raftnode.core import CORE_UNSAFE, RaftConfig, RaftCore
from raftnode.statemachine import KVStateMachine
from raftnode.types import (
    CONFIG,
    LEADER,
    NORMAL,
    Entry,
    HardState,
    Membership,
    Message,
    NotLeader,
    Ready,
    Snapshot,
)
from tester.sim.invariants import Violation

#: Readys one input may produce before the node counts as stuck in a busy loop (a healthy
#: node needs a handful)
MAX_READY_ROUNDS = 10_000


class SimDisk:
    """What a node has written, and what of it is durable (survives ``crash``)."""

    def __init__(self, ack_before_sync: bool = False, volatile_vote: bool = False):
        self.ack_before_sync = ack_before_sync
        self.volatile_vote = volatile_vote
        self.hard = HardState()
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self._buffer: list[tuple[Snapshot | None, list[Entry], HardState | None]] = []

    def save(self, snapshot: Snapshot | None, entries: list[Entry], hard: HardState | None) -> None:
        """Persist one Ready (durable at once, unless ack-before-sync buffers it)."""
        if self.ack_before_sync:
            self._buffer.append((snapshot, list(entries), hard))
        else:
            self._write(snapshot, entries, hard)

    def flush(self) -> None:
        """The ack-before-sync timer: write out what is buffered."""
        for item in self._buffer:
            self._write(*item)
        self._buffer.clear()

    def crash(self) -> None:
        """Lose everything not yet durable."""
        self._buffer.clear()

    def _write(self, snapshot: Snapshot | None, entries: list[Entry], hard: HardState | None):
        if snapshot is not None and (self.snapshot is None or snapshot.index > self.snapshot.index):
            self.snapshot = snapshot
            self.entries = [e for e in self.entries if e.index > snapshot.index]
            if self.entries and self.entries[0].index != snapshot.index + 1:
                self.entries = []
        if entries:
            first = entries[0].index
            base = self.snapshot.index if self.snapshot else 0
            keep = max(0, first - base - 1)
            if keep < len(self.entries):
                del self.entries[keep:]  # an entry at a stored index replaces it and the rest
            if first > base:  # the usual case: a Ready's entries are contiguous from first
                self.entries.extend(entries)
            else:
                self.entries.extend(e for e in entries if e.index > base)
        if hard is not None:
            if self.volatile_vote:
                hard = HardState(0, None, hard.commit)
            self.hard = hard

    def load(self) -> tuple[HardState, Snapshot | None, list[Entry]]:
        return self.hard, self.snapshot, list(self.entries)


@dataclass
class Request:
    """A client command or read waiting at a node for its outcome."""

    ctx: Any
    command: dict[str, Any]
    on_done: Callable[[str, Any, str | None], None]  # (status ok|fail|unknown, value, error)


@dataclass
class NodeHooks:
    """Observers the simulator's invariant checker attaches (all optional)."""

    on_ready: Callable[[SimNode, Ready], None] | None = None
    on_apply: Callable[[SimNode, Entry], None] | None = None
    on_ack: Callable[[SimNode, int, int], None] | None = None  # (node, index, term) acked


class SimNode:
    """One raftnode server's Ready loop, without sockets or files."""

    def __init__(self, nid: str, config: RaftConfig, membership: Membership, disk: SimDisk,
                 unsafe: frozenset[str], hooks: NodeHooks, compact_every: int = 0):
        self.id = nid
        self.disk = disk
        self.hooks = hooks
        self.unsafe = unsafe
        self.compact_every = compact_every
        hard, snap, entries = disk.load()
        self.core = RaftCore(config, membership, hard, snap, entries)
        self.sm = KVStateMachine(no_sessions="no-sessions" in unsafe)
        if snap is not None:
            self.sm.restore(snap.data)
        self.applied = snap.index if snap else 0
        self.proposals: dict[int, tuple[int, Request]] = {}
        self.reads: dict[Any, list[Request]] = {}
        self.read_ready: list[tuple[int, list[Request]]] = []
        self._read_seq = 0

    # -- requests (what the server does for a client request)

    def submit(self, req: Request) -> None:
        """A write/cas/delete goes through the log; a get through ReadIndex."""
        if req.command.get("op") == "get":
            self._read_seq += 1
            ctx = (self.id, self._read_seq)
            self.reads[ctx] = [req]
            self.core.read_index(ctx)
            return
        try:
            index, term = self.core.propose(req.command)
        except NotLeader as e:
            req.on_done("fail", None, "not-leader:" + (e.leader or ""))
            return
        self.proposals[index] = (term, req)

    def fail_all(self) -> None:
        """The process died: nobody will answer its pending requests."""
        self.proposals.clear()
        self.reads.clear()
        self.read_ready.clear()

    # -- the Ready loop

    def process(self) -> list[Message]:
        """Handle Readys until none is left; returns the messages to send."""
        core = self.core
        if not core.has_ready():
            return []
        out: list[Message] = []
        disk, on_ready, apply = self.disk, self.hooks.on_ready, self._apply
        rounds = 0
        while True:
            rounds += 1
            if rounds > MAX_READY_ROUNDS:
                raise Violation("liveness", f"{self.id} produced more than {MAX_READY_ROUNDS} "
                                            "Readys in a row without settling (a busy loop)")
            rd = core.ready()
            # Half the Readys carry only messages: each step below tests its field first.
            msgs = rd.messages
            if msgs:
                # The Ready's own list (fresh from the core, never mutated here): no copy.
                out = out + msgs if out else msgs
            snap = rd.snapshot
            if snap is not None or rd.entries or rd.hard_state is not None:
                disk.save(snap, rd.entries, rd.hard_state)
                if snap is not None and snap.index > self.applied:
                    self._restore(snap)
            if rd.committed:
                for e in rd.committed:
                    apply(e)
            if rd.read_states or rd.read_failures:
                self._take_reads(rd)
            if self.read_ready:
                self._release_reads()
            soft = rd.soft_state
            if soft is not None and soft.role != LEADER:
                # Leadership lost: proposals may or may not commit.
                for _i, (_t, req) in sorted(self.proposals.items()):
                    req.on_done("unknown", None, "leadership-lost")
                self.proposals.clear()
            if on_ready is not None:
                on_ready(self, rd)
            core.advance(rd)
            if self.compact_every and self.applied - core.snap_index >= self.compact_every:
                core.compact(self.applied, self.sm.snapshot())
            if not core.has_ready():
                return out

    def _restore(self, snap: Snapshot) -> None:
        """A snapshot beyond what is applied replaces the state machine."""
        self.sm.restore(snap.data)
        self.applied = snap.index
        for i in [i for i in self.proposals if i <= snap.index]:
            _t, req = self.proposals.pop(i)
            req.on_done("unknown", None, "superseded-by-snapshot")

    def _take_reads(self, rd: Ready) -> None:
        """Confirmed reads wait for the applied index; refused ones fail at once."""
        for rs in rd.read_states:
            reqs = self.reads.pop(rs.context, None)
            if reqs:
                self.read_ready.append((rs.index, reqs))
        for rf in rd.read_failures:
            for req in self.reads.pop(rf.context, None) or ():
                req.on_done("fail", None, "not-leader:" + (rf.leader or ""))

    def _apply(self, e: Entry) -> None:
        if e.index <= self.applied:
            return
        result: Any = None
        if e.kind == NORMAL:
            result = self.sm.apply(e.data, e.index)
        else:
            self.sm.applied = e.index
        if self.hooks.on_apply is not None:
            self.hooks.on_apply(self, e)  # sees self.applied still at the previous entry
        self.applied = e.index
        pending = self.proposals.pop(e.index, None)
        if pending is not None:
            term, req = pending
            if term != e.term:
                req.on_done("unknown", None, "overwritten")
            elif e.kind == CONFIG:
                req.on_done("ok", None, None)
            elif isinstance(result, dict):
                if result["status"] == "ok" and self.hooks.on_ack is not None:
                    self.hooks.on_ack(self, e.index, e.term)
                req.on_done(result["status"], result.get("value"), result.get("error"))

    def _release_reads(self) -> None:
        still = []
        for index, reqs in self.read_ready:
            if index <= self.applied:
                for req in reqs:
                    req.on_done("ok", self.sm.get(req.command["key"]), None)
            else:
                still.append((index, reqs))
        self.read_ready = still


@dataclass
class Cluster:
    """Nodes by id and the messages in flight between them (FIFO unless the caller reorders)."""

    ids: list[str]
    voters: list[str] | None = None  # initial voters (default: all ids); others join later
    unsafe: frozenset[str] = frozenset()
    seed: int = 0
    election: tuple[int, int] = (10, 20)
    heartbeat: int = 3
    lease_reads: bool = False
    max_clock_drift: float = 0.2
    compact_every: int = 0
    max_batch: int = 128  # entries per append (small values split catch-up into many rounds)
    max_inflight: int = 16
    pre_vote: bool = True
    check_quorum: bool = True
    hooks: NodeHooks = field(default_factory=NodeHooks)
    # a test's view of each delivery: it sees the message first and drops it by returning False
    admit: Callable[[Message], bool] | None = None

    def __post_init__(self) -> None:
        voters = self.voters if self.voters is not None else list(self.ids)
        self.bootstrap = Membership(voters={v: v for v in voters})
        self.disks = {
            i: SimDisk("ack-before-sync" in self.unsafe, "volatile-vote" in self.unsafe)
            for i in self.ids
        }
        self.rng = random.Random(self.seed)
        self.nodes: dict[str, SimNode] = {}
        self.down: set[str] = set()
        self.inflight: list[Message] = []
        self.blocked: set[tuple[str, str]] = set()  # (src, dst) pairs that drop messages
        self.incarnation = dict.fromkeys(self.ids, 0)
        for i in self.ids:
            self.start(i)

    def config(self, nid: str) -> RaftConfig:
        self.incarnation[nid] += 1
        return RaftConfig(
            id=nid, election_min=self.election[0], election_max=self.election[1],
            heartbeat=self.heartbeat, lease_reads=self.lease_reads,
            max_clock_drift=self.max_clock_drift, max_batch=self.max_batch,
            max_inflight=self.max_inflight, pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            seed=self.rng.randrange(2**32), unsafe=self.unsafe & CORE_UNSAFE,
        )

    def start(self, nid: str) -> SimNode:
        """(Re)start a node from its durable state."""
        membership = self.bootstrap if nid in self.bootstrap.voters else Membership(voters={})
        node = SimNode(nid, self.config(nid), membership, self.disks[nid], self.unsafe,
                       self.hooks, self.compact_every)
        self.nodes[nid] = node
        self.down.discard(nid)
        return node

    def crash(self, nid: str) -> None:
        """kill -9: the process and its unsynced writes are gone."""
        self.nodes[nid].fail_all()
        self.disks[nid].crash()
        self.down.add(nid)

    def send(self, msgs: list[Message]) -> None:
        for m in msgs:
            if (m.src, m.dst) not in self.blocked:
                self.inflight.append(m)

    def deliver(self, m: Message) -> None:
        if m.dst in self.down or m.dst not in self.nodes or (m.src, m.dst) in self.blocked:
            return
        if self.admit is not None and not self.admit(m):
            return
        node = self.nodes[m.dst]
        node.core.step(m)
        self.send(node.process())

    def process(self, nid: str) -> None:
        if nid not in self.down:
            self.send(self.nodes[nid].process())

    def deliver_all(self, limit: int = 100_000) -> None:
        """Deliver messages in FIFO order until none is in flight (unit-test mode)."""
        for n in self.ids:
            self.process(n)
        steps = 0
        while self.inflight:
            m = self.inflight.pop(0)
            self.deliver(m)
            steps += 1
            if steps > limit:
                raise RuntimeError("messages never quiesce")

    def tick(self, nid: str, n: int = 1) -> None:
        if nid in self.down:
            return
        node = self.nodes[nid]
        for _ in range(n):
            node.core.tick()
        self.send(node.process())

    def tick_all(self, n: int = 1, deliver: bool = True) -> None:
        for _ in range(n):
            for i in self.ids:
                self.tick(i)
            if deliver:
                self.deliver_all()

    def isolate(self, nid: str) -> None:
        for o in self.ids:
            if o != nid:
                self.blocked |= {(nid, o), (o, nid)}

    def heal(self) -> None:
        self.blocked.clear()

    def leaders(self) -> list[str]:
        return [i for i, n in self.nodes.items()
                if i not in self.down and n.core.role == LEADER]

    def run_until_leader(self, max_ticks: int = 500) -> str:
        for _ in range(max_ticks):
            ls = self.leaders()
            if len(ls) == 1:
                return ls[0]
            self.tick_all()
        raise AssertionError(f"no single leader after {max_ticks} ticks: {self.leaders()}")

    def write(self, nid: str, command: dict[str, Any]) -> list[tuple[str, Any, str | None]]:
        """Submit a command at ``nid``; returns the list its outcome will be appended to."""
        out: list[tuple[str, Any, str | None]] = []
        self.nodes[nid].submit(Request(None, command, lambda s, v, e: out.append((s, v, e))))
        self.process(nid)
        return out
