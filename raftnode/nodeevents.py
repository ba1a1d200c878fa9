"""What raftnode writes about its log into its node log, for raftlab's node-event checker.

docs/node-events.md is the contract: per process a ``started`` event (what it recovered), per
``Ready`` one ``applied`` event for the entries applied in it (index, term, a digest of the
entry, a digest of the state machine's result, the command, the term of the client proposal
answered at that index), with the commit index and the node's current term. Every node of a correct Raft applies the same entry and gets the same
result at each index, so comparing digests across nodes finds diverged logs and diverged
state machines even when no client read happens to look.

A digest is the first 12 hex digits of SHA-256 over the canonical JSON (sorted keys, no
spaces) of ``[kind, data]`` for an entry, and of the result for a result.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from raftnode.types import NORMAL, Entry

DIGEST_HEX = 12


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def canonical(value: Any) -> str:
    """The one JSON spelling of ``value`` that every node computes alike."""
    return _ENCODE(value)


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_HEX]


def digest(value: Any) -> str:
    """A short digest of a JSON value (see the module doc)."""
    return _hex(canonical(value))


def applied_record(e: Entry, result: Any, acked: int | None = None) -> str:
    """``[index, term, digest, result digest, command, acked]`` of one applied entry, as JSON
    text (the command is encoded once, for its digest and for the log line). The command is
    the client's command for a normal entry and the entry's kind (``noop``, ``config``) else;
    ``acked`` the term of the proposal this node answered ``ok`` for at this index (or null)."""
    kind = canonical(e.kind)
    data = canonical(e.data)
    command = data if e.kind == NORMAL else kind
    return (f"[{e.index},{e.term},\"{_hex(f'[{kind},{data}]')}\","
            f"\"{_hex(canonical(result))}\",{command},{'null' if acked is None else acked}]")
