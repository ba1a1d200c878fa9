"""``kv``: a small fixed set of keys with read/write/cas/delete on all of them for the whole
run (the multi-key kv model, checked per key); delete makes a key read null again."""

from __future__ import annotations

from tester.workloads.base import KeySpace, Workload, cas_value, new_value, no_value, op_mix


def kv(keys: int = 5, ops_per_key: int | None = None) -> Workload:
    """A fixed key set with read/write/cas/delete (40/20/20/10 %)."""
    ks = KeySpace(keys, ops_per_key)
    mix = {"read": (4.0, no_value), "write": (2.0, new_value), "cas": (2.0, cas_value),
           "delete": (1.0, no_value)}
    return Workload("kv", "kv", ks, op_mix(ks, mix), tuple(mix))
