"""The hunting schedule and swarm testing: reproducible per seed and recorded, faults that
overlap, partitions that flap faster than a second, loops that end by themselves, everything
healed at the end and on Ctrl-C, and unsupported families dropped once, before the test."""

from __future__ import annotations

import _thread
import json
import random
import threading

from checker.history import read_jsonl
from tester import generator as g
from tester import nemesis as nem
from tester.memdb import FakeFleet, MemDB
from tester.runner import RunConfig, Runner, fault_windows


def env(n: int = 5, seed: int = 1) -> tuple[nem.Env, MemDB, FakeFleet]:
    fleet = FakeFleet(n)
    db = MemDB(fleet)
    return nem.Env(db, fleet.nodes, fleet.remotes, random.Random(seed)), db, fleet


def hunt_run(tmp_path, seed: int = 5, nemesis: list[str] | None = None, **kw):
    fleet = FakeFleet(5)
    db = MemDB(fleet, latency=0.001)
    cfg = RunConfig(name="hunt", db="memdb", nemesis=nemesis or list(nem.PACKAGES),
                    time_limit=kw.pop("time_limit", 1.5), concurrency=5, rate=300, keys=3,
                    seed=seed, store=str(tmp_path / "store"), quiet=0.05, op_timeout=0.05,
                    final_time=2.0, **kw)
    runner = Runner(cfg, db, fleet.nodes, fleet.remotes)
    lines: list[str] = []
    runner.announce = lines.append
    return runner, runner.run(), db, fleet, lines


def assert_healed(db: MemDB, fleet: FakeFleet) -> None:
    assert not db.killed and not db.paused and not db.removed
    assert not any(fleet.cut_off(nd.name) for nd in fleet.nodes)
    for r in fleet.remotes.values():
        for chain in ("raftlab-part", "raftlab-flap", "raftlab-loss"):
            assert any(f"iptables -w -X {chain}" in c for c in r.commands), chain
        assert r.files and all(v == "+0.000" for v in r.files.values())  # clocks reset


def simulate_hunt(plan: dict, until: float, latency: float = 0.03):
    gen = g.TimeLimit(until, nem.schedule.hunt(plan, lambda n: True))
    threads = [nem.thread_of(n) for n in plan]
    return g.simulate(gen, threads, seed=3, latency=lambda rng, op: latency,
                      max_time=until + 100)


def windows(ops: list, latency: float = 0.03) -> dict[str, list[tuple[float, float]]]:
    """family -> [(start completed, stop completed)] from simulated requests."""
    out: dict[str, list[tuple[float, float]]] = {}
    opened: dict[str, float] = {}
    for t, _, req in ops:
        action, name = req["f"].split("-", 1)
        if action == "start":
            opened[name] = t + latency
        elif name in opened:
            out.setdefault(name, []).append((opened.pop(name), t + latency))
    return out


# --------------------------------------------------------------------------- swarm


def test_the_swarm_choice_is_a_function_of_the_seed_alone():
    names = list(nem.PACKAGES)
    plans = {s: nem.plan_for(s, names, {}) for s in range(40)}
    assert all(nem.plan_for(s, names, {}) == plans[s] for s in range(40))  # same seed, same plan
    chosen = {tuple(p) for p in plans.values()}
    assert len(chosen) > 10  # different seeds stress different things
    assert all(len(p) >= 2 for p in plans.values())
    assert all(set(p) < set(names) for p in plans.values() if len(p) < len(names))


def test_a_named_list_enables_every_named_family_and_only_draws_parameters():
    for s in range(20):
        plan = nem.plan_for(s, ["partition", "clock"], {})
        assert list(plan) == ["partition", "clock"]
    kinds = {tuple(nem.plan_for(s, ["partition"], {})["partition"]["opts"]["partitions"])
             for s in range(20)}
    assert len(kinds) > 5


def test_swarm_false_enables_every_family_of_all():
    assert list(nem.plan_for(7, list(nem.PACKAGES), {"swarm": False})) == list(nem.PACKAGES)


def test_the_run_records_its_swarm_in_test_json_and_results_json_and_announces_it(tmp_path):
    runner, out, _, _, lines = hunt_run(tmp_path, seed=8)
    test = json.loads((out.run_dir / "test.json").read_text())
    res = json.loads((out.run_dir / "results.json").read_text())
    assert test["nemesis_schedule"] == "hunt" and res["nemesis"]["schedule"] == "hunt"
    assert test["nemesis_swarm"] == res["nemesis"]["swarm"] == runner.nemesis.plan
    assert sorted(test["nemesis_swarm"]) == res["nemesis"]["families"]
    # the same seed on a host with the same support draws the same plan
    supported = [n for n in nem.PACKAGES if n not in ("delay", "disk")]  # the fake db: no data_dir
    assert test["nemesis_swarm"] == json.loads(json.dumps(
        nem.plan_for(8, supported, {}, list(nem.PACKAGES))))
    (line,) = lines
    assert line.startswith("hunt: ") and all(f"{n}(" in line for n in test["nemesis_swarm"])


