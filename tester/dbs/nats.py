"""NATS JetStream key-value as a system under test: Debian's ``nats-server``, client ``nats-py``.

Every node runs one ``nats-server`` with JetStream, clustered over routes with every other
node (a JetStream cluster, its metadata and each stream replicated by NATS's own Raft). The
tester's data is one KV bucket, ``raftlab``, whose stream has one replica per node (at most 5,
NATS's limit), history 1. The client maps the operations onto the KV API:

* ``read`` -- ``get`` (a message get answered by the stream's leader; ``direct_reads=true``
  lets any replica answer, which NATS documents as possibly stale);
* ``write`` -- ``put``;
* ``cas [old, new]`` -- ``get`` the key's value and revision, then ``update`` conditioned on
  that revision: a different value, a missing key, or a revision that moved meanwhile is a
  definite ``fail``;
* ``append`` / ``add`` -- the same read-modify-write of a JSON list, retried on a moved
  revision within the op's timeout.

nats-server is a Go program: Go reads the clock through the vDSO, so libfaketime cannot move
it and ``clock_file`` is None (no clock faults). It writes no node events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tester.control import Remote, on_all
from tester.db import DBError
from tester.dbs.daemon import Daemon, DaemonFaults, require_program, wait_until
from tester.inventory import Node

HOME = "/opt/raftlab/nats"
CONF = f"{HOME}/nats.conf"
DATA = f"{HOME}/jetstream"
DAEMON = Daemon("nats-server", pid_file=f"{HOME}/nats.pid", log_file=f"{HOME}/nats.log")
BUCKET = "raftlab"
STREAM = f"KV_{BUCKET}"
MAX_REPLICAS = 5  # JetStream's limit for a stream


def config(node: Node, nodes: list[Node], ports: tuple[int, int, int]) -> str:
    """The node's nats-server configuration: JetStream on, routes to every other node."""
    client, cluster, http = ports
    routes = ", ".join(f'"nats-route://{n.host}:{cluster}"' for n in nodes if n.name != node.name)
    return (f'server_name: "{node.name}"\n'
            f'listen: "{node.host}:{client}"\n'
            f'http: "{node.host}:{http}"\n'
            f'jetstream {{ store_dir: "{DATA}", max_memory_store: 64MB, max_file_store: 1GB }}\n'
            f'cluster {{ name: "raftlab", listen: "{node.host}:{cluster}", '
            f"routes: [{routes}] }}\n")


