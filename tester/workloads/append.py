"""``append``: each key holds a list; clients append unique values and read the whole list.

A register forgets: a write that was acknowledged and then lost is hidden by the next
overwrite. A list keeps every element, so a lost append is missing from every later read,
and two appends applied in an order real time forbids show up as a reordered list. The
history reads naturally -- ``append 7`` and ``read -> [1, 3, 7]`` -- and the
``list-append`` model (:mod:`checker.models`) judges it per key; keys are retired after
``ops_per_key`` operations like registers, so lists and histories stay short.
"""

from __future__ import annotations

from tester.workloads.base import KeySpace, Workload, new_value, no_value, op_mix


def append(keys: int = 10, ops_per_key: int | None = 200) -> Workload:
    """Lists per key: read 50 %, append of a value unique to the key 50 %."""
    ks = KeySpace(keys, ops_per_key)
    mix = {"read": (1.0, no_value), "append": (1.0, new_value)}
    return Workload("append", "list-append", ks, op_mix(ks, mix), tuple(mix))
