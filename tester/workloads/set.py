"""``set``: unique adds to a set per key, reads of the whole set, a final read after heal.

Judged by :mod:`checker.set` (Jepsen's set checker, no linearizability search): every
acknowledged add must be in the final read (else it is *lost*), every read must be
explainable (no element that was never added, no element missing although its add had
completed before the read began). A database stores the set as a list (raftnode: ``append``
to the key); duplicates do not matter to a set. Keys are retired after ``ops_per_key``
operations, so every set stays small enough to read whole.
"""

from __future__ import annotations

from tester.workloads.base import KeySpace, Workload, new_value, no_value, op_mix


def set_workload(keys: int = 10, ops_per_key: int | None = 200) -> Workload:
    """Sets per key: add of a value unique to the key 50 %, read 50 %.

    Half reads, not Jepsen's few: most of what a Raft bug does to acknowledged adds is
    transient (a stale leader serving reads for a while), and only a read can see that."""
    ks = KeySpace(keys, ops_per_key)
    mix = {"add": (1.0, new_value), "read": (1.0, no_value)}
    return Workload("set", "set", ks, op_mix(ks, mix), tuple(mix), checker="set")
