"""An in-process fake fleet and database, so the runner can be tested fast and without root.

:class:`MemDB` implements ``tester.db.DB`` over one shared in-memory store whose behaviour is
chosen by ``mode``:

* ``"correct"``     -- every operation is atomic under one lock: linearizable;
* ``"stale-reads"`` -- a read sometimes returns the key's *previous* value (like a lagging
  follower answering locally): not linearizable, which the checker must catch;
* ``"lost-writes"`` -- a write (or an append, or a set add) is sometimes acknowledged but
  not applied;
* ``"lost-overwritten"`` -- a write or append is sometimes acknowledged and visible, but the
  next change of its key is applied as if it had never happened (like an old leader's entry
  served and then replaced by a new leader's log). A register cannot tell: the next write
  overwrites the value anyway. A list shows the element vanish.

The fake also answers ``node_status`` (liveness after heal, ``tester.liveness``): one leader,
every running node applied to the store's last change -- except a node named ``stuck``,
which stays behind for good. ``hang`` makes a fault action or a client call never return
(``"pause"``, ``"kill"``, ... or ``"client"``), until :meth:`MemDB.release`: the runner must
give up on it, heal, and end ``unknown``.

Keys hold a value, or a list for ``append`` and ``add`` (a set stored as a list; reads return
a copy of it).

:class:`FakeRemote` stands in for ``tester.control.Remote``: it records every command run on
its node (tests assert that faults were healed) and understands just enough of them --
iptables DROP rules (per chain) cut a node off, ``tc ... netem`` fails as on a kernel without netem.
Faults change what clients see: a killed node refuses connections, a paused or cut-off
node lets requests time out (``info``).
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from tester.inventory import Node

MODES = ("correct", "stale-reads", "lost-writes", "lost-overwritten")


def fake_nodes(n: int = 5) -> list[Node]:
    return [Node(f"n{i}", f"10.99.0.{i + 1}") for i in range(1, n + 1)]


@dataclass
class RunResult:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


class FakeRemote:
    """A node's command runner: records commands; knows iptables, tc netem and clock files."""

    def __init__(self, node: Node, fleet: FakeFleet):
        self.node, self.fleet = node, fleet
        self.commands: list[str] = []
        self.files: dict[str, str] = {}

    def run(self, cmd: str, timeout: float = 30.0, check: bool = True) -> RunResult:
        with self.fleet.lock:
            self.commands.append(cmd)
            res = self._interpret(cmd)
        if check and res.exit_code != 0:
            raise RuntimeError(f"{self.node.name}: {cmd!r} exited {res.exit_code}: {res.stderr}")
        return res

    def _interpret(self, cmd: str) -> RunResult:
        rules = self.fleet.drops.setdefault(self.node.name, [])
        for part in cmd.split(";"):
            part = part.strip()
            m = re.match(r"iptables (?:-w )?-A (\S+) .*-j DROP", part)
            if m:
                rules.append(part)
            m = re.match(r"iptables (?:-w )?-F (\S+)", part)
            if m:  # flushing one chain leaves the other chains' rules in force
                rules[:] = [r for r in rules if f" -A {m.group(1)} " not in r]
            elif "netem" in part and part.startswith("tc qdisc"):
                return RunResult("", "Error: Specified qdisc kind is unknown.\n", 2)
            m = re.match(r"printf '%s\\n' '([^']*)' > (\S+)", part)
            if m:
                self.files[m.group(2)] = m.group(1)
        return RunResult()

    def put(self, local: str, remote: str) -> None:
        self.commands.append(f"put {local} {remote}")

    def get(self, remote: str, local: str) -> None:
        with open(local, "w", encoding="utf-8") as fh:
            fh.write(f"log of {self.node.name}\n")

    def close(self) -> None:
        pass


class FakeFleet:
    """The nodes, their remotes and the network state the fake faults change."""

    def __init__(self, n: int = 5):
        self.lock = threading.Lock()
        self.nodes = fake_nodes(n)
        self.drops: dict[str, list[str]] = {}
        self.remotes = {nd.name: FakeRemote(nd, self) for nd in self.nodes}

    def cut_off(self, name: str) -> bool:
        with self.lock:
            return bool(self.drops.get(name))


class _Store:
    def __init__(self, mode: str, seed: int, bug_rate: float):
        self.lock = threading.Lock()
        self.data: dict[Any, Any] = {}
        self.prev: dict[Any, Any] = {}
        self.visible: dict[Any, Any] = {}  # lost-overwritten: shown until the next change
        self.mode, self.bug_rate = mode, bug_rate
        self.rng = random.Random(seed)
        self.changes = 0  # the fake's "applied index": one per change

    def _set(self, key: Any, value: Any, bug: bool = False) -> None:
        """Change ``key``; with the lost-overwritten bug the change is only shown, and the
        next change applies to the value before it."""
        if bug and self.mode == "lost-overwritten":
            self.visible[key] = value
            return
        self.visible.pop(key, None)
        self.prev[key] = self.data.get(key)
        self.data[key] = value
        self.changes += 1

    def _get(self, key: Any) -> Any:
        return self.visible[key] if key in self.visible else self.data.get(key)

    def apply(self, f: str, key: Any, value: Any) -> tuple[str, Any, Any]:
        with self.lock:
            bug = self.rng.random() < self.bug_rate
            if f == "read":
                if self.mode == "stale-reads" and bug and key in self.prev:
                    out = self.prev[key]
                else:
                    out = self._get(key)
                return "ok", list(out) if isinstance(out, list) else out, None
            lost = self.mode == "lost-writes" and bug
            if f == "write":
                if not lost:
                    self._set(key, value, bug)
                return "ok", value, None
            if f in ("append", "add"):
                if not lost:
                    self._set(key, (self.data.get(key) or []) + [value], bug)
                return "ok", value, None
            if f == "cas":
                old, new = value
                if self._get(key) != old:
                    return "fail", value, "cas-mismatch"
                self.visible.pop(key, None)  # a cas of the shown value makes it real
                self._set(key, new)
                return "ok", value, None
            if f == "delete":
                self._set(key, None)
                return "ok", None, None
        return "fail", value, f"unknown f {f!r}"


