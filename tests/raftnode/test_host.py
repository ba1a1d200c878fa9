"""raftnode/host.py, the Ready loop the server and the simulator share: a write is answered
only once its entry is durable and applied in the term it was proposed in; reads wait for
their index; a leader that steps down answers what is pending ``unknown``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raftnode.core import RaftConfig
from raftnode.host import NodeHost
from raftnode.statemachine import KVStateMachine
from raftnode.storage import Storage
from raftnode.types import Entry, Membership, Message, Ready, Snapshot, SoftState


class Recorder:
    """An Outlet that writes down what the host told it."""

    def __init__(self) -> None:
        self.answers: list[tuple[Any, ...]] = []
        self.sent: list[Message] = []
        self.durable_at_answer: list[int] = []
        self.storage: Storage | None = None

    def send(self, msgs: list[Message]) -> None:
        self.sent.extend(msgs)

    def resolve(self, token: Any, result: Any, entry: Entry) -> bool:
        assert self.storage is not None
        self.durable_at_answer.append(self.storage.last_index())
        self.answers.append(("ok", token, entry.index, result))
        return True

    def reject(self, token: Any, status: str, error: str) -> None:
        self.answers.append((status, token, error))

    def read_ready(self, token: Any) -> None:
        self.answers.append(("read", token))

    def read_failed(self, token: Any, leader: str | None) -> None:
        self.answers.append(("read-failed", token))

    def on_soft_state(self, ss: SoftState) -> None:
        pass

    def on_events(self, events: list[dict[str, Any]]) -> None:
        pass

    def on_membership(self, m: Membership) -> None:
        pass

    def on_applied(self, records: list[str]) -> None:
        pass


def single_node(tmp_path: Path) -> tuple[NodeHost, Recorder]:
    out = Recorder()
    storage = Storage(tmp_path)
    out.storage = storage
    sm = KVStateMachine()
    core, _ = NodeHost.recover(storage, sm, RaftConfig(id="a", election_min=2, election_max=3,
                                                       heartbeat=1, seed=1),
                               Membership(voters={"a": "a"}))
    return NodeHost(core, sm, storage, out), out


def drain(host: NodeHost) -> list[Ready]:
    seen = []
    while host.core.has_ready():
        rd = host.core.ready()
        host.before_persist(rd)
        host.persist(rd)
        host.after_persist(rd)
        host.core.advance(rd)
        seen.append(rd)
    return seen


def elect(host: NodeHost) -> None:
    for _ in range(10):
        host.core.tick()
        drain(host)
        if host.core.role == "leader":
            return
    raise AssertionError("no leader")


def test_a_write_is_answered_only_once_its_entry_is_durable_and_applied(tmp_path: Path):
    host, out = single_node(tmp_path)
    elect(host)
    index, _term = host.propose({"op": "put", "key": "x", "value": 1}, "w1")
    assert out.answers == []  # appended, not yet answered
    drain(host)
    assert out.answers == [("ok", "w1", index, {"status": "ok", "value": 1, "error": None})]
    assert out.durable_at_answer == [index]
    assert host.applied == index and host.sm.get("x") == 1


def test_a_read_waits_for_its_read_index(tmp_path: Path):
    host, out = single_node(tmp_path)
    elect(host)
    host.propose({"op": "put", "key": "x", "value": 1}, "w1")
    host.read("r", ["r1"])
    drain(host)
    assert out.answers[0][:2] == ("ok", "w1") and out.answers[1] == ("read", "r1")


def test_a_leader_that_steps_down_answers_pending_writes_unknown():
    from tester.sim.cluster import Cluster

    cl = Cluster(["a", "b", "c"], seed=3)
    lead = cl.run_until_leader()
    cl.isolate(lead)
    answers = cl.write(lead, {"op": "put", "key": "x", "value": 1})
    assert answers == []  # appended, but no follower can acknowledge it
    for _ in range(60):  # CheckQuorum: the cut-off leader steps down on its own
        cl.tick(lead)
    assert answers == [("unknown", None, "leadership-lost")]


class EventRecorder(Recorder):
    """Also notes each logged event with the snapshot index durable at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[str, int]] = []

    def on_events(self, events: list[dict[str, Any]]) -> None:
        assert self.storage is not None
        snap = self.storage.snapshot
        for ev in events:
            self.logged.append((f"{ev['event']}:{ev.get('kind', '')}", snap.index if snap else 0))


def test_an_installed_snapshot_is_logged_only_once_it_is_durable(tmp_path):
    host, _ = single_node(tmp_path)
    out = EventRecorder()
    out.storage = host.storage
    host.outlet = out
    snap = Snapshot(5, 1, Membership(voters={"a": "a"}), KVStateMachine().snapshot())
    rd = Ready(snapshot=snap, events=[{"event": "role", "kind": "follower"},
                                      {"event": "snapshot", "kind": "installed", "index": 5}])
    host.before_persist(rd)
    assert out.logged == [("role:follower", 0)]  # the node events read it as applied to 5
    host.persist(rd)
    host.after_persist(rd)
    assert out.logged == [("role:follower", 0), ("snapshot:installed", 5)]
