"""The DB adapter and client protocols: how the tester drives a system under test.

raftnode and etcd are two adapters (``tester.dbs``); a user's own system is a third, written in
one small module and passed as ``--db package.module:Class``. Jepsen's lifecycle:

* ``DB.setup``/``teardown`` run on every node in parallel (setup retried up to 3 times);
* ``Client.open`` must not change data; ``invoke`` returns the completion record;
* a completion is ``ok`` (happened), ``fail`` (definitely did not happen) or ``info``
  (indeterminate). A timeout is ``info`` unless the op is a read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tester.control import Remote
    from tester.inventory import Node


class DBError(RuntimeError):
    """A database step failed on a node; the message names the node and the step."""


@runtime_checkable
class Client(Protocol):
    """One worker's connection to one node. Not shared between threads."""

    def open(self, node: Node) -> None: ...

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        """Perform one operation; return ``(type, value, error)``.

        ``type`` is "ok", "fail" or "info"; ``value`` is the completion value (a read's result,
        the written value, ``[old, new]`` for cas); ``error`` is None or a short reason.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class DB(Protocol):
    """A system under test, installed on and controlled across a fleet.

    An adapter may also say which workloads its client speaks, as a class attribute
    ``workloads = ("registers", "kv")``: ``raftlab test`` then refuses any other workload
    with a message naming both (exit 254) instead of failing every operation. Without it,
    every workload is tried.
    """

    name: str

    def setup(self, remote: Remote, node: Node, nodes: list[Node], opts: dict[str, Any]) -> None:
        """Install, configure and start the database on ``node`` (cluster is ``nodes``)."""
        ...

    def teardown(self, remote: Remote, node: Node) -> None:
        """Stop the database and wipe its data on ``node``."""
        ...

    def wait_ready(self, remotes: dict[str, Remote], nodes: list[Node], timeout: float) -> None:
        """Block until the cluster serves requests (e.g. has a leader), or raise DBError."""
        ...

    def start(self, remote: Remote, node: Node) -> None: ...

    def kill(self, remote: Remote, node: Node) -> None:
        """kill -9 the database process."""
        ...

    def pause(self, remote: Remote, node: Node) -> None:
        """SIGSTOP the database process."""
        ...

    def resume(self, remote: Remote, node: Node) -> None:
        """SIGCONT the database process."""
        ...

    def log_files(self, remote: Remote, node: Node) -> list[str]:
        """Paths on the node to download into ``nodes/<node>/`` of the run folder."""
        ...

    def clock_file(self, node: Node) -> str | None:
        """Path on the node of the libfaketime offset file (e.g. "+5s"), or None."""
        ...

    def leader(self, nodes: list[Node]) -> str | None:
        """The name of the node currently leading, if the system has one and it is known."""
        ...

    def remove_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None: ...

    def add_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None: ...

    def client(self, opts: dict[str, Any]) -> Client:
        """A new, unopened client."""
        ...


@runtime_checkable
class StatusDB(Protocol):
    """What an adapter may also offer: each node's Raft status, so that ``raftlab test`` can
    check liveness after the final heal (``tester.liveness``: one leader that every node
    follows, every node applied to the same index). Without it, that check is skipped.

    ``node_status`` returns a dict with any of ``id`` (the node's own name for itself, as
    ``leader`` names it), ``role`` ("leader" or anything else), ``term``, ``leader`` (the id
    of the leader it follows, or None), ``applied``, ``commit``, ``last_index`` and
    ``members`` (ids in the configuration in effect); fields it leaves out are not checked.
    It returns None (or raises) when the node does not answer within ``timeout``.
    """

    def node_status(self, node: Node, timeout: float) -> dict[str, Any] | None: ...


def load_db(spec: str, **kwargs: Any) -> DB:
    """Resolve ``raftnode``, ``etcd`` or ``package.module:Class`` to a DB instance."""
    builtin = {"raftnode": "tester.dbs.raftnode:RaftnodeDB", "etcd": "tester.dbs.etcd:EtcdDB"}
    target = builtin.get(spec, spec)
    if ":" not in target:
        raise ValueError(
            f"--db {spec!r}: expected raftnode, etcd or an import path like package.module:Class"
        )
    modname, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        raise ValueError(f"--db {spec!r}: cannot import module {modname!r}: {e}") from None
    try:
        cls = getattr(mod, attr)
    except AttributeError:
        raise ValueError(f"--db {spec!r}: module {modname!r} has no {attr!r}") from None
    return cls(**kwargs)
