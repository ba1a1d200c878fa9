"""Both parsers face untrusted bytes: they answer with WireError, never crash, never accept forgeries."""

from __future__ import annotations

import json
import random
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftnode import wire
from raftnode.localcluster import LocalCluster
from raftnode.types import MSG_APPEND, Entry, Message

SECRET = b"s3cret"
# a shared 2-core machine: generation speed varies, the property does not
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
request_like = st.dictionaries(
    st.sampled_from(["id", "op", "key", "value", "expected", "client", "seq", "member", "addr"]),
    json_values | st.sampled_from(list(wire.OPS)),
)


@FUZZ
@given(st.binary(max_size=300))
def test_client_parser_rejects_random_bytes_with_wire_error(data: bytes) -> None:
    try:
        req = wire.parse_request(data)
    except wire.WireError:
        return
    assert req.op in wire.OPS


@FUZZ
@given(request_like)
def test_client_parser_accepts_only_well_typed_requests(doc: dict) -> None:
    try:
        req = wire.parse_request(json.dumps(doc))
    except wire.WireError as e:
        assert str(e)  # says what is wrong
        out = json.loads(wire.bad_request(json.dumps(doc), e))
        assert out["status"] == "fail" and out["error"] == "bad-request"
        return
    assert req.op in wire.OPS
    if req.op in wire.KEY_OPS or req.op in ("add-member", "remove-member"):
        assert isinstance(req.key, str)
    if req.client is not None:
        assert isinstance(req.seq, int) and req.seq >= 0


def test_client_parser_names_the_offending_field() -> None:
    with pytest.raises(wire.WireError, match="'key'"):
        wire.parse_request(b'{"op": "put", "key": 3, "value": 1}')
    with pytest.raises(wire.WireError, match="'value'"):
        wire.parse_request(b'{"op": "cas", "key": "k", "expected": 1}')
    with pytest.raises(wire.WireError, match="'seq'"):
        wire.parse_request(b'{"op": "put", "key": "k", "value": 1, "client": "c", "seq": "x"}')
    with pytest.raises(wire.WireError, match="HOST:PORT"):
        wire.parse_request(b'{"op": "add-member", "key": "n4", "value": "nope"}')
    with pytest.raises(wire.WireError, match="nested too deeply"):
        wire.parse_request(b"[" * 100_000 + b"]" * 100_000)
    req = wire.parse_request(b'{"id": 1, "op": "cas", "key": "k", "expected": null, "value": 2}')
    assert (req.key, req.expected, req.value) == ("k", None, 2)


def test_peer_frames_round_trip() -> None:
    msgs = [Message(MSG_APPEND, "n1", "n2", 3, log_term=2, index=9, commit=8,
                    entries=[Entry(3, 10, data={"op": "put", "key": "a", "value": [1]})])]
    frame = wire.encode_frame(SECRET, msgs)
    n = wire.frame_length(frame[:4])
    tag, payload = frame[4:36], frame[36:]
    assert len(payload) == n
    assert wire.decode_frame(SECRET, tag, payload) == msgs


@FUZZ
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=200))
def test_peer_frames_without_the_secret_are_refused(tag: bytes, payload: bytes) -> None:
    with pytest.raises(wire.WireError, match="bad-mac"):
        wire.decode_frame(SECRET, tag, payload)


@FUZZ
@given(json_values | st.dictionaries(st.just("msgs"), st.lists(st.dictionaries(
    st.sampled_from(["type", "src", "dst", "term", "index", "entries", "snapshot", "commit"]),
    json_values), max_size=3)))
def test_authenticated_but_malformed_peer_payloads_raise_wire_error(doc: object) -> None:
    payload = json.dumps(doc).encode()
    try:
        msgs = wire.decode_frame(SECRET, wire.mac(SECRET, payload), payload)
    except wire.WireError:
        return
    for m in msgs:
        assert isinstance(m.src, str) and isinstance(m.term, int)


def test_oversized_frames_are_refused() -> None:
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.frame_length((wire.MAX_FRAME + 1).to_bytes(4, "big"))


def test_a_node_survives_garbage_from_clients_and_peers(tmp_path: Path) -> None:
    rng = random.Random(7)
    with LocalCluster(tmp_path, 1) as cl:
        cl.wait_leader()
        host, port = wire.parse_addr(cl.addrs["n1"])
        with socket.create_connection((host, port)) as s:  # garbage lines on one connection
            for _ in range(200):
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))).replace(b"\n", b"") + b"\n")
            s.sendall(b'{"id": "last", "op": "status"}\n')
            s.settimeout(10)
            buf = b""
            while b'"last"' not in buf:
                chunk = s.recv(65536)
                assert chunk, "node closed the client connection"
                buf += chunk
        lines = [json.loads(x) for x in buf.splitlines()]
        assert len(lines) == 201 and all(x["error"] == "bad-request" for x in lines[:-1])
        for _ in range(20):  # random peer frames (magic byte, then noise)
            with socket.create_connection((host, port)) as s:
                s.sendall(wire.PEER_MAGIC + bytes(rng.randrange(256) for _ in range(rng.randrange(4, 100))))
        time.sleep(0.2)
        with cl.client("n1") as c:
            assert c.put("still", "alive")["status"] == "ok"
            assert c.get("still")["value"] == "alive"
        assert any(e["event"] == "peer_rejected" for e in cl.events("n1"))


def test_append_carries_its_value_through_a_forward() -> None:
    req = wire.parse_request(b'{"op": "append", "key": "l", "value": 7, "client": "c", "seq": 1}')
    assert wire.parse_request(json.dumps(req.to_dict())).value == 7
    with pytest.raises(wire.WireError, match="'value'"):
        wire.parse_request(b'{"op": "append", "key": "l"}')
