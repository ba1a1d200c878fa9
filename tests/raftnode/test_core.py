"""The Raft core against the rules of the paper's Figure 2, driven message by message.

Single-core tests step hand-written messages into one ``RaftCore``; cluster tests use the
deterministic in-memory harness ``tester.sim.cluster.Cluster`` (FIFO delivery, no faults
unless the test injects them).
"""

from __future__ import annotations

import pytest

from raftnode.core import RaftConfig, RaftCore
from raftnode.types import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    MSG_APPEND,
    MSG_APPEND_RESP,
    MSG_VOTE,
    MSG_VOTE_RESP,
    NOOP,
    NORMAL,
    PRE_CANDIDATE,
    Entry,
    HardState,
    Membership,
    Message,
    NotLeader,
)
from tester.sim.cluster import Cluster

ABC = Membership(voters={"a": "a", "b": "b", "c": "c"})


def core(nid: str = "a", *, term: int = 0, vote: str | None = None, log=(), commit: int = 0,
         **cfg) -> RaftCore:
    cfg.setdefault("pre_vote", False)
    cfg.setdefault("check_quorum", False)
    entries = [Entry(t, i + 1, NORMAL, {"n": i + 1}) for i, t in enumerate(log)]
    return RaftCore(RaftConfig(id=nid, election_min=10, election_max=20, heartbeat=2, seed=1,
                               **cfg),
                    ABC, HardState(term, vote, commit), None, entries)


def msgs(c: RaftCore, typ: str | None = None) -> list[Message]:
    rd = c.ready()
    return [m for m in rd.messages if typ is None or m.type == typ]


def elect(c: RaftCore) -> None:
    """Make ``c`` (no pre-vote) leader by timing out and feeding it the votes."""
    for _ in range(20):
        if c.role == CANDIDATE:
            break
        c.tick()
    assert c.role == CANDIDATE
    for p in ("b", "c"):
        c.step(Message(MSG_VOTE_RESP, p, "a", c.term))
    assert c.role == LEADER


# ---------------------------------------------------------------- elections (Figure 2: RequestVote)


def test_follower_times_out_within_the_randomized_election_range_and_becomes_candidate():
    c = core()
    ticks = 0
    while c.role == FOLLOWER:
        c.tick()
        ticks += 1
    assert 10 <= ticks < 20
    assert c.role == CANDIDATE and c.term == 1 and c.vote == "a"
    votes = msgs(c, MSG_VOTE)
    assert sorted(m.dst for m in votes) == ["b", "c"]
    assert all(m.term == 1 for m in votes)


def test_election_timeouts_differ_between_nodes_so_split_votes_resolve():
    timeouts = {RaftCore(RaftConfig(id=n, seed=s), ABC).randomized_timeout
                for n in "abc" for s in range(5)}
    assert len(timeouts) > 3


def test_vote_granted_at_most_once_per_term():
    c = core("a")
    c.step(Message(MSG_VOTE, "b", "a", 1, log_term=0, index=0))
    c.step(Message(MSG_VOTE, "c", "a", 1, log_term=0, index=0))
    out = msgs(c, MSG_VOTE_RESP)
    assert [(m.dst, m.reject) for m in out] == [("b", False), ("c", True)]
    assert c.vote == "b"
    # The vote is in the hard state the caller must persist before sending the grant.
    c.step(Message(MSG_VOTE, "b", "a", 1, log_term=0, index=0))
    assert not msgs(c, MSG_VOTE_RESP)[0].reject  # a repeated request from the same candidate


def test_vote_hard_state_comes_in_the_same_ready_as_the_grant():
    c = core("a")
    c.step(Message(MSG_VOTE, "b", "a", 1, log_term=0, index=0))
    rd = c.ready()
    assert rd.hard_state == HardState(1, "b", 0)
    assert rd.messages[0].type == MSG_VOTE_RESP


def test_vote_refused_to_a_candidate_whose_log_is_less_up_to_date():
    c = core("a", term=3, log=[1, 3])
    c.step(Message(MSG_VOTE, "b", "a", 4, log_term=2, index=5))  # lower last term
    c.step(Message(MSG_VOTE, "c", "a", 5, log_term=3, index=1))  # same term, shorter
    assert [m.reject for m in msgs(c, MSG_VOTE_RESP)] == [True, True]
    c.step(Message(MSG_VOTE, "c", "a", 6, log_term=3, index=2))
    assert [m.reject for m in msgs(c, MSG_VOTE_RESP)] == [False]


