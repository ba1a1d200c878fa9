"""raftnode as a system under test: deploy the zipapp, run it under libfaketime, fault it.

Each node gets ``/opt/raftnode/{raftnode.pyz,raftnodectl,raftnode.env,secret}``; the node runs
as a pid-file daemon through ``raftnodectl`` (the same script the Ansible role installs), with
libfaketime preloaded and reading the per-node offset file ``clock_file(node)``, so the clock
nemesis moves one node's clock by writing e.g. ``+5s`` into it.

``deploy=False`` tests a cluster that is already installed and running (e.g. by
``ansible-playbook ansible/site.yml``): setup only checks each node and connects, teardown
leaves the deployment in place.

libfaketime's clock cache: ``FAKETIME_NO_CACHE=1`` re-reads the offset file on every clock
call (~2 us per call instead of ~0.1 us); ``FAKETIME_CACHE_DURATION=1`` (the default here,
``faketime_cache=1``) re-reads it at most once a second (~0.2 us per call), so a clock jump
lands within a second, well inside a nemesis interval. ``bench/fleet.py`` measures both (put
latency on a loaded 5-node fleet: 4.9 ms without the cache, 3.6 ms with it). A clock *strobe*
that flips faster than once a second needs ``faketime_cache=0`` (db option or ``opts``).
"""

from __future__ import annotations

import secrets
import shlex
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from raftnode.types import UNSAFE_SWITCHES
from tester.control import ControlError, Remote, on_all
from tester.db import DBError
from tester.dbs import faketime
from tester.dbs.daemon import wait_until
from tester.inventory import Node

HOME = "/opt/raftnode"
APP = f"{HOME}/raftnode.pyz"
CTL = f"{HOME}/raftnodectl"
ENV = f"{HOME}/raftnode.env"
SECRET = f"{HOME}/secret"
DATA = "/var/lib/raftnode/data"
CLOCK = "/var/lib/raftnode/faketime"
PID_FILE = "/var/lib/raftnode/raftnode.pid"  # raftnodectl's default
NODE_LOG = "/var/log/raftnode/node.log"
STDOUT_LOG = "/var/log/raftnode/stdout.log"
DEFAULT_PORT = 7000
CTL_SOURCE = Path(__file__).with_name("raftnodectl.sh")


class NodeExited(DBError):
    """A node's raftnode process is not running (it exited, e.g. on bad flags)."""


def port_of(node: Node) -> int:
    """The node's raftnode port: inventory var ``raftnode_port``, else 7000."""
    return int(node.var("raftnode_port", DEFAULT_PORT))


def addr_of(node: Node) -> str:
    return f"{node.host}:{port_of(node)}"


