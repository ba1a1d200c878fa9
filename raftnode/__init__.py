"""raftnode: a Raft key-value store (see docs/raftnode.md)."""

from raftnode.accel import guard as _guard

_guard()  # a stale compiled build of the core is never imported (raftnode/accel.py)