def test_request_with_lower_term_is_rejected_and_higher_term_is_adopted():
    c = core("a", term=5)
    c.step(Message(MSG_VOTE, "b", "a", 4, log_term=9, index=9))
    assert msgs(c) == []  # stale candidate: ignored
    c.step(Message(MSG_APPEND, "b", "a", 7, log_term=0, index=0))
    assert c.term == 7 and c.role == FOLLOWER and c.leader == "b"


def test_candidate_with_a_majority_becomes_leader_and_appends_a_noop_of_its_term():
    c = core("a", term=1, log=[1])
    elect(c)
    assert c.term == 2 and c.last_index() == 2
    assert c.entry(2).kind == NOOP and c.entry(2).term == 2
    apps = msgs(c, MSG_APPEND)
    assert {m.dst for m in apps} == {"b", "c"}
    assert all(m.entries and m.entries[-1].kind == NOOP for m in apps)


def test_candidate_steps_down_on_append_from_a_leader_of_its_term():
    c = core("a")
    while c.role != CANDIDATE:
        c.tick()
    c.step(Message(MSG_APPEND, "b", "a", c.term, log_term=0, index=0))
    assert c.role == FOLLOWER and c.leader == "b"


def test_cluster_elects_exactly_one_leader_and_others_follow_it():
    cl = Cluster(["a", "b", "c"], seed=3)
    leader = cl.run_until_leader()
    term = cl.nodes[leader].core.term
    cl.tick_all(5)
    assert cl.leaders() == [leader]
    assert all(n.core.leader == leader and n.core.term == term for n in cl.nodes.values())


def test_split_vote_is_resolved_by_a_new_randomized_election():
    cl = Cluster(["a", "b", "c", "d"], seed=5)
    # a and b campaign at the same instant; c and d split their votes between them.
    for n in ("a", "b"):
        cl.nodes[n].core._campaign(pre=False)
    cl.blocked |= {("a", "d"), ("b", "c")}
    cl.deliver_all()
    assert cl.leaders() == []  # 2 of 4 each: no quorum
    cl.heal()
    leader = cl.run_until_leader()
    assert cl.nodes[leader].core.term >= 2


# ---------------------------------------------------------------- AppendEntries (Figure 2)


def test_append_rejected_when_log_lacks_prev_entry_with_hint_to_the_end_of_the_log():
    c = core("a", term=1, log=[1, 1])
    c.step(Message(MSG_APPEND, "b", "a", 1, log_term=1, index=5, entries=[Entry(1, 6)]))
    (r,) = msgs(c, MSG_APPEND_RESP)
    assert r.reject and r.index == 5 and r.reject_hint == 3


def test_append_rejected_on_term_mismatch_with_hint_to_the_start_of_the_conflicting_term():
    c = core("a", term=3, log=[1, 2, 2, 2])
    c.step(Message(MSG_APPEND, "b", "a", 3, log_term=3, index=4, entries=[Entry(3, 5)]))
    (r,) = msgs(c, MSG_APPEND_RESP)
    assert r.reject and r.reject_hint == 2  # skip the whole run of term 2 at once


def test_append_truncates_a_conflicting_suffix_and_appends_new_entries():
    c = core("a", term=3, log=[1, 2, 2])
    c.step(Message(MSG_APPEND, "b", "a", 3, log_term=1, index=1,
                   entries=[Entry(3, 2, NORMAL, "x"), Entry(3, 3, NORMAL, "y")]))
    rd = c.ready()
    assert [(e.index, e.term) for e in c.log] == [(1, 1), (2, 3), (3, 3)]
    assert [(e.index, e.term) for e in rd.entries] == [(2, 3), (3, 3)]  # to persist, replacing
    assert rd.messages[0].index == 3 and not rd.messages[0].reject


def test_append_is_idempotent_and_never_truncates_matching_entries():
    c = core("a", term=2, log=[1, 2, 2])
    c.step(Message(MSG_APPEND, "b", "a", 2, log_term=1, index=1, entries=[Entry(2, 2)]))
    assert c.last_index() == 3  # a stale, shorter append does not drop entry 3
    assert msgs(c, MSG_APPEND_RESP)[0].index == 2


