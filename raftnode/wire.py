"""Bytes on the wire: authenticated peer frames and the newline-delimited JSON client protocol.

Both parsers face untrusted input, so both only ever raise :class:`WireError` (with a message
saying what is wrong) and never anything else; the server answers or drops, never crashes.

Peers and clients share one port: a peer connection starts with the byte :data:`PEER_MAGIC`
(never the first byte of a JSON text), a client connection starts with its first request.
A peer frame is ``[u32 length][32-byte HMAC-SHA256(secret, payload)][payload]`` where the
payload is ``{"msgs": [Message dicts]}``: a batch of messages to one peer.
"""

from __future__ import annotations

import hmac
import json
import struct
from dataclasses import dataclass
from typing import Any

from raftnode import types
from raftnode.types import Message

PEER_MAGIC = b"\xf0"
FRAME_HEADER = struct.Struct(">I")
MAC_SIZE = 32
MAX_FRAME = 512 * 1024 * 1024
MAX_LINE = 1024 * 1024

OPS = ("get", "put", "cas", "delete", "append", "status", "add-member", "remove-member")
KEY_OPS = ("get", "put", "cas", "delete", "append")
VALUE_OPS = ("put", "cas", "append")  # key ops that carry a value
WRITE_OPS = ("put", "cas", "delete", "append")  # key ops that go through the log as writes
DEFAULT_SECRET = b"raftnode-default-insecure-secret"
MESSAGE_TYPES = frozenset(v for k, v in vars(types).items() if k.startswith("MSG_"))


class WireError(Exception):
    """Malformed or unauthenticated input; the message says what is wrong."""


# ---- peer frames ----------------------------------------------------------------------------


def mac(secret: bytes, payload: bytes) -> bytes:
    """HMAC-SHA256 of a frame's payload (the one-shot C path: ~10x cheaper than hmac.new)."""
    return hmac.digest(secret, payload, "sha256")


def encode_frame(secret: bytes, msgs: list[Message]) -> bytes:
    """One authenticated frame carrying a batch of messages."""
    payload = json.dumps({"msgs": [m.to_dict() for m in msgs]}, separators=(",", ":")).encode()
    return FRAME_HEADER.pack(len(payload)) + mac(secret, payload) + payload


def frame_length(header: bytes) -> int:
    """Length of the payload announced by a frame header; refuses absurd sizes."""
    (n,) = FRAME_HEADER.unpack(header)
    if n > MAX_FRAME:
        raise WireError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
    return n


def decode_frame(secret: bytes, tag: bytes, payload: bytes) -> list[Message]:
    """Check the HMAC, then parse the batch. Raises WireError('bad-mac') on forgery."""
    if not hmac.compare_digest(tag, mac(secret, payload)):
        raise WireError("bad-mac")
    try:
        doc = json.loads(payload)
        if not isinstance(doc, dict) or not isinstance(doc.get("msgs"), list):
            raise WireError("frame payload is not {\"msgs\": [...]}")
        msgs = [Message.from_dict(d) for d in doc["msgs"]]
    except WireError:
        raise
    except Exception as e:  # noqa: BLE001 - any shape error of untrusted input
        raise WireError(f"malformed peer message: {type(e).__name__}: {e}") from None
    for m in msgs:
        if not isinstance(m.type, str) or m.type not in MESSAGE_TYPES:
            raise WireError(f"malformed peer message: unknown type {m.type!r}")
        if not (isinstance(m.src, str) and isinstance(m.dst, str)):
            raise WireError("malformed peer message: src/dst must be strings")
        nums = [m.term, m.log_term, m.index, m.commit, m.reject_hint]
        for e in m.entries:
            nums += [e.term, e.index]
            if not isinstance(e.kind, str):
                raise WireError("malformed peer message: entry kind must be a string")
        if m.snapshot is not None:
            nums += [m.snapshot.index, m.snapshot.term]
        if not all(_is_int(v) for v in nums):
            raise WireError("malformed peer message: term/index/commit must be integers >= 0")
    return msgs


# ---- client protocol -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A validated client request (see docs/raftnode.md, "Client protocol")."""

    id: Any
    op: str
    key: str | None = None
    value: Any = None
    expected: Any = None
    client: str | None = None
    seq: int | None = None
    forwarded: bool = False  # set by a follower forwarding to the leader: never re-forwarded

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "op": self.op}
        if self.key is not None:
            d["key"] = self.key
        if self.op in VALUE_OPS or self.op == "add-member":
            d["value"] = self.value
        if self.op == "cas":
            d["expected"] = self.expected
        if self.client is not None:
            d["client"] = self.client
            d["seq"] = self.seq
        if self.forwarded:
            d["forwarded"] = True
        return d


def _req_id(doc: Any) -> Any:
    return doc.get("id") if isinstance(doc, dict) else None


def parse_request(line: bytes | str) -> Request:
    """Parse one request line. Raises WireError naming the offending field."""
    if len(line) > MAX_LINE:
        raise WireError(f"request line longer than {MAX_LINE} bytes")
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise WireError(f"not JSON: {e}") from None
    except RecursionError:
        raise WireError("JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise WireError("request must be a JSON object")
    op = doc.get("op")
    if op not in OPS:
        raise WireError(f"field 'op' must be one of {', '.join(OPS)}, got {op!r}")
    key = doc.get("key")
    value = doc.get("value")
    if op in ("add-member", "remove-member"):
        key = doc.get("member", key)
        value = doc.get("addr", value)
        if not isinstance(key, str) or not key:
            raise WireError(f"{op} needs the server id in 'key' (or 'member')")
        if op == "add-member" and not _is_addr(value):
            raise WireError("add-member needs the server's HOST:PORT in 'value' (or 'addr')")
    elif op in KEY_OPS:
        if not isinstance(key, str):
            raise WireError(f"field 'key' must be a string for {op}")
        if op in VALUE_OPS and "value" not in doc:
            raise WireError(f"field 'value' is required for {op}")
    client = doc.get("client")
    seq = doc.get("seq")
    if client is not None or seq is not None:
        if not isinstance(client, str) or not client:
            raise WireError("field 'client' must be a non-empty string when 'seq' is given")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise WireError("field 'seq' must be a non-negative integer when 'client' is given")
    return Request(
        id=doc.get("id"),
        op=op,
        key=key,
        value=value,
        expected=doc.get("expected"),
        client=client,
        seq=seq,
        forwarded=doc.get("forwarded") is True,
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_addr(v: Any) -> bool:
    if not isinstance(v, str) or ":" not in v:
        return False
    host, _, port = v.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def parse_addr(v: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); raises ValueError with the offending text."""
    if not _is_addr(v):
        raise ValueError(f"not HOST:PORT: {v!r}")
    host, _, port = v.rpartition(":")
    return host.strip("[]"), int(port)


def response(
    req_id: Any,
    status: str,
    value: Any = None,
    error: str | None = None,
    leader: str | None = None,
    **extra: Any,
) -> bytes:
    """Encode one response line."""
    d = {"id": req_id, "status": status, "value": value, "error": error, "leader": leader}
    d.update(extra)
    return json.dumps(d, separators=(",", ":")).encode() + b"\n"


def bad_request(line: bytes | str, err: WireError, leader: str | None = None) -> bytes:
    """The answer to a line that did not parse; echoes its id when one can be found."""
    try:
        req_id = _req_id(json.loads(line))
    except Exception:  # noqa: BLE001
        req_id = None
    if not isinstance(req_id, (str, int, float, type(None))):
        req_id = None
    return response(req_id, "fail", error="bad-request", leader=leader, message=str(err))
