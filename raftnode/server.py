"""The raftnode server: an asyncio process wrapped around the pure Raft core.

One coroutine (the *driver*) owns the core. Everything else -- peer frames, client requests,
the clock -- only appends to the driver's inbox and wakes it. The driver, in a loop:

1. converts *elapsed* loop-clock time into ticks (so a libfaketime clock jump or a slowed
   clock changes when timeouts and leases expire, as on a real machine with a bad clock);
2. feeds the inbox to the core (peer messages, proposals, one ReadIndex for all reads that
   arrived together);
3. runs the Ready loop through :class:`~raftnode.host.NodeHost` -- the same code the
   simulator drives: persist (one write + one fsync, here in a worker thread: every proposal
   that arrives meanwhile joins the next batch, which is the group commit) -> send -> apply
   -> answer reads -> advance.

A proposal is tracked by the (index, term) the core gave it: when that index is applied with
that term the client gets ``ok`` and the state machine's result; a different term there means
it was definitely not applied (``fail``); no answer in time is ``unknown``. This process is the
host's :class:`~raftnode.host.Outlet`: answers become futures' results, messages peer frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftnode import wire
from raftnode.core import ProposalRejected, RaftConfig, RaftCore
from raftnode.host import NodeHost
from raftnode.statemachine import StateMachine
from raftnode.storage import CorruptLog, Storage
from raftnode.transport import Coalescer, Forwarder, PeerLink, tune_socket, wait_or
from raftnode.types import (
    LEADER,
    Entry,
    Membership,
    Message,
    NotLeader,
    Ready,
    SoftState,
)

MAX_TICKS_PER_STEP = 1_000_000


@dataclass
class NodeConfig:
    """Everything ``raftnode serve`` was told (see docs/raftnode.md)."""

    id: str
    listen: str
    peers: dict[str, str]
    data_dir: str
    secret: bytes | None = None
    unsafe: frozenset[str] = frozenset()
    log_file: str | None = None
    pid_file: str | None = None
    join: bool = False
    tick_ms: int = 10
    election_timeout_ms: tuple[int, int] = (150, 300)
    heartbeat_ms: int = 50
    snapshot_entries: int = 10000
    request_timeout_ms: int = 5000
    lease_reads: bool = False


class EventLog:
    """Structured JSON lines: ``{"ts", "node", "event", ...}`` (the report's timeline)."""

    def __init__(self, node_id: str, path: str | None):
        self.node_id = node_id
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", buffering=1) if path else sys.stderr  # noqa: SIM115

    def __call__(self, event: str, raw: dict[str, str] | None = None, **fields: Any) -> None:
        """Log one event; ``raw`` fields are JSON text already (spliced in, not re-encoded)."""
        rec = {"ts": time.time(), "node": self.node_id, "event": event, **fields}
        line = json.dumps(rec, default=str)
        if raw:
            line = line[:-1] + "".join(f", {json.dumps(k)}: {v}" for k, v in raw.items()) + "}"
        try:
            self._f.write(line + "\n")
            self._f.flush()
        except (OSError, ValueError):
            pass  # a full disk must not stop the node from serving

    def close(self) -> None:
        if self._f is not sys.stderr:
            self._f.close()


class RequestFailed(Exception):
    """A request's definite or unknown outcome, raised inside the server to answer a client."""

    def __init__(self, status: str, error: str, value: Any = None, message: str | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.value = value
        self.message = message


class Node:  # the host's Outlet
    """One raftnode server process."""

    def __init__(self, cfg: NodeConfig):
        self.cfg = cfg
        self.id = cfg.id
        self.secret = cfg.secret or wire.DEFAULT_SECRET
        self.log = EventLog(cfg.id, cfg.log_file)
        # a new (or wiped) data directory: this process starts a new member, not a restart
        data = Path(cfg.data_dir)
        self.fresh = not (data.is_dir() and any(data.iterdir()))
        self.storage = Storage(cfg.data_dir, cfg.unsafe)
        self.sm = StateMachine(unsafe=cfg.unsafe)
        self.addrs: dict[str, str] = dict(cfg.peers)  # every server ever known: id -> addr
        self.links: dict[str, PeerLink] = {}
        self.forwarders: dict[str, Forwarder] = {}
        self.inbox: list[tuple[Any, ...]] = []
        self.wake = asyncio.Event()
        self.reads_waiting: list[asyncio.Future[None]] = []  # next ReadIndex batch
        self.read_ctx = itertools.count(1)
        self.role = "follower"
        self.term = 0
        self.leader: str | None = None
        self.membership: Membership = Membership(voters=dict(cfg.peers))  # as applied
        self.membership_changed = asyncio.Event()
        self.stopping = False
        self.server: asyncio.base_events.Server | None = None
        self.driver: asyncio.Task[None] | None = None
        self.conn_tasks: set[asyncio.Task[Any]] = set()
        self.leader_waiters: list[asyncio.Future[None]] = []
        self.election_s = cfg.election_timeout_ms[1] / 1000
        self.rejections: dict[tuple[str, str], tuple[float, int]] = {}  # -> (logged, suppressed)
        self.stop_event = asyncio.Event()
        self.stop_reason = "signal"
        self.fatal: BaseException | None = None
        self.core: RaftCore
        self.host: NodeHost

    # ---- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        voters = dict(self.cfg.peers)
        if self.cfg.join:
            voters.pop(self.id, None)  # not a voter: never campaigns until promoted
        self.membership = Membership(voters=voters)
        self.core, rec = NodeHost.recover(self.storage, self.sm, self._raft_config(),
                                          Membership(voters=voters))
        if rec.truncated_bytes:
            self.log("recovered", truncated_bytes=rec.truncated_bytes, file=rec.truncated_file)
        if rec.snapshot is not None:
            self._set_membership(rec.snapshot.membership)
        self.host = NodeHost(self.core, self.sm, self.storage, self,
                             snapshot_entries=self.cfg.snapshot_entries, record_applied=True)
        self._core_membership = self.core.membership
        host, port = wire.parse_addr(self.cfg.listen)
        self.server = await asyncio.start_server(self._on_connection, host, port, limit=wire.MAX_LINE * 2)
        self.driver = asyncio.get_running_loop().create_task(self._drive())
        snap = rec.snapshot
        self.log(
            "started",
            listen=self.cfg.listen,
            peers=self.cfg.peers,
            unsafe=sorted(self.cfg.unsafe),
            join=self.cfg.join,
            term=rec.hard_state.term,
            last_index=self.storage.last_index(),
            pid=os.getpid(),
            # what this incarnation recovered (docs/node-events.md)
            last_term=self.core.last_term(),
            commit=self.core.commit,
            snapshot_index=snap.index if snap is not None else 0,
            snapshot_term=snap.term if snap is not None else 0,
            fresh=self.fresh,
        )
        if self.cfg.secret is None:
            self.log("warning", message="no --secret-file: peers use the well-known default secret")

    def _raft_config(self) -> RaftConfig:
        lo, hi = self.cfg.election_timeout_ms
        t = self.cfg.tick_ms
        heartbeat = max(1, round(self.cfg.heartbeat_ms / t))
        election_min = max(heartbeat + 1, round(lo / t))
        config = RaftConfig(
            id=self.id,
            election_min=election_min,
            election_max=max(election_min + 1, round(hi / t) + 1),
            heartbeat=heartbeat,
            lease_reads=self.cfg.lease_reads,
            seed=random.randrange(2**32),
            unsafe=self.cfg.unsafe,
            commit_events=True,
        )
        return config

    async def stop(self, reason: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        if self.server is not None:
            self.server.close()
        if self.driver is not None:
            # let the driver finish the Ready in hand (never close the log under a write)
            self.wake.set()
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self.driver), 5)
            self.driver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.driver
        for t in list(self.conn_tasks):
            t.cancel()
        for link in self.links.values():
            link.close()
        for fw in self.forwarders.values():
            fw.close()
        self.storage.close()
        self.log("stopped", reason=reason)
        self.log.close()

    # ---- the driver: ticks, inbox, Ready loop ---------------------------------------------

    def _kick(self, item: tuple[Any, ...]) -> None:
        self.inbox.append(item)
        self.wake.set()

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        tick_s = self.cfg.tick_ms / 1000.0
        last = loop.time()
        try:
            while not self.stopping:
                # Messages first: if this process was starved, the heartbeats that arrived
                # meanwhile count before the ticks that piled up.
                inbox, self.inbox = self.inbox, []
                for item in inbox:
                    self._feed(item)
                # Elapsed clock time -> ticks. A clock that steps back yields no ticks until
                # it has caught up (like a paused node); one that jumps ahead yields many.
                n = int((loop.time() - last) / tick_s)
                if n > 0:
                    last += n * tick_s
                    for _ in range(min(n, MAX_TICKS_PER_STEP)):
                        self.core.tick()
                if self.reads_waiting:
                    self._start_read_batch()
                await self._ready_loop()
                if not self.inbox:
                    self.wake.clear()
                    handle = loop.call_at(last + tick_s, self.wake.set)
                    await self.wake.wait()
                    handle.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug or a storage failure: stop loudly, never limp on
            self.log("error", message=f"{type(e).__name__}: {e}")
            print(f"raftnode {self.id}: fatal: {type(e).__name__}: {e}", file=sys.stderr)
            self.fatal = e
            asyncio.get_running_loop().call_soon(self._request_stop, "error")
            raise

    def _feed(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "msg":
            try:
                self.core.step(item[1])
            except Exception as e:  # noqa: BLE001 - an authenticated but nonsensical message
                self.log("peer_rejected", peer=item[1].src, reason=f"malformed: {type(e).__name__}: {e}")
        elif kind == "propose":
            _, command, fut = item
            if fut.done():
                return
            try:
                self.host.propose(command, fut)
            except NotLeader as e:
                fut.set_exception(RequestFailed("fail", "not-leader", e.leader))
        elif kind == "config":
            _, change, fut = item
            op, member, addr = change
            try:
                self.host.propose_membership(op, member, addr, fut)
            except NotLeader as e:
                fut.set_exception(RequestFailed("fail", "not-leader", e.leader))
            except (ProposalRejected, ValueError) as e:
                retryable = any(w in str(e) for w in ("in progress", "not committed"))
                error = "membership-busy" if retryable else "membership-rejected"
                fut.set_exception(RequestFailed("fail", error, message=str(e)))

    def _start_read_batch(self) -> None:
        futs, self.reads_waiting = self.reads_waiting, []
        self.host.read(next(self.read_ctx), list(futs))

    async def _ready_loop(self) -> None:
        host = self.host
        while self.core.has_ready():
            rd: Ready = self.core.ready()
            if rd.empty():
                return
            if self.core.membership is not self._core_membership:
                # learn new members' addresses as soon as a configuration is appended
                self._core_membership = self.core.membership
                self.addrs.update(self._core_membership.voters)
                self.addrs.update(self._core_membership.learners)
            host.before_persist(rd)
            if rd.snapshot is not None or rd.hard_state is not None or rd.entries:
                # In a worker thread, so that the loop keeps reading requests meanwhile: they
                # all join the next batch (measured: ~3x the throughput of fsyncing on the
                # loop at 64 clients).
                await asyncio.to_thread(host.persist, rd)
            host.after_persist(rd)
            self.core.advance(rd)

    # ---- the host's outlet: what becomes of answers, messages and events -------------------

    def on_soft_state(self, ss: SoftState) -> None:
        self.role, self.term, self.leader = ss.role, ss.term, ss.leader
        if ss.leader is not None:
            for f in self.leader_waiters:
                if not f.done():
                    f.set_result(None)
            self.leader_waiters = []

    def on_events(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            ev = dict(ev)
            self.log(str(ev.pop("event", "core")), **ev)

    def on_membership(self, m: Membership) -> None:
        self._set_membership(m)

    def on_applied(self, records: list[str]) -> None:
        """One ``applied`` event for the entries applied since the last one (node events:
        written before the clients of these entries are answered by the loop)."""
        self.log("applied", raw={"entries": f"[{','.join(records)}]"}, term=self.core.term,
                 commit=self.core.commit)

    def resolve(self, token: Any, result: Any, entry: Entry) -> bool:
        if token.done():
            return False
        token.set_result(result)
        return True

    def reject(self, token: Any, status: str, error: str) -> None:
        if not token.done():
            token.set_exception(RequestFailed(status, error))

    def read_ready(self, token: Any) -> None:
        if not token.done():
            token.set_result(None)

    def read_failed(self, token: Any, leader: str | None) -> None:
        if not token.done():
            token.set_exception(RequestFailed("fail", "not-leader", leader))
    def _set_membership(self, m: Membership) -> None:
        self.membership = m
        self.addrs.update(m.voters)
        self.addrs.update(m.learners)
        self.membership_changed.set()
        self.membership_changed = asyncio.Event()

    def send(self, msgs: list[Message]) -> None:
        by_dst: dict[str, list[Message]] = {}
        for m in msgs:
            by_dst.setdefault(m.dst, []).append(m)
        for dst, batch in by_dst.items():
            link = self.links.get(dst)
            if link is None:
                addr = self.addrs.get(dst)
                if addr is None:
                    continue
                link = self.links[dst] = PeerLink(self.secret, dst, addr)
            link.send(batch)

    # ---- connections ----------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.conn_tasks.add(task)
        tune_socket(writer)
        peer = writer.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            first = await reader.read(1)
            if first == wire.PEER_MAGIC:
                await self._peer_session(reader, peer_s)
            elif first:
                await self._client_session(first, reader, writer)
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Shutdown cancels open connections. Finishing normally instead of re-raising keeps
            # asyncio's stream callback (Python 3.11) from printing a traceback at every stop.
            pass
        finally:
            writer.close()
            if task is not None:
                self.conn_tasks.discard(task)

    async def _peer_session(self, reader: asyncio.StreamReader, peer: str) -> None:
        while True:
            header = await reader.readexactly(wire.FRAME_HEADER.size)
            try:
                n = wire.frame_length(header)
                tag = await reader.readexactly(wire.MAC_SIZE)
                payload = await reader.readexactly(n)
                msgs = wire.decode_frame(self.secret, tag, payload)
            except wire.WireError as e:
                self._reject_peer(peer, str(e))
                return
            for m in msgs:
                if m.dst != self.id or m.src not in self.addrs or m.src == self.id:
                    self._reject_peer(peer, f"unknown peer {m.src!r} -> {m.dst!r}")
                    return
            for m in msgs:
                self.inbox.append(("msg", m))
            self.wake.set()

    def _reject_peer(self, peer: str, reason: str) -> None:
        """Log a refused peer frame; the same refusal from one host at most once a second
        (a misconfigured peer reconnects every 100 ms)."""
        key = (peer.rsplit(":", 1)[0], reason)
        now = time.monotonic()
        last, suppressed = self.rejections.get(key, (0.0, 0))
        if now - last < 1.0:
            self.rejections[key] = (last, suppressed + 1)
            return
        self.rejections[key] = (now, 0)
        self.log("peer_rejected", peer=peer, reason=reason, suppressed=suppressed)

    async def _client_session(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = first
        out = Coalescer(writer)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    line = buf + await reader.readline()
                except ValueError:  # line longer than the stream limit
                    writer.write(wire.bad_request(b"", wire.WireError("request line too long")))
                    return
                buf = b""
                if not line:
                    return
                if not line.strip():
                    continue
                t = asyncio.get_running_loop().create_task(self._answer(line, out))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        finally:
            if tasks:
                await asyncio.wait(tasks, timeout=self.cfg.request_timeout_ms / 1000 + 1)

    async def _answer(self, line: bytes, out: Coalescer) -> None:
        try:
            req = wire.parse_request(line)
        except wire.WireError as e:
            answer = wire.bad_request(line, e, self.leader)
        else:
            try:
                answer = await self._serve(req)
            except Exception as e:  # noqa: BLE001 - a bug must cost one answer, not the node
                self.log("error", message=f"request {req.op}: {type(e).__name__}: {e}")
                status = "fail" if req.op in ("get", "status") else "unknown"
                answer = wire.response(req.id, status, None, "internal-error", self.leader)
        out.write(answer)

    # ---- serving requests ------------------------------------------------------------------

    async def _serve(self, req: wire.Request) -> bytes:
        timeout = self.cfg.request_timeout_ms / 1000
        local_read = req.op == "get" and "local-reads" in self.cfg.unsafe
        try:
            if self.stopping:
                raise RequestFailed("fail", "stopping")
            if req.op == "status":
                return wire.response(req.id, "ok", self.status(), leader=self.leader)
            if self.role != LEADER and self.leader is None and not local_read:
                await self._await_leader(min(timeout, self.election_s * 2))
            if self.role != LEADER and self.leader not in (None, self.id) and not req.forwarded \
                    and not local_read:
                return await self._forward(req, timeout)
            if req.op == "get":
                value = await self._read(req, timeout)
            elif req.op in wire.WRITE_OPS:
                value = await self._write(req, timeout)
            else:
                value = await self._change_membership(req, timeout)
            return wire.response(req.id, "ok", value, leader=self.leader)
        except RequestFailed as e:
            if e.error == "not-leader" and not req.forwarded and self.leader not in (None, self.id):
                return await self._forward(req, timeout)
            extra = {"message": e.message} if e.message else {}
            value = None if e.error == "not-leader" else e.value
            return wire.response(req.id, e.status, value, e.error, self.leader, **extra)

    async def _await_leader(self, timeout: float) -> None:
        """During an election, hold a request until a leader is known (or ``timeout``)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.leader_waiters.append(fut)
        with contextlib.suppress(asyncio.TimeoutError):
            await wait_or(fut, timeout, asyncio.TimeoutError())

    async def _read(self, req: wire.Request, timeout: float) -> Any:
        await self._read_index(timeout)
        return self.sm.get(req.key)

    async def _read_index(self, timeout: float) -> None:
        """Wait until this node's state is at least as new as any acknowledged change: a
        ReadIndex round confirms leadership with a quorum and waits for the apply."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reads_waiting.append(fut)
        self.wake.set()
        await wait_or(fut, timeout, RequestFailed("fail", "timeout"))

    async def _write(self, req: wire.Request, timeout: float) -> Any:
        command = {"op": req.op, "key": req.key}
        if req.op in wire.VALUE_OPS:
            command["value"] = req.value
        if req.op == "cas":
            command["expected"] = req.expected
        if req.client is not None:
            command["client"], command["seq"] = req.client, req.seq
        result = await self._propose_and_wait(("propose", command), timeout)
        return _write_result(req, result)

    async def _propose_and_wait(self, item: tuple[Any, ...], timeout: float) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._kick((*item, fut))
        return await wait_or(fut, timeout, RequestFailed("unknown", "timeout"))

    async def _change_membership(self, req: wire.Request, timeout: float) -> Any:
        """add-member: the core adds a learner and promotes it once caught up (thesis ch. 4);
        answered ok when the promotion is applied here. remove-member: one config entry."""
        assert req.key is not None
        # Both changes are idempotent, so that a client may retry after an unknown outcome;
        # "already done" is answered only from a configuration known to be current: a leader's,
        # confirmed by a ReadIndex round (a deposed leader's or a follower's may be stale).
        if self.role != LEADER:
            raise RequestFailed("fail", "not-leader", self.leader)
        await self._read_index(timeout)
        if req.op == "remove-member":
            if req.key in self.membership.voters or req.key in self.membership.learners:
                await self._propose_and_wait(("config", ("remove", req.key, "")), timeout)
            return self.membership.to_dict()
        if req.key in self.membership.voters:
            return self.membership.to_dict()
        self.addrs[req.key] = req.value
        if req.key not in self.membership.learners:
            await self._propose_and_wait(("config", ("add", req.key, req.value)), timeout)
        deadline = time.monotonic() + 6 * timeout
        while req.key not in self.membership.voters:
            left = deadline - time.monotonic()
            if left <= 0 or req.key not in self.membership.learners:
                raise RequestFailed("unknown", "promotion-pending")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.membership_changed.wait(), left)
        return self.membership.to_dict()

    async def _forward(self, req: wire.Request, timeout: float) -> bytes:
        leader = self.leader
        addr = self.addrs.get(leader) if leader else None
        if addr is None:
            return wire.response(req.id, "fail", None, "not-leader", leader)
        fw = self.forwarders.get(addr)
        if fw is None:
            fw = self.forwarders[addr] = Forwarder(addr)
        try:
            resp = await fw.forward(req, timeout)
        except ConnectionRefusedError:
            return wire.response(req.id, "fail", None, "not-leader", leader)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            status = "fail" if req.op in ("get", "status") else "unknown"
            return wire.response(req.id, status, None, "timeout", leader)
        resp["id"] = req.id
        return json.dumps(resp, separators=(",", ":")).encode() + b"\n"

    def status(self) -> dict[str, Any]:
        """What ``raftnode client status`` shows (members: the configuration in effect)."""
        c = self.core
        return {
            "id": self.id,
            "role": c.role,
            "term": c.term,
            "leader": c.leader,
            "commit": c.commit,
            "applied": self.host.applied,
            "last_index": c.last_index(),
            "snapshot_index": c.snap_index,
            "members": c.membership.to_dict(),
            "unsafe": sorted(self.cfg.unsafe),
        }

    def _request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.stop_event.set()


def _write_result(req: wire.Request, result: Any) -> Any:
    """Turn the state machine's result for a write into the response value or a failure."""
    if isinstance(result, dict) and result.get("status") == "fail":
        raise RequestFailed("fail", str(result.get("error")), result.get("value"))
    if isinstance(result, dict):
        return result.get("value")
    return result


def write_pid_file(path: str) -> None:
    """Put this process's pid in ``path`` by a rename: a supervisor polling the file (as
    raftnodectl status does, while its own copy of the pid is being rewritten here) reads
    the old content or the new, never an emptied file that says the node is gone."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, target)


async def _main(cfg: NodeConfig) -> int:
    try:
        node = Node(cfg)
    except OSError as e:  # log file or data directory not usable
        print(f"raftnode {cfg.id}: cannot start: {e}", file=sys.stderr)
        return 1
    try:
        if cfg.pid_file:  # first, so that a node stuck in recovery can still be killed by it
            write_pid_file(cfg.pid_file)
        await node.start()
    except (CorruptLog, OSError) as e:
        msg = str(e) if isinstance(e, CorruptLog) else f"cannot start: {e}"
        node.log("error", message=msg)
        print(f"raftnode {cfg.id}: {msg}", file=sys.stderr)
        node.log.close()
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node._request_stop, "signal")
    await node.stop_event.wait()
    await node.stop(node.stop_reason)
    if cfg.pid_file:
        with contextlib.suppress(OSError):
            Path(cfg.pid_file).unlink()
    return 1 if node.fatal is not None else 0


def run(cfg: NodeConfig) -> int:
    """Run a node until SIGTERM/SIGINT (exit 0) or a fatal error (exit 1)."""
    return asyncio.run(_main(cfg))