def test_follower_commit_is_min_of_leader_commit_and_last_new_entry():
    c = core("a", term=1, log=[1, 1, 1, 1])
    c.step(Message(MSG_APPEND, "b", "a", 1, log_term=1, index=1, entries=[Entry(1, 2)],
                   commit=4))
    assert c.commit == 2
    rd = c.ready()
    assert [e.index for e in rd.committed] == [1, 2]


def test_stale_leader_append_gets_our_term_back_so_it_steps_down():
    c = core("a", term=5, check_quorum=True)
    c.step(Message(MSG_APPEND, "b", "a", 3, log_term=0, index=0))
    (r,) = msgs(c, MSG_APPEND_RESP)
    assert r.term == 5 and c.term == 5
    leader = core("b", term=3)
    leader.role = LEADER
    leader.step(r)
    assert leader.role == FOLLOWER and leader.term == 5


def test_fast_backtracking_catches_up_a_divergent_follower_in_few_round_trips():
    cl = Cluster(["a", "b", "c"], seed=1)
    leader = cl.run_until_leader()
    lagger = next(n for n in "abc" if n != leader)
    cl.isolate(lagger)
    for i in range(300):
        cl.write(leader, {"op": "put", "key": "k", "value": i})
    cl.deliver_all()
    cl.heal()
    rejects = []
    cl.admit = lambda m: not (m.type == MSG_APPEND_RESP and m.reject and rejects.append(m))
    cl.tick_all(10)
    assert cl.nodes[lagger].core.last_index() == cl.nodes[leader].core.last_index()
    assert len(rejects) <= 2  # one hint jumps straight to the follower's end


def test_pipelining_keeps_at_most_max_inflight_appends_unacknowledged():
    c = core("a", max_inflight=3, max_batch=2)
    elect(c)
    c.ready()
    c.step(Message(MSG_APPEND_RESP, "b", "a", c.term, index=c.last_index()))  # b replicates
    c.ready()
    to_b = []
    for i in range(20):
        c.propose({"n": i})
        to_b += [m for m in msgs(c, MSG_APPEND) if m.dst == "b"]
    sent = [m for m in to_b if m.entries]
    assert len(sent) == 3  # the window, then nothing until an acknowledgement
    # Acknowledging frees the window.
    c.step(Message(MSG_APPEND_RESP, "b", "a", c.term, index=sent[-1].entries[-1].index))
    assert any(m.dst == "b" and m.entries for m in msgs(c, MSG_APPEND))


def test_batching_puts_proposals_between_two_readys_in_one_append():
    cl = Cluster(["a", "b", "c"], seed=2)
    leader = cl.run_until_leader()
    node = cl.nodes[leader]
    for i in range(10):
        node.core.propose({"op": "put", "key": "k", "value": i})
    apps = [m for m in node.process() if m.type == MSG_APPEND]
    assert len(apps) == 2 and all(len(m.entries) == 10 for m in apps)


# ---------------------------------------------------------------- commitment (Figure 2 and 8)


def test_leader_commits_once_a_majority_has_an_entry_of_its_term():
    c = core("a")
    elect(c)
    idx, term = c.propose({"op": "put"})
    c.ready()
    assert c.commit == 0
    c.step(Message(MSG_APPEND_RESP, "b", "a", term, index=idx))
    assert c.commit == idx
    assert [e.index for e in c.ready().committed] == [1, 2]


def test_leader_never_commits_an_old_term_entry_by_counting_replicas_figure_8():
    c = core("a", term=2, log=[1, 2])  # entry 2 of term 2 from a previous leadership
    elect(c)  # term 3; its no-op is entry 3
    c.ready()
    c.step(Message(MSG_APPEND_RESP, "b", "a", c.term, index=2))  # b has entry 2 (term 2)
    assert c.commit == 0  # a majority holds entry 2, but it is of an older term
    c.step(Message(MSG_APPEND_RESP, "b", "a", c.term, index=3))
    assert c.commit == 3  # entry 2 commits indirectly with the no-op


