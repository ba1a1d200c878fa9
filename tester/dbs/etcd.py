"""etcd as a system under test: Debian's ``etcd-server`` on every node, a v3 JSON-gateway client.

A real third-party Raft database shows that raftlab's fleet, faults and checker are not
tailored to raftnode. The client talks HTTP to etcd's v3 gRPC gateway (``/v3/kv/range``,
``/v3/kv/put``, ``/v3/kv/txn``); ranges are linearizable (etcd's default, not
``serializable``), and cas is a txn comparing the key's value.

etcd is a Go program: Go reads the clock through the vDSO, not libc, so libfaketime cannot
move its clock and ``clock_file`` is None (the clock nemesis must skip etcd nodes).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tester.control import Remote, on_all
from tester.db import DBError
from tester.dbs.daemon import Daemon, DaemonFaults, require_program, wait_until
from tester.inventory import Node

DATA_DIR = "/var/lib/etcd/raftlab"
LOG_DIR = "/var/log/etcd"
DAEMON = Daemon("etcd", pid_file="/var/lib/etcd/raftlab.pid", log_file=f"{LOG_DIR}/etcd.log")


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _enc(v: Any) -> str:
    """Values are stored as canonical JSON so that cas compares them byte for byte."""
    return _b64(json.dumps(v, sort_keys=True, separators=(",", ":")))


def _post(host: str, port: int, path: str, body: dict[str, Any], timeout: float,
          conn: http.client.HTTPConnection | None = None) -> dict[str, Any]:
    c = conn or http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        data = resp.read()
    finally:
        if conn is None:
            c.close()
    try:
        out = json.loads(data or b"{}")
    except ValueError:
        raise EtcdError(f"{host}:{port}{path}: HTTP {resp.status}: {data[:200]!r}") from None
    if resp.status != 200 or "error" in out:
        raise EtcdError(f"{host}:{port}{path}: HTTP {resp.status}: "
                        f"{out.get('error') or out.get('message') or out}")
    return out


class EtcdError(RuntimeError):
    """etcd answered with an error (the request may or may not have taken effect)."""


class EtcdDB(DaemonFaults):
    """etcd on every node, one member per node, managed as a pid-file daemon."""

    name = "etcd"
    daemon = DAEMON  # kill, pause and resume act on it

    def __init__(self, client_port: int = 2379, peer_port: int = 2380,
                 binary: str = "/usr/bin/etcd", heartbeat_ms: int = 50,
                 election_ms: int = 500, deploy: bool = True, **_: Any):
        self.client_port, self.peer_port, self.binary = client_port, peer_port, binary
        self.heartbeat_ms, self.election_ms = heartbeat_ms, election_ms
        self.deploy = deploy  # False: test the members already running, leave them be
        self._argv: dict[str, list[str]] = {}
        self._nodes: dict[str, Node] = {}
        self.token = "raftlab"

    # --- lifecycle -------------------------------------------------------------------------
    def _peer_url(self, n: Node) -> str:
        return f"http://{n.host}:{self.peer_port}"

    def _argv_for(self, node: Node, cluster: list[Node], state: str) -> list[str]:
        return [
            self.binary, "--name", node.name, "--data-dir", DATA_DIR, "--logger", "zap",
            "--listen-peer-urls", self._peer_url(node),
            "--initial-advertise-peer-urls", self._peer_url(node),
            "--listen-client-urls", f"http://{node.host}:{self.client_port}",
            "--advertise-client-urls", f"http://{node.host}:{self.client_port}",
            "--initial-cluster", ",".join(f"{n.name}={self._peer_url(n)}" for n in cluster),
            "--initial-cluster-state", state, "--initial-cluster-token", self.token,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
        ]

    def setup(self, remote: Remote, node: Node, nodes: list[Node], opts: dict[str, Any]) -> None:
        """Start a fresh member of a new cluster made of ``nodes``."""
        self.token = str(opts.get("cluster_token", self.token))
        for n in nodes:
            self._nodes[n.name] = n
        self._argv[node.name] = self._argv_for(node, nodes, "new")
        if not self.deploy:
            DAEMON.require_running(remote)
            return
        require_program(remote, self.binary, "etcd-server")
        self._fresh(remote, node, nodes, "new")

    def _fresh(self, remote: Remote, node: Node, cluster: list[Node], state: str) -> None:
        DAEMON.kill(remote)
        remote.run(f"rm -rf {DATA_DIR} && mkdir -p {DATA_DIR} {LOG_DIR} && "
                   f": > {DAEMON.log_file}", timeout=30)
        self._argv[node.name] = self._argv_for(node, cluster, state)
        DAEMON.start(remote, self._argv[node.name])

    def data_dir(self, node: Node) -> str | None:
        return DATA_DIR

    def teardown(self, remote: Remote, node: Node) -> None:
        if self.deploy:
            self._wipe(remote)

    def _wipe(self, remote: Remote) -> None:
        DAEMON.kill(remote)
        remote.run(f"rm -rf {DATA_DIR} {DAEMON.pid_file}", timeout=30)

    def start(self, remote: Remote, node: Node) -> None:
        """Restart a member with its data (the cluster flags are ignored once data exists)."""
        argv = self._argv.get(node.name)
        if argv is None:
            raise DBError(f"{node.name}: etcd was never set up on this node by this test")
        DAEMON.start(remote, argv)

    def log_files(self, remote: Remote, node: Node) -> list[str]:
        return [DAEMON.log_file]

    def clock_file(self, node: Node) -> str | None:
        return None  # Go does not read the clock through libc; libfaketime has no effect

    # --- cluster state ---------------------------------------------------------------------
    def _status(self, node: Node, timeout: float = 1.0) -> dict[str, Any]:
        return _post(node.host, self.client_port, "/v3/maintenance/status", {}, timeout)

    def _members(self, nodes: list[Node], timeout: float = 2.0) -> list[dict[str, Any]]:
        last: Exception | None = None
        for n in nodes:
            try:
                return _post(n.host, self.client_port, "/v3/cluster/member/list", {},
                             timeout).get("members", [])
            except (OSError, EtcdError) as e:
                last = e
        raise DBError(f"no etcd member answered the member list: {last}")

    def _statuses(self, nodes: list[Node]) -> list[dict[str, Any] | None]:
        """Every member's status, asked in parallel; None for members that do not answer."""
        def one(n: Node) -> dict[str, Any] | None:
            try:
                return self._status(n, timeout=0.5)
            except (OSError, EtcdError):
                return None

        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            return list(pool.map(one, nodes))

    def node_status(self, node: Node, timeout: float = 1.0) -> dict[str, Any] | None:
        """The member's Raft status in the liveness fields (``tester.liveness``), from
        ``/v3/maintenance/status``: ``commit`` is etcd's raftIndex (the committed index),
        ``applied`` its raftAppliedIndex; ids are etcd's member ids. The configuration is
        not in this answer, so membership is left to ``problems``' other checks."""
        try:
            st = self._status(node, timeout=timeout)
        except (OSError, EtcdError, http.client.HTTPException):
            return None
        me, lead = str(st["header"]["member_id"]), str(st.get("leader") or "0")
        return {"id": me, "role": "leader" if lead == me else "follower",
                "term": int(st.get("raftTerm") or st["header"].get("raft_term") or 0),
                "leader": None if lead == "0" else lead,
                "applied": int(st.get("raftAppliedIndex") or 0),
                "commit": int(st.get("raftIndex") or 0)}

    def leader(self, nodes: list[Node]) -> str | None:
        ids: dict[str, str] = {}
        leader_id = None
        for n, st in zip(nodes, self._statuses(nodes), strict=True):
            if st is None:
                continue
            ids[st["header"]["member_id"]] = n.name
            if st.get("leader") and st["leader"] != "0":
                leader_id = st["leader"]
        if leader_id is None:
            return None
        if leader_id in ids:
            return ids[leader_id]
        for m in self._members(nodes):
            if m.get("ID") == leader_id:
                return m.get("name")
        return None

    def wait_ready(self, remotes: dict[str, Remote], nodes: list[Node], timeout: float) -> None:
        """Every member answers status and all agree on one leader."""

        def agreed() -> bool:
            sts = self._statuses(nodes)
            if any(st is None for st in sts):
                return False
            leaders = {st.get("leader") for st in sts if st}
            return len(leaders) == 1 and leaders != {"0"} and leaders != {None}

        try:
            wait_until("an etcd leader agreed by every member", agreed, timeout)
        except DBError as e:
            tails = on_all(remotes, lambda r: r.run(f"tail -n 5 {DAEMON.log_file}",
                                                     check=False).stdout)
            raise DBError(f"{e}; log tails: " + " | ".join(
                f"{k}: {v.strip()[-300:]}" for k, v in tails.items())) from None

    def _reconfigure(self, members: list[Node], path: str, body: dict[str, Any],
                     timeout: float = 30) -> dict[str, Any]:
        """A membership request, retried while etcd refuses it as unsafe for the moment
        (it rejects changes until every member has been active for a few seconds)."""
        return wait_until(f"etcd to accept {path} {body}", lambda: _post(
            members[0].host, self.client_port, path, body, 10), timeout, interval=0.5)

    def remove_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        others = [n for n in nodes if n.name != node.name]
        member = next((m for m in self._members(others) if m.get("name") == node.name), None)
        if member is None:
            raise DBError(f"{node.name}: not an etcd member")
        self._reconfigure(others, "/v3/cluster/member/remove", {"ID": member["ID"]})
        self._wipe(remotes[node.name])

    def add_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        others = [n for n in nodes if n.name != node.name]
        self._reconfigure(others, "/v3/cluster/member/add", {"peerURLs": [self._peer_url(node)]})
        cluster = [self._nodes.get(m.get("name"), None) for m in self._members(others)]
        members = [n for n in cluster if n is not None and n.name != node.name] + [node]
        self._fresh(remotes[node.name], node, members, "existing")

    def client(self, opts: dict[str, Any]) -> EtcdClient:
        return EtcdClient(self.client_port)


