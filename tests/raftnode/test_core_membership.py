"""Membership changes (Raft thesis ch. 4), snapshots, InstallSnapshot and restarts."""

from __future__ import annotations

import pytest

from raftnode.core import ProposalRejected, RaftConfig, RaftCore
from raftnode.types import CONFIG, LEADER, MSG_SNAPSHOT, MSG_VOTE, Entry, Membership, Message
from tester.sim.cluster import Cluster


def cluster(ids="abcd", voters="abc", seed=1, **kw) -> tuple[Cluster, str]:
    cl = Cluster(list(ids), voters=list(voters), seed=seed, **kw)
    leader = cl.run_until_leader()
    cl.tick_all(3)
    return cl, leader


def test_added_server_joins_as_learner_catches_up_then_is_promoted_to_voter():
    cl, leader = cluster()
    for i in range(20):
        cl.write(leader, {"op": "put", "key": "k", "value": i})
    cl.deliver_all()
    lc = cl.nodes[leader].core
    lc.propose_membership("add", "d", "d")
    assert "d" in lc.membership.learners  # in effect as soon as appended
    cl.deliver_all()
    cl.tick_all(10)
    assert set(lc.membership.voters) == {"a", "b", "c", "d"}
    assert cl.nodes["d"].sm.data == {"k": 19}
    assert set(cl.nodes["d"].core.membership.voters) == {"a", "b", "c", "d"}


def test_learner_never_votes_or_campaigns_and_does_not_count_for_commit():
    cl, leader = cluster()
    lc = cl.nodes[leader].core
    lc.propose_membership("add-learner", "d", "d")
    cl.deliver_all()
    cl.tick_all(5)
    assert "d" in lc.membership.learners
    d = cl.nodes["d"].core
    for _ in range(100):
        d.tick()
    assert d.role == "follower" and not any(m.type == MSG_VOTE for m in d.ready().messages)
    # with two of three voters down, the learner's copy does not make a write commit
    others = [n for n in "abc" if n != leader]
    for n in others:
        cl.crash(n)
    out = cl.write(leader, {"op": "put", "key": "x", "value": 1})
    cl.deliver_all()
    assert out == [] and lc.commit < lc.last_index()


def test_only_one_membership_change_at_a_time():
    cl, leader = cluster()
    lc = cl.nodes[leader].core
    lc.propose_membership("add-learner", "d", "d")
    with pytest.raises(ProposalRejected, match="in progress"):
        lc.propose_membership("remove", "c")
    cl.deliver_all()
    lc.propose_membership("remove", "d")  # committed now: the next change may start


def test_removed_follower_leaves_the_quorum_and_the_cluster_keeps_serving():
    cl, leader = cluster()
    victim = next(n for n in "abc" if n != leader)
    lc = cl.nodes[leader].core
    lc.propose_membership("remove", victim)
    cl.deliver_all()
    assert set(lc.membership.voters) == set("abc") - {victim}
    cl.crash(victim)
    out = cl.write(leader, {"op": "put", "key": "k", "value": 1})
    cl.deliver_all()
    assert out == [("ok", 1, None)]


def test_removed_leader_steps_down_once_the_change_commits_and_others_elect_a_leader():
    cl, leader = cluster()
    lc = cl.nodes[leader].core
    lc.propose_membership("remove", leader)
    assert lc.role == LEADER  # still manages the cluster until the entry commits
    cl.deliver_all()
    assert lc.role != LEADER
    cl.tick_all(40)
    new = cl.leaders()
    assert len(new) == 1 and new[0] != leader
    for _ in range(100):
        lc.tick()
    assert lc.role == "follower"  # not a voter: never campaigns


def test_config_of_an_uncommitted_entry_is_in_effect_and_reverts_when_truncated():
    c = RaftCore(RaftConfig(id="a", pre_vote=False, check_quorum=False),
                 Membership(voters={"a": "", "b": "", "c": ""}))
    new = {"voters": {"a": "", "b": "", "c": "", "d": ""}, "learners": {}}
    c.step(Message("append", "b", "a", 1, entries=[Entry(1, 1, CONFIG, new)]))
    assert "d" in c.membership.voters
    c.step(Message("append", "c", "a", 2, entries=[Entry(2, 1, "normal", {"op": "put"})]))
    assert set(c.membership.voters) == {"a", "b", "c"}


