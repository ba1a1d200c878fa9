"""The adapter docs/adapter-tutorial.md builds: kvd (``example_server.py``) on a fleet.

Load it with ``raftlab test --db tester.dbs.example:SingleServerDB``. kvd is one durable
server process on the first node; every client, whichever node it is assigned, talks to it.
It is linearizable by construction (one process, one lock, fsync before every answer), so a
test against it should pass under every fault, and ``--unsafe stale-reads`` must fail.

Every piece of the adapter kit is used here: the node's private directory, a pid-file daemon
started under libfaketime, node events, options, an unsafe switch, ``--no-deploy`` and the
client contract (tester/db.py). The tutorial shows this file in order, with the reasons.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tester.control import Remote
from tester.db import DBError
from tester.dbs import faketime
from tester.dbs.daemon import Daemon, wait_until
from tester.inventory import Node
from tester.nodeevents import emit

# --- 1. where kvd lives on a node: /opt/raftlab/<db>/ is private to each node ---------------
HOME = "/opt/raftlab/kvd"
DATA = f"{HOME}/data"
CLOCK = f"{HOME}/faketime"  # this node's clock: the clock nemesis writes offsets here
EVENTS = f"{HOME}/events.jsonl"  # node events, downloaded with the logs
DAEMON = Daemon("kvd", pid_file=f"{HOME}/kvd.pid", log_file=f"{HOME}/kvd.log")
SERVER = Path(__file__).with_name("example_server.py")


# --- 2. the adapter: options, deploy, unsafe switches ------------------------------------------
class SingleServerDB:
    """kvd on the first node; the other nodes only host clients."""

    name = "example-kv"
    workloads = ("registers", "kv", "append", "set")  # the fs kvd answers
    unsafe_switches = ("stale-reads",)  # --unsafe stale-reads plants kvd's bug

    def __init__(self, deploy: bool = True, port: int = 7400, faketime_cache: int = 1):
        self.deploy, self.port, self.faketime_cache = deploy, int(port), int(faketime_cache)
        self.server: Node | None = None
        self.unsafe: list[str] = []

    def _is_server(self, node: Node) -> bool:
        return self.server is not None and node.name == self.server.name

    # --- 3. setup and teardown: install, start, and undo it all --------------------------------
    def setup(self, remote: Remote, node: Node, nodes: list[Node], opts: dict[str, Any]) -> None:
        self.server, self.unsafe = nodes[0], list(opts.get("unsafe") or [])
        if not self.deploy:
            if self._is_server(node) and not DAEMON.running(remote):
                raise DBError(f"{node.name}: kvd is not running (--no-deploy); start it or "
                              "drop --no-deploy")
            return
        faketime.install(remote, HOME)  # every node: the clock nemesis writes every CLOCK
        faketime.reset_clock(remote, CLOCK)
        if not self._is_server(node):
            return
        remote.put(SERVER, f"{HOME}/kvd.py")
        remote.put(emit.__file__, f"{HOME}/emit.py")  # kvd's node events
        remote.run(f"rm -rf {DATA} {EVENTS} && : > {DAEMON.log_file}", timeout=15)
        self.start(remote, node)

    def teardown(self, remote: Remote, node: Node) -> None:
        if not self.deploy:
            return
        DAEMON.kill(remote)
        remote.run(f"rm -rf {DATA} {EVENTS}; echo +0 > {CLOCK} 2>/dev/null; true", timeout=15)

    def wait_ready(self, remotes: dict[str, Remote], nodes: list[Node], timeout: float) -> None:
        assert self.server is not None
        addr = (self.server.host, self.port)
        wait_until("kvd to accept connections",
                   lambda: socket.create_connection(addr, timeout=0.5).close() or True, timeout)

    # --- 4. the process faults: one pid file, never pkill by name ------------------------------
    def start(self, remote: Remote, node: Node) -> None:
        if not self._is_server(node):
            return
        argv = ["python3", f"{HOME}/kvd.py", "--name", node.name,
                "--listen", f"{node.host}:{self.port}", "--data", DATA, "--events", EVENTS]
        if "stale-reads" in self.unsafe:
            argv.append("--stale-reads")
        DAEMON.start(remote, faketime.wrap(HOME, CLOCK, argv, cache_s=self.faketime_cache))

    def kill(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.kill(remote)

    def pause(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.signal(remote, "STOP")

    def resume(self, remote: Remote, node: Node) -> None:
        if self._is_server(node):
            DAEMON.signal(remote, "CONT")

    # --- 5. what the run keeps: logs, the clock file, the leader ------------------------------
    def log_files(self, remote: Remote, node: Node) -> list[str]:
        return [DAEMON.log_file, EVENTS] if self._is_server(node) else []

    def clock_file(self, node: Node) -> str | None:
        return CLOCK

    def leader(self, nodes: list[Node]) -> str | None:
        return self.server.name if self.server else None

    def remove_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("kvd is one server: it has no membership")

    def add_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("kvd is one server: it has no membership")

    def client(self, opts: dict[str, Any]) -> ExampleClient:
        assert self.server is not None, "client() before setup()"
        return ExampleClient((self.server.host, self.port))


# --- 6. the client: one connection per worker, and Jepsen's ok / fail / info ---------------------
class ExampleClient:
    """Talks to kvd whatever node it is opened on; enforces the op timeout itself."""

    def __init__(self, addr: tuple[str, int]):
        self.addr = addr
        self.sock: socket.socket | None = None
        self.reader: Any = None

    def open(self, node: Node) -> None:
        self.sock = socket.create_connection(self.addr, timeout=5)
        self.reader = self.sock.makefile("rb")

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        if self.sock is None:  # closed after a failed read: connect again
            try:
                self.sock = socket.create_connection(self.addr, timeout=timeout)
                self.reader = self.sock.makefile("rb")
            except OSError as e:
                return "fail", value, f"connect: {type(e).__name__}"  # nothing was sent
        try:
            self.sock.settimeout(timeout)  # the op timeout is the client's to enforce
            self.sock.sendall((json.dumps({"f": f, "key": key, "value": value}) + "\n").encode())
            line = self.reader.readline()
            if not line:
                raise ConnectionError("kvd closed the connection")
        except OSError as e:
            self.close()  # a late answer must never be read as the next op's
            # a read changes nothing, so a lost read is a fail; a lost write may have happened
            return ("fail" if f == "read" else "info"), value, type(e).__name__
        out = json.loads(line)
        return out["type"], out.get("value"), out.get("error")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

