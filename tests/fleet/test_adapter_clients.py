"""The adapters' clients turn each system's answers into Jepsen's ok / fail / info.

Fast tests against scripted servers on loopback: what the real servers say in each case is
covered end to end in test_db_on_fleet.py.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tester.dbs.etcd import EtcdClient
from tester.dbs.raftnode import RaftnodeClient
from tester.inventory import Node


@pytest.fixture
def raftnode_server() -> Iterator[Callable[[dict[str, Any]], Node]]:
    """A loopback server that answers every request line with a scripted response."""
    socks: list[socket.socket] = []

    def start(reply: dict[str, Any]) -> Node:
        srv = socket.create_server(("127.0.0.1", 0))
        socks.append(srv)

        def serve() -> None:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as f:
                for line in f:
                    req = json.loads(line)
                    if reply.get("status") == "hang":
                        continue  # never answer: the client times out
                    conn.sendall((json.dumps({**reply, "id": req["id"]}) + "\n").encode())

        threading.Thread(target=serve, daemon=True).start()
        port = srv.getsockname()[1]
        return Node("n1", "127.0.0.1", vars={"raftnode_port": port})

    yield start
    for s in socks:
        s.close()


@pytest.mark.parametrize(("reply", "f", "expected"), [
    ({"status": "ok", "value": 7}, "read", ("ok", 7, None)),
    ({"status": "ok", "value": 3}, "write", ("ok", 3, None)),
    ({"status": "fail", "error": "cas-mismatch", "value": 9}, "cas", ("fail", [1, 2],
                                                                      "cas-mismatch")),
    ({"status": "unknown", "error": "leadership-lost"}, "write", ("info", 3, "leadership-lost")),
    ({"status": "unknown", "error": "timeout"}, "cas", ("info", [1, 2], "timeout")),
    ({"status": "unknown", "error": "timeout"}, "read", ("fail", None, "timeout")),
    ({"status": "hang"}, "write", ("info", 3, "timeout")),
    ({"status": "hang"}, "read", ("fail", None, "timeout")),
])
def test_raftnode_answers_map_to_jepsen_completions(raftnode_server, reply, f,  # type: ignore[no-untyped-def]
                                                    expected) -> None:
    node = raftnode_server(reply)
    c = RaftnodeClient()
    c.open(node)
    value = {"read": None, "write": 3, "cas": [1, 2]}[f]
    try:
        assert c.invoke(f, "k", value, 0.3) == expected
    finally:
        c.close()


def test_raftnode_refused_connection_is_a_definite_fail() -> None:
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = RaftnodeClient()
    c.open(Node("n1", "127.0.0.1", vars={"raftnode_port": port}))
    t, _v, err = c.invoke("write", "k", 1, 0.5)
    assert (t, err) == ("fail", "connection-refused")


class _Etcd(BaseHTTPRequestHandler):
    reply: tuple[int, dict[str, Any]] = (200, {})
    seen: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, body))
        code, out = type(self).reply
        data = json.dumps(out).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def etcd_server() -> Iterator[tuple[type[_Etcd], EtcdClient]]:
    """A scripted etcd JSON gateway on loopback and a client opened on it."""
    handler = type("Handler", (_Etcd,), {"reply": (200, {}), "seen": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    c = EtcdClient(srv.server_address[1])
    c.open(Node("n1", "127.0.0.1"))
    yield handler, c
    c.close()
    srv.shutdown()
    srv.server_close()


def test_etcd_cas_is_a_txn_on_the_canonical_json_value(etcd_server) -> None:  # type: ignore[no-untyped-def]
    handler, c = etcd_server
    handler.reply = (200, {"succeeded": False})
    assert c.invoke("cas", "k", [{"b": 1, "a": 2}, 5], 1) == ("fail", [{"b": 1, "a": 2}, 5],
                                                                 "cas-mismatch")
    path, body = handler.seen[-1]
    assert path == "/v3/kv/txn"
    assert base64.b64decode(body["compare"][0]["value"]) == b'{"a":2,"b":1}'
    handler.reply = (200, {"succeeded": True})
    assert c.invoke("cas", "k", [1, 5], 1) == ("ok", [1, 5], None)
    handler.reply = (200, {"kvs": [{"value": base64.b64encode(b"5").decode()}]})
    assert c.invoke("read", "k", None, 1) == ("ok", 5, None)
    handler.reply = (200, {})
    assert c.invoke("read", "missing", None, 1) == ("ok", None, None)


def test_etcd_errors_leave_writes_in_doubt_but_fail_reads(etcd_server) -> None:  # type: ignore[no-untyped-def]
    handler, c = etcd_server
    handler.reply = (503, {"error": "etcdserver: request timed out", "code": 14})
    t, _v, err = c.invoke("write", "k", 1, 1)
    assert t == "info" and "request timed out" in err
    t, _v, err = c.invoke("read", "k", None, 1)
    assert t == "fail" and "request timed out" in err


def test_etcd_append_puts_the_longer_list_only_if_the_key_is_unchanged(etcd_server) -> None:  # type: ignore[no-untyped-def]
    handler, c = etcd_server
    listed = {"kvs": [{"value": base64.b64encode(b"[1]").decode(), "mod_revision": "5"}]}
    answers = iter([listed, {"succeeded": False}, listed, {"succeeded": True}])

    class Scripted:  # unpacked once per request: (200, the next answer)
        def __iter__(self) -> Iterator[Any]:
            return iter((200, next(answers)))

    handler.reply = Scripted()  # type: ignore[assignment]
    assert c.invoke("add", "k", 7, 1) == ("ok", 7, None)  # a set's add appends too
    paths = [p for p, _ in handler.seen]
    assert paths == ["/v3/kv/range", "/v3/kv/txn"] * 2  # the first txn lost a race: again
    txn = handler.seen[-1][1]
    assert txn["compare"] == [{"key": txn["compare"][0]["key"], "target": "MOD",
                               "result": "EQUAL", "mod_revision": "5"}]
    put = txn["success"][0]["requestPut"]
    assert json.loads(base64.b64decode(put["value"])) == [1, 7]
    handler.reply = (200, {"succeeded": True})  # the range finds nothing: create the list
    assert c.invoke("append", "new", 3, 1) == ("ok", 3, None)
    assert handler.seen[-1][1]["compare"][0]["target"] == "CREATE"
