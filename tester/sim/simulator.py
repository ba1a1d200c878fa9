"""One seed, one deterministic run: raftnode cores under a simulated network, clock and nemesis.

Everything random comes from the seed, through separate streams (plan, network, clients,
cores), and simulated time only moves when the event queue says so; the same seed therefore
gives the same trace and the same history, byte for byte.

* **Plan** (:func:`make_plan`): the faults -- partitions of every kind the nemesis knows,
  kill -9 of one node, of a majority or of all nodes (losing what was not fsynced) and their
  restarts, pauses, clock rate changes and jumps, packet-loss bursts, membership changes,
  leadership transfers -- and the number of client operations. Shrinking edits the plan.
* **Network**: per-seed delay, loss, duplication and reordering between nodes; partitions
  drop messages between the sides. Client links are reliable but a dead or paused node does
  not answer.
* **Clocks**: each node ticks every ``TICK_MS / rate`` ms; a clock fault changes ``rate`` or
  jumps the node forward by some ticks. A paused node catches up on its missed ticks when it
  resumes (its monotonic clock kept running).
* **Clients**: workers issue read/write/cas (workload ``registers``), read/append
  (``append``) or read/add (``set``) over a few keys, one op at a time, to the node
  they believe leads; a ``not-leader`` answer redirects them, a timeout or an ``unknown``
  answer makes them retry with the same session (client id + seq); an op whose outcome they
  cannot learn is ``info``. The history uses raftlab's record format. With lists and sets,
  every key is read once more from the converged cluster at the end (the final reads).
* **Checks**: :mod:`tester.sim.invariants` on every Ready, log matching periodically, then
  the workload's checker on the history (linearizability, or the set checker).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from heapq import heappop, heappush
from typing import Any

from checker.history import Op
from raftnode.core import ProposalRejected
from raftnode.types import LEADER, Message, NotLeader
from tester.sim.cluster import Cluster, NodeHooks, Request, SimNode
from tester.sim.invariants import Invariants, Violation

TICK_MS = 10.0  # one Raft tick of simulated time at clock rate 1.0
ELECTION = (10, 20)  # election timeout in ticks (100-200 ms)
HEARTBEAT = 3
FLUSH_MS = 60.0  # the ack-before-sync flush timer
CLIENT_TIMEOUT_MS = 120.0
ATTEMPTS = 5  # tries per client op (same session seq) before it is given up as info
TIMEOUTS = 3  # ... of which at most this many may time out (a stuck worker moves on)
# After the last op every fault is healed and the cluster must converge within this: every
# safe seed measured converged within 500 ms; not converging is a liveness failure.
SETTLE_MS = 2000.0
MAX_SIM_MS = 600_000.0  # a seed's clients must be done within 10 simulated minutes
OPS_PER_S = 150.0  # the clients' total request rate (simulated time)
LOG_CHECK_EVERY = 500  # events between log-matching checks

FAULT_KINDS = (
    "partition-halves", "partition-one", "partition-leader", "partition-ring",
    "partition-bridge", "kill", "kill-leader", "kill-majority", "kill-all", "pause", "clock-rate",
    "clock-jump", "loss", "member-remove", "member-add", "transfer", "skew-partition-leader",
    # protocol moments: the leader killed or cut off right after it answers a client, and a
    # follower restarted while it catches up after a partition
    "kill-leader-after-ack", "partition-leader-after-ack", "restart-catching-up",
    # two configuration changes back to back: the second must wait for the first to commit
    "member-churn",
    # a long run for one follower: cut off for most of the run (killed and restarted from
    # its disk while away, half the time), so it falls more than a batch and a snapshot
    # behind and is caught up by many appends or an InstallSnapshot
    "lag-follower",
)
#: what the simulated clients can run; ``mixed`` draws one of them per seed
SIM_WORKLOADS = ("registers", "append", "set")
MIXED = "mixed"
MAX_EVENTS = 400_000  # a seed is ~3,000-10,000 events; far beyond is a message storm


@dataclass(frozen=True)
class Fault:
    """One nemesis action: starts at ``at`` ms, undone ``duration`` ms later."""

    at: float
    kind: str
    duration: float
    arg: float = 0.0  # clock rate, jump ticks or loss rate
    pick: int = 0  # which node(s): an index into the sorted candidates, modulo their number

    def describe(self) -> str:
        extra = f" arg={self.arg:g}" if self.arg else ""
        return f"{self.at:8.1f}ms {self.kind} for {self.duration:.0f}ms pick={self.pick}{extra}"


@dataclass(frozen=True)
class Plan:
    """What a seed does. Shrinking removes faults and ops, keeping the seed's other streams."""

    seed: int
    nodes: int = 3
    ops: int = 200
    clients: int = 10
    keys: int = 3
    unsafe: frozenset[str] = frozenset()
    faults: tuple[Fault, ...] = ()
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    max_delay: float = 3.0
    lease_reads: bool = False
    compact_every: int = 0
    # Raft configuration, drawn per seed (swarm testing): small batches and windows make
    # catch-up take many rounds, small snapshot intervals make restores common
    max_batch: int = 128
    max_inflight: int = 16
    pre_vote: bool = True
    check_quorum: bool = True
    election: tuple[int, int] = ELECTION
    heartbeat: int = HEARTBEAT
    workload: str = "registers"  # registers, append or set (tester.workloads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "seed": self.seed, "nodes": self.nodes, "ops": self.ops, "clients": self.clients,
            "keys": self.keys, "unsafe": sorted(self.unsafe), "loss": self.loss,
            "dup": self.dup, "reorder": self.reorder, "max_delay": self.max_delay,
            "lease_reads": self.lease_reads, "compact_every": self.compact_every,
            "max_batch": self.max_batch, "max_inflight": self.max_inflight,
            "pre_vote": self.pre_vote, "check_quorum": self.check_quorum,
            "election": list(self.election), "heartbeat": self.heartbeat,
            "faults": [f.describe().strip() for f in self.faults],
        }