class MemClient:
    """A client of one fake node. Faults on the node show up as refusals and timeouts."""

    def __init__(self, db: MemDB, latency: float):
        self.db, self.latency = db, latency
        self.node: Node | None = None

    def open(self, node: Node) -> None:
        if node.name in self.db.killed:
            raise ConnectionRefusedError(f"{node.name}: connection refused")
        self.node = node

    def invoke(self, f: str, key: Any, value: Any, timeout: float) -> tuple[str, Any, Any]:
        assert self.node is not None, "invoke before open"
        name = self.node.name
        self.db._maybe_hang("client")
        if name in self.db.killed:
            return "fail", value, "connection-refused"
        if name in self.db.paused or name in self.db.removed or self.db.fleet.cut_off(name):
            time.sleep(min(timeout, 0.05))  # the fake's "timeout" is short to keep tests fast
            return "info", value, "timeout"
        if self.latency:
            time.sleep(self.latency)
        return self.db.store.apply(f, key, value)

    def close(self) -> None:
        self.node = None


class MemDB:
    """A fake ``tester.db.DB`` whose store is correct or deliberately broken (``mode``)."""

    name = "memdb"

    def __init__(
        self,
        fleet: FakeFleet | None = None,
        mode: str = "correct",
        seed: int = 0,
        bug_rate: float = 0.2,
        latency: float = 0.0,
        fail_setup: int = 0,
        stuck: str | None = None,
        hang: str | None = None,
        status: bool = True,
    ):
        if mode not in MODES:
            raise ValueError(f"memdb mode {mode!r}: expected one of {', '.join(MODES)}")
        self.fleet = fleet or FakeFleet()
        self.store = _Store(mode, seed, bug_rate)
        self.latency = latency
        self.killed: set[str] = set()
        self.paused: set[str] = set()
        self.removed: set[str] = set()
        self.running: set[str] = set()
        self.events: list[tuple[str, str]] = []  # (action, node) in order
        self.fail_setup = fail_setup  # fail this many setup attempts (to test retries)
        self._lock = threading.Lock()
        self.stuck = stuck
        self.hang = hang
        self.hung = threading.Event()  # set once a call hangs
        self._released = threading.Event()
        if not status:  # an adapter that cannot say a node's status
            self.node_status = None  # type: ignore[assignment]

    def _maybe_hang(self, what: str) -> None:
        """Block the first call of kind ``what`` (if ``hang`` names it) until released."""
        with self._lock:
            go = self.hang == what and not self.hung.is_set()
            if go:
                self.hung.set()
        if go:
            self._released.wait(600)

    def release(self) -> None:
        """Let a hung call return (tests call it when done, so no thread outlives them)."""
        self._released.set()

    def node_status(self, node: Any, timeout: float) -> dict[str, Any] | None:
        """Raft-like status: the first running node leads; a ``stuck`` node is behind."""
        if node.name in self.killed or node.name in self.paused:
            return None
        lead = next((n.name for n in self.fleet.nodes if n.name not in self.killed), None)
        applied = self.store.changes
        return {"id": node.name, "role": "leader" if node.name == lead else "follower",
                "term": 1, "leader": lead, "commit": applied,
                "applied": applied // 2 if node.name == self.stuck else applied}

    def _event(self, action: str, node: Any) -> None:
        with self._lock:
            self.events.append((action, node.name))

    def setup(self, remote: Any, node: Any, nodes: list[Any], opts: dict[str, Any]) -> None:
        with self._lock:
            if self.fail_setup > 0:
                self.fail_setup -= 1
                raise RuntimeError(f"{node.name}: setup failed (injected)")
        self._event("setup", node)
        self.running.add(node.name)

    def teardown(self, remote: Any, node: Any) -> None:
        self._event("teardown", node)
        self.running.discard(node.name)

    def wait_ready(self, remotes: dict[str, Any], nodes: list[Any], timeout: float) -> None:
        pass

    def start(self, remote: Any, node: Any) -> None:
        self._event("start", node)
        self.killed.discard(node.name)
        self.running.add(node.name)

    def kill(self, remote: Any, node: Any) -> None:
        self._maybe_hang("kill")
        self._event("kill", node)
        self.killed.add(node.name)
        self.running.discard(node.name)

    def pause(self, remote: Any, node: Any) -> None:
        self._maybe_hang("pause")
        self._event("pause", node)
        self.paused.add(node.name)

    def resume(self, remote: Any, node: Any) -> None:
        self._event("resume", node)
        self.paused.discard(node.name)

    def log_files(self, remote: Any, node: Any) -> list[str]:
        return [f"/var/log/memdb/{node.name}.log"]

    def clock_file(self, node: Any) -> str | None:
        return f"/var/lib/memdb/{node.name}.faketime"

    def leader(self, nodes: list[Any]) -> str | None:
        return nodes[0].name if nodes else None

    def remove_member(self, remotes: dict[str, Any], nodes: list[Any], node: Any) -> None:
        self._event("remove-member", node)
        self.removed.add(node.name)

    def add_member(self, remotes: dict[str, Any], nodes: list[Any], node: Any) -> None:
        self._event("add-member", node)
        self.removed.discard(node.name)

    def client(self, opts: dict[str, Any]) -> MemClient:
        return MemClient(self, self.latency)
