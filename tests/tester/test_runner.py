"""The runner on the in-process fake: passes a correct store, fails a broken one, and always
heals, tears down and saves the history -- also after Ctrl-C or an internal error."""

from __future__ import annotations

import _thread
import json
import threading
import time

import pytest

from checker.history import read_jsonl
from tester.memdb import FakeFleet, MemDB
from tester.runner import RunConfig, Runner

FAULTS = ["partition", "kill", "pause", "clock", "loss", "member", "delay"]


def config(tmp_path, **kw) -> RunConfig:
    base = dict(name="mem", db="memdb", nemesis=FAULTS, nemesis_interval=0.2, time_limit=1.5,
                concurrency=6, rate=1000, keys=4, ops_per_key=60, seed=11,
                store=str(tmp_path / "store"), quiet=0.05, op_timeout=0.05, final_time=2.0)
    base.update(kw)
    return RunConfig(**base)


def run(tmp_path, mode: str = "correct", db: MemDB | None = None, **kw):
    fleet = db.fleet if db is not None else FakeFleet(5)
    db = db or MemDB(fleet, mode=mode, seed=kw.pop("db_seed", 1))
    return Runner(config(tmp_path, **kw), db, fleet.nodes, fleet.remotes).run(), db, fleet


def assert_healed(db: MemDB, fleet: FakeFleet) -> None:
    assert not db.killed and not db.paused and not db.removed
    assert not any(fleet.cut_off(nd.name) for nd in fleet.nodes)
    for r in fleet.remotes.values():
        assert any("iptables -w -X raftlab-part" in c for c in r.commands)
        assert any("iptables -w -X raftlab-loss" in c for c in r.commands)


def test_a_correct_store_under_every_fault_is_valid(tmp_path):
    out, db, fleet = run(tmp_path, "correct", nemesis_interval=0.1)
    assert out.valid is True, out.results["checker"]
    st = out.results["stats"]
    assert st["ok"] > 100 and st["nemesis"] >= 5
    assert out.results["per_key"] and all(v is True for v in out.results["per_key"].values())
    assert_healed(db, fleet)
    assert {a for a, _ in db.events} >= {"setup", "teardown", "kill", "start", "pause", "resume"}


def test_a_store_with_stale_reads_is_invalid_with_the_counterexample(tmp_path):
    out, _, _ = run(tmp_path, "stale-reads", nemesis=[])
    assert out.valid is False
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["valid"] is False
    bad = [p for p in saved["checker"]["partitions"] if p["valid"] is False]
    assert bad and bad[0]["violation"]["op"] is not None
    assert saved["per_key"][str(bad[0]["key"])] is False


def test_a_store_that_loses_writes_is_invalid(tmp_path):
    out, _, _ = run(tmp_path, "lost-writes", nemesis=[])
    assert out.valid is False


def test_the_run_folder_has_config_seed_history_results_logs_and_latest(tmp_path):
    out, _, fleet = run(tmp_path, "correct", nemesis=["partition"])
    d = out.run_dir
    test = json.loads((d / "test.json").read_text())
    assert test["seed"] == 11 and test["start_time"] > 0 and len(test["nodes"]) == 5
    assert (d.parent / "latest").resolve() == d.resolve()
    ops = read_jsonl(d / "history.jsonl")
    assert any(op.process == "nemesis" and op.f == "start-partition" for op in ops)
    assert any(op.extra.get("final") for op in ops)  # the final reads
    assert ops[-1].time >= ops[0].time
    log = (d / "raftlab.log").read_text()
    for step in ("db-setup", "workload", "final-heal", "final-reads", "db-teardown", "check"):
        assert f"step {step}: done in" in log
    assert sorted(p.name for p in (d / "nodes").iterdir()) == [n.name for n in fleet.nodes]
    res = json.loads((d / "results.json").read_text())
    assert set(res) >= {"valid", "checker", "stats", "perf"}
    assert res["perf"]["latency_ms"]["read"]["0.5"] >= 0
    assert res["stats"]["availability"]["during_faults"] is not None


def test_setup_is_retried_and_the_run_goes_on(tmp_path):
    fleet = FakeFleet(3)
    db = MemDB(fleet, fail_setup=2)
    out, _, _ = run(tmp_path, db=db, nemesis=[])
    assert out.valid is True
    assert "setup attempt 1/3 failed" in (out.run_dir / "raftlab.log").read_text()


def test_setup_failing_everywhere_is_an_error_but_still_cleans_up(tmp_path):
    fleet = FakeFleet(3)
    db = MemDB(fleet, fail_setup=100)
    out, _, _ = run(tmp_path, db=db)
    assert out.valid == "unknown" and "setup failed" in out.results["errors"][0]
    assert ("teardown", "n1") in db.events


def test_an_internal_error_heals_every_fault_and_saves_the_partial_history(tmp_path, monkeypatch):
    import tester.runner as runner_mod
    from tester import workloads as wl

    real = wl.make

    def exploding(*a):
        w = real(*a)
        inner, calls = w.generator.fn, [0]

        def op(ctx):
            calls[0] += 1
            if calls[0] == 300:
                raise RuntimeError("boom: a bug in the generator")
            return inner(ctx)

        w.generator.fn = op
        return w

    monkeypatch.setattr(runner_mod.wl, "make", exploding)
    fleet = FakeFleet(5)
    db = MemDB(fleet)
    out, _, _ = run(tmp_path, db=db, time_limit=10, nemesis_interval=0.05,
                    nemesis_opts={"targets": ["majority"]})
    assert out.valid == "unknown" and out.results["partial"]
    assert "boom" in out.results["errors"][0]
    assert_healed(db, fleet)
    assert db.events[-1][0] == "teardown"
    ops = read_jsonl(out.run_dir / "history.jsonl")
    assert len(ops) > 100 and ops[-1].f == "heal-all"


def test_ctrl_c_heals_every_fault_tears_down_and_saves_the_history(tmp_path):
    fleet = FakeFleet(5)
    db = MemDB(fleet)
    timer = threading.Timer(0.8, _thread.interrupt_main)
    timer.start()
    try:
        out, _, _ = run(tmp_path, db=db, time_limit=30, nemesis_interval=0.1)
    finally:
        timer.cancel()
    assert out.results["interrupted"] and out.valid == "unknown"
    assert out.results["stats"]["ok"] > 0
    assert_healed(db, fleet)
    assert ("teardown", "n5") in db.events
    assert json.loads((out.run_dir / "results.json").read_text())["interrupted"] is True


class SecondCtrlCDB(MemDB):
    """The user presses Ctrl-C again while the database is being torn down."""

    def teardown(self, remote, node):
        if node.name == "n1" and self.running:
            _thread.interrupt_main()
            time.sleep(0.5)
        super().teardown(remote, node)


def test_a_second_ctrl_c_skips_the_rest_of_the_cleanup(tmp_path):
    fleet = FakeFleet(3)
    db = SecondCtrlCDB(fleet)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        try:
            run(tmp_path, db=db, time_limit=30, nemesis=[])
        finally:
            timer.cancel()
    latest = tmp_path / "store" / "mem" / "latest"
    saved = json.loads((latest / "results.json").read_text())
    assert saved["partial"] is True and saved["interrupted"] is True
    assert "second interrupt" in (latest / "raftlab.log").read_text()