def make_plan(seed: int, nodes: int = 3, ops: int = 200,
              unsafe: frozenset[str] = frozenset(), lease: bool = False) -> Plan:
    """Draw a fault schedule and network profile for ``seed``.

    ``lease`` runs lease reads with clock faults kept inside the core's documented bound
    (no node's clock more than 20 % faster than another's, no jumps)."""
    rng = random.Random(f"plan:{seed}")
    span = ops * 1000.0 / OPS_PER_S  # how long the clients will take, in ms
    faults = []
    # Like a Jepsen run's nemesis package: each seed draws a few fault kinds and mixes them.
    kinds = rng.sample(FAULT_KINDS, rng.choice((1, 2, 3)))
    t = rng.uniform(100, 300)
    while t < span:
        kind = rng.choice(kinds)
        dur = rng.uniform(150, 800)  # several election timeouts, as a nemesis interval
        arg = 0.0
        if kind == "clock-rate":
            arg = rng.choice((0.25, 0.5, 2.0, 3.0, 5.0))
        elif kind == "skew-partition-leader":
            arg = rng.choice((0.1, 0.2, 0.5))
        elif kind == "clock-jump":  # forward, or backward (the clock stalls until it is back)
            arg = float(rng.randint(5, 40) * rng.choice((1, -1)))
        elif kind == "loss":
            arg = rng.choice((0.2, 0.5, 0.9))
        elif kind == "restart-catching-up":  # ms after the heal at which the node is killed
            arg = rng.choice((1.0, 3.0, 8.0, 15.0))
        elif kind == "lag-follower":  # away for most of the run; arg 1: restarted meanwhile
            dur = rng.uniform(0.4, 0.8) * span
            arg = float(rng.randrange(2))
        if lease and kind in ("clock-rate", "skew-partition-leader", "clock-jump"):
            # within the drift bound: rates in [0.92, 1.1], so any ratio is under 1.2
            kind = "skew-partition-leader" if kind == "skew-partition-leader" else "clock-rate"
            arg = 0.92 if kind == "skew-partition-leader" or arg < 1 else 1.1
        faults.append(Fault(round(t, 1), kind, round(dur, 1), arg, rng.randrange(1 << 16)))
        t += rng.uniform(100, 500)
    profile = rng.random()
    # The Raft configuration comes from its own stream, so the faults above stay as they were.
    cfg = random.Random(f"config:{seed}")
    lease_reads = lease or bool(unsafe & {"lease-no-drift"})
    return Plan(
        seed=seed, nodes=nodes, ops=ops, unsafe=frozenset(unsafe), faults=tuple(faults),
        loss=0.0 if profile < 0.3 else rng.choice((0.01, 0.05, 0.1)),
        dup=0.0 if profile < 0.5 else rng.choice((0.01, 0.05)),
        reorder=0.0 if profile < 0.4 else rng.choice((0.05, 0.2)),
        max_delay=rng.choice((1.0, 3.0, 8.0)),
        lease_reads=lease_reads,
        compact_every=rng.choice((0, 0, 20, 50)) if cfg.random() < 0.5
        else cfg.choice((2, 3, 5, 8)),
        max_batch=cfg.choice((128, 128, 4, 2, 1)),
        max_inflight=cfg.choice((16, 16, 4, 1)),
        # PreVote and CheckQuorum stay on, as raftnode runs: without them Raft lets a server
        # removed from the cluster, unaware, disrupt it with ever higher terms for good
        pre_vote=True,
        check_quorum=True,
        election=cfg.choice((ELECTION, ELECTION, (6, 12), (10, 40))),
        heartbeat=cfg.choice((HEARTBEAT, HEARTBEAT, 1, 5)),
    )


@dataclass
class SimResult:
    plan: Plan
    violation: Violation | None
    trace: list[str]
    history: list[Op]
    stats: dict[str, int] = field(default_factory=dict)
    checker: Any = None  # the checker's CheckResult when it ran
    node_log: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.violation is not None

    def trace_text(self) -> str:
        return "\n".join(self.trace) + "\n"


class _Client:
    __slots__ = ("idx", "process", "guess", "seq", "done", "op", "attempt", "maybe_applied",
                 "deadline_id", "seen", "timeouts")

    def __init__(self, idx: int, guess: str):
        self.idx = idx
        self.process = idx
        self.guess = guess
        self.seq = 0
        self.done = 0
        self.op: dict[str, Any] | None = None
        self.attempt = 0
        self.timeouts = 0
        self.maybe_applied: set[int] = set()  # attempts a node may have appended
        self.deadline_id = 0
        self.seen: dict[str, Any] = {}  # key -> the last value this client saw there


