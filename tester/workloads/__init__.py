"""Workloads: which operations the clients perform, and what judges the history.

One module per workload -- :mod:`~tester.workloads.registers`, :mod:`~tester.workloads.kv`,
:mod:`~tester.workloads.append`, :mod:`~tester.workloads.set` -- and this registry, whose
names ``raftlab test --workload``, ``raftlab sim --workload`` and campaigns accept.
"""

from __future__ import annotations

from collections.abc import Callable

from tester.workloads.append import append
from tester.workloads.base import READ_FS, FinalReads, KeySpace, Workload
from tester.workloads.kv import kv
from tester.workloads.registers import registers
from tester.workloads.set import set_workload

__all__ = ["ALIASES", "READ_FS", "WORKLOADS", "FinalReads", "KeySpace", "Workload", "append",
           "kv", "make", "registers", "require", "resolve", "set_workload"]

#: name -> constructor(keys, ops_per_key)
REGISTRY: dict[str, Callable[[int, int | None], Workload]] = {
    "registers": registers, "kv": kv, "append": append, "set": set_workload,
}
WORKLOADS = tuple(REGISTRY)
ALIASES = {"register": "registers", "cas-register": "registers", "list-append": "append"}


def resolve(name: str) -> str:
    """The workload's canonical name; ValueError naming the choices if there is none."""
    name = ALIASES.get(name, name)
    if name not in REGISTRY:
        raise ValueError(f"--workload {name!r}: expected one of {', '.join(WORKLOADS)}")
    return name


def make(name: str, keys: int, ops_per_key: int | None) -> Workload:
    """The workload called ``name`` (one of WORKLOADS or an alias)."""
    return REGISTRY[resolve(name)](keys, ops_per_key)


def require(db: object, name: str) -> None:
    """ValueError naming the database and the workload when the adapter cannot run it.

    An adapter lists what it supports in ``workloads`` (a tuple of names); one that does not
    say is assumed to support them all (a user's adapter answers ``unsupported f`` itself).
    """
    name = resolve(name)
    supported = getattr(db, "workloads", None)
    if supported is not None and name not in supported:
        raise ValueError(f"--db {getattr(db, 'name', type(db).__name__)} does not support "
                         f"--workload {name} (it supports {', '.join(supported)})")
