"""The pure Raft core: messages and ticks in; a :class:`~raftnode.types.Ready` out.

No sockets, clocks, threads, files or global randomness live here (the election jitter comes
from a seeded :class:`random.Random`), so the asyncio server and the deterministic simulator
drive exactly the same code.

Inputs (all synchronous, none blocks):

* ``tick()`` -- one logical tick; the caller converts elapsed clock time into ticks.
* ``step(msg)`` -- a peer message addressed to this node.
* ``propose(command) -> (index, term)`` -- leader only (else :class:`NotLeader`). The command
  is committed iff a committed entry later shows up at ``index`` with ``term``; a committed
  entry at ``index`` with another term, or losing leadership before it commits, means the
  outcome is unknown to the caller.
* ``read_index(ctx)`` -- a linearizable read. Answered later by a ``ReadState`` (serve it once
  the applied index reaches ``ReadState.index``) or a ``ReadFailure``.
* ``propose_membership(change, node, addr)`` -- ``"add"`` (learner that is promoted to voter once
  it has caught up), ``"add-learner"``, ``"promote"``, ``"remove"``; one change at a time.
* ``transfer_leadership(to)`` -- hand leadership over with TimeoutNow.
* ``compact(index, data)`` -- the caller's state machine image at an applied ``index``.

Output: ``ready()`` returns a ``Ready``; the caller must, in this order,

1. persist ``snapshot`` (if any), then ``entries`` (an entry at an index already stored
   replaces it and every later one; entries at or below a persisted snapshot's index may be
   dropped), then ``hard_state`` -- fsynced before step 2. A ``hard_state`` that differs from
   the previous one only in ``commit`` need not be fsynced (commit is re-learned from the
   leader);
2. send ``messages`` (a lost message is fine: Raft retries);
3. if ``snapshot.index`` is above the state machine's applied index, restore the state
   machine from ``snapshot.data``; then apply ``committed`` entries in order (``NORMAL`` ones
   carry the client command; ``NOOP`` and ``CONFIG`` entries only advance the applied index);
4. answer each ``read_state`` once the applied index reaches its ``index``; answer each
   ``read_failure`` with an error (the client retries elsewhere);
5. log ``soft_state`` and ``events``; call ``advance(ready)``.

Restart: build a new ``RaftCore`` from the persisted hard state, snapshot and entries; the
state machine starts from the snapshot, and committed entries after it are handed out again.

Events (``Ready.events``, for the node log): ``role`` (role, term, leader), ``election``
(kind ``prevote``/``vote``/``won``, term; ``won`` also the votes it counted, the voters
and the last log index and term it won with), ``vote`` (term, for: a vote granted, also a candidate's own),
``commit`` (with ``RaftConfig.commit_events``: a leader's commit decision -- index, term,
entry_term, acks, voters), ``membership`` (index, voters, learners: in effect
as soon as appended), ``snapshot`` (index, term, kind ``compact``/``installed``),
``check_quorum_lost``, ``removed_step_down``, ``transfer_received``, ``transfer_aborted``,
``committed_entry_conflict`` (only ever seen with an unsafe switch).

Unsafe switches handled here (``RaftConfig.unsafe``): ``commit-old-terms`` (count replicas of
old-term entries and skip the no-op), ``local-reads`` (``read_index`` answers at once with index
0 on any node), ``lease-no-drift`` (lease reads with no drift margin). The others are the
storage's (``ack-before-sync``, ``volatile-vote``) and the state machine's (``no-sessions``).

Lease reads (``RaftConfig.lease_reads``): a leader serves a read without a heartbeat round
while a quorum acknowledged a heartbeat sent less than ``lease_ticks`` ago. Followers refuse
votes for ``election_min`` ticks after hearing from a leader (and after boot), so no other
leader can exist within ``election_min`` ticks *of the followers' clocks*. The lease is
``floor(election_min / (1 + max_clock_drift)) - 1`` ticks, which is safe as long as no clock
runs more than ``max_clock_drift`` (default 0.2 = 20 %) faster than the leader's and clocks do
not jump. The unsafe switch ``lease-no-drift`` uses the full ``election_min`` and no
margin.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from raftnode.types import (
    CANDIDATE,
    CONFIG,
    FOLLOWER,
    LEADER,
    MSG_APPEND,
    MSG_APPEND_RESP,
    MSG_HEARTBEAT,
    MSG_HEARTBEAT_RESP,
    MSG_PREVOTE,
    MSG_PREVOTE_RESP,
    MSG_SNAPSHOT,
    MSG_TIMEOUT_NOW,
    MSG_VOTE,
    MSG_VOTE_RESP,
    NOOP,
    NORMAL,
    PRE_CANDIDATE,
    UNSAFE_SWITCHES,
    Entry,
    HardState,
    Membership,
    Message,
    NotLeader,
    ReadFailure,
    ReadState,
    Ready,
    Snapshot,
    SoftState,
)

# Replication progress states (per follower, on the leader).
PROBE = "probe"  # one append at a time until the follower's match index is found
REPLICATE = "replicate"  # pipelined appends, up to max_inflight messages in flight
SNAPSHOTTING = "snapshot"  # an InstallSnapshot is in flight

TRANSFER_CONTEXT = "transfer"  # vote context: a leadership transfer, bypasses the vote lease

# The unsafe switches the core itself implements (the others live in storage/state machine).
CORE_UNSAFE = frozenset({"commit-old-terms", "local-reads", "lease-no-drift"})


class ProposalRejected(Exception):
    """A membership change or transfer the leader cannot start now (reason in the message)."""


@dataclass
class RaftConfig:
    """Timing in ticks, replication limits, read mode and unsafe switches."""

    id: str
    election_min: int = 15  # election timeout drawn from [election_min, election_max)
    election_max: int = 30
    heartbeat: int = 5
    pre_vote: bool = True
    check_quorum: bool = True
    max_inflight: int = 16  # append messages in flight per follower (pipelining window)
    max_batch: int = 128  # entries per append message
    lease_reads: bool = False
    max_clock_drift: float = 0.2
    seed: int | None = None  # election jitter seed (default: derived from id)
    unsafe: frozenset[str] = field(default_factory=frozenset)
    # a ``commit`` event for every commit decision of a leader, with the voters whose match
    # index reached it (node events; the server logs them, the simulator does without)
    commit_events: bool = False

    def __post_init__(self) -> None:
        bad = set(self.unsafe) - set(UNSAFE_SWITCHES)
        if bad:
            raise ValueError(f"unknown unsafe switch(es): {', '.join(sorted(bad))}")
        if not 1 <= self.heartbeat < self.election_min < self.election_max:
            raise ValueError("need 1 <= heartbeat < election_min < election_max (ticks)")
        self.unsafe = frozenset(self.unsafe)

    def lease_ticks(self) -> int:
        """How long a quorum-acknowledged heartbeat keeps the leader's read lease."""
        if "lease-no-drift" in self.unsafe:
            return self.election_min
        return max(0, int(self.election_min / (1.0 + self.max_clock_drift)) - 1)


