"""A small synchronous client for raftnode's newline-delimited JSON protocol.

Used by ``raftnode client`` and by the tester's raftnode adapter. One connection, one request
at a time; every call returns the server's response dict (``status`` ok/fail/unknown). A
failure to connect is a definite ``fail`` (nothing was sent); a timeout or a connection lost
after sending is ``unknown`` for writes, since the write may have happened.
"""

from __future__ import annotations

import itertools
import json
import socket
import uuid
from typing import Any

from raftnode.wire import WRITE_OPS, parse_addr

READ_OPS = ("get", "status")


class Client:
    """A connection to one raftnode server, with a session for exactly-once writes."""

    def __init__(self, addr: str, timeout: float = 5.0, client_id: str | None = None):
        self.host, self.port = parse_addr(addr)
        self.timeout = timeout
        self.client_id = client_id or uuid.uuid4().hex[:12]
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None
        self._buf = b""

    def _connect(self) -> socket.socket:
        if self._sock is None:
            s = socket.create_connection((self.host, self.port), timeout=self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = s
            self._buf = b""
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its response (never raises on network trouble)."""
        req_id = next(self._ids)
        req = {"id": req_id, "op": op, **fields}
        if op in WRITE_OPS and "client" not in req:
            req["client"] = self.client_id
            req["seq"] = next(self._seq)
        line = json.dumps(req, separators=(",", ":")).encode() + b"\n"
        try:
            sock = self._connect()
        except OSError as e:
            return _local(req_id, "fail", "connection-refused", str(e))
        sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            sock.sendall(line)
            while True:
                nl = self._buf.find(b"\n")
                if nl >= 0:
                    raw, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                    resp = json.loads(raw)
                    if isinstance(resp, dict) and resp.get("id") == req_id:
                        return resp
                    continue  # a late answer to an earlier, timed-out request
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self._buf += chunk
        except (OSError, ValueError) as e:
            self.close()
            status = "fail" if op in READ_OPS else "unknown"
            err = "timeout" if isinstance(e, TimeoutError) else "connection-lost"
            return _local(req_id, status, err, str(e))

    # convenience wrappers
    def get(self, key: str, **kw: Any) -> dict[str, Any]:
        return self.request("get", key=key, **kw)

    def put(self, key: str, value: Any, **kw: Any) -> dict[str, Any]:
        return self.request("put", key=key, value=value, **kw)

    def cas(self, key: str, expected: Any, value: Any, **kw: Any) -> dict[str, Any]:
        return self.request("cas", key=key, expected=expected, value=value, **kw)

    def append(self, key: str, value: Any, **kw: Any) -> dict[str, Any]:
        """Add ``value`` as one element at the end of the key's list."""
        return self.request("append", key=key, value=value, **kw)

    def delete(self, key: str, **kw: Any) -> dict[str, Any]:
        return self.request("delete", key=key, **kw)

    def status(self, **kw: Any) -> dict[str, Any]:
        return self.request("status", **kw)

    def add_member(self, member: str, addr: str, **kw: Any) -> dict[str, Any]:
        return self.request("add-member", key=member, value=addr, **kw)

    def remove_member(self, member: str, **kw: Any) -> dict[str, Any]:
        return self.request("remove-member", key=member, **kw)


def _local(req_id: int, status: str, error: str, message: str) -> dict[str, Any]:
    return {"id": req_id, "status": status, "value": None, "error": error, "leader": None, "message": message}
