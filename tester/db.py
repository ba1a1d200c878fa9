"""The DB adapter and client protocols: how the tester drives a system under test.

raftnode and etcd are built-in adapters (``tester.dbs``); a user's own system is one more,
written in one small module and passed as ``--db package.module:Class``
(docs/adapter-tutorial.md builds one from scratch). The contracts:

**Construction.** ``load_db`` builds the class with keyword options: every ``--db-opt KEY=JSON``
(also ``db_opt`` in a campaign's settings) and ``deploy=False`` for ``--no-deploy``. A class
that names its options (``def __init__(self, deploy=True, port=9000)``) gets unknown ones
refused up front (exit 254); one that takes only ``**kwargs`` gets them all. The same options
also reach every ``setup(..., opts)`` and ``client(opts)``, with ``unsafe`` and ``deploy``.

**deploy=False** means the database is already installed and running (e.g. by Ansible):
``setup`` only checks each node and says which one is not ready, ``teardown`` leaves it.

**Unsafe switches.** ``--unsafe NAME`` is checked against the class attribute
``unsafe_switches`` (a tuple of names; none by default), then passed in ``opts["unsafe"]``.

**Lifecycle.** ``setup``/``teardown`` run on every node in parallel (setup retried up to 3
times, after a teardown); then ``wait_ready``; faults call ``kill``/``pause``/``resume``/
``start`` on one node; ``teardown`` runs at the end, also after a failure or Ctrl-C.

**Where files go on a node.** On a local fleet only ``/root``, ``/opt/raftlab``,
``/opt/raftnode``, ``/var/lib/raftnode``, ``/var/log/raftnode``, ``/var/lib/etcd`` and
``/var/log/etcd`` are private to each node; ``/usr`` (``/usr/local/bin`` too), ``/tmp`` and
the rest of ``/var`` are shared with the host and every other node. Install under
``/opt/raftlab/<db>/`` (binaries, configuration, data, logs, pid files), never in a shared
place, or the nodes overwrite each other's files.

**Processes.** The nodes share the host's PID namespace: ``pkill name`` on one node kills
every node's process of that name (and the host's). Track your own pid
(``tester.dbs.daemon.Daemon``'s pid file) and signal only it.

**Clocks.** ``clock_file(node)`` names a libfaketime offset file the clock nemesis writes
(``+5``, ``-2.5``, ``+0 x0.5``); start the daemon through ``tester.dbs.faketime.wrap`` so it
reads that file (with ``waitfix.so`` so Python timed waits still end). Return None for a
program libfaketime cannot move (Go reads the clock through the vDSO): no clock faults then.

**Data directory.** ``data_dir(node)`` (optional) names the directory on the node that holds
all the database's durable state. Naming it opts in to the ``disk`` nemesis: lazyfs is
mounted over it right after setup (the database is killed and started once for that), each
fault kills the process and drops the writes not yet fsynced, and it is unmounted before
``teardown``. So ``kill``/``start`` must work, and ``setup``/``teardown`` may wipe the
directory but must not replace it by another (a mount point is not removable).

**Node events.** Write ``tester.nodeevents.emit.NodeEvents`` lines (roles, terms, leaders,
applied entries) to a file listed in ``log_files`` and the run gets the cluster timeline
and the election check (docs/node-events.md).

**The client.** One ``Client`` per worker thread, never shared. ``open`` must not change
data; an exception from it is a ``fail`` (nothing was sent). ``invoke(f, key, value,
timeout)`` must return within about ``timeout`` seconds: the client enforces the op timeout
(set socket timeouts or pass it to the library), the runner does not interrupt it. It returns
``ok`` (it happened), ``fail`` (it definitely did not: e.g. a refused connection, a cas whose
expected value did not match) or ``info`` (unknown: a write that timed out or lost its
connection may still happen, now or later). An exception from ``invoke`` is an ``info``; an
``info`` on a read is turned into a ``fail`` (a read changes nothing). After an ``info`` the
runner closes the client and the worker goes on as a new process with a fresh client, so a
late reply to the old request is never read as the answer to a new one.
"""

from __future__ import annotations

import importlib
import inspect
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
    every workload is tried. Likewise ``unsafe_switches = ("name", ...)`` lists the planted
    bugs ``--unsafe`` may turn on (none by default).
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
    ``members`` (ids in the configuration in effect) and ``learners`` (those that do not vote);
    fields it leaves out are not checked.
    It returns None (or raises) when the node does not answer within ``timeout``.
    """

    def node_status(self, node: Node, timeout: float) -> dict[str, Any] | None: ...


#: ``--db NAME`` for the adapters shipped with raftlab; anything else is ``package.module:Class``
BUILTIN = {"raftnode": "tester.dbs.raftnode:RaftnodeDB", "etcd": "tester.dbs.etcd:EtcdDB",
           "nats": "tester.dbs.nats:NatsDB", "redis": "tester.dbs.redis:RedisDB"}


def adapter_options(cls: type) -> list[str] | None:
    """The keyword options an adapter class names, or None when it takes any (``**kwargs``
    and nothing else): ``load_db`` refuses an option the class does not name."""
    params = [p for p in inspect.signature(cls).parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not params and any(p.kind is p.VAR_KEYWORD
                          for p in inspect.signature(cls).parameters.values()):
        return None
    return [p.name for p in params]


def load_db(spec: str, **options: Any) -> DB:
    """Resolve ``raftnode``, ``etcd`` or ``package.module:Class`` and build it with ``options``
    (``--db-opt KEY=JSON`` values and ``deploy=False`` for ``--no-deploy``).

    Raises ValueError, naming the spec, for an unknown adapter or an option it does not take.
    """
    target = BUILTIN.get(spec, spec)
    if ":" not in target:
        raise ValueError(f"--db {spec!r}: expected {', '.join(BUILTIN)} "
                         "or an import path like package.module:Class")
    modname, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        raise ValueError(f"--db {spec!r}: cannot import module {modname!r}: {e}") from None
    try:
        cls = getattr(mod, attr)
    except AttributeError:
        raise ValueError(f"--db {spec!r}: module {modname!r} has no {attr!r}") from None
    if not isinstance(cls, type):
        raise ValueError(f"--db {spec!r}: {modname}.{attr} is a {type(cls).__name__}, not a "
                         "class; name the adapter class, e.g. package.module:MyDB")
    known = adapter_options(cls)
    if known is not None:
        for k in sorted(options):
            if k not in known:
                what = "--no-deploy" if k == "deploy" else f"--db-opt {k}"
                raise ValueError(f"{what}: --db {spec} takes no option {k!r} "
                                 f"(its options: {', '.join(known) or 'none'})")
    try:
        return cls(**options)
    except (TypeError, ValueError) as e:  # e.g. --db-opt port="x" where a number was meant
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(options.items()))
        raise ValueError(f"--db {spec}: its options ({given}) were refused: {e}") from None


def check_unsafe(db: DB, switches: list[str]) -> None:
    """Refuse an unsafe switch the chosen database does not have (its ``unsafe_switches``)."""
    known = tuple(getattr(db, "unsafe_switches", ()))
    for u in switches:
        if u not in known:
            has = f"expected one of {', '.join(known)}" if known else "it has no unsafe switches"
            raise ValueError(f"--unsafe {u!r}: not a switch of --db {db.name} ({has})")
