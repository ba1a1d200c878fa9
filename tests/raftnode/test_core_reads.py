"""Linearizable reads (ReadIndex), lease reads, the local-reads switch and TimeoutNow transfer."""

from __future__ import annotations

from raftnode.core import RaftConfig, RaftCore
from raftnode.types import (
    LEADER,
    MSG_HEARTBEAT,
    MSG_HEARTBEAT_RESP,
    MSG_TIMEOUT_NOW,
    Membership,
    Message,
)
from tester.sim.cluster import Cluster


def settled(seed: int = 1, **kw) -> tuple[Cluster, str]:
    cl = Cluster(["a", "b", "c"], seed=seed, **kw)
    leader = cl.run_until_leader()
    cl.tick_all(3)
    return cl, leader


def read(cl: Cluster, nid: str, key: str = "k") -> list:
    return cl.write(nid, {"op": "get", "key": key})


def test_read_index_answers_after_a_quorum_confirms_leadership():
    cl, leader = settled()
    cl.write(leader, {"op": "put", "key": "k", "value": 7})
    cl.deliver_all()
    out = read(cl, leader)
    assert out == []  # the heartbeat round is in flight
    cl.deliver_all()
    assert out == [("ok", 7, None)]


def test_read_index_round_sends_heartbeats_carrying_its_context():
    cl, leader = settled()
    node = cl.nodes[leader]
    node.core.read_index("r1")
    hbs = [m for m in node.core.ready().messages if m.type == MSG_HEARTBEAT]
    assert len(hbs) == 2 and hbs[0].context == hbs[1].context
    # one acknowledgement plus the leader itself is a quorum of three
    node.core.step(Message(MSG_HEARTBEAT_RESP, hbs[0].dst, leader, node.core.term,
                           context=hbs[0].context))
    rd = node.core.ready()
    assert [rs.context for rs in rd.read_states] == ["r1"]
    assert rd.read_states[0].index == node.core.commit


def test_partitioned_leader_never_answers_a_read_and_fails_it_when_it_steps_down():
    cl, leader = settled()
    cl.isolate(leader)
    out = read(cl, leader)
    cl.tick_all(30)
    assert out and out[0][0] == "fail"  # leadership lost: a definite failure, no stale value
    assert cl.nodes[leader].core.role != LEADER


def test_read_waits_until_the_new_leader_has_committed_an_entry_of_its_term():
    c = RaftCore(RaftConfig(id="a", election_min=10, election_max=20, heartbeat=2,
                            pre_vote=False, seed=1),
                 Membership(voters={"a": "", "b": "", "c": ""}))
    while c.role != "candidate":
        c.tick()
    c.step(Message("vote_resp", "b", "a", c.term))
    assert c.role == LEADER
    c.read_index("r")
    c.ready()
    for _ in range(3):
        c.tick()
    hbs = [m for m in c.ready().messages if m.type == MSG_HEARTBEAT]
    c.step(Message(MSG_HEARTBEAT_RESP, "b", "a", c.term, context=hbs[-1].context))
    assert c.ready().read_states == []  # confirmed leader, but no entry of its term committed
    c.step(Message("append_resp", "b", "a", c.term, index=c.last_index()))
    rounds = [m for m in c.ready().messages if m.type == MSG_HEARTBEAT]
    c.step(Message(MSG_HEARTBEAT_RESP, "b", "a", c.term, context=rounds[0].context))
    assert [rs.context for rs in c.ready().read_states] == ["r"]


def test_read_on_a_follower_fails_with_the_leader_hint():
    cl, leader = settled()
    f = next(n for n in "abc" if n != leader)
    out = read(cl, f)
    assert out == [("fail", None, "not-leader:" + leader)]


def test_unsafe_local_reads_serve_a_partitioned_follower_from_its_stale_state():
    cl, leader = settled(unsafe=frozenset({"local-reads"}))
    f = next(n for n in "abc" if n != leader)
    cl.isolate(f)
    cl.write(leader, {"op": "put", "key": "k", "value": 1})
    cl.deliver_all()
    assert read(cl, f) == [("ok", None, None)]  # stale: the write is committed elsewhere


def test_lease_read_is_served_without_a_round_while_the_lease_holds():
    cl, leader = settled(lease_reads=True)
    core = cl.nodes[leader].core
    assert core.cfg.lease_ticks() == int(10 / 1.2) - 1
    cl.tick_all(3)  # a heartbeat round acknowledged
    core.read_index("lease")
    rd = core.ready()
    assert [rs.context for rs in rd.read_states] == ["lease"]
    assert not [m for m in rd.messages if m.type == MSG_HEARTBEAT]


def test_lease_expires_when_no_quorum_acknowledges_heartbeats():
    cl, leader = settled(lease_reads=True)
    cl.tick_all(3)
    cl.isolate(leader)
    core = cl.nodes[leader].core
    for _ in range(core.cfg.lease_ticks() + 1):
        cl.tick(leader)
    core.read_index("late")
    assert core.ready().read_states == []  # falls back to a ReadIndex round, unanswered


def test_unsafe_lease_no_drift_uses_the_whole_election_timeout():
    cfg = RaftConfig(id="a", election_min=10, election_max=20, unsafe=frozenset({"lease-no-drift"}))
    assert cfg.lease_ticks() == 10
    assert RaftConfig(id="a", election_min=10, election_max=20).lease_ticks() < 10


def test_transfer_leadership_sends_timeout_now_and_the_target_wins_at_once():
    cl, leader = settled()
    target = next(n for n in "abc" if n != leader)
    cl.nodes[leader].core.transfer_leadership(target)
    msgs = cl.nodes[leader].process()
    assert any(m.type == MSG_TIMEOUT_NOW and m.dst == target for m in msgs)
    cl.send(msgs)
    cl.deliver_all()
    assert cl.leaders() == [target]


def test_transfer_to_a_lagging_follower_catches_it_up_first():
    cl, leader = settled(seed=3)
    target = next(n for n in "abc" if n != leader)
    cl.isolate(target)
    for i in range(5):
        cl.write(leader, {"op": "put", "key": "k", "value": i})
    cl.deliver_all()
    cl.heal()
    cl.nodes[leader].core.transfer_leadership(target)
    cl.deliver_all()
    cl.tick_all(3)
    assert cl.leaders() == [target]
    assert cl.nodes[target].sm.data == {"k": 4}
