"""Raft nodes in one process: raftnode's real host, core, state machine and storage over a
simulated disk and a message queue -- the deterministic harness under both the core's unit
tests and the simulator.

A :class:`SimNode` is one raftnode server without sockets: it drives the server's own
:class:`~raftnode.host.NodeHost` (persist, send, apply, answer reads, install snapshots,
compact) and keeps its log in the server's own :class:`~raftnode.storage.Storage`, on a
:class:`~tester.sim.disk.SimFS` that loses unsynced writes on a crash. A restart replays that
storage (torn-tail recovery included), as ``raftnode serve`` does.

:class:`Cluster` holds the nodes and the messages in flight. Delivery order and timing are the
caller's: unit tests call ``deliver_all()``; the simulator pops messages by simulated time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raftnode.core import CORE_UNSAFE, RaftConfig, RaftCore
from raftnode.host import NodeHost
from raftnode.statemachine import KVStateMachine
from raftnode.storage import CorruptLog, Storage
from raftnode.types import (
    LEADER,
    Entry,
    Membership,
    Message,
    NotLeader,
    Ready,
    SoftState,
)
from tester.sim.disk import SimFS
from tester.sim.invariants import Violation

#: Readys one input may produce before the node counts as stuck in a busy loop (a healthy
#: node needs a handful)
MAX_READY_ROUNDS = 10_000


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
    """One raftnode server's Ready loop and storage, without sockets or real files (the
    host's :class:`~raftnode.host.Outlet`)."""

    def __init__(self, nid: str, config: RaftConfig, membership: Membership, fs: SimFS,
                 unsafe: frozenset[str], hooks: NodeHooks, compact_every: int = 0):
        self.id = nid
        self.hooks = hooks
        self.unsafe = unsafe
        self.storage = Storage(f"/{nid}", unsafe, fs=fs, flusher=False)
        self.sm = KVStateMachine(no_sessions="no-sessions" in unsafe)
        core, self.recovered = NodeHost.recover(self.storage, self.sm, config, membership)
        self.core: RaftCore = core
        self.host = NodeHost(core, self.sm, self.storage, self, snapshot_entries=compact_every)
        if hooks.on_apply is not None:
            on_apply = hooks.on_apply
            self.host.on_apply = lambda e: on_apply(self, e)
        self._out: list[Message] = []
        self._read_seq = 0

    @property
    def applied(self) -> int:
        return self.host.applied

    # -- requests (what the server does for a client request)

    def submit(self, req: Request) -> None:
        """A write/cas/delete goes through the log; a get through ReadIndex."""
        if req.command.get("op") == "get":
            self._read_seq += 1
            self.host.read((self.id, self._read_seq), [req])
            return
        try:
            self.host.propose(req.command, req)
        except NotLeader as e:
            req.on_done("fail", None, "not-leader:" + (e.leader or ""))

    def fail_all(self) -> None:
        """The process died: nobody will answer its pending requests."""
        self.host.drop_all()

    # -- the Ready loop

    def process(self) -> list[Message]:
        """Handle Readys until none is left; returns the messages to send."""
        core = self.core
        if not core.has_ready():
            return []
        self._out = []
        host, on_ready = self.host, self.hooks.on_ready
        rounds = 0
        while True:
            rounds += 1
            if rounds > MAX_READY_ROUNDS:
                raise Violation("liveness", f"{self.id} produced more than {MAX_READY_ROUNDS} "
                                            "Readys in a row without settling (a busy loop)")
            rd = core.ready()
            host.before_persist(rd)
            try:
                host.persist(rd)
            except Exception as e:  # raftnode serve stops on this: a storage bug
                raise Violation("storage", f"{self.id} stops on a storage error: "
                                           f"{type(e).__name__}: {e}") from None
            host.after_persist(rd)
            if on_ready is not None:
                on_ready(self, rd)
            core.advance(rd)
            if not core.has_ready():
                return self._out

    # -- Outlet: where the host's answers go

    def send(self, msgs: list[Message]) -> None:
        self._out.extend(msgs)

    def resolve(self, token: Any, result: Any, entry: Entry) -> bool:
        if isinstance(result, dict):
            if result["status"] == "ok" and self.hooks.on_ack is not None:
                self.hooks.on_ack(self, entry.index, entry.term)
            token.on_done(result["status"], result.get("value"), result.get("error"))
        else:
            token.on_done("ok", None, None)
        return True

    def reject(self, token: Any, status: str, error: str) -> None:
        token.on_done(status, None, error)

    def read_ready(self, token: Any) -> None:
        token.on_done("ok", self.sm.get(token.command["key"]), None)

    def read_failed(self, token: Any, leader: str | None) -> None:
        token.on_done("fail", None, "not-leader:" + (leader or ""))

    def on_soft_state(self, ss: SoftState) -> None:
        return None  # the simulator watches Readys through its hooks

    def on_events(self, events: list[dict[str, Any]]) -> None:
        return None

    def on_membership(self, m: Membership) -> None:
        return None

    def on_applied(self, records: list[str]) -> None:
        return None


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
        self.disks = {i: SimFS(f"{self.seed}:{i}") for i in self.ids}
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
        try:
            node = SimNode(nid, self.config(nid), membership, self.disks[nid], self.unsafe,
                           self.hooks, self.compact_every)
        except (CorruptLog, ValueError, KeyError) as e:  # raftnode serve would not start
            raise Violation("storage", f"{nid} cannot restart: {type(e).__name__}: {e}") \
                from None
        self.nodes[nid] = node
        self.down.discard(nid)
        return node

    def crash(self, nid: str) -> None:
        """kill -9: the process and (some of) its unsynced writes are gone."""
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
