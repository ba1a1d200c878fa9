"""What raftnode writes about its log into its node log, for raftlab's node-event checker.

docs/node-events.md is the contract: per process a ``started`` event (what it recovered), per
``Ready`` one ``applied`` event for the entries applied in it (index, term, a digest of the
entry, a digest of the state machine's result, the command), with the commit index and the
node's current term. Every node of a correct Raft applies the same entry and gets the same
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


def canonical(value: Any) -> str:
    """The one JSON spelling of ``value`` that every node computes alike."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    """A short digest of a JSON value (see the module doc)."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:DIGEST_HEX]


def applied_record(e: Entry, result: Any) -> list[Any]:
    """``[index, term, digest, result digest, command]`` of one applied entry; the command is
    the client's command for a normal entry and the entry's kind (``noop``, ``config``) else."""
    command = e.data if e.kind == NORMAL else e.kind
    return [e.index, e.term, digest([e.kind, e.data]), digest(result), command]
