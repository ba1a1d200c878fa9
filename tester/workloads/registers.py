"""``registers``: Jepsen's independent registers.

Many keys, each a cas-register, with read/write/cas (50/25/25 %); every write (and cas's new
value) is unique per key, so a stale read is visible; each key receives at most
``ops_per_key`` operations, then a fresh key replaces it (short per-key histories keep the
linearizability search fast). A write lost under a later overwrite stays invisible: that is
what ``append`` is for.
"""

from __future__ import annotations

from tester.workloads.base import KeySpace, Workload, cas_value, new_value, no_value, op_mix


def registers(keys: int = 10, ops_per_key: int | None = 200) -> Workload:
    """Independent cas-registers (read 50 %, write 25 %, cas 25 %)."""
    ks = KeySpace(keys, ops_per_key)
    mix = {"read": (2.0, no_value), "write": (1.0, new_value), "cas": (1.0, cas_value)}
    return Workload("registers", "cas-register", ks, op_mix(ks, mix), tuple(mix))
