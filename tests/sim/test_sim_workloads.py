"""``raftlab sim --workload append|set``: clean on the safe build, and what they catch.

A list shows what a register hides: a retried append applied twice (``no-sessions``) is a
duplicated element, a stale read misses an acknowledged element by name. A set does not
care about duplicates, so ``no-sessions`` is the one switch it cannot see.
"""

from __future__ import annotations

import json

import pytest

from checker.formats import load
from checker.linearizability import check
from checker.models import load_model
from checker.set import check_set
from raftnode.types import UNSAFE_SWITCHES
from tester.cli import main as raftlab
from tester.sim.scan import scan
from tester.sim.simulator import run_seed

SEEDS_TO_CATCH = 2000
WORKLOADS = ("append", "set")


@pytest.mark.parametrize("workload", WORKLOADS)
def test_safe_build_is_clean_over_three_hundred_seeds(workload):
    bad = [(s, p) for s, p, _ in scan(range(300), jobs=2, workload=workload) if p is not None]
    assert bad == []


@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_key_is_read_once_more_from_the_converged_cluster(workload):
    r = run_seed(4, workload=workload)
    final = [o for o in r.history if o.extra.get("final") and o.type == "ok"]
    assert [o.key for o in final] == ["k0", "k1", "k2"]
    assert all(isinstance(o.value, list) and o.value for o in final)
    fs = {o.f for o in r.history if o.process != "nemesis"}
    assert fs == {"read", "append" if workload == "append" else "add"}


# what each switch breaks first with lists and sets (Raft's invariants see lost durability
# and forgotten votes before any client does)
EXPECTED = {
    "local-reads": {"linearizability", "set"},
    "lease-no-drift": {"linearizability", "set"},
    "commit-old-terms": {"linearizability", "set", "leader-completeness",
                         "state-machine-safety"},
    "no-sessions": {"linearizability"},
    "volatile-vote": {"election-safety"},
    "ack-before-sync": {"acknowledged-write-lost", "leader-completeness"},
}


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("switch", UNSAFE_SWITCHES)
def test_every_unsafe_switch_is_caught(switch, workload):
    if (switch, workload) == ("no-sessions", "set"):
        pytest.skip("a set does not see an add applied twice")
    runs = scan(range(SEEDS_TO_CATCH), unsafe=frozenset({switch}), jobs=2, workload=workload)
    caught = next(((s, p) for s, p, _ops in runs if p is not None), None)
    runs.close()
    assert caught is not None, f"{switch} not caught in {SEEDS_TO_CATCH} seeds of {workload}"
    seed, prop = caught
    assert prop in EXPECTED[switch]
    r = run_seed(seed, unsafe=frozenset({switch}), workload=workload)
    assert r.violation is not None and r.violation.prop == prop


def test_a_retried_append_applied_twice_is_named_duplicated():
    unsafe = frozenset({"no-sessions"})
    seed = next(s for s, p, _ in scan(range(200), unsafe=unsafe, workload="append") if p)
    v = run_seed(seed, unsafe=unsafe, workload="append").violation
    assert v is not None and "duplicated" in v.message and "applied twice" in v.message


def test_cli_stores_a_set_violation_with_the_elements_by_name(tmp_path, capsys):
    code = raftlab(["sim", "--seeds", "20", "--unsafe", "local-reads", "--workload", "set",
                    "--quiet", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and "VIOLATION at seed" in out and "--workload set" in out
    assert "raftlab check --model set" in out
    (test_dir,) = [d for d in tmp_path.iterdir() if d.name != "latest"]
    run = test_dir / "latest"
    results = json.loads((run / "results.json").read_text())
    test = json.loads((run / "test.json").read_text())
    assert test["model"] == "set" and json.loads((run / "plan.json").read_text())[
        "workload"] == "set"
    found = results["checker"]["set"]
    assert results["valid"] is False and found["stale"]["count"] + found["lost"]["count"] > 0
    assert check_set(load(run / "history.jsonl").ops).valid is False
    assert "Set anomalies" in (run / "report.html").read_text()


def test_cli_append_violation_replays_with_the_list_append_model(tmp_path, capsys):
    code = raftlab(["sim", "--seeds", "20", "--unsafe", "local-reads", "--workload",
                    "append", "--quiet", "--no-shrink", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and "raftlab check --model list-append" in out
    (test_dir,) = [d for d in tmp_path.iterdir() if d.name != "latest"]
    history = load(test_dir / "latest" / "history.jsonl")
    assert check(history, load_model("list-append")).valid is False


def test_cli_refuses_a_workload_the_simulator_does_not_run(capsys):
    assert raftlab(["sim", "--workload", "kv", "--seeds", "1"]) == 254
    assert "registers, append, set" in capsys.readouterr().err
    assert raftlab(["sim", "--workload", "list-append", "--seeds", "2", "--quiet"]) == 0
