"""The deterministic simulator: replay, the safe build clean, every unsafe switch caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from checker.formats import load
from checker.linearizability import check
from checker.models import load_model
from raftnode.types import UNSAFE_SWITCHES, Entry, Membership, Ready, SoftState
from tester.cli import main as raftlab
from tester.sim.invariants import Invariants, Violation
from tester.sim.scan import scan
from tester.sim.shrink import shrink
from tester.sim.simulator import (
    SETTLE_MS,
    Fault,
    Plan,
    Simulation,
    make_plan,
    run_plan,
    run_seed,
)

SEEDS_TO_CATCH = 2000  # the bound issue 4 sets for every unsafe switch


def test_same_seed_replays_a_byte_identical_trace_and_history():
    a, b = run_seed(7), run_seed(7)
    assert a.trace_text() == b.trace_text()
    assert [o.to_json() for o in a.history] == [o.to_json() for o in b.history]
    assert run_seed(8).trace_text() != a.trace_text()


_REPLAY = """
import sys
from tester.sim.simulator import Fault, Plan, run_plan
plan = Plan(seed=3, ops=60, faults=(Fault(300.0, "kill-all", 5000.0),))
sys.stdout.write(run_plan(plan, check_history=False).trace_text())
"""


def test_a_replay_in_another_process_gives_the_same_trace():
    # Every node is still down when the clients finish, so the settle phase restarts them
    # all at once; string hashing (and set order) differs between processes, restart order
    # must not. A failing seed found by a scan is replayed later by a fresh process.
    root = Path(__file__).resolve().parents[2]
    traces = set()
    for hash_seed in ("1", "2", "3", "4"):
        r = subprocess.run([sys.executable, "-c", _REPLAY], capture_output=True, text=True,
                           cwd=root, env={**os.environ, "PYTHONHASHSEED": hash_seed},
                           check=True)
        traces.add(r.stdout)
    assert len(traces) == 1 and "restarted" in traces.pop()


def test_a_seed_really_injects_faults_and_records_ok_fail_and_info():
    kinds, types = set(), set()
    for seed in range(40):
        r = run_seed(seed, check_history=False)
        kinds |= {o.f for o in r.history if o.process == "nemesis"}
        types |= {o.type for o in r.history}
    assert {"kill", "pause", "clock-rate", "partition-halves", "member-add"} <= kinds
    assert {"invoke", "ok", "fail", "info"} <= types


def test_after_an_info_the_worker_continues_as_a_new_process():
    for seed in range(20):
        h = run_seed(seed, check_history=False).history
        infos = [o for o in h if o.type == "info" and o.process != "nemesis"]
        if infos:
            later = [o.process for o in h if o.process != "nemesis" and o.index > infos[0].index]
            assert infos[0].process not in later
            return
    pytest.fail("no info op in 20 seeds")


def test_settling_stops_once_the_restarted_cluster_has_converged():
    # Every node is down when the clients finish: the settle phase restarts them, they must
    # elect a leader and all hold and apply its log before the run stops -- well before the
    # 500 ms upper bound, which would be idle time.
    plan = Plan(seed=3, ops=60, faults=(Fault(300.0, "kill-all", 5000.0),))
    sim = Simulation(plan, check_history=False)
    result = sim.run()
    assert result.violation is None
    settle = next(float(line.split()[0]) for line in result.trace if "settle: heal" in line)
    assert result.trace[-1].endswith("settle: converged")
    assert settle < sim.now < settle + SETTLE_MS
    nodes = [sim.cluster.nodes[n] for n in sim.ids]
    leaders = [n for n in nodes if n.core.role == "leader"]
    assert len(leaders) == 1
    assert {n.applied for n in nodes} == {leaders[0].core.commit}


@pytest.mark.slow
def test_safe_build_is_clean_over_five_thousand_seeds_of_three_nodes():
    # ~25 s compiled (raftlab compile), ~60 s interpreted
    bad = [(s, p) for s, p, _ in scan(range(5000), nodes=3, jobs=2) if p is not None]
    assert bad == []


@pytest.mark.slow
def test_safe_build_is_clean_over_a_thousand_seeds_of_five_nodes():
    bad = [(s, p) for s, p, _ in scan(range(1000), nodes=5, jobs=2) if p is not None]
    assert bad == []


@pytest.mark.slow
def test_lease_reads_are_clean_while_clocks_stay_inside_the_documented_drift_bound():
    bad = [(s, p) for s, p, _ in scan(range(1000), lease=True, jobs=2) if p is not None]
    assert bad == []


# What each switch breaks first: a stale or doubled effect shows in the client history; lost
# durability and forgotten votes break Raft's own invariants before any client notices.
EXPECTED = {
    "local-reads": {"linearizability"},
    "lease-no-drift": {"linearizability"},
    "commit-old-terms": {"linearizability", "leader-completeness", "state-machine-safety"},
    "no-sessions": {"linearizability"},
    "volatile-vote": {"election-safety"},
    # unsynced entries and votes are lost: an acknowledged entry vanishes, a vote is cast twice,
    # or a follower no longer holds what its leader counted
    "ack-before-sync": {"acknowledged-write-lost", "leader-completeness", "election-safety",
                        "replication-progress"},
}


@pytest.mark.parametrize("switch", UNSAFE_SWITCHES)
def test_every_unsafe_switch_is_caught_within_the_seed_bound(switch):
    runs = scan(range(SEEDS_TO_CATCH), unsafe=frozenset({switch}), jobs=2)
    caught = next(((s, p) for s, p, _ops in runs if p is not None), None)
    runs.close()  # stop the worker processes
    assert caught is not None, f"{switch} not caught in {SEEDS_TO_CATCH} seeds"
    seed, prop = caught
    assert prop in EXPECTED[switch]
    r = run_seed(seed, unsafe=frozenset({switch}))  # the replay fails the same way
    assert r.violation is not None and r.violation.prop == prop


def test_shrinking_keeps_the_violation_with_fewer_faults_and_ops():
    unsafe = frozenset({"volatile-vote"})
    seed = next(s for s, p, _ in scan(range(500), unsafe=unsafe) if p is not None)
    plan = make_plan(seed, unsafe=unsafe)
    first = run_plan(plan)
    assert first.violation is not None
    small, result, runs = shrink(plan, first.violation.prop)
    assert result.violation is not None and result.violation.prop == first.violation.prop
    assert len(small.faults) < len(plan.faults) and small.ops < plan.ops
    assert run_plan(small).trace_text() == result.trace_text()


def test_cli_exits_0_on_clean_seeds_and_254_on_bad_arguments(capsys):
    assert raftlab(["sim", "--seeds", "3", "--quiet"]) == 0
    assert "3 seeds clean" in capsys.readouterr().out
    assert raftlab(["sim", "--seeds", "2", "--steps", "1", "--quiet"]) == 0  # idle workers
    assert raftlab(["sim", "--unsafe", "nope"]) == 254
    assert "nope" in capsys.readouterr().err
    assert raftlab(["sim", "--nodes", "2"]) == 254
    assert raftlab(["sim", "--seeds", "0"]) == 254


def test_cli_exits_1_and_writes_a_history_the_checker_finds_invalid(tmp_path, capsys):
    code = raftlab(["sim", "--seeds", "50", "--unsafe", "local-reads", "--quiet",
                    "--workload", "registers", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and "VIOLATION at seed" in out and "linearizability" in out
    (test_dir,) = [d for d in tmp_path.iterdir() if d.name != "latest"]
    seed_dir = test_dir / "latest"  # a run folder like the tester's
    assert (tmp_path / "latest").resolve() == seed_dir.resolve()  # the store's newest run
    plan = json.loads((seed_dir / "plan.json").read_text())
    results = json.loads((seed_dir / "results.json").read_text())
    assert results["valid"] is False and results["checker"]["valid"] is False
    assert any(p.name == "raftnode.log" for p in (seed_dir / "nodes").rglob("*"))
    assert plan["unsafe"] == ["local-reads"]
    history = load(seed_dir / "history.jsonl")
    assert check(history, load_model("cas-register")).valid is False
    assert (seed_dir / "trace.txt").read_text().strip().endswith(
        "VIOLATION linearizability: key " + out.split("shrunk: key ")[1].split(":")[0]
        + ": the history is not linearizable")


# ---------------------------------------------------------------- the invariants themselves


def _node(nid, term=1, log=(), applied=0):
    core = SimpleNamespace(snap_index=0, id=nid, term=term,
                           term_at=lambda i: log[i - 1] if 0 < i <= len(log) else
                           (0 if i == 0 else None),
                           last_index=lambda: len(log))
    return SimpleNamespace(id=nid, core=core, applied=applied)


def _leader_ready(term):
    return Ready(soft_state=SoftState("leader", term, "x"))


def test_invariants_flag_two_leaders_in_one_term():
    inv = Invariants()
    inv.on_ready(_node("a"), _leader_ready(3))
    with pytest.raises(Violation, match="election-safety"):
        inv.on_ready(_node("b"), _leader_ready(3))


def test_invariants_flag_different_entries_applied_at_one_index():
    inv = Invariants()
    inv.on_apply(_node("a", applied=4), Entry(1, 5, "normal", {"op": "put"}))
    inv.on_apply(_node("b", applied=4), Entry(1, 5, "normal", {"op": "put"}))
    with pytest.raises(Violation, match="state-machine-safety"):
        inv.on_apply(_node("c", applied=4), Entry(2, 5, "normal", {"op": "put"}))


def test_invariants_flag_a_node_that_skips_an_index_when_applying():
    inv = Invariants()
    inv.on_apply(_node("a", applied=3), Entry(1, 4, "normal", None))
    with pytest.raises(Violation, match="apply-order.*skipped entry 5"):
        inv.on_apply(_node("a", applied=4), Entry(1, 6, "normal", None))


def test_invariants_do_not_expect_a_late_leader_of_an_older_term_to_hold_newer_commits():
    # n2's votes for term 4 arrived late: it leads term 4 after term 5 committed entry 2
    inv = Invariants()
    inv.on_apply(_node("n3", term=5, applied=1), Entry(5, 2, "normal", None))
    inv.on_ready(_node("n2", term=4, log=(1, 3)), _leader_ready(4))  # no violation
    with pytest.raises(Violation, match="leader-completeness"):
        inv.on_ready(_node("n1", term=6, log=(1, 3)), _leader_ready(6))


def test_invariants_flag_a_leader_counting_an_entry_its_follower_lacks():
    lead = _node("a", term=3, log=(1, 3, 3))
    lead.core.role = "leader"
    lead.core.prs = {"b": SimpleNamespace(match=3)}
    follower = _node("b", term=3, log=(1, 2, 2))
    follower.core.role = "follower"
    with pytest.raises(Violation, match="replication-progress.*counts b as holding entry 3"):
        Invariants().check_logs([lead.core, follower.core])


def test_invariants_flag_a_leader_missing_a_committed_entry():
    inv = Invariants()
    inv.on_apply(_node("a", applied=1), Entry(2, 2, "normal", None))
    with pytest.raises(Violation, match="leader-completeness"):
        inv.on_ready(_node("b", log=(1, 1)), _leader_ready(3))


def test_invariants_flag_a_lost_acknowledged_write():
    inv = Invariants()
    inv.on_ack(_node("a"), 2, 2)
    with pytest.raises(Violation, match="acknowledged-write-lost"):
        inv.on_ready(_node("b", log=(1,)), _leader_ready(3))


def test_invariants_flag_logs_that_agree_on_an_entry_but_not_before_it():
    from raftnode.core import RaftConfig, RaftCore

    def core(nid, entries):
        return RaftCore(RaftConfig(id=nid), Membership(voters={"a": ""}), None, None, entries)

    a = core("a", [Entry(1, 1, "normal", "x"), Entry(2, 2, "normal", "y")])
    b = core("b", [Entry(1, 1, "normal", "DIFFERENT"), Entry(2, 2, "normal", "y")])
    with pytest.raises(Violation, match="log-matching"):
        Invariants().check_logs([a, b])
    Invariants().check_logs([a, core("c", [Entry(1, 1, "normal", "x")])])  # a prefix is fine


def test_long_runs_reach_deep_catch_up_snapshot_installs_and_torn_tail_recovery():
    # the swarm (batch sizes, snapshot intervals, lag-follower) and the crash-prone disk
    # make these happen in ordinary seeds, through raftnode's real storage
    seen = dict.fromkeys(("deep", "installs", "restores", "torn"), 0)
    for seed in range(60):
        r = run_seed(seed, check_history=False)
        assert not r.failed, (seed, r.violation)
        seen["deep"] += r.stats["max_lag"] > r.plan.max_batch
        for k in ("installs", "restores", "torn"):
            seen[k] += r.stats[k] > 0
    assert all(seen.values()), seen


def test_the_default_workload_is_drawn_per_seed_and_replays_as_drawn():
    from tester.sim.simulator import plan_for

    drawn = [plan_for(s, workload="mixed").workload for s in range(30)]
    assert set(drawn) == {"registers", "append", "set"}
    assert drawn == [plan_for(s, workload="mixed").workload for s in range(30)]
    assert plan_for(7, workload=drawn[7]) == plan_for(7, workload="mixed")