def test_unsafe_commit_old_terms_commits_by_counting_and_skips_the_noop():
    c = core("a", term=2, log=[1, 2], unsafe=frozenset({"commit-old-terms"}))
    elect(c)
    assert c.last_index() == 2  # no no-op
    c.step(Message(MSG_APPEND_RESP, "b", "a", c.term, index=2))
    assert c.commit == 2


def test_committed_entries_are_applied_in_order_on_every_node():
    cl = Cluster(["a", "b", "c"], seed=4)
    leader = cl.run_until_leader()
    outs = [cl.write(leader, {"op": "put", "key": f"k{i}", "value": i}) for i in range(5)]
    cl.deliver_all()
    cl.tick_all(5)
    assert all(o == [("ok", i, None)] for i, o in enumerate(outs))
    datas = [n.sm.data for n in cl.nodes.values()]
    assert datas[0] == datas[1] == datas[2] == {f"k{i}": i for i in range(5)}


def test_propose_on_a_follower_raises_not_leader_with_a_hint():
    cl = Cluster(["a", "b", "c"], seed=4)
    leader = cl.run_until_leader()
    f = next(n for n in "abc" if n != leader)
    with pytest.raises(NotLeader) as ei:
        cl.nodes[f].core.propose({"op": "put"})
    assert ei.value.leader == leader


# ---------------------------------------------------------------- PreVote, CheckQuorum


def test_prevote_keeps_a_partitioned_node_from_raising_its_term():
    cl = Cluster(["a", "b", "c"], seed=6)
    leader = cl.run_until_leader()
    term = cl.nodes[leader].core.term
    lone = next(n for n in "abc" if n != leader)
    cl.isolate(lone)
    cl.tick_all(100)
    assert cl.nodes[lone].core.term == term
    assert cl.nodes[lone].core.role == PRE_CANDIDATE
    cl.heal()
    cl.tick_all(10)
    assert cl.leaders() == [leader] and cl.nodes[leader].core.term == term  # not disrupted


def test_followers_ignore_vote_requests_while_they_hear_from_a_leader():
    cl = Cluster(["a", "b", "c"], seed=7)
    leader = cl.run_until_leader()
    f = next(n for n in "abc" if n != leader)
    core_f = cl.nodes[f].core
    term = core_f.term
    core_f.step(Message(MSG_VOTE, "x", f, term + 5, log_term=99, index=99))
    assert core_f.term == term and core_f.ready().messages == []


def test_check_quorum_makes_an_isolated_leader_step_down():
    cl = Cluster(["a", "b", "c"], seed=8)
    leader = cl.run_until_leader()
    cl.isolate(leader)
    cl.tick_all(25)
    assert cl.nodes[leader].core.role == FOLLOWER
    others = [n for n in cl.leaders() if n != leader]
    assert len(others) == 1  # the majority elected a new leader meanwhile


def test_heartbeats_keep_followers_from_starting_elections():
    cl = Cluster(["a", "b", "c"], seed=9)
    leader = cl.run_until_leader()
    term = cl.nodes[leader].core.term
    cl.tick_all(200)
    assert cl.leaders() == [leader] and all(n.core.term == term for n in cl.nodes.values())


def test_candidate_rejected_by_a_majority_returns_to_follower():
    c = core("a")
    while c.role != CANDIDATE:
        c.tick()
    for p in ("b", "c"):
        c.step(Message(MSG_VOTE_RESP, p, "a", c.term, reject=True))
    assert c.role == FOLLOWER


def test_single_voter_cluster_elects_itself_and_commits_alone():
    c = RaftCore(RaftConfig(id="solo", seed=1), Membership(voters={"solo": ""}))
    while c.role != LEADER:
        c.tick()
    idx, _term = c.propose({"op": "put", "key": "k", "value": 1})
    c.read_index("r")
    rd = c.ready()
    assert c.commit == idx and rd.committed[-1].index == idx
    assert [rs.context for rs in rd.read_states] == ["r"]


def test_compaction_beyond_the_applied_index_is_refused():
    c = RaftCore(RaftConfig(id="solo", seed=1), Membership(voters={"solo": ""}))
    while c.role != LEADER:
        c.tick()
    c.propose({"op": "put"})
    with pytest.raises(ValueError, match="applied"):
        c.compact(2, {})
    c.ready()
    c.compact(2, {"data": {}})
    assert c.snap_index == 2 and c.log == [] and c.ready().snapshot.index == 2


