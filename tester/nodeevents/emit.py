"""Write node events (docs/node-events.md) from any database's node: one small, stdlib-only file.

With these lines in a file its adapter's ``log_files`` lists, a run gets the cluster timeline
in its report and the Raft checks (election safety, state-machine safety, ...) for free. The
module imports nothing outside the standard library, so a server written in Python can import
it on the node: upload ``emit.__file__`` beside the server (docs/adapter-tutorial.md does).

    ev = NodeEvents("/opt/raftlab/mykv/events.jsonl", "n1")
    ev.started(last_index=0, fresh=True)
    ev.role("leader", term=1, leader="n1")
    ev.applied([entry(1, 1, {"op": "put", "key": "k", "value": 3})], commit=1, term=1)

raftnode writes the same events from its own code (raftnode/nodeevents.py), since it ships
standalone.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

ROLES = ("leader", "follower", "candidate", "pre-candidate")


def digest(value: Any) -> str:
    """12 hex digits of SHA-256 over the value's canonical JSON: equal iff the values are."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def entry(index: int, term: int, command: Any, result: Any = None,
          acked: int | None = None) -> list[Any]:
    """One applied entry ``[index, term, digest, result digest, command, acked]``: ``acked``
    is the term in which this node proposed the write it answered ok at this index."""
    return [index, term, digest(command), None if result is None else digest(result), command,
            acked]


class NodeEvents:
    """Appends events to a JSON Lines file, one flushed line each (safe across threads)."""

    def __init__(self, path: str, node: str):
        self.node = node
        self._lock = threading.Lock()
        self._f = open(path, "a", buffering=1)  # noqa: SIM115 -- open for the process's life

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event; the named helpers below cover the ones the checks read."""
        line = json.dumps({"ts": time.time(), "node": self.node, "event": event, **fields},
                          default=str)
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()

    def started(self, last_index: int = 0, snapshot_index: int = 0, fresh: bool = True,
                applied: int | None = None, **extra: Any) -> None:
        """A new process: what it recovered (``fresh``: new or wiped data, not a restart)."""
        if applied is not None:
            extra["applied"] = applied
        self.emit("started", last_index=last_index, snapshot_index=snapshot_index, fresh=fresh,
                  **extra)

    def role(self, role: str, term: int, leader: str | None) -> None:
        """This node's role changed (or its term, or the leader it follows)."""
        if role not in ROLES:
            raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        self.emit("role", role=role, term=term, leader=leader)

    def vote(self, term: int, candidate: str) -> None:
        """A vote granted (log it once it is durable)."""
        self.emit("vote", term=term, **{"for": candidate})

    def won(self, term: int, last_index: int, last_term: int, votes: list[str],
            voters: list[str]) -> None:
        """An election won: the log it won with and the votes it counted among ``voters``."""
        self.emit("election", kind="won", term=term, last_index=last_index,
                  last_term=last_term, votes=votes, voters=voters)

    def applied(self, entries: list[list[Any]], commit: int, term: int) -> None:
        """Entries applied to the state machine (built with ``entry``), in apply order."""
        self.emit("applied", entries=entries, commit=commit, term=term)

    def close(self) -> None:
        with self._lock:
            self._f.close()
