"""Connections between nodes: outbound peer links, request forwarding, coalesced writes.

Everything here is about getting bytes to another node quickly and noticing quickly when it
cannot be reached (a partition, a paused or killed process); what the bytes mean is the
server's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import socket
from typing import Any

from raftnode import wire
from raftnode.types import Message

PEER_BUFFER_LIMIT = 16 * 1024 * 1024  # drop a peer link whose unsent bytes exceed this
PEER_QUEUE_LIMIT = 10000  # messages queued for an unreachable peer (oldest dropped)
CONNECT_TIMEOUT_S = 0.5


class PeerLink:
    """Outbound connection to one peer: batches queued messages into authenticated frames.

    Messages are dropped (Raft tolerates loss) while the peer is unreachable or too slow.
    """

    def __init__(self, secret: bytes, peer_id: str, addr: str):
        self.secret = secret
        self.peer_id = peer_id
        self.addr = addr
        self.queue: list[Message] = []
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def send(self, msgs: list[Message]) -> None:
        self.queue.extend(msgs)
        if len(self.queue) > PEER_QUEUE_LIMIT:
            del self.queue[:-PEER_QUEUE_LIMIT]
        self.wake.set()

    async def _run(self) -> None:
        host, port = wire.parse_addr(self.addr)
        while True:
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
                )
                tune_socket(writer)
                writer.write(wire.PEER_MAGIC)
                eof = asyncio.ensure_future(reader.read(1))  # the peer never writes: EOF = closed
                while not eof.done():
                    if not self.queue:
                        self.wake.clear()
                        waiter = asyncio.ensure_future(self.wake.wait())
                        await asyncio.wait({waiter, eof}, return_when=asyncio.FIRST_COMPLETED)
                        waiter.cancel()
                        continue
                    msgs, self.queue = self.queue, []
                    writer.write(wire.encode_frame(self.secret, msgs))
                    if writer.transport.get_write_buffer_size() > PEER_BUFFER_LIMIT:
                        break
                    await writer.drain()
                eof.cancel()
            except (OSError, asyncio.TimeoutError, ConnectionError):
                pass
            finally:
                if writer is not None:
                    writer.close()
            self.queue.clear()
            await asyncio.sleep(0.05 + random.random() * 0.05)

    def close(self) -> None:
        self.task.cancel()


class Coalescer:
    """Gathers the lines written to one connection during a loop iteration into one send.

    A leader answers a whole batch of requests at once; one syscall instead of one per answer
    is a large part of its CPU time at high concurrency.
    """

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.buf: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self.buf:
            asyncio.get_running_loop().call_soon(self._flush)
        self.buf.append(data)

    def _flush(self) -> None:
        data, self.buf = b"".join(self.buf), []
        if not self.writer.is_closing():
            self.writer.write(data)


def _set_exception_if_pending(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


async def wait_or(fut: asyncio.Future[Any], timeout: float, exc: BaseException) -> Any:
    """Await ``fut``; after ``timeout`` seconds fail it with ``exc`` (cheaper than wait_for)."""
    handle = asyncio.get_running_loop().call_later(timeout, _set_exception_if_pending, fut, exc)
    try:
        return await fut
    finally:
        handle.cancel()


class Forwarder:
    """One multiplexed client connection from a follower to the leader, for forwarding."""

    def __init__(self, addr: str):
        self.addr = addr
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.writer: asyncio.StreamWriter | None = None
        self.out: Coalescer | None = None
        self.lock = asyncio.Lock()
        self.reader_task: asyncio.Task[None] | None = None

    async def _connect(self) -> asyncio.StreamWriter:
        async with self.lock:
            if self.writer is None or self.writer.is_closing():
                host, port = wire.parse_addr(self.addr)
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, limit=wire.MAX_LINE * 2), CONNECT_TIMEOUT_S
                )
                tune_socket(writer)
                self.writer = writer
                self.out = Coalescer(writer)
                self.reader_task = asyncio.get_running_loop().create_task(self._read(reader))
            return self.writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                with contextlib.suppress(ValueError):
                    resp = json.loads(line)
                    fut = self.pending.pop(resp.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(resp)
        except (OSError, ConnectionError):
            pass
        finally:
            if self.writer is not None:
                self.writer.close()
            self.writer = None
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("leader connection lost"))
            self.pending.clear()

    async def forward(self, req: wire.Request, timeout: float) -> dict[str, Any]:
        """Send ``req`` to the leader; raises ConnectionRefusedError if nothing was sent."""
        try:
            await self._connect()
        except (OSError, asyncio.TimeoutError) as e:
            raise ConnectionRefusedError(str(e)) from None
        assert self.out is not None
        fid = next(self.ids)
        d = req.to_dict()
        d["id"] = fid
        d["forwarded"] = True
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[fid] = fut
        self.out.write(json.dumps(d, separators=(",", ":")).encode() + b"\n")
        try:
            return await wait_or(fut, timeout, asyncio.TimeoutError())
        finally:
            self.pending.pop(fid, None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.reader_task is not None:
            self.reader_task.cancel()


def tune_socket(writer: asyncio.StreamWriter) -> None:
    """No Nagle delay, and notice a dead peer within seconds, not minutes.

    Under a partition (iptables DROP) TCP keeps retransmitting with exponential backoff; after
    the heal a connection could stay silent for tens of seconds. TCP_USER_TIMEOUT aborts a
    connection whose data stays unacknowledged for a second, and keepalives close idle ones
    to a vanished host, so the link reconnects at once instead.
    """
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    opts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1), (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_USER_TIMEOUT", 2000), ("TCP_KEEPIDLE", 2), ("TCP_KEEPINTVL", 1),
                        ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            opts.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, opt, value in opts:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, opt, value)