def test_new_leader_must_commit_its_noop_before_a_membership_change():
    c = RaftCore(RaftConfig(id="a", pre_vote=False, check_quorum=False),
                 Membership(voters={"a": "", "b": "", "c": ""}))
    while c.role != "candidate":
        c.tick()
    c.step(Message("vote_resp", "b", "a", c.term))
    with pytest.raises(ProposalRejected, match="not committed"):
        c.propose_membership("add", "d", "")


def test_compaction_keeps_working_and_a_lagging_follower_gets_install_snapshot():
    cl, leader = cluster(ids="abc", compact_every=10)
    lagger = next(n for n in "abc" if n != leader)
    cl.isolate(lagger)
    for i in range(40):
        cl.write(leader, {"op": "put", "key": f"k{i % 3}", "value": i})
    cl.deliver_all()
    lc = cl.nodes[leader].core
    assert lc.snap_index >= 30 and len(lc.log) < 15
    snaps = []
    cl.admit = lambda m: not (m.type == MSG_SNAPSHOT and snaps.append(m))
    cl.heal()
    cl.tick_all(10)
    assert snaps and snaps[0].dst == lagger
    assert cl.nodes[lagger].sm.data == cl.nodes[leader].sm.data == {
        "k0": 39, "k1": 37, "k2": 38}
    assert cl.nodes[lagger].core.snap_index >= 30


def test_restart_from_durable_state_keeps_term_vote_log_and_data():
    cl, leader = cluster(ids="abc", compact_every=7)
    for i in range(20):
        cl.write(leader, {"op": "put", "key": "k", "value": i})
    cl.deliver_all()
    cl.tick_all(3)
    before = {n: (cl.nodes[n].core.term, cl.nodes[n].core.vote, cl.nodes[n].core.last_index())
              for n in "abc"}
    for n in "abc":
        cl.crash(n)
    for n in "abc":
        cl.start(n)
    for n in "abc":
        c = cl.nodes[n].core
        assert (c.term, c.vote, c.last_index()) == before[n]
    cl.run_until_leader()
    cl.tick_all(5)
    assert all(cl.nodes[n].sm.data == {"k": 19} for n in "abc")


def test_restarted_node_does_not_vote_twice_in_a_term():
    cl, leader = cluster(ids="abc")
    f = next(n for n in "abc" if n != leader)
    core = cl.nodes[f].core
    term = core.term
    core.since_leader = core.cfg.election_min  # the leader has been silent long enough
    core.step(Message(MSG_VOTE, "x", f, term + 1, log_term=99, index=99))
    voted = core.vote
    assert voted == "x"
    cl.process(f)
    cl.inflight.clear()
    cl.crash(f)
    c2 = cl.start(f).core
    assert (c2.term, c2.vote) == (term + 1, voted)
    for _ in range(c2.cfg.election_min):
        c2.tick()
    c2.ready()
    c2.step(Message(MSG_VOTE, "y", f, term + 1, log_term=99, index=99))
    assert c2.ready().messages[0].reject


def test_volatile_vote_switch_forgets_the_vote_across_a_restart():
    cl, leader = cluster(ids="abc", unsafe=frozenset({"volatile-vote"}))
    f = next(n for n in "abc" if n != leader)
    cl.crash(f)
    assert cl.start(f).core.term == 0


def test_a_pending_promotion_survives_compaction_and_a_restart_of_every_voter():
    cl, leader = cluster(compact_every=5)
    cl.isolate("d")  # cannot catch up: it stays a learner while the config entry is compacted
    lc = cl.nodes[leader].core
    lc.propose_membership("add", "d", "d")
    for i in range(30):
        cl.write(leader, {"op": "put", "key": "k", "value": i})
    cl.deliver_all()
    assert lc.snap_index > lc.config_index and "d" in lc.membership.learners
    assert lc.snapshot.membership.promote == ("d",)  # the snapshot carries the intent
    for n in "abc":
        cl.crash(n)
    for n in "abc":
        cl.start(n)
    # the old leader restores its configuration from that snapshot: were the promotion lost,
    # it would keep "d" a learner for good whenever it leads again
    assert cl.nodes[leader].core.promote == {"d"}
    cl.heal()
    new = cl.run_until_leader()
    cl.tick_all(30)
    assert set(cl.nodes[new].core.membership.voters) == {"a", "b", "c", "d"}
    assert cl.nodes["d"].sm.data == {"k": 29}