def _figure_8(unsafe: frozenset[str]) -> Cluster:
    """Replay the paper's Figure 8 on five nodes; returns the cluster (may raise Violation)."""
    from tester.sim.invariants import Invariants

    inv = Invariants()
    cl = Cluster(["s1", "s2", "s3", "s4", "s5"], seed=1, unsafe=unsafe)
    cl.hooks.on_apply, cl.hooks.on_ready = inv.on_apply, inv.on_ready

    quiet: set[str] = set()  # leaders whose appends are lost
    cl.admit = lambda m: not (m.src in quiet and m.type == MSG_APPEND)

    def campaign(n: str, voters: set[str]) -> None:
        cl.blocked = {(a, b) for a in cl.ids for b in cl.ids
                      if a != b and {a, b} - (voters | {n})}
        for node in cl.nodes.values():
            node.core.since_leader = 100  # no leader heard from lately: votes are granted
        cl.nodes[n].core._campaign(pre=False)
        cl.deliver_all()

    campaign("s1", {"s2", "s3", "s4", "s5"})
    assert cl.leaders() == ["s1"]
    # (a) s1 replicates X at index i to s2 only, then crashes
    campaign_free = {("s1", p) for p in ("s3", "s4", "s5")}
    cl.blocked = campaign_free
    cl.write("s1", {"op": "put", "key": "k", "value": "X"})
    cl.deliver_all()
    i = cl.nodes["s1"].core.last_index()
    cl.crash("s1")
    # (b) s5 wins with s3 and s4, appends Y at index i alone (its appends are lost), crashes
    quiet.add("s5")
    campaign("s5", {"s3", "s4"})
    assert cl.leaders() == ["s5"]
    cl.blocked = {(a, b) for a in cl.ids for b in cl.ids if a != b}
    cl.write("s5", {"op": "put", "key": "k", "value": "Y"})
    cl.deliver_all()
    cl.crash("s5")
    # (c) s1 restarts, wins with s2 and s3, replicates to s3 -- X is on a majority
    cl.start("s1")
    campaign("s1", {"s2", "s3"})
    if not cl.leaders():
        campaign("s1", {"s2", "s3"})  # the first try ran into s5's term
    assert cl.leaders() == ["s1"]
    cl.tick("s1", 3)
    cl.deliver_all()
    assert cl.nodes["s3"].core.term_at(i) == cl.nodes["s2"].core.term_at(i)
    # (d) s1 crashes; s5 restarts and campaigns with s2, s3 and s4
    cl.crash("s1")
    cl.start("s5")
    quiet.clear()
    campaign("s5", {"s2", "s3", "s4"})
    if not cl.leaders():
        campaign("s5", {"s2", "s3", "s4"})
    cl.tick_all(3)
    return cl


def test_figure_8_entry_replicated_by_a_later_leader_is_never_overwritten():
    cl = _figure_8(frozenset())
    assert "s5" not in cl.leaders()  # s2 and s3 hold the no-op of s1's later term
    assert cl.nodes["s2"].sm.data == cl.nodes["s3"].sm.data == {"k": "X"}


def test_figure_8_unsafe_commit_old_terms_lets_a_committed_entry_be_overwritten():
    from tester.sim.invariants import Violation

    with pytest.raises(Violation, match="state-machine-safety|leader-completeness"):
        _figure_8(frozenset({"commit-old-terms"}))


def test_granting_a_vote_restarts_the_election_timer():
    c = core("a")
    for _ in range(9):
        c.tick()  # just short of the earliest possible timeout
    c.step(Message(MSG_VOTE, "b", "a", 1, log_term=0, index=0))
    assert c.vote == "b"
    for _ in range(9):
        c.tick()
    assert c.role == FOLLOWER and c.election_elapsed == 9  # 18 ticks since boot, 9 since


def test_leader_steps_down_when_a_response_carries_a_higher_term():
    c = core("a")
    elect(c)
    c.step(Message(MSG_APPEND_RESP, "b", "a", c.term + 3, index=0, reject=True))
    assert c.role == FOLLOWER and c.term == 4 and c.leader is None