class _Progress:
    """The leader's view of one follower."""

    __slots__ = ("match", "next", "state", "inflight", "paused", "active", "acked_round",
                 "snap_wait")

    def __init__(self, next_index: int):
        self.match = 0
        self.next = next_index
        self.state = PROBE
        self.inflight: deque[int] = deque()  # last index of each append in flight
        self.paused = False  # probe: an append is out, wait for its answer
        self.active = False  # heard from since the last CheckQuorum round
        self.acked_round = 0  # highest heartbeat round acknowledged
        self.snap_wait = 0  # ticks spent waiting for an InstallSnapshot answer

    def become_probe(self) -> None:
        self.state, self.paused = PROBE, False
        self.inflight.clear()
        self.next = self.match + 1


class RaftCore:
    """One Raft node's algorithm state. See the module docstring for the caller's duties."""

    def __init__(
        self,
        config: RaftConfig | str,
        membership: Membership | None = None,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: list[Entry] | tuple[Entry, ...] = (),
        rng: random.Random | None = None,
        *,
        applied: int | None = None,
        election_ticks: tuple[int, int] | None = None,
        heartbeat_ticks: int | None = None,
        unsafe: frozenset[str] | set[str] | None = None,
        seed: int | None = None,
        lease_reads: bool | None = None,
    ):
        """``membership`` is the bootstrap configuration (``--peers``); a joining server passes
        one where it is absent or a learner and learns the real one from the leader.

        ``config`` may be just the node id, with the keyword arguments filling a RaftConfig
        (``election_ticks=(lo, hi)``, ``heartbeat_ticks``, ``unsafe``, ``seed``,
        ``lease_reads``). ``applied`` is the state machine's applied index when it survived
        (default: the snapshot's index, so committed entries after it are handed out again)."""
        if isinstance(config, str):
            kw: dict[str, Any] = {}
            if election_ticks is not None:
                kw["election_min"], kw["election_max"] = election_ticks
                kw["election_max"] = max(kw["election_max"], kw["election_min"] + 1)
            if heartbeat_ticks is not None:
                kw["heartbeat"] = heartbeat_ticks
            if unsafe is not None:
                kw["unsafe"] = frozenset(unsafe) & CORE_UNSAFE
            if lease_reads is not None:
                kw["lease_reads"] = lease_reads
            config = RaftConfig(id=config, seed=seed, **kw)
        self.cfg = config
        self.id = config.id
        # The id is part of the seed so nodes given the same seed still draw different timeouts.
        self.rng = rng or random.Random(f"{config.seed}:{config.id}")
        hs = hard_state or HardState()
        self.term = hs.term
        self.vote = hs.vote
        self.initial_membership = membership or Membership(voters={})
        self.snapshot = snapshot
        self.snap_index = snapshot.index if snapshot else 0
        self.snap_term = snapshot.term if snapshot else 0
        self.log: list[Entry] = [e for e in entries if e.index > self.snap_index]
        for i, e in enumerate(self.log):
            if e.index != self.snap_index + 1 + i:
                raise ValueError(f"persisted log has a gap at index {self.snap_index + 1 + i}")
        self.commit = max(self.snap_index, min(hs.commit, self.last_index()))
        # highest index handed out in Ready.committed
        self.applied = self.snap_index if applied is None else max(
            self.snap_index, min(applied, self.commit))
        self.role = FOLLOWER
        self.leader: str | None = None
        self.transferee: str | None = None
        self._events: list[dict[str, Any]] = []
        self.membership = self.initial_membership
        self.config_index = 0
        self.promote: frozenset[str] = frozenset()
        self._recompute_config(emit=False)

        self.election_elapsed = 0
        self.since_leader = 0  # ticks since a leader was heard from (0 at boot: vote lease)
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self._draw_timeout()
        self.votes: dict[str, bool] = {}
        self.prs: dict[str, _Progress] = {}
        self.term_start = 0  # index of this leader's no-op
        self.now = 0  # ticks since construction (the lease clock)
        self.round = 0  # heartbeat round counter (ReadIndex and leases)
        self.round_sent: dict[int, int] = {}  # round -> tick it was sent (lease mode only)
        self.lease_mode = config.lease_reads or "lease-no-drift" in config.unsafe
        self.reads_waiting_commit: list[Any] = []  # reads before this term's first commit
        self.reads_unsent: list[Any] = []  # reads waiting for the next heartbeat round
        self.reads_pending: deque[tuple[int, int, list[Any]]] = deque()  # (round, index, ctxs)
        self.read_index_lease = 0  # tick until which the lease holds

        # Output buffers
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._read_failures: list[ReadFailure] = []
        self._snapshot_out: Snapshot | None = None
        self._unstable_from = self.last_index() + 1
        self._prev_hs = HardState(self.term, self.vote, self.commit)
        self._prev_soft = SoftState(self.role, self.term, self.leader)

    # ------------------------------------------------------------------ log helpers

    def last_index(self) -> int:
        return self.log[-1].index if self.log else self.snap_index

    def last_term(self) -> int:
        return self.log[-1].term if self.log else self.snap_term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if compacted away or beyond the log."""
        snap = self.snap_index
        if index == snap:
            return self.snap_term
        off = index - snap - 1  # the log holds snap+1.. contiguously: no last_index() call
        if off < 0 or off >= len(self.log):
            return None
        return self.log[off].term

    def entry(self, index: int) -> Entry:
        return self.log[index - self.snap_index - 1]

    def entries_from(self, lo: int, hi: int) -> list[Entry]:
        """Entries lo..hi inclusive (both within the uncompacted log)."""
        off = self.snap_index + 1
        return self.log[lo - off : hi - off + 1]

    def _truncate_from(self, index: int) -> None:
        had_config = self.config_index >= index
        del self.log[index - self.snap_index - 1 :]
        self._unstable_from = min(self._unstable_from, index)
        if had_config:
            self._recompute_config(emit=True)

    def _append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        self.log.extend(entries)
        self._unstable_from = min(self._unstable_from, entries[0].index)
        for e in reversed(entries):
            if e.kind == CONFIG:
                self._set_config(e.data, e.index)
                break

    # ------------------------------------------------------------------ membership

    def _recompute_config(self, emit: bool) -> None:
        """The configuration in effect is the last one in the log, committed or not."""
        for e in reversed(self.log):
            if e.kind == CONFIG:
                self._set_config(e.data, e.index, emit)
                return
        base = self.snapshot.membership if self.snapshot else self.initial_membership
        self._set_config(base.to_dict(), self.snap_index if self.snapshot else 0, emit)

    def _set_config(self, data: dict[str, Any], index: int, emit: bool = True) -> None:
        m = Membership.from_dict(data)
        self.membership = m
        self.config_index = index
        self.promote = frozenset(m.promote)  # already only learners (Membership.from_dict)
        if self.role == LEADER:
            for p in list(self.prs):
                if p not in m.voters and p not in m.learners:
                    del self.prs[p]
            for p in self._peers():
                if p not in self.prs:
                    self.prs[p] = _Progress(self.last_index() + 1)
            if self.transferee and self.transferee not in m.voters:
                self.transferee = None
        if emit:
            self._events.append({"event": "membership", "index": index, "voters":
                                 sorted(m.voters), "learners": sorted(m.learners)})

    def _peers(self) -> list[str]:
        m = self.membership
        return [p for p in (*m.voters, *m.learners) if p != self.id]

    def is_voter(self) -> bool:
        return self.id in self.membership.voters

    def _quorum(self) -> int:
        return len(self.membership.voters) // 2 + 1

    def propose_membership(self, change: str, node: str, addr: str = "") -> int:
        """Append a one-server configuration change; returns its log index.

        In effect as soon as appended (thesis ch. 4); a second change waits until the first
        commits, and a new leader first commits its no-op."""
        self._require_leader()
        if self.commit < self.term_start:
            raise ProposalRejected("leader has not committed an entry of its term yet")
        if self.config_index > self.commit:
            raise ProposalRejected("a membership change is already in progress")
        m = self.membership
        voters, learners = dict(m.voters), dict(m.learners)
        promote = set(self.promote)
        if change in ("add", "add-learner"):
            if node in voters or node in learners:
                raise ProposalRejected(f"{node} is already a member")
            learners[node] = addr
            if change == "add":
                promote.add(node)
        elif change == "promote":
            if node not in learners:
                raise ProposalRejected(f"{node} is not a learner")
            voters[node] = learners.pop(node)
            promote.discard(node)
        elif change == "remove":
            if node in voters:
                if len(voters) == 1:
                    raise ProposalRejected("cannot remove the last voter")
                del voters[node]
            elif node in learners:
                del learners[node]
            else:
                raise ProposalRejected(f"{node} is not a member")
            promote.discard(node)
        else:
            raise ValueError(f"unknown membership change {change!r}")
        data = Membership(voters, learners, tuple(sorted(promote & set(learners)))).to_dict()
        index = self.last_index() + 1
        self._append([Entry(self.term, index, CONFIG, data)])
        self._leader_after_append()
        return index

    def _maybe_promote(self) -> None:
        if self.role != LEADER or not self.promote or self.config_index > self.commit:
            return
        if self.commit < self.term_start or self.transferee:
            return
        for p in sorted(self.promote):
            pr = self.prs.get(p)
            if pr is not None and pr.match >= self.commit:
                self.propose_membership("promote", p)
                return

    # ------------------------------------------------------------------ role changes

    def _draw_timeout(self) -> int:
        return self.rng.randrange(self.cfg.election_min, self.cfg.election_max)

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = None
        self.leader = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self._draw_timeout()
        self.votes = {}
        self.transferee = None
        self._fail_reads("leadership-lost")

    def _become_follower(self, term: int, leader: str | None) -> None:
        self._reset(term)
        self.role = FOLLOWER
        self.leader = leader
        self.prs = {}

    def _become_pre_candidate(self) -> None:
        self.role = PRE_CANDIDATE
        self.votes = {}
        self.leader = None
        self.election_elapsed = 0
        self.randomized_timeout = self._draw_timeout()
        self.prs = {}
        self._events.append({"event": "election", "kind": "prevote", "term": self.term + 1})

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.role = CANDIDATE
        self.vote = self.id
        self.prs = {}
        self._events.append({"event": "election", "kind": "vote", "term": self.term})
        self._events.append({"event": "vote", "term": self.term, "for": self.id})

    def _become_leader(self) -> None:
        votes = sorted(p for p, granted in self.votes.items() if granted)
        self._reset(self.term)
        self.role = LEADER
        self.leader = self.id
        self.prs = {p: _Progress(self.last_index() + 1) for p in self._peers()}
        for pr in self.prs.values():
            pr.active = True
        self.round_sent = {}
        self.read_index_lease = 0
        # The votes it counted and the log it won with (before its no-op): for the node-event
        # checks of the election quorum and of leader completeness.
        self._events.append({"event": "election", "kind": "won", "term": self.term,
                             "last_index": self.last_index(), "last_term": self.last_term(),
                             "votes": votes, "voters": sorted(self.membership.voters)})
        if "commit-old-terms" in self.cfg.unsafe:
            # Unsafe: the no-op exists only for the Figure-8 rule; skip both.
            self.term_start = 0
            self._maybe_commit()
        else:
            self.term_start = self.last_index() + 1
            self._append([Entry(self.term, self.term_start, NOOP, None)])
            self._leader_after_append()

    def _campaign(self, pre: bool, transfer: bool = False) -> None:
        if pre:
            self._become_pre_candidate()
            term, mtype = self.term + 1, MSG_PREVOTE
        else:
            self._become_candidate()
            term, mtype = self.term, MSG_VOTE
        self.votes[self.id] = True
        if self._tally() == "won":
            if pre:
                self._campaign(pre=False)
            else:
                self._become_leader()
            return
        ctx = TRANSFER_CONTEXT if transfer else None
        for p in self.membership.voters:
            if p != self.id:
                self._send(Message(mtype, self.id, p, term, log_term=self.last_term(),
                                   index=self.last_index(), context=ctx))

    def _tally(self) -> str:
        granted = sum(1 for p, v in self.votes.items() if v and p in self.membership.voters)
        rejected = sum(1 for p, v in self.votes.items() if not v and p in self.membership.voters)
        if granted >= self._quorum():
            return "won"
        if rejected >= self._quorum():
            return "lost"
        return "pending"

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        """Advance logical time by one tick."""
        self.now += 1
        if self.role == LEADER:
            self._tick_leader()
            return
        self.election_elapsed += 1
        self.since_leader += 1
        if self.election_elapsed >= self.randomized_timeout:
            self.election_elapsed = 0
            if self.is_voter():
                self._campaign(pre=self.cfg.pre_vote)
            else:
                self.randomized_timeout = self._draw_timeout()

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_min:
            self.election_elapsed = 0
            if self.cfg.check_quorum:
                active = sum(1 for p, pr in self.prs.items()
                             if pr.active and p in self.membership.voters)
                if self.is_voter():
                    active += 1
                for pr in self.prs.values():
                    pr.active = False
                if active < self._quorum():
                    self._events.append({"event": "check_quorum_lost", "term": self.term})
                    self._become_follower(self.term, None)
                    return
            if self.transferee is not None:
                self._events.append({"event": "transfer_aborted", "to": self.transferee})
                self.transferee = None
        for pr in self.prs.values():
            if pr.state == SNAPSHOTTING:
                pr.snap_wait += 1
                if pr.snap_wait >= self.cfg.election_min:
                    pr.become_probe()
        if self.heartbeat_elapsed >= self.cfg.heartbeat:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat()
        self._maybe_promote()

    def propose(self, command: Any) -> tuple[int, int]:
        """Append a client command; returns (index, term). Leader only."""
        self._require_leader()
        index = self.last_index() + 1
        self._append([Entry(self.term, index, NORMAL, command)])
        self._leader_after_append()
        return index, self.term

    def _require_leader(self) -> None:
        if self.role != LEADER or self.transferee is not None:
            addr = self.membership.voters.get(self.leader) if self.leader else None
            raise NotLeader(self.leader if self.leader != self.id else None, addr)

    def _leader_after_append(self) -> None:
        # Replication is sent when ready() is called, so proposals between two ready() calls
        # travel in one batch. A single voter commits right away.
        self._maybe_commit()

    def read_index(self, ctx: Any) -> None:
        """Ask for a linearizable read; the answer comes in a later Ready."""
        if "local-reads" in self.cfg.unsafe:
            self._read_states.append(ReadState(ctx, 0))  # unsafe: serve local state now
            return
        if self.role != LEADER or self.transferee is not None:
            self._read_failures.append(ReadFailure(ctx, "not-leader",
                                                   None if self.leader == self.id else self.leader))
            return
        if self.commit < self.term_start:
            self.reads_waiting_commit.append(ctx)
            return
        self._queue_read(ctx)

    def _queue_read(self, ctx: Any) -> None:
        if self.lease_mode and self.now < self.read_index_lease:
            self._read_states.append(ReadState(ctx, self.commit))
            return
        self.reads_unsent.append(ctx)

    def _fail_reads(self, reason: str) -> None:
        ctxs = list(self.reads_waiting_commit) + list(self.reads_unsent)
        for _r, _i, batch in self.reads_pending:
            ctxs.extend(batch)
        self.reads_waiting_commit, self.reads_unsent = [], []
        self.reads_pending.clear()
        for c in ctxs:
            self._read_failures.append(ReadFailure(c, reason, self.leader
                                                   if self.leader != self.id else None))

    def transfer_leadership(self, to: str) -> None:
        """Hand leadership to voter ``to``: catch it up, then send it TimeoutNow."""
        if self.role != LEADER:
            raise NotLeader(self.leader)
        if to == self.id or to not in self.membership.voters:
            raise ProposalRejected(f"cannot transfer leadership to {to!r}")
        self.transferee = to
        self.election_elapsed = 0  # the transfer must finish within one election timeout
        self._fail_reads("leadership-transfer")
        pr = self.prs[to]
        if pr.match == self.last_index():
            self._send(Message(MSG_TIMEOUT_NOW, self.id, to, self.term))
        else:
            self._send_append(to)

    def compact(self, index: int, data: Any) -> None:
        """Replace the log up to the applied ``index`` by the state machine image ``data``."""
        if index <= self.snap_index:
            return
        if index > self.applied:
            raise ValueError(f"cannot compact to {index}: only {self.applied} applied")
        term = self.term_at(index)
        assert term is not None
        membership = self._membership_at(index)
        snap = Snapshot(index, term, membership, data)
        self.log = self.log[index - self.snap_index :]
        self.snapshot, self.snap_index, self.snap_term = snap, index, term
        self._snapshot_out = snap
        self._events.append({"event": "snapshot", "index": index, "term": term,
                             "kind": "compact"})

    def _membership_at(self, index: int) -> Membership:
        for e in reversed(self.entries_from(self.snap_index + 1, index)):
            if e.kind == CONFIG:
                return Membership.from_dict(e.data)
        return self.snapshot.membership if self.snapshot else self.initial_membership

    # ------------------------------------------------------------------ step

    def step(self, m: Message) -> None:
        """Handle one peer message."""
        if m.term > self.term:
            if m.type in (MSG_PREVOTE, MSG_VOTE):
                in_lease = (self.cfg.check_quorum and m.context != TRANSFER_CONTEXT
                            and (self.role == LEADER
                                 or self.since_leader < self.cfg.election_min))
                if in_lease:
                    return  # a leader (or our boot) is recent: ignore the disruption
            if m.type == MSG_PREVOTE or (m.type == MSG_PREVOTE_RESP and not m.reject):
                pass  # pre-votes never change terms
            elif m.type in (MSG_APPEND, MSG_HEARTBEAT, MSG_SNAPSHOT):
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, None)
        elif m.term < self.term:
            if m.type in (MSG_APPEND, MSG_HEARTBEAT) and (self.cfg.check_quorum
                                                           or self.cfg.pre_vote):
                # A stale leader: tell it the term so it steps down.
                self._send(Message(MSG_APPEND_RESP, self.id, m.src, self.term))
            elif m.type == MSG_PREVOTE:
                self._send(Message(MSG_PREVOTE_RESP, self.id, m.src, self.term, reject=True))
            return

        t = m.type
        if t in (MSG_VOTE, MSG_PREVOTE):
            self._handle_vote_request(m)
        elif self.role == LEADER:
            self._step_leader(m)
        elif t in (MSG_APPEND, MSG_HEARTBEAT, MSG_SNAPSHOT):
            if self.role != FOLLOWER:
                self._become_follower(m.term, m.src)
            self.leader = m.src
            self.election_elapsed = 0
            self.since_leader = 0
            if t == MSG_APPEND:
                self._handle_append(m)
            elif t == MSG_HEARTBEAT:
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif t in (MSG_VOTE_RESP, MSG_PREVOTE_RESP):
            self._handle_vote_response(m)
        elif t == MSG_TIMEOUT_NOW and self.is_voter():
            self._events.append({"event": "transfer_received", "from": m.src})
            self._campaign(pre=False, transfer=True)

    def _log_ok(self, log_term: int, index: int) -> bool:
        lt = self.last_term()
        return log_term > lt or (log_term == lt and index >= self.last_index())

    def _handle_vote_request(self, m: Message) -> None:
        pre = m.type == MSG_PREVOTE
        resp = MSG_PREVOTE_RESP if pre else MSG_VOTE_RESP
        if pre:
            can = m.term > self.term
        else:
            can = self.vote == m.src or (self.vote is None and self.leader is None)
        if can and self._log_ok(m.log_term, m.index):
            self._send(Message(resp, self.id, m.src, m.term))
            if not pre:
                self.vote = m.src
                self.election_elapsed = 0
                self._events.append({"event": "vote", "term": self.term, "for": m.src})
        else:
            self._send(Message(resp, self.id, m.src, self.term, reject=True))

    def _handle_vote_response(self, m: Message) -> None:
        pre = m.type == MSG_PREVOTE_RESP
        if (pre and self.role != PRE_CANDIDATE) or (not pre and self.role != CANDIDATE):
            return
        if pre and not m.reject and m.term != self.term + 1:
            return
        self.votes.setdefault(m.src, not m.reject)
        outcome = self._tally()
        if outcome == "won":
            if pre:
                self._campaign(pre=False)
            else:
                self._become_leader()
        elif outcome == "lost":
            self._become_follower(self.term, None)

    # ------------------------------------------------------------------ follower side

    def _handle_append(self, m: Message) -> None:
        # Responses are built with positional arguments (type, src, dst, term, log_term,
        # index): a follower answers every append, and keywords cost more than the rest.
        if m.index < self.commit:
            self._msgs.append(Message(MSG_APPEND_RESP, self.id, m.src, self.term, 0, self.commit))
            return
        if self.term_at(m.index) != m.log_term:
            self._send(Message(MSG_APPEND_RESP, self.id, m.src, self.term, index=m.index,
                               reject=True, reject_hint=self._reject_hint(m.index)))
            return
        entries = m.entries
        for i, e in enumerate(entries):
            have = self.term_at(e.index)
            if have == e.term:
                continue
            if have is not None:
                if e.index <= self.commit:
                    self._events.append({"event": "committed_entry_conflict", "index": e.index})
                self._truncate_from(e.index)
            self._append(entries[i:])  # a slice: the log never shares the message's list
            break
        last_new = m.index + len(entries)
        if m.commit > self.commit:
            self._commit_to(min(m.commit, last_new))
        self._msgs.append(Message(MSG_APPEND_RESP, self.id, m.src, self.term, 0, last_new))

    def _reject_hint(self, index: int) -> int:
        """Fast backtracking: the next index the leader should try for this follower."""
        last = self.last_index()
        if index > last:
            return last + 1
        conflict = self.term_at(index)
        i = index
        floor = max(self.commit, self.snap_index)
        while i - 1 > floor and self.term_at(i - 1) == conflict:
            i -= 1
        return max(i, 1)

    def _handle_heartbeat(self, m: Message) -> None:
        last = self.last_index()
        if m.commit > self.commit:
            self._commit_to(min(m.commit, last))
        # Positional (type, src, dst, term, log_term, index, entries, commit, reject,
        # reject_hint, snapshot, context): the most frequent message after appends.
        self._msgs.append(Message(MSG_HEARTBEAT_RESP, self.id, m.src, self.term, 0, last, [], 0,
                                  False, 0, None, m.context))

    def _handle_snapshot(self, m: Message) -> None:
        s = m.snapshot
        assert s is not None
        if s.index <= self.commit:
            self._send(Message(MSG_APPEND_RESP, self.id, m.src, self.term, index=self.commit))
            return
        if self.term_at(s.index) == s.term:
            self._commit_to(s.index)  # we already have it: just learn the commit
        else:
            self.log = []
            self.snapshot, self.snap_index, self.snap_term = s, s.index, s.term
            self.commit = self.applied = s.index
            self._unstable_from = s.index + 1
            self._snapshot_out = s
            self._recompute_config(emit=True)
            self._events.append({"event": "snapshot", "index": s.index, "term": s.term,
                                 "kind": "installed", "from": m.src})
        self._send(Message(MSG_APPEND_RESP, self.id, m.src, self.term, index=s.index))

    def _commit_to(self, index: int) -> None:
        if index > self.commit:
            self.commit = index
            if self.role == LEADER:
                self._after_leader_commit()

    # ------------------------------------------------------------------ leader side

    def _send(self, m: Message) -> None:
        self._msgs.append(m)

    def _send_append(self, peer: str, probe_empty: bool = False) -> None:
        pr = self.prs[peer]
        if not probe_empty and pr.next == self.last_index() + 1:
            return  # nothing new for this peer: every ack lands here (same as the checks below)
        state = pr.state
        if state == SNAPSHOTTING or (state == PROBE and pr.paused):
            return
        if state == REPLICATE and len(pr.inflight) >= self.cfg.max_inflight:
            return
        prev = pr.next - 1
        prev_term = self.term_at(prev)
        if prev_term is None:
            if prev < self.snap_index and self.snapshot is not None:
                pr.state, pr.snap_wait = SNAPSHOTTING, 0
                self._send(Message(MSG_SNAPSHOT, self.id, peer, self.term,
                                   snapshot=self.snapshot))
                return
            pr.next = self.last_index() + 1  # beyond our log: start from our end
            prev, prev_term = pr.next - 1, self.last_term()
        last = self.last_index()
        nxt = pr.next
        if nxt > last and not probe_empty:
            return
        if nxt <= last:
            hi = min(last, nxt + self.cfg.max_batch - 1)
            ents = self.log[nxt - self.snap_index - 1 : hi - self.snap_index]  # entries_from
        else:
            ents = []
        # Positional (type, src, dst, term, log_term, index, entries, commit): the leader's
        # most frequent message.
        self._msgs.append(Message(MSG_APPEND, self.id, peer, self.term, prev_term, prev, ents,
                                  self.commit))
        if state == REPLICATE:
            if ents:
                pr.next = hi + 1
                pr.inflight.append(hi)
        else:
            pr.paused = True

    def _flush_replication(self) -> None:
        up_to_date = self.last_index() + 1
        for p, pr in self.prs.items():
            if pr.next != up_to_date:  # a peer whose next is our end has nothing to send
                self._send_append(p)

    def _broadcast_heartbeat(self) -> None:
        self.round += 1
        if self.lease_mode:
            self.round_sent[self.round] = self.now
        nid, term, commit, rnd, msgs = self.id, self.term, self.commit, self.round, self._msgs
        for p, pr in self.prs.items():
            # Positional (..., entries, commit, reject, reject_hint, snapshot, context).
            msgs.append(Message(MSG_HEARTBEAT, nid, p, term, 0, 0, [], min(pr.match, commit),
                                False, 0, None, rnd))
        self._advance_reads()

    def _step_leader(self, m: Message) -> None:
        pr = self.prs.get(m.src)
        if pr is None:
            return
        if m.type == MSG_APPEND_RESP:
            pr.active = True
            if m.reject:
                self._handle_reject(pr, m)
            else:
                self._handle_ack(m.src, pr, m.index)
        elif m.type == MSG_HEARTBEAT_RESP:
            pr.active = True
            if pr.state == PROBE:
                pr.paused = False
            elif pr.state == REPLICATE and len(pr.inflight) >= self.cfg.max_inflight:
                pr.inflight.popleft()  # appends may have been lost: let one more through
            if isinstance(m.context, int) and m.context > pr.acked_round:
                pr.acked_round = m.context
                self._advance_reads()
            if pr.match < self.last_index():
                self._send_append(m.src, probe_empty=True)

    def _handle_reject(self, pr: _Progress, m: Message) -> None:
        if pr.state == REPLICATE:
            if m.index <= pr.match:
                return  # stale
        elif pr.state == PROBE:
            if m.index != pr.next - 1:
                return  # stale
        else:
            return
        pr.state, pr.paused = PROBE, False
        pr.inflight.clear()
        pr.next = max(pr.match + 1, min(m.index, m.reject_hint or m.index))
        self._send_append(m.src, probe_empty=True)

    def _handle_ack(self, peer: str, pr: _Progress, index: int) -> None:
        if index > pr.match or pr.state == SNAPSHOTTING:
            pr.match = max(pr.match, index)
            if pr.state != REPLICATE:
                pr.state, pr.paused = REPLICATE, False
                pr.inflight.clear()
                pr.next = pr.match + 1
            else:
                pr.next = max(pr.next, pr.match + 1)
            self._maybe_commit()
        elif pr.state == PROBE:
            pr.paused = False
        while pr.inflight and pr.inflight[0] <= index:
            pr.inflight.popleft()
        if self.role != LEADER:
            return
        if peer == self.transferee and pr.match == self.last_index():
            self._send(Message(MSG_TIMEOUT_NOW, self.id, peer, self.term))
        self._send_append(peer)
        self._maybe_promote()

    def _maybe_commit(self) -> None:
        voters = self.membership.voters
        matches = [pr.match for p, pr in self.prs.items() if p in voters]
        if self.id in voters:
            matches.append(self.last_index())
        if not matches:
            return
        matches.sort(reverse=True)
        n = matches[self._quorum() - 1]
        if n <= self.commit:
            return
        if self.term_at(n) != self.term and "commit-old-terms" not in self.cfg.unsafe:
            return  # Figure 8: only entries of the leader's own term commit by counting
        self.commit = n
        if self.cfg.commit_events:
            acks = [p for p, pr in self.prs.items() if p in voters and pr.match >= n]
            if self.id in voters:
                acks.append(self.id)
            self._events.append({"event": "commit", "index": n, "term": self.term,
                                 "entry_term": self.term_at(n), "acks": sorted(acks),
                                 "voters": sorted(voters)})
        self._after_leader_commit()

    def _after_leader_commit(self) -> None:
        if self.reads_waiting_commit and self.commit >= self.term_start:
            waiting, self.reads_waiting_commit = self.reads_waiting_commit, []
            for c in waiting:
                self._queue_read(c)
        if self.config_index <= self.commit and not self.is_voter():
            # Removed (or demoted) leader: step down once the change is committed.
            self._events.append({"event": "removed_step_down", "term": self.term})
            self._become_follower(self.term, None)

    def _advance_reads(self) -> None:
        """Release reads whose heartbeat round a quorum acknowledged; extend the lease."""
        if not self.reads_pending and not self.lease_mode:
            return
        voters = self.membership.voters
        acks = [pr.acked_round for p, pr in self.prs.items() if p in voters]
        if self.id in voters:
            acks.append(self.round)
        if not acks:
            return
        acks.sort(reverse=True)
        confirmed = acks[self._quorum() - 1]
        if confirmed <= 0:
            return
        sent = self.round_sent.get(confirmed)
        if sent is not None:
            self.read_index_lease = max(self.read_index_lease, sent + self.cfg.lease_ticks())
        if self.round_sent:  # lease mode only
            for r in [r for r in self.round_sent if r < confirmed]:
                del self.round_sent[r]
        while self.reads_pending and self.reads_pending[0][0] <= confirmed:
            _r, index, ctxs = self.reads_pending.popleft()
            for c in ctxs:
                self._read_states.append(ReadState(c, index))

    # ------------------------------------------------------------------ output

    def ready(self) -> Ready:
        """Collect everything the caller must persist, send, apply and answer."""
        if self.role == LEADER:
            if self.reads_unsent:
                ctxs, self.reads_unsent = self.reads_unsent, []
                self.reads_pending.append((self.round + 1, self.commit, ctxs))
                self._broadcast_heartbeat()
            self._flush_replication()
        # Built in one constructor call (no default factories, no attribute writes after):
        # ready() runs once per message or tick that changes anything.
        term, vote, commit = self.term, self.vote, self.commit
        hs = None
        prev = self._prev_hs
        if prev.term != term or prev.vote != vote or prev.commit != commit:
            hs = self._prev_hs = HardState(term, vote, commit)
        log, off = self.log, self.snap_index + 1  # entries_from(lo, hi) inlined below
        last = log[-1].index if log else off - 1
        unstable = self._unstable_from
        entries = log[unstable - off :] if unstable <= last else []
        self._unstable_from = last + 1
        snap = self._snapshot_out
        if snap is not None:
            self._snapshot_out = None
        msgs = self._msgs
        if msgs:
            self._msgs = []
        else:
            msgs = []
        if commit > self.applied:
            committed = log[self.applied + 1 - off : commit - off + 1]
            self.applied = commit
        else:
            committed = []
        read_states = self._read_states
        if read_states:
            self._read_states = []
        else:
            read_states = []
        read_failures = self._read_failures
        if read_failures:
            self._read_failures = []
        else:
            read_failures = []
        soft = None
        ps = self._prev_soft
        if ps.role != self.role or ps.term != term or ps.leader != self.leader:
            soft = self._prev_soft = SoftState(self.role, term, self.leader)
            self._events.append({"event": "role", "role": self.role, "term": term,
                                 "leader": self.leader})
        events = self._events
        if events:
            self._events = []
        else:
            events = []
        return Ready(hs, entries, snap, msgs, committed, read_states, read_failures, soft,
                     events)

    def advance(self, ready: Ready) -> None:
        """Acknowledge a Ready. Its effects are already accounted for when it was built."""
        return None

    def has_ready(self) -> bool:
        """Cheap check whether ready() would return anything (the simulator's fast path)."""
        if (self._msgs or self._read_states or self._read_failures or self._events
                or self._snapshot_out is not None or self.commit > self.applied
                or self.reads_unsent):
            return True
        last = self.log[-1].index if self.log else self.snap_index
        if self._unstable_from <= last:
            return True
        hs, soft, term, role = self._prev_hs, self._prev_soft, self.term, self.role
        if (hs.term != term or hs.vote != self.vote or hs.commit != self.commit
                or soft.role != role or soft.term != term or soft.leader != self.leader):
            return True
        if role == LEADER:
            window = self.cfg.max_inflight
            for pr in self.prs.values():
                if (pr.next <= last and pr.state != SNAPSHOTTING
                        and not (pr.state == PROBE and pr.paused)
                        and len(pr.inflight) < window):
                    return True
        return False

    def status(self) -> dict[str, Any]:
        """A JSON-friendly summary for the status request and logs."""
        return {
            "id": self.id, "role": self.role, "term": self.term, "leader": self.leader,
            "commit": self.commit, "applied": self.applied, "last_index": self.last_index(),
            "snapshot_index": self.snap_index,
            "voters": sorted(self.membership.voters),
            "learners": sorted(self.membership.learners),
        }