def env_file(node: Node, peers: list[Node], args: list[str], faketime_cache: int) -> str:
    """The node's raftnode.env (shell variables read by raftnodectl)."""
    values = {
        "RAFTNODE_ID": node.name,
        "RAFTNODE_LISTEN": addr_of(node),
        "RAFTNODE_PEERS": ",".join(f"{p.name}={addr_of(p)}" for p in peers),
        "RAFTNODE_ARGS": " ".join(shlex.quote(a) for a in args),
        "RAFTNODE_FAKETIME_CACHE": str(faketime_cache),
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


#: Under test, a member snapshots every this many applied entries (raftnode's own default is
#: 10,000, more than a whole run writes): snapshots, compaction, catch-up by InstallSnapshot
#: and restores after a restart then happen many times a run, and their bugs can show.
SNAPSHOT_ENTRIES = 200


class RaftnodeDB:
    """raftnode on every node of the fleet (one member per node)."""

    name = "raftnode"
    unsafe_switches = UNSAFE_SWITCHES  # planted bugs --unsafe may turn on (docs/raftnode.md)

    def __init__(self, deploy: bool = True, unsafe: list[str] | tuple[str, ...] = (),
                 secret: str | None = None, faketime_cache: int = 1,
                 tick_ms: int | None = None, election_timeout_ms: str | None = None,
                 heartbeat_ms: int | None = None, zipapp: str | Path | None = None,
                 client_retries: bool = True, snapshot_entries: int | None = SNAPSHOT_ENTRIES,
                 **_: Any):
        self.deploy = deploy
        self.client_retries = client_retries
        self._nodes: list[Node] = []
        self.unsafe = list(unsafe)
        self.secret = secret or secrets.token_hex(32)
        self.faketime_cache = faketime_cache
        self.timing = {"--tick-ms": tick_ms, "--election-timeout-ms": election_timeout_ms,
                       "--heartbeat-ms": heartbeat_ms, "--snapshot-entries": snapshot_entries}
        self._zipapp = Path(zipapp) if zipapp else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._setup_args: list[str] | None = None
        self._lock = threading.Lock()

    # --- deployment -----------------------------------------------------------------------
    def zipapp(self) -> Path:
        """Build the raftnode zipapp once per adapter (from this checkout's raftnode/)."""
        with self._lock:  # setup runs on every node in parallel
            if self._zipapp is None:
                from raftnode.zipapp import build

                self._tmp = tempfile.TemporaryDirectory(prefix="raftlab-zipapp-")
                self._zipapp = build(Path(self._tmp.name) / "raftnode.pyz")
            return self._zipapp

    def _args(self, opts: dict[str, Any]) -> list[str]:
        args: list[str] = []
        for u in list(opts.get("unsafe") or []) + self.unsafe:
            if u not in UNSAFE_SWITCHES:
                raise DBError(f"unknown raftnode unsafe switch {u!r} "
                              f"(known: {', '.join(UNSAFE_SWITCHES)})")
            args += ["--unsafe", u]
        for flag, v in self.timing.items():
            if v is not None:
                args += [flag, str(v)]
        return args

    def setup(self, remote: Remote, node: Node, nodes: list[Node], opts: dict[str, Any]) -> None:
        """Install and start a fresh member (or, with deploy=False, check the running one)."""
        self._nodes = list(nodes)  # where clients may retry
        if not self.deploy:
            self._check_deployed(remote, node)
            return
        app = self.zipapp()
        self._setup_args = self._args(opts)
        remote.run("command -v python3 >/dev/null || "
                   "{ echo 'python3 is not installed on the node' >&2; exit 1; }; set -e; "
                   f"mkdir -p {HOME} /var/lib/raftnode /var/log/raftnode; "
                   f"if [ -x {CTL} ] && [ -r {ENV} ]; then {CTL} kill; fi; "
                   f"rm -rf {DATA}; : > {NODE_LOG}; : > {STDOUT_LOG}; echo +0 > {CLOCK}",
                   timeout=30)
        remote.put(app, APP, mode=0o755)
        remote.put(CTL_SOURCE, CTL, mode=0o755)
        faketime.install(remote, HOME)  # raftnodectl runs the node through its wrapper
        remote.write(SECRET, self.secret + "\n", mode=0o600)
        cache = int(opts.get("faketime_cache", self.faketime_cache))
        remote.write(ENV, env_file(node, nodes, self._setup_args, cache))
        self.start(remote, node)

    def _check_deployed(self, remote: Remote, node: Node) -> None:
        r = remote.run(f"test -x {CTL} && test -r {ENV} && test -r {APP} && {CTL} status",
                       timeout=15, check=False)
        if r.exit_code != 0:
            raise DBError(f"{node.name}: raftnode is not deployed and running "
                          f"({(r.stderr or r.stdout).strip() or 'missing ' + CTL}); deploy it "
                          "first (ansible-playbook ansible/site.yml) or drop --no-deploy")

    def teardown(self, remote: Remote, node: Node) -> None:
        """Stop the node and wipe its data and logs (not with deploy=False)."""
        if not self.deploy:
            return
        remote.run(f"if [ -x {CTL} ] && [ -r {ENV} ]; then {CTL} kill && {CTL} wipe; fi; "
                   f"rm -f {NODE_LOG} {STDOUT_LOG}; echo +0 > {CLOCK} 2>/dev/null; true",
                   timeout=30)

    # --- process faults --------------------------------------------------------------------
    def _ctl(self, remote: Remote, action: str, timeout: float = 15) -> str:
        return remote.run(f"{CTL} {action}", timeout=timeout).stdout.strip()

    def start(self, remote: Remote, node: Node) -> None:
        self._ctl(remote, "start")

    def kill(self, remote: Remote, node: Node) -> None:
        self._ctl(remote, "kill")

    def pause(self, remote: Remote, node: Node) -> None:
        remote.run(f"{CTL} pause", timeout=15, check=False)

    def resume(self, remote: Remote, node: Node) -> None:
        remote.run(f"{CTL} resume", timeout=15, check=False)

    def restart(self, remote: Remote, node: Node) -> None:
        self._ctl(remote, "stop")
        self._ctl(remote, "start")

    def log_files(self, remote: Remote, node: Node) -> list[str]:
        return [NODE_LOG, STDOUT_LOG]

    def clock_file(self, node: Node) -> str | None:
        return CLOCK

    def data_dir(self, node: Node) -> str | None:
        return DATA

    # --- cluster state ---------------------------------------------------------------------
    def status(self, node: Node, timeout: float = 1.0) -> dict[str, Any] | None:
        """The node's status object, or None when it does not answer."""
        from raftnode.client import Client

        with Client(addr_of(node), timeout=timeout) as c:
            r = c.status()
        return r.get("value") if r.get("status") == "ok" else None

    def node_status(self, node: Node, timeout: float = 1.0) -> dict[str, Any] | None:
        """The node's status in the liveness fields (``tester.liveness``): raftnode's own
        status already names them; ``members`` are the voters and learners in effect,
        ``learners`` those of them that do not vote."""
        st = self.status(node, timeout=timeout)
        if st is None:
            return None
        conf = st.get("members") or {}
        return {**{k: st.get(k) for k in ("id", "role", "term", "leader", "applied", "commit",
                                          "last_index")},
                "members": sorted({*(conf.get("voters") or {}), *(conf.get("learners") or {})}),
                "learners": sorted(conf.get("learners") or {})}

    def statuses(self, nodes: list[Node], timeout: float = 0.5) -> list[dict[str, Any] | None]:
        """Every node's status, asked in parallel (a paused node costs one timeout, not N)."""
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            return list(pool.map(lambda n: self.status(n, timeout=timeout), nodes))

    def leader(self, nodes: list[Node]) -> str | None:
        """The leader with the highest term among the nodes that answer."""
        best: tuple[int, str] | None = None
        for n, st in zip(nodes, self.statuses(nodes), strict=True):
            if st and st.get("role") == "leader":
                cand = (int(st.get("term", 0)), str(st.get("id", n.name)))
                best = max(best, cand) if best else cand
        return best[1] if best else None

    def wait_ready(self, remotes: dict[str, Remote], nodes: list[Node], timeout: float) -> None:
        """Every node answers and names the same leader, which says it leads."""

        def agreed() -> str | None:
            sts = self.statuses(nodes)
            silent = [n for n, s in zip(nodes, sts, strict=True) if s is None]
            for n in silent:  # a node that exited will never answer: say why at once
                if n.name in remotes and remotes[n.name].run(
                        f"{CTL} status", timeout=10, check=False).exit_code == 3:
                    tail = remotes[n.name].run(f"tail -n 2 {STDOUT_LOG} | cut -c1-300",
                                               timeout=10, check=False).stdout.strip()
                    raise NodeExited(f"{n.name}: raftnode is not running: "
                                     f"{tail or '(no output)'}")
            if silent:
                return None
            leaders = {s.get("leader") for s in sts if s}
            if len(leaders) != 1 or None in leaders:
                return None
            (lead,) = leaders
            return lead if any(s and s.get("role") == "leader" for s in sts) else None

        try:
            wait_until("a raftnode leader agreed by every node", agreed, timeout)
        except NodeExited:
            raise
        except DBError as e:
            raise DBError(f"{e}; {self._tails(remotes)}") from None

    def _tails(self, remotes: dict[str, Remote]) -> str:
        try:
            tails = on_all(remotes, lambda r: r.run(
                f"tail -n 3 {STDOUT_LOG} {NODE_LOG} 2>&1 | cut -c1-200", check=False,
                timeout=10).stdout)
        except ControlError as e:
            return f"(logs unavailable: {e})"
        return "log tails: " + " | ".join(f"{k}: {v.strip()}" for k, v in tails.items())

    # --- membership ------------------------------------------------------------------------
    def _request_any(self, nodes: list[Node], op: str, timeout: float, **fields: Any
                     ) -> dict[str, Any]:
        from raftnode.client import Client

        last: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in nodes:
                with Client(addr_of(n), timeout=max(0.5, deadline - time.monotonic())) as c:
                    last = c.request(op, **fields)
                if last.get("status") == "ok":
                    return last
                if last.get("status") == "fail" and last.get("error") not in (
                        "not-leader", "connection-refused", "membership-busy"):
                    raise DBError(f"{op} {fields}: {last.get('error')}: {last.get('message')}")
            time.sleep(0.1)
        raise DBError(f"{op} {fields}: no member accepted it in {timeout:g} s (last: {last})")

    def remove_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        """Remove ``node`` from the cluster, then stop and wipe it."""
        others = [n for n in nodes if n.name != node.name]
        self._request_any(others, "remove-member", 30, key=node.name)
        remote = remotes[node.name]
        remote.run(f"{CTL} kill && {CTL} wipe", timeout=30)

    def add_member(self, remotes: dict[str, Remote], nodes: list[Node], node: Node) -> None:
        """Start ``node`` empty with --join, then ask the cluster to add it."""
        others = [n for n in nodes if n.name != node.name]
        members: set[str] = set()
        for n in others:
            st = self.status(n)
            if st:
                members = set((st.get("members") or {}).get("voters") or {}) | set(
                    (st.get("members") or {}).get("learners") or {})
                break
        peers = [n for n in others if n.name in members] + [node]
        remote = remotes[node.name]
        remote.run(f"{CTL} kill && {CTL} wipe", timeout=30)
        remote.write(ENV, env_file(node, peers, self._setup_args or self._args({}),
                                   self.faketime_cache))
        self._ctl(remote, "start --join")
        self._request_any(others, "add-member", 30, key=node.name, value=addr_of(node))

    def client(self, opts: dict[str, Any]) -> RaftnodeClient:
        """A client that retries a request on the cluster's other nodes (see RaftnodeClient)."""
        retries = bool(opts.get("client_retries", self.client_retries))
        return RaftnodeClient(self._nodes if retries else None, retries=retries)


#: definite failures that say nothing about the operation itself (this attempt reached no
#: leader, its log entry was overwritten, or a read got no answer): another attempt may work
NOT_APPLIED = frozenset({"not-leader", "connection-refused", "connection-lost", "stopping",
                         "superseded", "timeout", "membership-busy"})


class RaftnodeClient:
    """read/write/cas/delete/append/add against raftnode, retrying like a real client library.

    Jepsen's ok/fail/info semantics over an operation, not over one request: when a request's
    connection breaks, times out, or the server cannot tell whether it was applied, the same
    request -- same session ``client`` and ``seq`` -- is sent again, to the next node of the
    cluster, until one attempt gives a definite answer or the operation's ``timeout`` runs out
    (then a write is ``info``). raftnode's sessions make such a retry exactly-once; with the
    unsafe ``no-sessions`` switch a retry applies the write twice, which the history shows (a
    cas that happened twice answers ``cas-mismatch``, so a read sees a value written by a
    failed cas). Each attempt gets a third of the operation's time.
    """

    def __init__(self, nodes: list[Node] | None = None, retries: bool = True,
                 attempts_per_timeout: int = 3):
        self.nodes = list(nodes or [])
        self.retries = retries
        self.attempts_per_timeout = attempts_per_timeout
        self.client_id = secrets.token_hex(6)
        self._seq = 0
        self._home: Node | None = None
        self._c: Any = None  # the connection to the home node

    def open(self, node: Node) -> None:
        from raftnode.client import Client

        self._home = node
        if all(n.name != node.name for n in self.nodes):
            self.nodes.insert(0, node)
        self._c = Client(addr_of(node), timeout=5.0, client_id=self.client_id)

    def close(self) -> None:
        if self._c is not None:
            self._c.close()
            self._c = None

    def _targets(self) -> list[Node]:
        """The home node first, then the others in ring order after it."""
        assert self._home is not None
        names = [n.name for n in self.nodes]
        i = names.index(self._home.name)
        return self.nodes[i:] + self.nodes[:i]

    def _request(self, node: Node, fields: dict[str, Any], timeout: float) -> dict[str, Any]:
        from raftnode.client import Client

        assert self._home is not None
        if node.name == self._home.name:
            if self._c is None:
                self._c = Client(addr_of(node), timeout=5.0, client_id=self.client_id)
            self._c.timeout = timeout  # bounds the connect too
            return self._c.request(timeout=timeout, **fields)
        with Client(addr_of(node), timeout=timeout, client_id=self.client_id) as c:
            return c.request(timeout=timeout, **fields)

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        if self._home is None:
            raise RuntimeError("invoke before open")
        k = str(key)
        if f == "read":
            fields: dict[str, Any] = {"op": "get", "key": k}
        elif f == "write":
            fields = {"op": "put", "key": k, "value": value}
        elif f == "cas":
            old, new = value
            fields = {"op": "cas", "key": k, "expected": old, "value": new}
        elif f == "delete":
            fields = {"op": "delete", "key": k}
        elif f in ("append", "add"):  # a set is stored as a list: add appends the element
            fields = {"op": "append", "key": k, "value": value}
        else:
            return "fail", value, f"unsupported f {f!r}"
        if f != "read":  # one session seq per operation, shared by all of its attempts
            self._seq += 1
            fields.update(client=self.client_id, seq=self._seq)
        deadline = time.monotonic() + timeout
        per_attempt = max(0.1, timeout / self.attempts_per_timeout) if self.retries else timeout
        targets = self._targets() if self.retries else [self._home]
        maybe_applied = False
        attempt, err = 0, "timeout"
        while True:
            left = deadline - time.monotonic()
            if attempt and (left <= 0.01 or not self.retries):
                break
            node = targets[attempt % len(targets)]
            attempt += 1
            r = self._request(node, fields, max(0.01, min(per_attempt, left)))
            status, err = r.get("status"), r.get("error") or r.get("status") or "unknown"
            if status == "ok":
                return "ok", (r.get("value") if f == "read" else value), None
            if status == "fail" and err not in NOT_APPLIED:
                return "fail", value, err  # the state machine's own answer, e.g. cas-mismatch
            if status != "fail":
                maybe_applied = True  # unknown: this attempt may yet be applied
            if attempt % len(targets) == 0:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))  # a full round
        if f == "read" or not maybe_applied:
            return "fail", value, err
        return "info", value, err
