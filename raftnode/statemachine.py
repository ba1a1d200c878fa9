"""The replicated key-value state machine, with client sessions for exactly-once commands.

Commands are JSON objects applied in log order by every node, so ``apply`` must be
deterministic. A command may carry a session, ``client`` (str) and ``seq`` (int, increasing
per client; Raft thesis §6.3): a retried command (same client and seq) returns the result
cached when it was first applied instead of applying again, so a client that timed out and
retried cannot, say, apply a cas twice. Results have the client protocol's shape:
``{"status": "ok"|"fail", "value": ..., "error": str|None}``.

Operations: ``get``/``read`` (key), ``put``/``write`` (key, value), ``cas`` (key, expected,
value; fails with ``cas-mismatch`` and the current value), ``delete`` (key), ``append`` (key,
value: adds the value as one element at the end of the key's list; a missing key is an empty
list, any other value fails with ``not-a-list``). A missing key reads ``None``. An append
builds a new list rather than growing the stored one, so a list already handed out (a read's
answer, a snapshot) never changes under its holder.
"""

from __future__ import annotations

from typing import Any

MAX_SESSIONS = 10_000  # oldest sessions (by last use) are expired beyond this


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy(v: Any) -> Any:
    """A deep copy of a JSON value (cheaper than copy.deepcopy for the common scalars)."""
    if type(v) in _SCALARS:
        return v
    if isinstance(v, dict):
        return {k: x if type(x) in _SCALARS else _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [x if type(x) in _SCALARS else _copy(x) for x in v]
    return v


def _copy_result(r: dict[str, Any]) -> dict[str, Any]:
    """``_copy`` for a result (status, value, error): only the value may be a container."""
    v = r["value"]
    return {"status": r["status"], "value": v if type(v) in _SCALARS else _copy(v),
            "error": r["error"]}


def _ok(value: Any = None) -> dict[str, Any]:
    return {"status": "ok", "value": value, "error": None}


def _fail(error: str, value: Any = None) -> dict[str, Any]:
    return {"status": "fail", "value": value, "error": error}


class KVStateMachine:
    """A dict of keys to JSON values plus the session table; snapshots as one JSON object."""

    def __init__(
        self,
        unsafe: frozenset[str] | set[str] = frozenset(),
        no_sessions: bool = False,
        max_sessions: int = MAX_SESSIONS,
    ):
        """The unsafe switch ``no-sessions`` (in ``unsafe``, or ``no_sessions``) applies
        retried commands again."""
        no_sessions = no_sessions or "no-sessions" in unsafe
        self.data: dict[str, Any] = {}
        # client -> [seq, result, last_used_index]
        self.sessions: dict[str, list[Any]] = {}
        self.applied = 0
        self.no_sessions = no_sessions
        self.max_sessions = max_sessions

    def get(self, key: str) -> Any:
        """A local read (the caller makes it linearizable with ReadIndex first)."""
        return self.data.get(key)

    def read(self, key: str) -> Any:
        """``get`` under the client protocol's other name."""
        return self.data.get(key)

    def apply(self, command: Any, index: int | None = None) -> dict[str, Any]:
        """Apply a committed command (at log ``index``, if given); returns its result."""
        if index is not None:
            self.applied = index
        else:
            self.applied += 1
        index = self.applied
        if not isinstance(command, dict):
            return _fail("bad-request")
        client: Any = command.get("client")
        seq: Any = command.get("seq")
        session = isinstance(client, str) and isinstance(seq, int) and not self.no_sessions
        if session:
            s = self.sessions.get(client)
            if s is not None:
                if seq == s[0]:
                    s[2] = index
                    return _copy_result(s[1])  # a retry: answer as the first time
                if seq < s[0]:
                    return _fail("stale-request")
        result = self._execute(command)
        if session:
            self.sessions[client] = [seq, result, index]
            if len(self.sessions) > self.max_sessions:
                oldest = min(self.sessions, key=lambda c: (self.sessions[c][2], c))
                del self.sessions[oldest]
        return _copy_result(result)

    def _execute(self, c: dict[str, Any]) -> dict[str, Any]:
        op, key = c.get("op"), c.get("key")
        if not isinstance(key, str):
            return _fail("bad-request")
        if op in ("get", "read"):
            return _ok(self.data.get(key))
        if op in ("put", "write"):
            self.data[key] = c.get("value")
            return _ok(c.get("value"))
        if op == "cas":
            current = self.data.get(key)
            if current != c.get("expected"):
                return _fail("cas-mismatch", current)
            self.data[key] = c.get("value")
            return _ok(c.get("value"))
        if op == "append":
            current = self.data.get(key)
            if current is None:
                self.data[key] = [c.get("value")]
            elif isinstance(current, list):
                self.data[key] = current + [c.get("value")]
            else:
                return _fail("not-a-list", current)
            return _ok(None)
        if op == "delete":
            existed = key in self.data
            self.data.pop(key, None)
            return _ok(existed)
        return _fail("bad-request")

    def snapshot(self) -> dict[str, Any]:
        """A JSON image of the data and the sessions (what ``compact`` is given)."""
        return {
            "applied": self.applied,
            "data": _copy(self.data),
            "sessions": {c: list(_copy(s)) for c, s in self.sessions.items()},
        }

    def restore(self, image: dict[str, Any] | None) -> None:
        """Replace the state with a snapshot image (from ``snapshot``)."""
        image = image or {}
        self.data = _copy(image.get("data", {}))
        self.sessions = {c: list(s) for c, s in _copy(image.get("sessions", {})).items()}
        self.applied = image.get("applied", 0)


StateMachine = KVStateMachine  # the name the server imports