class NatsDB(DaemonFaults):
    """A nats-server JetStream cluster, one server per node, and the KV bucket ``raftlab``."""

    name = "nats"
    daemon = DAEMON  # kill, pause and resume act on it
    workloads = ("registers", "kv", "append", "set")

    def __init__(self, deploy: bool = True, client_port: int = 4222, cluster_port: int = 6222,
                 http_port: int = 8222, direct_reads: bool = False, replicas: int | None = None,
                 binary: str = "/usr/sbin/nats-server"):
        self.deploy, self.binary, self.direct_reads = deploy, binary, bool(direct_reads)
        self.replicas = int(replicas) if replicas else None  # None: one per node, at most 5
        self.ports = (int(client_port), int(cluster_port), int(http_port))
        self.nodes: list[Node] = []

    # --- deployment --------------------------------------------------------------------------
    def setup(self, remote: Remote, node: Node, nodes: list[Node], opts: dict[str, Any]) -> None:
        self.nodes = list(nodes)
        if not self.deploy:
            DAEMON.require_running(remote)
            return
        require_program(remote, self.binary, "nats-server")
        DAEMON.kill(remote)
        remote.run(f"rm -rf {DATA} && mkdir -p {HOME} && : > {DAEMON.log_file}", timeout=15)
        remote.write(CONF, config(node, nodes, self.ports))
        self.start(remote, node)

    def teardown(self, remote: Remote, node: Node) -> None:
        if self.deploy:
            DAEMON.kill(remote)
            remote.run(f"rm -rf {DATA}", timeout=15)

    def wait_ready(self, remotes: dict[str, Remote], nodes: list[Node], timeout: float) -> None:
        """A JetStream meta leader, then the bucket (created once) led and fully replicated."""
        self.nodes = list(nodes)
        deadline = time.monotonic() + timeout

        def bucket_ready() -> bool:
            st = self._stream(nodes)
            if st is None:
                _run(self._create_bucket(nodes[0],
                                         self.replicas or min(len(nodes), MAX_REPLICAS)), 5)
                return False
            cl = st.get("cluster") or {}
            replicas = cl.get("replicas") or []
            return bool(cl.get("leader")) and all(r.get("current") for r in replicas)

        try:
            wait_until("a JetStream meta leader", lambda: self._meta_leader(nodes), timeout)
            wait_until(f"the KV bucket {BUCKET!r} with a leader and current replicas",
                       bucket_ready, max(1.0, deadline - time.monotonic()))
        except DBError as e:
            tails = on_all(remotes, lambda r: r.run(f"tail -n 3 {DAEMON.log_file} | cut -c1-200",
                                                     check=False, timeout=10).stdout)
            raise DBError(f"{e}; log tails: " + " | ".join(
                f"{k}: {v.strip()}" for k, v in tails.items())) from None

    async def _create_bucket(self, node: Node, replicas: int) -> None:
        import nats

        nc = await nats.connect(f"nats://{node.host}:{self.ports[0]}", connect_timeout=2,
                                allow_reconnect=False, error_cb=_quiet)
        try:
            js = nc.jetstream(timeout=5)
            await js.create_key_value(bucket=BUCKET, history=1, replicas=replicas,
                                      direct=self.direct_reads)
        finally:
            await nc.close()

    # --- process faults ------------------------------------------------------------------------
    def start(self, remote: Remote, node: Node) -> None:
        DAEMON.start(remote, [self.binary, "-c", CONF])

    def log_files(self, remote: Remote, node: Node) -> list[str]:
        return [DAEMON.log_file, CONF]

    def clock_file(self, node: Node) -> str | None:
        return None  # Go reads the clock through the vDSO: libfaketime cannot move it

    # --- cluster state -----------------------------------------------------------------------
    def _jsz(self, node: Node, query: str = "", timeout: float = 1.0) -> dict[str, Any] | None:
        url = f"http://{node.host}:{self.ports[2]}/jsz{query}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 -- fleet host
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def _all_jsz(self, nodes: list[Node], query: str = "") -> list[dict[str, Any] | None]:
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            return list(pool.map(lambda n: self._jsz(n, query), nodes))

    def _meta_leader(self, nodes: list[Node]) -> str | None:
        leaders = {(j.get("meta_cluster") or {}).get("leader") for j in self._all_jsz(nodes) if j}
        leaders.discard(None)
        leaders.discard("")
        return leaders.pop() if len(leaders) == 1 else None

    def _stream(self, nodes: list[Node]) -> dict[str, Any] | None:
        """The bucket's stream as its leader reports it (None while there is none): only the
        leader's view says which replicas are current (it lists the others, not itself)."""
        for j in self._all_jsz(nodes, "?streams=true"):
            for acct in (j or {}).get("account_details") or []:
                for st in acct.get("stream_detail") or []:
                    cl = st.get("cluster") or {}
                    others = {r.get("name") for r in cl.get("replicas") or []}
                    if st.get("name") == STREAM and cl.get("leader") and cl["leader"] not in others:
                        return st
        return None

    def leader(self, nodes: list[Node]) -> str | None:
        """The leader of the bucket's stream (the replica that orders its writes)."""
        st = self._stream(nodes)
        return (st.get("cluster") or {}).get("leader") if st else None

    def remove_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("membership changes are not tested on NATS")

    def add_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("membership changes are not tested on NATS")

    def client(self, opts: dict[str, Any]) -> NatsClient:
        return NatsClient(self.ports[0])


def _run(coro: Any, timeout: float) -> Any:
    """Run one coroutine to completion on a fresh loop in a thread of its own (control-side
    helpers): the calling thread may already run a loop (a library's, a test runner's), and
    asyncio refuses to run a second one there."""
    def run() -> Any:
        with _Loop() as loop:
            return loop.run(coro, timeout)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