class Simulation:
    """Runs one :class:`Plan`; ``run()`` returns a :class:`SimResult`."""

    def __init__(self, plan: Plan, check_history: bool = True):
        self.plan = plan
        self.check_history = check_history
        self.ids = [f"n{i + 1}" for i in range(plan.nodes)]
        self.spare = f"n{plan.nodes + 1}"  # joins by a membership change
        self.inv = Invariants()
        hooks = NodeHooks(on_ready=self._on_ready, on_apply=self.inv.on_apply,
                          on_ack=self._on_ack)
        self.cluster = Cluster(self.ids + [self.spare], voters=self.ids, unsafe=plan.unsafe,
                               seed=plan.seed, election=plan.election, heartbeat=plan.heartbeat,
                               lease_reads=plan.lease_reads, compact_every=plan.compact_every,
                               max_batch=plan.max_batch, max_inflight=plan.max_inflight,
                               pre_vote=plan.pre_vote, check_quorum=plan.check_quorum,
                               hooks=hooks)
        self.net = random.Random(f"net:{plan.seed}")
        self.crng = random.Random(f"clients:{plan.seed}")
        self.now = 0.0
        self._q: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self.trace: list[str] = []
        # (ms, node, event) in the shape of raftnode's --log-file lines, for the report
        self.node_log: list[tuple[float, str, dict[str, Any]]] = [
            (0.0, n, {"event": "started"}) for n in self.cluster.ids]
        self.history: list[Op] = []
        self.rate = dict.fromkeys(self.cluster.ids, 1.0)
        # paused node -> what queued up meanwhile: ("tick", None), ("msg", m), ("req", request)
        self.paused: dict[str, list[tuple[str, Any]]] = {}
        self.cut: set[tuple[str, str]] = set()
        self.burst_loss = 0.0
        self.stalled: dict[str, int] = {}  # node -> ticks its clock still owes after a jump back
        self.values = 0
        self.stats = {"events": 0, "messages": 0, "faults": 0, "ops": 0, "max_lag": 0,
                      "installs": 0, "restores": 0, "torn": 0}
        # Like Jepsen's workers, each client starts bound to one node, round robin.
        self.clients = [_Client(i, self.ids[i % len(self.ids)]) for i in range(plan.clients)]
        self.per_client = [plan.ops // plan.clients + (1 if i < plan.ops % plan.clients else 0)
                           for i in range(plan.clients)]
        self.finished_clients = sum(1 for n in self.per_client if n == 0)
        self.think_ms = plan.clients * 1000.0 / OPS_PER_S  # Jepsen's stagger: a total rate
        self.settling = False
        self.horizon = MAX_SIM_MS  # the run ends at the first event after this
        self.armed: list[Fault] = []  # faults waiting for their protocol moment (an ack)
        self.converged = False

    # ---------------------------------------------------------------- plumbing

    def _push(self, at: float, kind: str, data: Any) -> None:
        self._seq += 1
        heappush(self._q, (at, self._seq, kind, data))

    def _log(self, text: str) -> None:
        self.trace.append(f"{self.now:9.2f} {text}")

    def _on_ready(self, node: SimNode, rd: Any) -> None:
        ss = rd.soft_state
        if ss is not None:
            self._log(f"{node.id} {ss.role} term={ss.term} leader={ss.leader}")
        for ev in rd.events:
            self.node_log.append((self.now, node.id, ev))
            if ev.get("kind") == "installed":
                self.stats["installs"] += 1
            if ev.get("event") in ("membership", "snapshot", "check_quorum_lost",
                                   "removed_step_down", "committed_entry_conflict"):
                self._log(f"{node.id} {ev}")
        if ss is not None:  # the invariants look at leadership changes only
            self.inv.on_ready(node, rd)

    def _on_ack(self, node: SimNode, index: int, term: int) -> None:
        self.inv.on_ack(node, index, term)
        if self.armed:
            # The answer is on its way to the client; the leader goes down right after it.
            for f in self.armed:
                self._push(self.now, "strike", (f, node.id))
            self.armed = []

    def _send(self, msgs: list[Message]) -> None:
        if not msgs:
            return
        # The hottest path of a seed: the queue push is inlined (same sequence numbers as
        # ``_push``, so the order of events -- and the trace -- is unchanged).
        net, plan, cut, now, q = self.net, self.plan, self.cut, self.now, self._q
        rand = net.random  # uniform(a, b) is a + (b - a) * random(): inlined, same floats
        loss, burst, reorder, dup, max_delay = (plan.loss, self.burst_loss, plan.reorder,
                                                plan.dup, plan.max_delay)
        spread = max_delay - 0.2
        self.stats["messages"] += len(msgs)
        seq = self._seq
        for m in msgs:
            if cut and (m.src, m.dst) in cut:
                continue
            if rand() < loss or (burst and rand() < burst):
                continue
            delay = 0.2 + spread * rand()
            if reorder and rand() < reorder:
                delay += 5 + 35 * rand()
            seq += 1
            heappush(q, (now + delay, seq, "msg", m))
            if dup and rand() < dup:
                seq += 1
                heappush(q, (now + delay + (0 + 20 * rand()), seq, "msg", m))
        self._seq = seq

    def _schedule_tick(self, nid: str) -> None:
        # A server that was never a member only waits to be contacted: tick it rarely.
        if nid == self.spare and not self.cluster.nodes[nid].core.membership.voters:
            at = self.now + 10 * TICK_MS / self.rate[nid]
        else:
            at = self.now + TICK_MS / self.rate[nid]
        self._seq += 1
        heappush(self._q, (at, self._seq, "tick", (nid, self.cluster.incarnation[nid])))

    # ---------------------------------------------------------------- run

    def run(self) -> SimResult:
        for nid in self.cluster.ids:
            self._push(self.net.uniform(0, TICK_MS), "tick", (nid, 1))
        for f in self.plan.faults:
            self._push(f.at, "fault", f)
        if "ack-before-sync" in self.plan.unsafe:
            self._push(FLUSH_MS, "flush", None)
        for c in self.clients:
            self._push(self.crng.uniform(0, 2 * self.think_ms), "client", c)
        violation: Violation | None = None
        try:
            self._loop()
            self._final_checks()
        except Violation as v:
            violation = v
            self._log(f"VIOLATION {v}")
        result = SimResult(self.plan, violation, self.trace, self.history, self.stats,
                           node_log=self.node_log)
        if violation is None and self.plan.workload != "registers":
            self._final_reads()
        if violation is None and self.check_history:
            from tester.workloads import make

            res = make(self.plan.workload, self.plan.keys, None).check(
                self.history, timeout=30, explain=False)
            result.checker = res
            if res.valid is False:
                result.violation = _violation_of(res)
                self._log(f"VIOLATION {result.violation}")
        return result

    def _final_reads(self) -> None:
        """Lists and sets: read every key from the converged cluster, as the runner's final
        reads do after healing (what its leader has applied, which every member has too).
        Not converged: no final reads, so lost elements cannot be told from late ones."""
        if not self._converged():
            return
        lead = self._cluster_leaders()[0]
        proc = max(c.process for c in self.clients) + 1
        t = int(self.now * 1_000_000)
        for k in range(self.plan.keys):
            key = f"k{k}"
            for typ, value in (("invoke", None), ("ok", lead.sm.get(key))):
                self.history.append(Op(len(self.history), t, typ, proc, "read", value, key,
                                       None, None, {"final": True}))

    def _loop(self) -> None:
        q = self._q
        events = 0
        handlers: dict[str, Callable[[Any], None]] = {
            "msg": self._deliver, "tick": self._tick, "client": self._client_next,
            "creq": self._client_request, "fwd": self._client_request,
            "cresp": self._client_response, "ctimeout": self._client_timeout,
            "retry": self._client_attempt, "fault": self._fault, "undo": self._undo,
            "flush": self._flush, "strike": self._strike, "fwdlate": self._late_forward,
        }
        if self.finished_clients == len(self.clients):
            self._settle()
        while q:
            at, _s, kind, data = heappop(q)
            if at > self.horizon:
                if self.settling:
                    break
                self._settle()  # clients stuck for good: stop the run all the same
                self._log("clients did not finish in time")
            self.now = at
            events += 1
            if events > MAX_EVENTS:
                raise Violation("liveness", f"more than {MAX_EVENTS} events by "
                                            f"{self.now:.0f} ms: the nodes never settle")
            handlers[kind](data)
            if events % LOG_CHECK_EVERY == 0:
                self._check_logs()
        self.stats["events"] = events

    def _flush(self, _data: None) -> None:
        cl = self.cluster
        for nid in cl.ids:  # the ack-before-sync flusher of every live process
            if nid not in cl.down:
                cl.nodes[nid].storage.flush_pending()
        self._push(self.now + FLUSH_MS, "flush", None)

    def _settle(self) -> None:
        """All ops done: heal every fault and give the cluster time to converge."""
        self.settling = True
        self.horizon = self.now + SETTLE_MS
        self._log("settle: heal all faults")
        self._nemesis("heal-all", None)
        self.cut.clear()
        self.burst_loss = 0.0
        for nid in list(self.paused):
            self._resume(nid)
        for nid in sorted(self.cluster.down):  # not set order: it varies between processes
            self._restart(nid)
        for nid in self.cluster.ids:
            self.rate[nid] = 1.0
        self.stalled.clear()

    def _cluster_leaders(self) -> list[SimNode]:
        """Live leaders inside the cluster's configuration and their own, by id. A server
        removed while it led and never told so (possible without CheckQuorum) is not part of
        the cluster any more: it is neither the leader the cluster converges on nor the one
        the final reads ask."""
        cl = self.cluster
        live = [n for n in cl.nodes.values() if n.id not in cl.down]
        if not live:
            return []
        # the configuration of the most advanced node; a leader outside it (removed, maybe
        # without ever hearing so) is outside the cluster
        best = max(live, key=lambda n: (n.core.term, n.core.last_index(), n.id)).core.membership
        return sorted((n for n in live if n.core.role == LEADER and n.id in best.voters
                       and n.id in n.core.membership.voters), key=lambda n: n.id)

    def _converged(self) -> bool:
        """One leader whose whole log is committed and matched by every member.

        Settling ends here rather than after a fixed time: nothing after this point can
        change what the final checks look at until the next fault, and there is none."""
        return not self._not_converged()

    def _not_converged(self) -> str:
        """What keeps the healed cluster from converging, naming the node ("" once it has)."""
        cl = self.cluster
        leaders = self._cluster_leaders()
        if len(leaders) != 1:
            names = ", ".join(n.id for n in leaders) or "none"
            return f"{len(leaders)} leaders ({names})"
        lead = leaders[0]
        core = lead.core
        last = core.last_index()
        if core.commit != last or lead.applied != last:
            return (f"leader {lead.id} (term {core.term}) has committed {core.commit} and "
                    f"applied {lead.applied} of {last} entries")
        for nid in sorted((*core.membership.voters, *core.membership.learners)):
            if nid == core.id:
                continue
            if nid in core.membership.learners:  # the simulator adds servers to vote
                return f"{nid} is still a learner: its promotion never came"
            if nid in cl.down:
                return f"{nid} is down"
            node = cl.nodes[nid]
            if (node.applied != last or node.core.last_index() != last
                    or node.core.term_at(last) != core.term_at(last)):
                return (f"{nid} is behind: applied {node.applied}, log ends at "
                        f"{node.core.last_index()}, leader {lead.id} at {last}")
        return ""

    def _final_checks(self) -> None:
        reason = self._not_converged() if self.settling and not self.converged else ""
        if reason:
            raise Violation("liveness", f"{SETTLE_MS:.0f} ms after every fault was healed the "
                                        f"cluster has not converged: {reason}")
        self._check_logs()
        # a stale leader of an older term need not hold what later terms acknowledged
        for node in self._cluster_leaders():
            core, nid = node.core, node.id
            for index, term in self.inv.acked.items():
                if (term <= core.term and index > core.snap_index
                        and core.term_at(index) != term):
                    raise Violation("acknowledged-write-lost",
                                    f"entry {index} (term {term}) was acknowledged but the "
                                    f"final leader {nid} does not have it")

    def _check_logs(self) -> None:
        cores = [n.core for i, n in self.cluster.nodes.items() if i not in self.cluster.down]
        self.inv.check_logs(cores)

    # ---------------------------------------------------------------- nodes

    def _node(self, nid: str) -> SimNode | None:
        if nid in self.cluster.down:
            return None
        return self.cluster.nodes[nid]

    def _deliver(self, m: Message) -> None:
        dst = m.dst
        if dst in self.cluster.down:
            return
        paused = self.paused
        if paused and dst in paused:
            paused[dst].append(("msg", m))
            return
        node = self.cluster.nodes[dst]
        node.core.step(m)
        self._send(node.process())

    def _tick(self, data: tuple[str, int]) -> None:
        nid, inc = data
        cl = self.cluster
        if inc != cl.incarnation[nid] or nid in cl.down:
            return
        self._schedule_tick(nid)
        if self.paused and nid in self.paused:
            self.paused[nid].append(("tick", None))
            return
        if self.stalled and self.stalled.get(nid):
            self.stalled[nid] -= 1
            return
        node = cl.nodes[nid]
        core = node.core
        core.tick()
        if core.has_ready():  # most ticks only count towards a timeout
            self._send(node.process())
        if self.settling and self._converged():
            self.converged = True
            self._log("settle: converged")
            self.horizon = -1.0  # stop before the next event

    def _note_lag(self, healed: set[str]) -> None:
        """Statistics: how far behind the leader's log a node rejoins (entries)."""
        lead_id = self._leader()
        lead = self._node(lead_id) if lead_id is not None else None
        if lead is None:
            return
        last = lead.core.last_index()
        for nid in healed:
            n = self._node(nid)
            if n is not None and nid != lead.id:
                self.stats["max_lag"] = max(self.stats["max_lag"], last - n.core.last_index())

    def _restart(self, nid: str) -> None:
        if nid not in self.cluster.down:
            return
        node = self.cluster.start(nid)
        if node.core.snap_index:
            self.stats["restores"] += 1  # restarted from a snapshot on its disk
        torn = node.recovered.truncated_bytes
        if torn:  # replay cut a torn tail off its log, as raftnode logs it
            self.stats["torn"] += 1
            self.node_log.append((self.now, nid, {"event": "recovered", "truncated_bytes": torn,
                                                  "file": node.recovered.truncated_file}))
            self._log(f"{nid} replay cut a torn tail of {torn} bytes")
        self.stalled.pop(nid, None)  # a new process measures elapsed time afresh
        self.node_log.append((self.now, nid, {"event": "started"}))
        self._log(f"{nid} restarted term={self.cluster.nodes[nid].core.term}")
        self._schedule_tick(nid)

    def _resume(self, nid: str) -> None:
        queued = self.paused.pop(nid, None)
        if queued is None or nid in self.cluster.down:
            return
        self._log(f"{nid} resumed ({len(queued)} queued)")
        node = self.cluster.nodes[nid]
        for kind, _item in queued:
            if kind == "tick":  # its clock kept running: catch up first
                node.core.tick()
        self._send(node.process())
        for kind, item in queued:
            if kind == "msg":
                node.core.step(item)
            elif kind == "req":
                node.submit(item)
            else:
                continue
            self._send(node.process())

    def _voters(self) -> list[str]:
        """The voters as the most up-to-date live node sees them."""
        live = [self.cluster.nodes[i].core for i in self.cluster.ids if i not in self.cluster.down]
        if not live:
            return list(self.ids)
        best = max(live, key=lambda c: (c.term, c.last_index(), c.id))
        return sorted(best.membership.voters) or list(self.ids)

    def _leader(self) -> str | None:
        for nid in self.cluster.ids:
            n = self._node(nid)
            if n is not None and n.core.role == LEADER and nid not in self.paused:
                return nid
        return None

    # ---------------------------------------------------------------- nemesis

    def _nemesis(self, f: str, value: Any) -> None:
        """A nemesis record in the history (the checker ignores them; reports draw them)."""
        self.history.append(Op(index=len(self.history), time=int(self.now * 1_000_000),
                               type="info", process="nemesis", f=f, value=value))

    def _fault(self, f: Fault) -> None:
        if self.settling:
            return
        self.stats["faults"] += 1
        self._nemesis(f.kind, f.describe().strip())
        cl = self.cluster
        ids = self._voters()
        n = len(ids)
        p = f.pick
        undo: tuple[str, Any] | None = None
        if f.kind.startswith("partition"):
            sides = self._partition_sides(f.kind, ids, p)
            cut = {(a, b) for a in cl.ids for b in cl.ids if a != b and not any(
                a in s and b in s for s in sides)}
            self.cut |= cut
            self._log(f"fault {f.kind} {[sorted(s) for s in sides]}")
            undo = ("heal", cut)
        elif f.kind == "skew-partition-leader":
            # the leader's clock runs slow while it is cut off: its lease outlives its term
            lead = self._leader() or ids[p % n]
            cut = {(a, b) for a in cl.ids for b in cl.ids if a != b and lead in (a, b)}
            self.cut |= cut
            self.rate[lead] = f.arg
            self._log(f"fault {f.kind} {lead} x{f.arg:g}")
            self._push(self.now + f.duration, "undo", ("rate", lead))
            undo = ("heal", cut)
        elif f.kind in ("kill", "kill-leader", "kill-majority", "kill-all"):
            k = {"kill": 1, "kill-leader": 1, "kill-majority": n // 2 + 1, "kill-all": n}[f.kind]
            victims = [ids[(p + i) % n] for i in range(k)]
            if f.kind == "kill-leader":
                victims = [self._leader() or victims[0]]
            for v in victims:
                if v not in cl.down:
                    cl.crash(v)
                    self.node_log.append((self.now, v, {"event": "stopped", "reason": "kill"}))
                    self.paused.pop(v, None)
            self._log(f"fault {f.kind} {victims}")
            undo = ("restart", victims)
        elif f.kind == "pause":
            v = ids[p % n]
            if v not in cl.down and v not in self.paused:
                self.paused[v] = []
                self._log(f"fault pause {v}")
                undo = ("resume", v)
        elif f.kind == "clock-rate":
            # half the time the leader's clock: a slow leader clock is what breaks leases
            v = (self._leader() or ids[p % n]) if p % 2 == 0 else ids[p % n]
            self.rate[v] = f.arg
            self._log(f"fault clock-rate {v} x{f.arg:g}")
            undo = ("rate", v)
        elif f.kind == "clock-jump":
            v = ids[p % n]
            node = self._node(v)
            if node is not None and v not in self.paused:
                if f.arg > 0:
                    for _ in range(int(f.arg)):
                        node.core.tick()
                    self._send(node.process())
                else:
                    # elapsed monotonic time goes negative: no ticks until it catches up
                    self.stalled[v] = self.stalled.get(v, 0) + int(-f.arg)
                self._log(f"fault clock-jump {v} {int(f.arg):+d} ticks")
        elif f.kind == "loss":
            self.burst_loss = f.arg
            self._log(f"fault loss {f.arg:g}")
            undo = ("loss", None)
        elif f.kind in ("member-add", "member-remove", "transfer"):
            self._membership(f)
        elif f.kind == "member-churn":
            self._membership(Fault(f.at, "member-remove", f.duration, f.arg, f.pick))
            self._churn(f.pick >> 3)
        elif f.kind in ("kill-leader-after-ack", "partition-leader-after-ack"):
            self.armed.append(f)
            self._log(f"fault {f.kind} armed")
        elif f.kind in ("restart-catching-up", "lag-follower"):
            # cut a follower off while the others go on; restart-catching-up kills it just
            # after the heal, while it is being caught up (by appends or a snapshot), and
            # restarts it; lag-follower (arg 1) kills it half way through, restarted (still
            # cut off) from its own disk
            current = self._leader()
            others = [i for i in ids if i != current] or ids
            v = others[p % len(others)]
            cut = {(a, b) for a in cl.ids for b in cl.ids if a != b and v in (a, b)}
            self.cut |= cut
            self._log(f"fault {f.kind} {v} cut off")
            undo = ("heal", cut)
            if f.kind == "restart-catching-up":
                self._push(self.now + f.duration + f.arg, "strike", (f, v))
            elif f.arg:
                self._push(self.now + f.duration / 2, "strike", (f, v))
        if undo is not None:
            self._push(self.now + f.duration, "undo", undo)

    def _strike(self, data: tuple[Fault, str]) -> None:
        """The second half of a protocol-moment fault, at its moment."""
        f, nid = data
        cl = self.cluster
        if self.settling or nid in cl.down:
            return
        if f.kind == "partition-leader-after-ack":
            cut = {(a, b) for a in cl.ids for b in cl.ids if a != b and nid in (a, b)}
            self.cut |= cut
            self._log(f"strike {f.kind} {nid}")
            self._push(self.now + f.duration, "undo", ("heal", cut))
            return
        cl.crash(nid)
        self.node_log.append((self.now, nid, {"event": "stopped", "reason": "kill"}))
        self.paused.pop(nid, None)
        self._log(f"strike {f.kind} {nid}")
        delay = f.duration if f.kind == "kill-leader-after-ack" else 20.0
        self._push(self.now + delay, "undo", ("restart", [nid]))

    def _partition_sides(self, kind: str, ids: list[str], p: int) -> list[set[str]]:
        n = len(ids)
        rot = ids[p % n:] + ids[: p % n]
        if kind == "partition-one":
            return [{rot[0]}, set(rot[1:])]
        if kind == "partition-leader":
            lead = self._leader() or rot[0]
            return [{lead}, set(ids) - {lead}]
        if kind == "partition-ring" and n >= 3:
            # each node sees its neighbours only: overlapping majorities (for 3 nodes, a line)
            return [{rot[i], rot[(i + 1) % n]} for i in range(n)]
        if kind == "partition-bridge" and n >= 3:
            half = n // 2
            return [set(rot[: half + 1]), set(rot[half:])]
        half = max(1, n // 2)
        return [set(rot[:half]), set(rot[half:])]

    def _undo(self, data: tuple[str, Any]) -> None:
        what, arg = data
        self._nemesis(f"undo-{what}", sorted(arg) if isinstance(arg, list) else None)
        if what == "heal":
            self.cut -= arg
            self._log("heal partition")
            self._note_lag({b for _a, b in arg})
        elif what == "restart":
            for v in arg:
                self._restart(v)
        elif what == "resume":
            self._resume(arg)
        elif what == "rate":
            self.rate[arg] = 1.0
            self._log(f"clock-rate {arg} x1")
        elif what == "loss":
            self.burst_loss = 0.0
            self._log("loss healed")

    def _churn(self, pick: int) -> None:
        """A second change right after the first: remove another voter (even down to one),
        or add a server. A correct leader refuses it until the first change commits."""
        lead = self._leader()
        if lead is None:
            return
        core = self.cluster.nodes[lead].core
        m = core.membership
        others = sorted(set(m.voters) - {lead})
        absent = sorted(n for n in self.cluster.ids if n not in m.voters and n not in m.learners)
        try:
            if others:
                node = others[pick % len(others)]
                core.propose_membership("remove", node)
            elif absent:
                node = absent[pick % len(absent)]
                core.propose_membership("add", node, node)
            else:
                return
            self._log(f"fault member-churn second change {node} via {lead}")
        except (ProposalRejected, NotLeader) as e:
            self._log(f"fault member-churn second change refused: {e}")
            return
        self._send(self.cluster.nodes[lead].process())

    def _membership(self, f: Fault) -> None:
        lead = self._leader()
        if lead is None:
            return
        core = self.cluster.nodes[lead].core
        m = core.membership
        try:
            if f.kind == "transfer":
                others = sorted(set(m.voters) - {lead})
                if others:
                    target = others[f.pick % len(others)]
                    core.transfer_leadership(target)
                    self._log(f"fault transfer {lead} -> {target}")
            elif f.kind == "member-add":
                absent = sorted(n for n in self.cluster.ids
                                if n not in m.voters and n not in m.learners)
                if absent:
                    node = absent[f.pick % len(absent)]
                    core.propose_membership("add", node, node)
                    self._log(f"fault member-add {node} via {lead}")
            elif len(m.voters) > 3 or (len(m.voters) == 3 and self.plan.nodes == 3):
                victims = sorted(m.voters)
                node = victims[f.pick % len(victims)]
                core.propose_membership("remove", node)
                self._log(f"fault member-remove {node} via {lead}")
        except (ProposalRejected, NotLeader) as e:
            self._log(f"fault {f.kind} refused: {e}")
            return
        self._send(self.cluster.nodes[lead].process())

    # ---------------------------------------------------------------- clients

    def _record(self, c: _Client, typ: str, f: str, key: str, value: Any,
                error: str | None = None) -> None:
        self.history.append(Op(index=len(self.history), time=int(self.now * 1_000_000),
                               type=typ, process=c.process, f=f, key=key, value=value,
                               error=error))

    def _client_next(self, c: _Client) -> None:
        if c.done >= self.per_client[c.idx]:
            return
        r = self.crng
        key = f"k{r.randrange(self.plan.keys)}"
        roll = r.random()
        value: Any
        workload = self.plan.workload
        if workload != "registers":  # lists and sets: read, or append/add a unique element
            if roll < 0.45:
                f, value = "read", None
            else:
                self.values += 1
                f, value = ("add" if workload == "set" else "append"), self.values
        elif roll < 0.45:
            f, value = "read", None
        elif roll < 0.75:
            self.values += 1
            f, value = "write", self.values
        else:
            self.values += 1
            old = c.seen.get(key) if r.random() < 0.9 else r.randint(1, self.values)
            f, value = "cas", [old, self.values]
        c.seq += 1
        c.op = {"f": f, "key": key, "value": value, "seq": c.seq}
        c.attempt = 0
        c.timeouts = 0
        c.maybe_applied.clear()
        self._record(c, "invoke", f, key, value)
        self._client_attempt(c)

    def _client_attempt(self, c: _Client) -> None:
        op = c.op
        assert op is not None
        c.attempt += 1
        c.deadline_id += 1
        f, key = op["f"], op["key"]
        if f == "read":
            cmd: dict[str, Any] = {"op": "get", "key": key}
        elif f == "write":
            cmd = {"op": "put", "key": key, "value": op["value"]}
        elif f == "cas":
            cmd = {"op": "cas", "key": key, "expected": op["value"][0], "value": op["value"][1]}
        else:  # append, and a set's add (a set is stored as a list)
            cmd = {"op": "append", "key": key, "value": op["value"]}
        if f != "read":
            cmd["client"] = f"c{c.process}"
            cmd["seq"] = op["seq"]
        self._push(self.now + self.crng.uniform(0.1, 1.0), "creq",
                   (c.idx, c.deadline_id, c.guess, cmd, False))
        self._push(self.now + CLIENT_TIMEOUT_MS, "ctimeout", (c.idx, c.deadline_id))

    def _late_forward(self, data: tuple[int, int, str, dict[str, Any], bool, str]) -> None:
        idx, attempt, lead, cmd, forwarded, src = data
        if (src, lead) not in self.cut:  # the partition healed: the retransmission gets in
            self._client_request((idx, attempt, lead, cmd, forwarded))

    def _client_request(self, data: tuple[int, int, str, dict[str, Any], bool]) -> None:
        idx, attempt, nid, cmd, forwarded = data
        node = self._node(nid)
        if node is None:
            return  # connection refused: the client times out
        c = self.clients[idx]
        core = node.core
        local = cmd["op"] == "get" and "local-reads" in self.plan.unsafe
        if (not local and not forwarded and nid not in self.paused and core.role != LEADER
                and core.leader not in (None, nid)):
            # the server forwards to the leader it knows, over the (faulty) peer network
            lead = core.leader
            net, plan = self.net, self.plan
            if cmd["op"] != "get":
                c.maybe_applied.add(attempt)  # from here on the leader may append it
            if (nid, lead) in self.cut:
                # a forward on a TCP connection through a partition is retransmitted and may
                # arrive once the partition heals, long after the client gave up on it
                if net.random() < 0.5:
                    self._push(self.now + net.uniform(100, 600), "fwdlate",
                               (idx, attempt, lead, cmd, True, nid))
            elif net.random() >= plan.loss:
                at = self.now + net.uniform(0.2, plan.max_delay)
                if plan.reorder and net.random() < plan.reorder:
                    at += 5 + 35 * net.random()  # it may arrive after the client's retry
                self._push(at, "fwd", (idx, attempt, lead, cmd, True))
            return
        if cmd["op"] != "get":
            c.maybe_applied.add(attempt)  # the node may append it from here on

        def done(status: str, value: Any, error: str | None) -> None:
            self._push(self.now + self.crng.uniform(0.1, 1.0), "cresp",
                       (idx, attempt, nid, status, value, error))

        req = Request(None, cmd, done)
        if nid in self.paused:
            self.paused[nid].append(("req", req))  # it waits in the socket until resumed
            return
        node.submit(req)
        self._send(node.process())

    def _client_response(self, data: tuple[int, int, str, str, Any, str | None]) -> None:
        idx, attempt, _nid, status, value, error = data
        c = self.clients[idx]
        if status == "fail" and error and error.startswith("not-leader"):
            c.maybe_applied.discard(attempt)  # refused before appending: never applied
        if c.op is None or attempt != c.deadline_id:
            return  # an answer to an attempt already given up on
        f = c.op["f"]
        if status == "ok":
            v = value if f == "read" else c.op["value"]
            c.seen[c.op["key"]] = v[1] if f == "cas" else v
            self._complete(c, "ok", v)
        elif status == "fail" and error and error.startswith("not-leader"):
            self._retry(c, error, backoff=True)  # the node forwards once it knows a leader
        elif status == "fail":
            self._complete(c, "fail", c.op["value"], error)
        else:
            self._retry(c, error or "unknown")

    def _client_timeout(self, data: tuple[int, int]) -> None:
        idx, attempt = data
        c = self.clients[idx]
        if c.op is None or attempt != c.deadline_id:
            return
        c.timeouts += 1
        self._retry(c, "timeout")

    def _retry(self, c: _Client, error: str, backoff: bool = False) -> None:
        assert c.op is not None
        if c.attempt < ATTEMPTS and c.timeouts < TIMEOUTS:
            c.deadline_id += 1  # answers to the abandoned attempt are ignored
            wait = self.crng.uniform(20, 60) if backoff else self.crng.uniform(1, 10)
            self._push(self.now + wait, "retry", c)
            return
        f = c.op["f"]
        if f == "read" or not c.maybe_applied:
            self._complete(c, "fail", c.op["value"], error)
        else:
            self._complete(c, "info", c.op["value"], error)

    def _complete(self, c: _Client, typ: str, value: Any, error: str | None = None) -> None:
        assert c.op is not None
        self._record(c, typ, c.op["f"], c.op["key"], value, error)
        self.stats["ops"] += 1
        c.op = None
        c.deadline_id += 1
        c.done += 1
        if typ == "info":
            c.process += len(self.clients)  # Jepsen: a crashed process continues as a new one
        if c.done >= self.per_client[c.idx]:
            self.finished_clients += 1
            if self.finished_clients == len(self.clients) and not self.settling:
                self._settle()
        else:
            self._push(self.now + self.crng.uniform(0, 2 * self.think_ms), "client", c)


def _violation_of(res: Any) -> Violation:
    """The property a failed history check breaks, naming the key (and the element)."""
    if getattr(res, "keys", None) is not None:  # the set checker
        bad = next(k for k in res.keys if k.valid is False)
        return Violation("set", f"key {bad.key}: {bad.reason}")
    part = res.violations[0]
    found = (part.violation or {}).get("anomalies") or []
    why = f": {found[0]['kind']} {found[0]['text']}" if found else ""
    return Violation("linearizability", f"key {part.key}: the history is not linearizable{why}")


def plan_for(seed: int, nodes: int = 3, ops: int = 200, unsafe: frozenset[str] = frozenset(),
             lease: bool = False, workload: str = "registers") -> Plan:
    """The seed's plan with the clients' workload (registers, append or set; ``mixed``: one
    of the three drawn from the seed, as swarm testing draws the faults)."""
    plan = make_plan(seed, nodes, ops, unsafe, lease)
    if workload == MIXED:
        workload = random.Random(f"workload:{seed}").choice(SIM_WORKLOADS)
    return plan if workload == plan.workload else replace(plan, workload=workload)


def run_seed(seed: int, nodes: int = 3, ops: int = 200, unsafe: frozenset[str] = frozenset(),
             check_history: bool = True, workload: str = "registers") -> SimResult:
    """Plan and run one seed (``workload``: registers, append or set)."""
    return Simulation(plan_for(seed, nodes, ops, unsafe, workload=workload),
                      check_history).run()


def run_plan(plan: Plan, check_history: bool = True) -> SimResult:
    return Simulation(plan, check_history).run()
