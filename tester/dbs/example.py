"""A complete, minimal DB adapter to copy for your own system: a single-server key-value store.

Load it with ``raftlab test --db tester.dbs.example:SingleServerDB``. The "database" is a tiny
Python TCP server (``SERVER`` below, uploaded as one file) that runs on the first node only;
every client, whichever node it is assigned, talks to that server. It is linearizable by
construction (one process, one lock), which makes it a good first target: a test against it
should pass, and killing it shows how failed and indeterminate operations look in a history.

What an adapter has to provide is ``tester.db.DB`` (lifecycle on each node, faults, a client
factory) and ``tester.db.Client`` (one worker's connection). docs/fleet.md walks through it.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from tester.control import Remote
from tester.dbs.daemon import Daemon, wait_until
from tester.inventory import Node

PORT = 7400
HOME = "/opt/raftnode/example"  # a directory the local fleet keeps private per node
DAEMON = Daemon("example-kv", pid_file=f"{HOME}/server.pid", log_file=f"{HOME}/server.log")

SERVER = r'''
import json, socketserver, sys, threading
data, lock = {}, threading.Lock()
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            req = json.loads(line)
            f, k, v = req["f"], req["key"], req.get("value")
            with lock:
                if f == "read":
                    out = {"type": "ok", "value": data.get(k)}
                elif f == "write":
                    data[k] = v
                    out = {"type": "ok", "value": v}
                elif f == "cas" and data.get(k) == v[0]:
                    data[k] = v[1]
                    out = {"type": "ok", "value": v}
                elif f == "cas":
                    out = {"type": "fail", "value": v, "error": "cas-mismatch"}
                else:
                    out = {"type": "fail", "value": v, "error": "unknown f"}
            self.wfile.write((json.dumps(out) + "\n").encode())
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
'''


class SingleServerDB:
    """One server process on the first node; the other nodes only host clients."""

    name = "example-kv"
    workloads = ("registers",)  # read/write/cas only: other workloads are refused up front

    def __init__(self, **_: Any):
        self.server: Node | None = None

    def _is_server(self, node: Node) -> bool:
        return self.server is not None and node.name == self.server.name

    def setup(self, remote: Remote, node: Node, nodes: list[Node], opts: dict[str, Any]) -> None:
        self.server = nodes[0]
        if not self._is_server(node):
            return
        DAEMON.kill(remote)
        remote.run(f"mkdir -p {HOME} && : > {DAEMON.log_file}")
        remote.write(f"{HOME}/server.py", SERVER)
        self.start(remote, node)

    def teardown(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.kill(remote)
            remote.run(f"rm -rf {HOME}")

    def wait_ready(self, remotes: dict[str, Remote], nodes: list[Node], timeout: float) -> None:
        assert self.server is not None
        addr = (self.server.host, PORT)
        wait_until("the example server to accept connections",
                   lambda: socket.create_connection(addr, timeout=0.5).close() or True, timeout)

    def start(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.start(remote, ["python3", f"{HOME}/server.py", node.host, str(PORT)])

    def kill(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.kill(remote)

    def pause(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.signal(remote, "STOP")

    def resume(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.signal(remote, "CONT")

    def log_files(self, remote: Remote, node: Node) -> list[str]:
        return [DAEMON.log_file] if self._is_server(node) else []

    def clock_file(self, node: Node) -> str | None:
        return None  # not started under libfaketime: no clock faults

    def leader(self, nodes: list[Node]) -> str | None:
        return self.server.name if self.server else None

    def remove_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("a single server has no membership")

    def add_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("a single server has no membership")

    def client(self, opts: dict[str, Any]) -> ExampleClient:
        assert self.server is not None, "client() before setup()"
        return ExampleClient(self.server)


class ExampleClient:
    """Talks to the one server whatever node it is opened on."""

    def __init__(self, server: Node):
        self.server = server
        self.sock: socket.socket | None = None
        self.reader: Any = None

    def open(self, node: Node) -> None:
        self.sock = socket.create_connection((self.server.host, PORT), timeout=5)
        self.reader = self.sock.makefile("rb")

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        if self.sock is None:
            return "fail", value, "not-connected"  # never sent: definitely did not happen
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall((json.dumps({"f": f, "key": key, "value": value}) + "\n").encode())
            line = self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
        except OSError as e:
            self.close()
            # a read has no effect, so a lost read is a definite fail; a write is indeterminate
            return ("fail" if f == "read" else "info"), value, type(e).__name__
        out = json.loads(line)
        return out["type"], out.get("value"), out.get("error")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
