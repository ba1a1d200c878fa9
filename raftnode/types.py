"""Data types shared by the pure Raft core and the code around it (server, storage, simulator).

Everything here is plain data: JSON-friendly via ``to_dict``/``from_dict`` so that the wire
protocol, the durable log and the simulator's traces all use the same shapes.

The core (``raftnode.core.RaftCore``) follows etcd-io/raft's contract:

* input: ``tick()`` (one logical tick; the caller converts its clock into ticks),
  ``step(msg)``, ``propose(command)``, ``read_index(ctx)``, ``propose_membership(...)``,
  ``transfer_leadership(to)``, ``compact(index, data)``;
* output: ``ready()`` returns a :class:`Ready`. The caller must, in order:
  1. persist ``hard_state`` (term, vote, commit) and ``entries`` (appending; an entry at an
     index already stored replaces it and everything after) and ``snapshot`` -- with fsync;
  2. send ``messages``;
  3. apply ``committed`` entries to the state machine in order;
  4. answer ``read_states`` once the applied index reaches each one's index;
  5. call ``advance(ready)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FOLLOWER = "follower"
CANDIDATE = "candidate"
LEADER = "leader"
PRE_CANDIDATE = "pre-candidate"

# Entry kinds
NORMAL = "normal"  # a client command (JSON object) for the state machine
NOOP = "noop"  # a new leader's first entry of its term (Figure 8)
CONFIG = "config"  # a membership configuration (see Membership)

# Message types
MSG_PREVOTE = "prevote"
MSG_PREVOTE_RESP = "prevote_resp"
MSG_VOTE = "vote"
MSG_VOTE_RESP = "vote_resp"
MSG_APPEND = "append"
MSG_APPEND_RESP = "append_resp"
MSG_HEARTBEAT = "heartbeat"
MSG_HEARTBEAT_RESP = "heartbeat_resp"
MSG_SNAPSHOT = "snapshot"
MSG_TIMEOUT_NOW = "timeout_now"

# Unsafe switches (each off by default; see README "Unsafe switches").
UNSAFE_SWITCHES = (
    "local-reads",  # serve reads from local state, no ReadIndex
    "lease-no-drift",  # lease reads that assume perfect clocks
    "ack-before-sync",  # acknowledge before the log is fsynced
    "commit-old-terms",  # count replicas for entries of earlier terms (Figure 8)
    "volatile-vote",  # do not persist term and vote
    "no-sessions",  # apply retried commands again
)


@dataclass(frozen=True, slots=True)
class Membership:
    """A cluster configuration: voters and non-voting learners, each id -> "host:port", and
    the learners to promote once caught up. The promotions are part of the configuration, so
    that a snapshot carries them: a leader restarted from one, or elected after installing
    one, still promotes a learner an ``add`` left waiting."""

    voters: dict[str, str]
    learners: dict[str, str] = field(default_factory=dict)
    promote: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"voters": dict(self.voters), "learners": dict(self.learners)}
        if self.promote:
            d["promote"] = list(self.promote)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Membership:
        learners = dict(d.get("learners", {}))
        return cls(voters=dict(d["voters"]), learners=learners,
                   promote=tuple(sorted(p for p in d.get("promote", ()) if p in learners)))


@dataclass(frozen=True, slots=True)
class Entry:
    """A log entry. ``data`` is a JSON object: a client command, or a Membership dict."""

    term: int
    index: int
    kind: str = NORMAL
    data: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"term": self.term, "index": self.index, "kind": self.kind, "data": self.data}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entry:
        return cls(term=d["term"], index=d["index"], kind=d.get("kind", NORMAL), data=d.get("data"))


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message that depends on it is sent."""

    term: int = 0
    vote: str | None = None
    commit: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"term": self.term, "vote": self.vote, "commit": self.commit}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HardState:
        return cls(term=d.get("term", 0), vote=d.get("vote"), commit=d.get("commit", 0))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """State machine image up to and including ``index`` (whose entry had ``term``)."""

    index: int
    term: int
    membership: Membership
    data: Any  # the state machine's JSON image (kv map and client sessions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "term": self.term,
            "membership": self.membership.to_dict(),
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Snapshot:
        return cls(
            index=d["index"],
            term=d["term"],
            membership=Membership.from_dict(d["membership"]),
            data=d.get("data"),
        )


@dataclass(slots=True)
class Message:
    """A peer message. Unused fields keep their defaults and are omitted on the wire."""

    type: str
    src: str
    dst: str
    term: int
    log_term: int = 0  # term of the entry at ``index`` (append: prev; vote: last)
    index: int = 0  # append: prev index; vote: last index; resp: match/last index
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0  # fast backtracking: follower's suggested next index
    snapshot: Snapshot | None = None
    context: Any = None  # e.g. a ReadIndex round id echoed by heartbeat responses

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "src": self.src, "dst": self.dst, "term": self.term}
        if self.log_term:
            d["log_term"] = self.log_term
        if self.index:
            d["index"] = self.index
        if self.entries:
            d["entries"] = [e.to_dict() for e in self.entries]
        if self.commit:
            d["commit"] = self.commit
        if self.reject:
            d["reject"] = True
        if self.reject_hint:
            d["reject_hint"] = self.reject_hint
        if self.snapshot is not None:
            d["snapshot"] = self.snapshot.to_dict()
        if self.context is not None:
            d["context"] = self.context
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        snap = d.get("snapshot")
        return cls(
            type=d["type"],
            src=d["src"],
            dst=d["dst"],
            term=d["term"],
            log_term=d.get("log_term", 0),
            index=d.get("index", 0),
            entries=[Entry.from_dict(e) for e in d.get("entries", ())],
            commit=d.get("commit", 0),
            reject=bool(d.get("reject", False)),
            reject_hint=d.get("reject_hint", 0),
            snapshot=Snapshot.from_dict(snap) if snap is not None else None,
            context=d.get("context"),
        )


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the applied index reaches ``index``."""

    context: Any
    index: int


@dataclass(frozen=True, slots=True)
class ReadFailure:
    """A read the core could not confirm (not leader, or leadership lost)."""

    context: Any
    reason: str
    leader: str | None


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state, reported when it changes (for logs and status)."""

    role: str
    term: int
    leader: str | None


@dataclass(slots=True)
class Ready:
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    read_failures: list[ReadFailure] = field(default_factory=list)
    soft_state: SoftState | None = None
    # Structured events for the node's log (elections, role/term changes, membership...):
    # each a dict with at least {"event": name}; the server adds time and node id.
    events: list[dict[str, Any]] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.hard_state
            or self.entries
            or self.snapshot
            or self.messages
            or self.committed
            or self.read_states
            or self.read_failures
            or self.soft_state
            or self.events
        )


class NotLeader(Exception):
    """Raised by propose/read when this node cannot serve it; carries the leader hint."""

    def __init__(self, leader: str | None, leader_addr: str | None = None):
        super().__init__(f"not leader (leader: {leader or 'unknown'})")
        self.leader = leader
        self.leader_addr = leader_addr