# --------------------------------------------------------------------------- the loops


def test_fault_families_overlap_in_time():
    plan = nem.plan_for(1, ["partition", "kill", "clock", "loss"], {})
    ws = windows(simulate_hunt(plan, 60.0))
    assert len(ws) == 4
    edges = sorted((t, +1 if i == 0 else -1) for iv in ws.values() for w in iv
                   for i, t in enumerate(w))
    depth = peak = 0
    for _, d in edges:
        depth += d
        peak = max(peak, depth)
    assert peak >= 3  # three families' faults in force at once


def test_a_real_run_has_overlapping_faults(tmp_path):
    _, out, db, fleet, _ = hunt_run(tmp_path, seed=2, time_limit=6.0,
                                    nemesis=["partition", "flap", "kill", "clock"])
    ops = read_jsonl(out.run_dir / "history.jsonl")
    ws = fault_windows(ops, ops[-1].time)
    assert any(a[2] != b[2] and a[0] < b[1] and b[0] < a[1] for a in ws for b in ws)
    assert out.valid is True
    assert_healed(db, fleet)


def test_a_flapping_partition_switches_faster_than_a_second():
    plan = nem.plan_for(4, ["flap"], {})
    ops = simulate_hunt(plan, 30.0)
    times = [t for t, _, _ in ops]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(ops) > 30
    assert sorted(gaps)[len(gaps) // 2] < 1.0  # most flips come within a second
    assert max(b - a for a, b in windows(ops)["flap"]) < 1.0  # a flap never holds a second


def test_every_loop_is_bounded_even_without_a_time_limit():
    plan = {"flap": {"opts": {}, "hold_s": [0.0, 0.001], "gap_s": [0.0, 0.001]},
            "kill": {"opts": {}, "hold_s": [0.0, 0.001], "gap_s": [0.0, 0.001]}}
    gen = nem.schedule.hunt(plan, lambda n: True)
    ops = g.simulate(gen, [nem.thread_of(n) for n in plan], latency=lambda r, op: 0.001,
                     max_ops=10 * nem.schedule.MAX_ACTIONS)
    per = {n: sum(1 for _, t, _ in ops if t == nem.thread_of(n)) for n in plan}
    assert per == {n: nem.schedule.MAX_ACTIONS for n in plan}  # each stopped by itself


def test_the_time_limit_ends_every_loop():
    plan = nem.plan_for(3, list(nem.PACKAGES), {"swarm": False})
    ops = simulate_hunt(plan, 20.0)
    assert ops and max(t for t, _, _ in ops) < 20.0
    assert {thread for _, thread, _ in ops} == {nem.thread_of(n) for n in plan}


def test_at_the_time_limit_each_loop_stops_the_fault_it_has_in_force():
    plan = nem.plan_for(3, ["partition", "kill", "member", "clock"], {"swarm": False})
    plan = {n: dict(fam, hold_s=[50.0, 60.0]) for n, fam in plan.items()}  # held past the end
    gen = nem.schedule.hunt(plan, lambda n: True, limit=10.0)
    ops = g.simulate(gen, [nem.thread_of(n) for n in plan], latency=lambda r, op: 0.01)
    last = {}
    for t, _, req in ops:
        last[req["f"].split("-", 1)[1]] = (t, req["f"])
    assert all(f.startswith("stop-") and 10.0 <= t < 10.1 for t, f in last.values()), last


def test_client_workers_never_get_nemesis_requests():
    assert g.is_nemesis("nemesis") and g.is_nemesis("nemesis:flap")
    assert not g.is_nemesis(0) and not g.is_nemesis(7)


# --------------------------------------------------------------------------- heal and support


def test_every_fault_is_healed_at_the_end(tmp_path):
    _, out, db, fleet, _ = hunt_run(tmp_path, seed=3, nemesis=[
        "partition", "flap", "kill", "pause", "clock", "loss", "member"], time_limit=3.0)
    assert out.valid is True and out.results["stats"]["nemesis"] > 10
    assert_healed(db, fleet)
    ops = read_jsonl(out.run_dir / "history.jsonl")
    assert ops[-1].f == "heal-all" or any(op.f == "heal-all" for op in ops)


def test_ctrl_c_during_a_hunt_heals_every_fault(tmp_path):
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    try:
        _, out, db, fleet, _ = hunt_run(tmp_path, seed=4, time_limit=30, nemesis=[
            "partition", "flap", "kill", "pause", "clock", "loss", "member"])
    finally:
        timer.cancel()
    assert out.results["interrupted"] and out.valid == "unknown"
    assert_healed(db, fleet)
    ops = read_jsonl(out.run_dir / "history.jsonl")
    heal = max(i for i, op in enumerate(ops) if op.f == "heal-all")
    assert not [op for op in ops[heal + 1:] if op.process == "nemesis"]  # nothing after it


def test_an_unsupported_family_is_probed_once_and_never_picked(tmp_path, caplog):
    caplog.set_level("WARNING", logger="raftlab")
    _, out, _, fleet, lines = hunt_run(tmp_path, seed=6, nemesis=["partition", "delay"])
    assert out.results["nemesis"]["unsupported"]["delay"].startswith("netem delay unsupported")
    assert out.results["nemesis"]["families"] == ["partition"]
    ops = read_jsonl(out.run_dir / "history.jsonl")
    assert not [op for op in ops if op.f.endswith("-delay")]
    tc = [c for r in fleet.remotes.values() for c in r.commands if "netem" in c]
    assert len(tc) == 1  # one probe on one node
    assert len([r for r in caplog.records if "delay left out" in r.getMessage()]) == 1
    assert lines == ["hunt: " + nem.describe(out.results["nemesis"]["swarm"])
                     + "; delay unsupported"]


def test_a_family_found_unsupported_mid_run_is_not_picked_again():
    e, _, _ = env(3)
    n = nem.Nemesis.build(e, ["clock", "loss"], {"schedule": "hunt"}, seed=1)
    n.prepare()

    def unsupported(env):
        raise nem.Unsupported("this clock cannot be set here")

    n.faults["clock"].start = unsupported
    gen = n.generator(None)
    seen: list[str] = []

    def latency(rng, op):
        seen.append(op["f"])
        n.invoke(op)
        return 0.01

    g.simulate(g.TimeLimit(60, gen), n.threads, latency=latency)
    assert seen.count("start-clock") == 1 and "clock" in n.unsupported
    assert seen.count("start-loss") > 3  # the other families go on


def test_a_node_held_by_a_kill_is_never_removed_from_the_cluster():
    e, db, _ = env(5)
    n = nem.Nemesis.build(e, ["kill", "member"], {"targets": ["majority"]})
    for _ in range(20):
        n.invoke({"f": "start-kill"})
        _, value, _ = n.invoke({"f": "start-member"})
        assert not (db.removed & db.killed)
        n.invoke({"f": "stop-member"})
        n.invoke({"f": "stop-kill"})
    assert not db.removed and not db.killed


def test_leader_minority_cuts_the_leader_off_with_one_follower():
    e, db, _ = env(5)
    drops = nem.grudge(e, "leader-minority")
    leader = db.leader(e.nodes)
    side = {leader} | {x for x in drops if x != leader and leader not in drops[x]}
    assert len(side) == 2 and set(drops[leader]) == {nd.name for nd in e.nodes} - side


# --------------------------------------------------------------------------- isolated targets


def test_the_minority_of_a_cut_is_who_reaches_fewer_than_a_majority():
    from tester.nemesis.base import minority

    e, _, _ = env(5)
    names = [nd.name for nd in e.nodes]
    for kind, size in (("one", 1), ("leader", 1), ("leader-minority", 2), ("halves", 2),
                       ("ring", 0), ("bridge", 0)):
        cut = minority(names, nem.grudge(e, kind))
        assert len(cut) == size, kind
    assert minority(names, {}) == []


def test_a_partition_records_the_side_it_isolates_until_it_stops():
    e, db, _ = env(5)
    part = nem.Partition({"partitions": ["leader-minority"]})
    leader = db.leader(e.nodes)
    part.start(e)
    cut = e.isolation.names()
    assert leader in cut and len(cut) == 2
    assert {nd.name for nd in nem.pick_targets(e, "isolated")} == set(cut)
    assert e.fork("clock").isolation.names() == cut  # every family's loop sees it
    part.stop(e)
    assert e.isolation.names() == []
    # nothing cut off: the leader, the node most likely to be left behind
    assert [nd.name for nd in nem.pick_targets(e, "isolated")] == [leader]


def test_a_clock_fault_aimed_at_the_isolated_side_hits_the_cut_off_leader():
    e, db, _ = env(5)
    nem.Partition({"partitions": ["leader"]}).start(e)
    res = nem.Clock({"targets": ["isolated"], "clock_kinds": ["rate"],
                     "clock_rates": [0.25]}).start(e)
    assert res["target"] == "isolated" and res["rates"] == {db.leader(e.nodes): 0.25}
