"""raftnode's tester client retries an operation like a real client: the same request (same
session client and seq) to the next node, until a definite answer or the op's time is up.
Scripted loopback servers stand in for nodes; the real cluster is in test_e2e.py."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tester.dbs.raftnode import RaftnodeClient
from tester.inventory import Node

Reply = Callable[[dict[str, Any]], dict[str, Any] | None]


@pytest.fixture
def nodes() -> Iterator[Callable[..., tuple[Node, list[dict[str, Any]]]]]:
    """Start a scripted node: ``reply(request)`` answers, or None to never answer."""
    socks: list[socket.socket] = []

    def start(name: str, reply: Reply) -> tuple[Node, list[dict[str, Any]]]:
        srv = socket.create_server(("127.0.0.1", 0))
        socks.append(srv)
        seen: list[dict[str, Any]] = []

        def conn_loop(conn: socket.socket) -> None:
            with conn, conn.makefile("rb") as f:
                for line in f:
                    req = json.loads(line)
                    seen.append(req)
                    out = reply(req)
                    if out is not None:
                        conn.sendall((json.dumps({**out, "id": req["id"]}) + "\n").encode())

        def serve() -> None:
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                threading.Thread(target=conn_loop, args=(conn,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        return Node(name, "127.0.0.1", vars={"raftnode_port": srv.getsockname()[1]}), seen

    yield start
    for s in socks:
        s.close()


def test_a_request_without_an_answer_is_resent_with_the_same_session_to_the_next_node(nodes):
    hung, seen1 = nodes("n1", lambda r: None)
    live, seen2 = nodes("n2", lambda r: {"status": "ok", "value": r.get("value")})
    c = RaftnodeClient([hung, live])
    c.open(hung)
    try:
        assert c.invoke("write", "k", 5, 0.9) == ("ok", 5, None)
        assert c.invoke("write", "k", 6, 0.9) == ("ok", 6, None)
    finally:
        c.close()
    first, retry = seen1[0], seen2[0]
    assert (first["client"], first["seq"]) == (retry["client"], retry["seq"])
    assert seen2[1]["seq"] == retry["seq"] + 1  # the next operation is a new seq


def test_a_retry_answered_by_the_state_machine_is_final(nodes):
    unsure, _ = nodes("n1", lambda r: {"status": "unknown", "error": "timeout"})
    other, _ = nodes("n2", lambda r: {"status": "fail", "error": "cas-mismatch", "value": 9})
    c = RaftnodeClient([unsure, other])
    c.open(unsure)
    try:
        assert c.invoke("cas", "k", [1, 2], 0.9) == ("fail", [1, 2], "cas-mismatch")
    finally:
        c.close()


def test_a_write_that_may_have_been_applied_is_info_when_time_runs_out(nodes):
    unsure, _ = nodes("n1", lambda r: {"status": "unknown", "error": "timeout"})
    refusing, _ = nodes("n2", lambda r: {"status": "fail", "error": "not-leader"})
    c = RaftnodeClient([unsure, refusing])
    c.open(unsure)
    try:
        assert c.invoke("write", "k", 3, 0.4) == ("info", 3, "not-leader")
        assert c.invoke("read", "k", None, 0.4)[0] == "fail"  # a read changes nothing
    finally:
        c.close()


def test_without_retries_one_request_decides_the_operation(nodes):
    hung, _ = nodes("n1", lambda r: None)
    live, seen = nodes("n2", lambda r: {"status": "ok", "value": r.get("value")})
    c = RaftnodeClient([hung, live], retries=False)
    c.open(hung)
    try:
        assert c.invoke("write", "k", 5, 0.3) == ("info", 5, "timeout")
    finally:
        c.close()
    assert seen == []