class EtcdClient:
    """read/write/cas/delete/append on one etcd member over HTTP, with Jepsen's ok/fail/info
    semantics (append is a read and a compare-on-revision transaction, retried)."""

    def __init__(self, port: int = 2379):
        self.port = port
        self.node: Node | None = None
        self._conn: http.client.HTTPConnection | None = None

    def open(self, node: Node) -> None:
        self.node = node
        self._conn = http.client.HTTPConnection(node.host, self.port, timeout=5)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        if self.node is None or self._conn is None:
            raise RuntimeError("invoke before open")
        k = _b64(str(key))
        try:
            if f == "read":
                out = self._call("/v3/kv/range", {"key": k}, timeout)
                kvs = out.get("kvs") or []
                v = json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None
                return "ok", v, None
            if f == "write":
                self._call("/v3/kv/put", {"key": k, "value": _enc(value)}, timeout)
                return "ok", value, None
            if f == "cas":
                old, new = value
                out = self._call("/v3/kv/txn", {
                    "compare": [{"key": k, "target": "VALUE", "result": "EQUAL",
                                 "value": _enc(old)}],
                    "success": [{"requestPut": {"key": k, "value": _enc(new)}}]}, timeout)
                if out.get("succeeded"):
                    return "ok", value, None
                return "fail", value, "cas-mismatch"
            if f == "delete":
                self._call("/v3/kv/deleterange", {"key": k}, timeout)
                return "ok", None, None
            if f in ("append", "add"):  # a set is stored as a list: add appends the element
                return self._append(k, value, timeout)
            return "fail", value, f"unsupported f {f!r}"
        except ConnectionRefusedError:
            self._reset()
            return "fail", value, "connection-refused"  # nothing was sent
        except TimeoutError:
            self._reset()
            return ("fail" if f == "read" else "info"), value, "timeout"
        except (OSError, http.client.HTTPException) as e:
            self._reset()
            return ("fail" if f == "read" else "info"), value, f"connection: {e}"
        except EtcdError as e:
            # etcd errors (e.g. "request timed out", "leader changed") leave writes in doubt
            return ("fail" if f == "read" else "info"), value, str(e)[-120:]

    def _append(self, k: str, value: Any, timeout: float) -> tuple[str, Any, Any]:
        """etcd has no append: read the list and its revision, then put the longer list in a
        transaction that succeeds only if the key has not changed since; again until it does
        (a failed transaction changed nothing, so giving up is a definite fail)."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.05, deadline - time.monotonic())
            kvs = self._call("/v3/kv/range", {"key": k}, left).get("kvs") or []
            if kvs:
                current = json.loads(base64.b64decode(kvs[0]["value"]))
                same = {"key": k, "target": "MOD", "result": "EQUAL",
                        "mod_revision": kvs[0].get("mod_revision", "0")}
            else:
                current = []
                same = {"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
            if not isinstance(current, list):
                return "fail", value, "not-a-list"
            out = self._call("/v3/kv/txn", {
                "compare": [same],
                "success": [{"requestPut": {"key": k, "value": _enc([*current, value])}}]},
                max(0.05, deadline - time.monotonic()))
            if out.get("succeeded"):
                return "ok", value, None
            if time.monotonic() >= deadline:
                return "fail", value, "append-contention"

    def _call(self, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.node is not None
        return _post(self.node.host, self.port, path, body, timeout, conn=self._conn)

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
