"""Nemesis: partition shapes, targets, unsupported faults, and a heal that undoes everything."""

from __future__ import annotations

import random

import pytest

from tester import nemesis as nem
from tester.memdb import FakeFleet, MemDB


def env(n: int = 5, seed: int = 1) -> tuple[nem.Env, MemDB, FakeFleet]:
    fleet = FakeFleet(n)
    db = MemDB(fleet)
    return nem.Env(db, fleet.nodes, fleet.remotes, random.Random(seed)), db, fleet


def sees(drops: dict, nodes: list[str]) -> dict[str, set[str]]:
    return {x: set(nodes) - set(drops.get(x, [])) for x in nodes}


@pytest.mark.parametrize("n", [3, 5, 7])
def test_majorities_ring_gives_every_node_a_different_majority(n):
    e, _, _ = env(n)
    names = [nd.name for nd in e.nodes]
    view = sees(nem.grudge(e, "ring"), names)
    assert all(len(v) == n // 2 + 1 and x in v for x, v in view.items())
    assert len({frozenset(v) for v in view.values()}) == n


def test_halves_split_the_cluster_into_two_sides():
    e, _, _ = env(5)
    names = [nd.name for nd in e.nodes]
    view = sees(nem.grudge(e, "halves"), names)
    sides = {frozenset(v) for v in view.values()}
    assert len(sides) == 2 and sorted(len(s) for s in sides) == [2, 3]


def test_bridge_node_sees_both_halves():
    e, _, _ = env(5)
    names = [nd.name for nd in e.nodes]
    view = sees(nem.grudge(e, "bridge"), names)
    assert sum(len(v) == 5 for v in view.values()) == 1


def test_leader_isolation_cuts_off_the_leader():
    e, db, _ = env(5)
    drops = nem.grudge(e, "leader")
    assert set(drops[db.leader(e.nodes)]) == {nd.name for nd in e.nodes} - {"n1"}


@pytest.mark.parametrize("spec,count", [("one", 1), ("minority", 2), ("majority", 3), ("all", 5)])
def test_targets_have_the_right_size(spec, count):
    e, _, _ = env(5)
    assert len(nem.pick_targets(e, spec)) == count


def test_partition_drops_on_destination_nodes_and_heals_everywhere():
    e, _, fleet = env(5)
    n = nem.Nemesis.build(e, ["partition"])
    _, value, err = n.invoke({"f": "start-partition"})
    assert err is None
    for dest, srcs in value["drops"].items():
        cmds = " ".join(fleet.remotes[dest].commands)
        ips = {nd.name: nd.host for nd in fleet.nodes}
        assert all(f"-s {ips[s]} -j DROP" in cmds for s in srcs)
    n.heal_all()
    assert not any(fleet.cut_off(nd.name) for nd in fleet.nodes)
    for r in fleet.remotes.values():
        assert any("-X raftlab-part" in c for c in r.commands)


def test_delay_without_netem_is_reported_unsupported_once():
    e, _, _ = env(3)
    n = nem.Nemesis.build(e, ["delay"])
    typ, value, err = n.invoke({"f": "start-delay"})
    assert err == "unsupported" and "unsupported on this host" in value["unsupported"]
    _, value2, err2 = n.invoke({"f": "start-delay"})
    assert err2 == "unsupported"


def test_clock_bump_writes_offsets_and_reset_zeroes_them():
    e, db, fleet = env(3)
    n = nem.Nemesis.build(e, ["clock"], {"clock_kinds": ["bump"], "targets": ["all"]})
    _, value, _ = n.invoke({"f": "start-clock"})
    for nd in fleet.nodes:
        text = fleet.remotes[nd.name].files[db.clock_file(nd)]
        assert text[0] in "+-" and abs(float(text) * 1000 - value["offsets_ms"][nd.name]) < 1
    n.invoke({"f": "stop-clock"})
    assert {fleet.remotes[nd.name].files[db.clock_file(nd)] for nd in fleet.nodes} == {"+0.000"}


def test_clock_offsets_range_from_milliseconds_to_minutes():
    rng = random.Random(0)
    xs = [abs(nem.clock_offset(rng, 300_000)) for _ in range(2000)]
    assert min(xs) < 10 and max(xs) > 60_000 and max(xs) <= 300_000


def test_heal_all_restarts_killed_resumes_paused_and_re_adds_members():
    e, db, _ = env(5)
    n = nem.Nemesis.build(e, ["kill", "pause", "member"], {"targets": ["majority"]})
    for f in ("start-kill", "start-pause", "start-member"):
        n.invoke({"f": f})
    assert db.killed and db.paused and db.removed
    res = n.heal_all()
    assert res["errors"] is None
    assert not db.killed and not db.paused and not db.removed


def test_unknown_fault_names_the_choices():
    with pytest.raises(ValueError, match="partition, flap, clock"):
        nem.parse("partition,flood")
    assert nem.parse("all") == list(nem.PACKAGES) and nem.parse("none") == []


def test_together_schedule_starts_all_faults_then_stops_them_all():
    from tester import generator as g

    e, _, _ = env(5)
    n = nem.Nemesis.build(e, ["clock", "partition"], {"schedule": "together"})
    ops = g.simulate(g.TimeLimit(9.0, n.generator(2.0)), [g.NEMESIS_THREAD])
    assert [op["f"] for _, _, op in ops] == [
        "start-clock", "start-partition", "stop-partition", "stop-clock",
        "start-clock", "start-partition", "stop-partition", "stop-clock"]


def test_system_clock_mode_stops_ntp_sets_the_clock_and_resets_it():
    e, _, fleet = env(3)
    n = nem.Nemesis.build(e, ["clock"], {"system_clock": True, "clock_kinds": ["bump"],
                                         "targets": ["one"], "clock_offsets_ms": [5000]})
    _, value, err = n.invoke({"f": "start-clock"})
    (node,) = value["offsets_ms"]
    cmds = fleet.remotes[node].commands
    assert "systemctl stop $s" in cmds[-1] and "chrony" in cmds[-1] and "date -u -s @" in cmds[-1]
    n.invoke({"f": "stop-clock"})
    assert all("systemctl start" in r.commands[-1] for r in fleet.remotes.values())


def test_heal_all_retries_a_heal_that_failed_once():
    e, db, _ = env(3)
    n = nem.Nemesis.build(e, ["pause"], {"targets": ["all"]})
    n.invoke({"f": "start-pause"})
    real_resume, calls = db.resume, []

    def flaky_resume(remote, node):  # the first attempt on n1 hits a transient SSH error
        calls.append(node.name)
        if calls.count("n1") == 1 and node.name == "n1":
            raise RuntimeError("n1: SSH connection is closed")
        real_resume(remote, node)

    db.resume = flaky_resume
    res = n.heal_all()
    assert res["errors"] is None and not db.paused
    assert calls.count("n1") == 2


class _TimedOutRemoval(MemDB):
    """A removal that times out; ``commits`` says whether it took effect all the same."""

    commits = True

    def remove_member(self, remotes, nodes, node):  # type: ignore[no-untyped-def]
        if self.commits:
            super().remove_member(remotes, nodes, node)
        raise TimeoutError(f"remove-member {node.name}: no member accepted it in 30 s")

    def node_status(self, node, timeout):  # type: ignore[no-untyped-def]
        st = super().node_status(node, timeout)
        if st is not None:
            st["members"] = [n.name for n in self.fleet.nodes if n.name not in self.removed]
        return st


@pytest.mark.parametrize("commits", [True, False])
def test_a_removal_that_timed_out_is_added_back_at_the_heal_only_if_it_committed(commits):
    fleet = FakeFleet(5)
    db = _TimedOutRemoval(fleet)
    db.commits = commits
    e = nem.Env(db, fleet.nodes, fleet.remotes, random.Random(3))
    fault = nem.member.Member({})
    with pytest.raises(TimeoutError):
        fault.start(e)
    assert fault.heal(e) == []
    added = [n for action, n in db.events if action == "add-member"]
    if commits:  # removed after all: back in the cluster, every node a member again
        assert added and not db.removed
    else:  # still a voter with its log: never wiped by an addition
        assert added == []


class _StaleAddition(_TimedOutRemoval):
    """A removal that works, and an addition answered ok by a member that still listed the
    node (a stale view of the configuration): nothing changed."""

    def remove_member(self, remotes, nodes, node):  # type: ignore[no-untyped-def]
        MemDB.remove_member(self, remotes, nodes, node)

    def add_member(self, remotes, nodes, node):  # type: ignore[no-untyped-def]
        self._event("add-member", node)
        if sum(1 for action, n in self.events if action == "add-member" and n == node.name) > 1:
            self.removed.discard(node.name)  # only a later attempt takes effect


def test_an_addition_answered_ok_but_not_made_is_made_at_the_heal():
    fleet = FakeFleet(5)
    db = _StaleAddition(fleet)
    e = nem.Env(db, fleet.nodes, fleet.remotes, random.Random(3))
    fault = nem.member.Member({})
    gone = fault.start(e)["removed"]
    assert fault.stop(e)["added"] == [gone] and db.removed == {gone}  # "ok", yet not a member
    assert fault.heal(e) == []
    assert not db.removed  # the heal asked the leader and added it back
    assert [n for action, n in db.events if action == "add-member"] == [gone, gone]
