"""Generators: deterministic from the seed, bounded in count and time, composable."""

from __future__ import annotations

import random

from tester import generator as g
from tester import workloads as wl
from tester.memdb import FakeFleet, MemDB
from tester.nemesis import Env, Nemesis

THREADS = (0, 1, 2, 3, g.NEMESIS_THREAD)


def client_threads(n: int = 4) -> tuple[int, ...]:
    return tuple(range(n))


def run_suite(seed: int) -> list:
    w = wl.registers(keys=3, ops_per_key=20)
    gen = g.clients(g.TimeLimit(2.0, g.Stagger(0.01, w.generator)))
    return g.simulate(gen, client_threads(), seed=seed,
                      latency=lambda rng, op: rng.uniform(0.001, 0.02))


def test_same_seed_gives_the_same_operations():
    assert run_suite(7) == run_suite(7)


def test_different_seeds_give_different_operations():
    assert run_suite(7) != run_suite(8)


def test_limit_bounds_the_number_of_operations():
    ops = g.simulate(g.Limit(25, lambda ctx: {"f": "read"}), client_threads())
    assert len(ops) == 25


def test_time_limit_stops_an_endless_generator():
    ops = g.simulate(g.TimeLimit(1.0, lambda ctx: {"f": "read"}), client_threads(),
                     latency=lambda rng, op: 0.01)
    assert ops and max(t for t, _, _ in ops) < 1.0
    assert len(ops) < 100_000  # stopped by the limit, not by the simulator's safety bound


def test_stagger_gives_the_requested_total_rate():
    ops = g.simulate(g.TimeLimit(10.0, g.Stagger(0.01, lambda ctx: {"f": "read"})),
                     client_threads(8), latency=lambda rng, op: 0.0005)
    assert 800 <= len(ops) <= 1200  # 100 ops/s for 10 s, random spacing


def test_delay_spaces_requests_exactly():
    ops = g.simulate(g.Limit(4, g.Delay(2.0, lambda ctx: {"f": "x"})), [g.NEMESIS_THREAD])
    assert [round(t, 6) for t, _, _ in ops] == [2.0, 4.0, 6.0, 8.0]


def test_routing_sends_client_ops_to_workers_and_faults_to_the_nemesis():
    gen = g.Any(g.clients(g.Limit(20, lambda ctx: {"f": "read"})),
                g.nemesis(g.Limit(3, lambda ctx: {"f": "start-kill"})))
    ops = g.simulate(gen, THREADS)
    assert all(th == g.NEMESIS_THREAD for _, th, op in ops if op["f"] == "start-kill")
    assert all(th != g.NEMESIS_THREAD for _, th, op in ops if op["f"] == "read")
    assert sum(op["f"] == "start-kill" for _, _, op in ops) == 3


def test_flip_flop_alternates_fault_and_heal():
    gen = g.Limit(6, g.FlipFlop(lambda ctx: {"f": "start"}, lambda ctx: {"f": "stop"}))
    ops = g.simulate(gen, [g.NEMESIS_THREAD])
    assert [op["f"] for _, _, op in ops] == ["start", "stop"] * 3


def test_phases_wait_until_every_thread_is_idle():
    slow = {"f": "slow"}
    gen = g.Phases(g.Seq(slow, slow, slow), g.Limit(4, lambda ctx: {"f": "next"}))
    ops = g.simulate(gen, client_threads(3), latency=lambda rng, op: 1.0 if op["f"] == "slow" else 0.1)
    first_next = min(t for t, _, op in ops if op["f"] == "next")
    last_slow_end = max(t for t, _, op in ops if op["f"] == "slow") + 1.0
    assert first_next >= last_slow_end
    assert sum(op["f"] == "next" for _, _, op in ops) == 4


def test_each_thread_gets_its_own_copy():
    gen = g.EachThread(lambda: g.Seq({"f": "a"}, {"f": "b"}))
    ops = g.simulate(gen, client_threads(3))
    for th in client_threads(3):
        assert [op["f"] for _, t, op in ops if t == th] == ["a", "b"]


def test_sleep_delays_each_thread_once():
    gen = g.EachThread(lambda: g.Seq(g.Sleep(5.0), {"f": "a"}))
    ops = g.simulate(gen, client_threads(2))
    assert len(ops) == 2 and all(t >= 5.0 for t, _, _ in ops)


def test_until_ok_stops_after_the_first_success():
    gen = g.UntilOk(lambda ctx: {"f": "read"})
    ops = g.simulate(gen, client_threads(4))
    assert len(ops) == 1  # the simulator completes everything ok


def test_mix_drops_exhausted_generators():
    gen = g.Mix([g.Limit(3, lambda ctx: {"f": "a"}), g.Limit(5, lambda ctx: {"f": "b"})])
    ops = g.simulate(gen, client_threads(2))
    assert sorted(op["f"] for _, _, op in ops) == ["a"] * 3 + ["b"] * 5


def test_the_test_generator_is_bounded_even_with_a_fast_system():
    fleet = FakeFleet(3)
    env = Env(MemDB(fleet), fleet.nodes, fleet.remotes, random.Random(1))
    nem = Nemesis.build(env, ["partition", "kill"])
    w = wl.registers()
    gen = g.Any(g.clients(g.TimeLimit(5.0, w.generator)),
                g.nemesis(g.TimeLimit(5.0, nem.generator(1.0))))
    ops = g.simulate(gen, THREADS, latency=lambda rng, op: 0.001, max_ops=50_000)
    assert 0 < len(ops) < 50_000
    faults = [op["f"] for _, th, op in ops if th == g.NEMESIS_THREAD]
    assert len(faults) == 4  # one action per interval: at 1, 2, 3 and 4 s
