"""Redis with Sentinel as a system under test: Debian's ``redis-server`` and ``redis-sentinel``.

Every node runs one ``redis-server`` and one ``redis-sentinel``. The first node starts as the
primary, the others as its replicas; the sentinels (quorum: a majority) watch the primary and,
when a majority of them cannot reach it for ``down_after_ms``, promote a replica. Replication
is asynchronous: the primary acknowledges a write before any replica has it. So a primary cut
off from the other nodes -- but not from clients still connected to it -- goes on
acknowledging writes that the promoted replica never receives, and when the partition heals
the old primary becomes a replica of the new one and discards them. This is the case Jepsen
showed in 2013; raftlab's ``set`` and ``append`` workloads name the lost writes.

Clients follow the primary the sentinels announce (redis-py's ``Sentinel``), asking their
own node's sentinel first, as an application on that node would. Values are JSON strings;
``cas`` is a Lua script (atomic on the primary); ``append``/``add`` push onto a list.

Redis and Sentinel are C programs: libfaketime moves their clocks (``clock_file``), and a
sentinel whose clock jumps enters its TILT mode.

Options: ``down_after_ms`` (1000), ``failover_timeout_ms`` (5000), ``min_replicas`` (0; with
1 or more the primary refuses writes no replica acknowledges within 10 s, Redis's own
mitigation), ``faketime_cache``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tester.control import Remote, on_all
from tester.db import DBError
from tester.dbs import faketime
from tester.dbs.daemon import Daemon, DaemonFaults, require_program, wait_until
from tester.inventory import Node

HOME = "/opt/raftlab/redis"
DATA = f"{HOME}/data"
CLOCK = f"{HOME}/faketime"
SERVER_CONF = f"{HOME}/redis.conf"
SENTINEL_CONF = f"{HOME}/sentinel.conf"
SERVER = Daemon("redis-server", pid_file=f"{HOME}/redis.pid", log_file=f"{HOME}/redis.log")
SENTINEL = Daemon("redis-sentinel", pid_file=f"{HOME}/sentinel.pid",
                  log_file=f"{HOME}/sentinel.log")
SERVICE = "raftlab"  # the name the sentinels know the primary by

#: cas on the primary, atomically: set ARGV[2] if the key holds ARGV[1] (or is missing and
#: ARGV[1] is the JSON null)
CAS = """local v = redis.call('GET', KEYS[1])
if (v == false and ARGV[1] == 'null') or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0"""
#: a read of a key whatever it holds: a string (registers) or a list (append, set)
READ = """local t = redis.call('TYPE', KEYS[1]).ok
if t == 'list' then return {'list', redis.call('LRANGE', KEYS[1], 0, -1)} end
if t == 'string' then return {'string', redis.call('GET', KEYS[1])} end
return {'none'}"""


def server_config(node: Node, primary: Node, port: int, min_replicas: int) -> str:
    """redis.conf: asynchronous replication from ``primary``, an fsynced-every-second AOF."""
    lines = [f"bind {node.host}", f"port {port}", "protected-mode no", f"dir {DATA}",
             "appendonly yes", "appendfsync everysec", 'save ""',
             f"replica-announce-ip {node.host}"]
    if min_replicas:
        lines += [f"min-replicas-to-write {min_replicas}", "min-replicas-max-lag 10"]
    if node.name != primary.name:
        lines.append(f"replicaof {primary.host} {port}")
    return "\n".join(lines) + "\n"


def sentinel_config(node: Node, primary: Node, nodes: list[Node], ports: tuple[int, int],
                    down_after_ms: int, failover_timeout_ms: int) -> str:
    """sentinel.conf (Sentinel rewrites it as it learns): watch ``primary``, quorum majority."""
    port, sport = ports
    quorum = len(nodes) // 2 + 1
    return "\n".join([
        f"bind {node.host}", f"port {sport}", "protected-mode no", f"dir {HOME}",
        f"sentinel announce-ip {node.host}",
        f"sentinel monitor {SERVICE} {primary.host} {port} {quorum}",
        f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}",
        f"sentinel failover-timeout {SERVICE} {failover_timeout_ms}",
        f"sentinel parallel-syncs {SERVICE} 1"]) + "\n"


class RedisDB(DaemonFaults):
    """redis-server and redis-sentinel on every node; the first node starts as the primary."""

    name = "redis"
    daemon = SERVER  # kill, pause and resume act on it
    workloads = ("registers", "kv", "append", "set")

    def __init__(self, deploy: bool = True, port: int = 6379, sentinel_port: int = 26379,
                 down_after_ms: int = 1000, failover_timeout_ms: int = 5000,
                 min_replicas: int = 0, faketime_cache: int = faketime.DEFAULT_CACHE_S,
                 server_binary: str = "/usr/bin/redis-server",
                 sentinel_binary: str = "/usr/bin/redis-sentinel"):
        self.deploy, self.ports = deploy, (int(port), int(sentinel_port))
        self.down_after_ms, self.failover_timeout_ms = int(down_after_ms), int(failover_timeout_ms)
        self.min_replicas, self.faketime_cache = int(min_replicas), int(faketime_cache)
        self.binaries = (server_binary, sentinel_binary)
        self.nodes: list[Node] = []

    # --- deployment --------------------------------------------------------------------------
    def setup(self, remote: Remote, node: Node, nodes: list[Node], opts: dict[str, Any]) -> None:
        self.nodes = list(nodes)
        if not self.deploy:
            SERVER.require_running(remote)
            SENTINEL.require_running(remote)
            return
        for b in self.binaries:
            require_program(remote, b, "redis-server redis-sentinel")
        primary = nodes[0]
        faketime.install(remote, HOME)
        faketime.reset_clock(remote, CLOCK)
        remote.run(f"rm -rf {DATA} && mkdir -p {DATA} && : > {SERVER.log_file} && "
                   f": > {SENTINEL.log_file}", timeout=15)
        remote.write(SERVER_CONF, server_config(node, primary, self.ports[0], self.min_replicas))
        remote.write(SENTINEL_CONF, sentinel_config(node, primary, nodes, self.ports,
                                                    self.down_after_ms,
                                                    self.failover_timeout_ms))
        self.start(remote, node)
        SENTINEL.start(remote, self._wrap([self.binaries[1], SENTINEL_CONF]))

    def teardown(self, remote: Remote, node: Node) -> None:
        if not self.deploy:
            return
        SENTINEL.kill(remote)
        SERVER.kill(remote)
        remote.run(f"rm -rf {DATA} {SENTINEL_CONF}; echo +0 > {CLOCK} 2>/dev/null; true",
                   timeout=15)

    def _wrap(self, argv: list[str]) -> list[str]:
        return faketime.wrap(HOME, CLOCK, argv, cache_s=self.faketime_cache)

    def wait_ready(self, remotes: dict[str, Remote], nodes: list[Node], timeout: float) -> None:
        """The primary sees every replica, and every sentinel knows the primary, the replicas
        and the other sentinels."""
        self.nodes = list(nodes)
        n = len(nodes)

        def ready() -> bool:
            primary = self.leader(nodes)
            if primary is None:
                return False
            info = self._redis(self._node(primary)).info("replication")
            if info.get("role") != "master" or info.get("connected_slaves", 0) < n - 1:
                return False
            for nd in nodes:
                m = self._sentinel(nd).sentinel_master(SERVICE)
                if m.get("num-other-sentinels", 0) < n - 1 or m.get("num-slaves", 0) < n - 1:
                    return False
            return True

        try:
            wait_until("a Redis primary with every replica and sentinel", ready, timeout)
        except DBError as e:
            tails = on_all(remotes, lambda r: r.run(
                f"tail -n 2 {SERVER.log_file} {SENTINEL.log_file} | cut -c1-200", check=False,
                timeout=10).stdout)
            raise DBError(f"{e}; log tails: " + " | ".join(
                f"{k}: {v.strip()}" for k, v in tails.items())) from None

    # --- process faults: the database is redis-server; the sentinels stay up -------------------
    def start(self, remote: Remote, node: Node) -> None:
        SERVER.start(remote, self._wrap([self.binaries[0], SERVER_CONF]))

    def log_files(self, remote: Remote, node: Node) -> list[str]:
        return [SERVER.log_file, SENTINEL.log_file, SENTINEL_CONF]

    def clock_file(self, node: Node) -> str | None:
        return CLOCK

    # --- cluster state -----------------------------------------------------------------------
    def _node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def _redis(self, node: Node, timeout: float = 1.0) -> Any:
        import redis

        return redis.Redis(host=node.host, port=self.ports[0], socket_timeout=timeout,
                           socket_connect_timeout=timeout)

    def _sentinel(self, node: Node, timeout: float = 1.0) -> Any:
        import redis

        return redis.Redis(host=node.host, port=self.ports[1], socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True)

    def leader(self, nodes: list[Node]) -> str | None:
        """The primary most sentinels announce (None when no majority of them agrees)."""
        def ask(nd: Node) -> str | None:
            try:
                addr = self._sentinel(nd).sentinel_get_master_addr_by_name(SERVICE)
            except Exception:  # noqa: BLE001 -- a sentinel down or cut off says nothing
                return None
            return next((n.name for n in nodes if addr and n.host == addr[0]), None)

        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            said = [a for a in pool.map(ask, nodes) if a]
        best = max(set(said), key=said.count, default=None)
        return best if best and said.count(best) > len(nodes) // 2 else None

    def remove_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("membership changes are not tested on Redis")

    def add_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        raise NotImplementedError("membership changes are not tested on Redis")

    def client(self, opts: dict[str, Any]) -> RedisClient:
        return RedisClient(self.nodes, self.ports)


class RedisClient:
    """Follows the sentinel-announced primary, asking its own node's sentinel first."""

    def __init__(self, nodes: list[Node], ports: tuple[int, int]):
        self.nodes, self.ports = nodes, ports
        self.home: Node | None = None
        self.db: Any = None

    def open(self, node: Node) -> None:
        self.home = node
        self._connect()

    def _connect(self) -> None:
        """A primary-following client (connections are made lazily, on the first command)."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        from redis.sentinel import Sentinel

        assert self.home is not None, "invoke before open"
        others = [n for n in self.nodes if n.name != self.home.name]
        sentinels = [(n.host, self.ports[1]) for n in [self.home, *others]]
        # no retries: redis-py would resend a write whose answer was lost, applying it twice
        once = Retry(NoBackoff(), 0)
        sentinel = Sentinel(sentinels, socket_timeout=1.0, socket_connect_timeout=1.0,
                            retry=once)
        self.db = sentinel.master_for(SERVICE, socket_timeout=5.0, socket_connect_timeout=1.0,
                                      retry=once)

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        import redis
        from redis.sentinel import MasterNotFoundError

        k = str(key)
        if self.db is None:  # closed after a lost answer: follow the primary afresh
            self._connect()
        pool = self.db.connection_pool
        pool.connection_kwargs["socket_timeout"] = timeout  # the client enforces the op timeout
        try:
            if f == "read":
                return "ok", self._read(k), None
            if f == "write":
                self.db.set(k, json.dumps(value))
            elif f == "delete":
                self.db.delete(k)
            elif f == "cas":
                old, new = value
                if not self.db.eval(CAS, 1, k, json.dumps(old), json.dumps(new)):
                    return "fail", value, "cas-mismatch"
            elif f in ("append", "add"):
                self.db.rpush(k, json.dumps(value))
            else:
                return "fail", value, f"unsupported f {f!r}"
            return "ok", value, None
        except (MasterNotFoundError, redis.ReadOnlyError) as e:
            # no primary known (nothing sent), or sent to a replica, which refused it
            return "fail", value, type(e).__name__
        except redis.ResponseError as e:  # Redis refused the command: it did not run
            return "fail", value, f"ResponseError: {str(e)[:80]}"
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            self.close()
            return ("fail" if f == "read" else "info"), value, type(e).__name__

    def _read(self, k: str) -> Any:
        kind, *rest = self.db.eval(READ, 1, k)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "list":
            return [json.loads(x) for x in rest[0]]
        if kind == "string":
            return json.loads(rest[0])
        return None

    def close(self) -> None:
        if self.db is not None:
            self.db.connection_pool.disconnect()
            self.db = None
