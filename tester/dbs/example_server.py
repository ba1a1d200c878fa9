"""kvd: a small durable key-value server, the system docs/adapter-tutorial.md writes an adapter for.

One process on one node; clients send one JSON request a line and get one JSON answer a line:
``{"f": "write", "key": "k", "value": 3}`` -> ``{"type": "ok", "value": 3}``. Every change is
appended to ``DATA/log.jsonl`` and fsynced before it is answered, and replayed at start, so a
``kill -9`` loses nothing acknowledged. It logs node events (docs/node-events.md) through
``emit.py``, uploaded beside it, so raftlab draws its timeline and checks its log.

``--stale-reads`` is a planted bug: each connection answers a read from what it read in the
last second, as a careless cache would.

Standard library only: it runs on any node with python3.
"""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emit import NodeEvents, entry  # noqa: E402 -- uploaded beside this file

TERM = 1  # one server, one leader, forever: the term never changes


class Store:
    """The data, its write-ahead log and the node events, behind one lock."""

    def __init__(self, data_dir: str, events: NodeEvents, name: str):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "log.jsonl")
        self.data: dict[str, Any] = {}
        self.index = 0
        self.events = events
        self.lock = threading.Lock()
        fresh = not os.path.exists(self.path)
        self._replay()
        events.started(last_index=self.index, applied=self.index, fresh=fresh)
        events.role("leader", term=TERM, leader=name)
        self.log = open(self.path, "a")  # noqa: SIM115 -- open for the process's life

    def _replay(self) -> None:
        if not os.path.exists(self.path):
            return
        good = 0
        with open(self.path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break  # torn by a kill -9 mid-write: never acknowledged
                index, key, value = json.loads(line)
                self.data[key], self.index = value, index
                good += len(line)
        os.truncate(self.path, good)

    def apply(self, f: str, key: str, value: Any) -> dict[str, Any]:
        with self.lock:
            old = self.data.get(key)
            if f == "read":
                return {"type": "ok", "value": old}
            if f == "write":
                new = value
            elif f == "cas":
                if old != value[0]:
                    return {"type": "fail", "value": value, "error": "cas-mismatch"}
                new = value[1]
            elif f in ("append", "add"):
                new = [*(old or []), value]
            elif f == "delete":
                new = None
            else:
                return {"type": "fail", "value": value, "error": f"unknown f {f!r}"}
            self.index += 1
            self.log.write(json.dumps([self.index, key, new]) + "\n")
            self.log.flush()
            os.fsync(self.log.fileno())
            self.data[key] = new
            command = {"f": f, "key": key, "value": value}
            self.events.applied([entry(self.index, TERM, command, result=new, acked=TERM)],
                                commit=self.index, term=TERM)
            return {"type": "ok", "value": value}


def serve(store: Store, host: str, port: int, stale_reads: bool) -> None:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            cache: dict[str, tuple[float, Any]] = {}  # key -> (when read, value)
            for line in self.rfile:
                req = json.loads(line)
                f, key = req["f"], req["key"]
                hit = cache.get(key)
                if stale_reads and f == "read" and hit and time.monotonic() - hit[0] < 1.0:
                    out = {"type": "ok", "value": hit[1]}
                else:
                    out = store.apply(f, key, req.get("value"))
                    if f == "read":
                        cache[key] = (time.monotonic(), out["value"])
                self.wfile.write((json.dumps(out) + "\n").encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer((host, port), Handler) as server:
        server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="this node's name, for the node events")
    p.add_argument("--listen", required=True, metavar="HOST:PORT")
    p.add_argument("--data", required=True, metavar="DIR")
    p.add_argument("--events", required=True, metavar="FILE")
    p.add_argument("--stale-reads", action="store_true", help="a planted bug (see above)")
    a = p.parse_args()
    host, _, port = a.listen.rpartition(":")
    store = Store(a.data, NodeEvents(a.events, a.name), a.name)
    serve(store, host, int(port), a.stale_reads)


if __name__ == "__main__":
    main()