class _Loop:
    """An asyncio loop owned by one thread: nats-py is asyncio, the tester's workers threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Any, timeout: float) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self) -> None:
        self.loop.close()

    def __enter__(self) -> _Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _quiet(e: Exception) -> None:
    """nats-py prints every connection error; the client reports them as fail/info instead."""


def _enc(v: Any) -> bytes:
    return json.dumps(v, sort_keys=True, separators=(",", ":")).encode()


class NatsClient:
    """One worker's connection to its node's nats-server, and the bucket's KV handle."""

    def __init__(self, port: int):
        self.port = port
        self.node: Node | None = None
        self.loop = _Loop()
        self.nc: Any = None
        self.kv: Any = None

    def open(self, node: Node) -> None:
        self.node = node

    async def _connect(self) -> None:
        import nats

        assert self.node is not None
        self.nc = await nats.connect(f"nats://{self.node.host}:{self.port}", connect_timeout=1,
                                     allow_reconnect=False, error_cb=_quiet)
        self.kv = await self.nc.jetstream().key_value(BUCKET)

    async def _get(self, key: str) -> tuple[Any, int]:
        """The key's value and revision (None, 0 when it does not exist)."""
        from nats.js.errors import KeyNotFoundError

        try:
            e = await self.kv.get(key)
        except KeyNotFoundError:
            return None, 0
        return json.loads(e.value), e.revision

    async def _read(self, key: str, deadline: float) -> tuple[Any, int]:
        """``_get``, asked again while JetStream says it has no leader for the bucket yet (as
        after a partition heals): a read changes nothing, so retrying it is safe."""
        from nats.errors import NoRespondersError
        from nats.js.errors import ServiceUnavailableError

        while True:
            try:
                return await self._get(key)
            except (ServiceUnavailableError, NoRespondersError):
                if time.monotonic() + 0.2 > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _update(self, key: str, new: Any, revision: int) -> None:
        """Write ``new`` only if the key is still at ``revision`` (0: only if it is missing)."""
        if revision:
            await self.kv.update(key, _enc(new), last=revision)
        else:
            await self.kv.create(key, _enc(new))

    async def _op(self, f: str, key: str, value: Any, deadline: float) -> tuple[str, Any, Any]:
        from nats.js.errors import KeyWrongLastSequenceError

        if f == "read":
            return "ok", (await self._read(key, deadline))[0], None
        if f == "write":
            await self.kv.put(key, _enc(value))
            return "ok", value, None
        if f == "delete":
            await self.kv.delete(key)
            return "ok", value, None
        if f == "cas":
            cur, rev = await self._get(key)
            if cur != value[0] or cur is None:
                return "fail", value, "cas-mismatch"
            try:
                await self._update(key, value[1], rev)
            except KeyWrongLastSequenceError:
                return "fail", value, "cas-mismatch"  # changed since the get: not applied
            return "ok", value, None
        if f in ("append", "add"):
            while True:
                cur, rev = await self._get(key)
                try:
                    await self._update(key, [*(cur or []), value], rev)
                    return "ok", value, None
                except KeyWrongLastSequenceError:
                    if time.monotonic() > deadline:
                        return "fail", value, "revision-moved"  # every attempt was refused
        return "fail", value, f"unsupported f {f!r}"

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        from nats.errors import Error as NatsError
        from nats.errors import NoRespondersError
        from nats.js.errors import APIError

        deadline = time.monotonic() + timeout
        if self.nc is None or self.nc.is_closed:
            try:
                self.loop.run(self._connect(), timeout)
            except (OSError, asyncio.TimeoutError, NatsError) as e:
                self.close()
                return "fail", value, f"connect: {type(e).__name__}"  # nothing was sent
        try:
            return self.loop.run(self._op(f, str(key), value, deadline),
                                 max(0.01, deadline - time.monotonic()))
        except (APIError, NoRespondersError) as e:  # refused, or no one heard it: not applied
            return "fail", value, f"{type(e).__name__}: {getattr(e, 'description', None) or e}"
        except (OSError, asyncio.TimeoutError, NatsError) as e:
            self.close()  # a late answer must never complete a later op
            return ("fail" if f == "read" else "info"), value, type(e).__name__

    def close(self) -> None:
        if self.nc is not None:
            nc, self.nc, self.kv = self.nc, None, None
            with contextlib.suppress(Exception):  # closing a dead connection fails any way
                self.loop.run(nc.close(), 2)
