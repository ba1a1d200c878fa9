"""What a Jepsen user reaches for: run folders named like Jepsen's, a store-level ``latest``,
``history.edn``/``results.edn``, ``raftlab analyze`` and ``raftlab heal`` (on the fake fleet;
tests/fleet/test_heal_e2e.py heals a real one)."""

from __future__ import annotations

import json
import random
import re
import time

from checker import formats
from checker.edn import loads_all
from checker.history import read_jsonl
from tester import heal
from tester import nemesis as nem
from tester.cli import main
from tester.memdb import FakeFleet, MemDB
from tester.report import find_runs, summarize
from tester.runner import RunConfig, Runner
from tester.store import RunStore
from tester.test_cli import default_name


def run(tmp_path, mode="correct", name="mem", **kw):
    cfg = RunConfig(**{**dict(name=name, db="memdb", nemesis=["partition"], nemesis_interval=0.2,
                              time_limit=0.8, concurrency=4, rate=1000, keys=2, ops_per_key=60,
                              seed=3, store=str(tmp_path / "store"), quiet=0.05, op_timeout=0.05,
                              final_time=1.0), **kw})
    fleet = FakeFleet(3)
    return Runner(cfg, MemDB(fleet, mode=mode, seed=1), fleet.nodes, fleet.remotes).run()


def test_run_folders_are_named_like_jepsens_and_the_store_has_its_own_latest(tmp_path):
    a = RunStore(tmp_path, "one", started=1_795_000_000.1023)
    b = RunStore(tmp_path, "two", started=1_795_000_001.5)
    assert a.path.name == time.strftime("%Y%m%dT%H%M%S.102Z", time.gmtime(1_795_000_000))
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z", b.path.name)
    assert (tmp_path / "one" / "latest").resolve() == a.path.resolve()
    assert (tmp_path / "two" / "latest").resolve() == b.path.resolve()
    assert (tmp_path / "latest").resolve() == b.path.resolve()  # the newest of any test
    again = RunStore(tmp_path, "one", started=1_795_000_000.1023)  # same millisecond
    assert again.path != a.path and again.path.name.startswith(a.path.name)


def test_runs_named_the_older_way_are_still_found_and_summarized(tmp_path):
    old = tmp_path / "raftnode-registers" / "20261130T154337"
    old.mkdir(parents=True)
    (old / "test.json").write_text(json.dumps({"name": "raftnode-registers", "seed": 4}))
    (old / "results.json").write_text(json.dumps({"valid": True}))
    new = RunStore(tmp_path, "raftnode-registers", started=1_797_000_000.0).path
    (new / "test.json").write_text(json.dumps({"name": "raftnode-registers", "seed": 5}))
    runs = find_runs(tmp_path)
    assert runs == [new, old]  # newest first; neither ``latest`` link is listed
    assert summarize(old).seed == "4" and summarize(old).verdict is True


def test_the_test_name_says_which_unsafe_switches_the_run_used():
    assert default_name("raftnode", "registers", []) == "raftnode-registers"
    assert default_name("raftnode", "registers", ["local-reads"]) == (
        "raftnode-registers-unsafe-local-reads")
    assert default_name("my.pkg:MyDB", "set", ["b", "a", "b"]) == "mydb-set-unsafe-a-unsafe-b"


def test_history_edn_holds_the_same_ops_as_the_jsonl_and_results_edn_the_verdict(tmp_path):
    out = run(tmp_path, "stale-reads", nemesis=[])
    d = out.run_dir
    ops = read_jsonl(d / "history.jsonl")
    lines = (d / "history.edn").read_text().splitlines()
    assert len(lines) == len(ops)
    first = lines[0]
    assert first.startswith("{:index 0, :time ") and ":type :invoke" in first
    assert re.search(r":process \d+, :f :\w+, :value \[\S+ \S+\], :node \"n\d\"}$", first)
    edn = formats.split_independent(formats.load(d / "history.edn"))
    assert [(o.index, o.time, o.type, o.process, o.f, o.key, o.value, o.error, o.node)
            for o in edn.ops] == [
        (o.index, o.time, o.type, o.process, o.f, o.key, o.value, o.error, o.node) for o in ops]
    text = (d / "results.edn").read_text()
    assert text.startswith("{:valid? false, ")
    (_, results), = loads_all(text)
    assert results["valid?"] is False and results["stats"]["ops"] == out.results["stats"]["ops"]


def test_nemesis_ops_in_history_edn_are_keywords(tmp_path):
    out = run(tmp_path)
    text = (out.run_dir / "history.edn").read_text()
    assert re.search(r":process :nemesis, :f :start-partition", text)


def test_analyze_rechecks_a_run_and_rewrites_its_results_and_report(tmp_path, capsys):
    out = run(tmp_path, "stale-reads", nemesis=[])
    d = out.run_dir
    for name in ("results.json", "results.edn", "report.html", "history.edn"):
        (d / name).unlink()
    assert main(["analyze", str(d)]) == 1  # the same verdict, the same exit code
    res = json.loads((d / "results.json").read_text())
    assert res["valid"] is False and res["analyzed"]["previous_valid"] is None
    assert res["errors"] == ["results.json was missing: the run did not finish"]
    assert (d / "report.html").exists() and (d / "results.edn").exists()
    assert (d / "history.edn").exists()
    assert "verdict: INVALID" in capsys.readouterr().out


def test_analyze_of_a_store_checks_its_latest_run_and_keeps_what_only_the_run_knew(tmp_path):
    out = run(tmp_path)
    before = json.loads((out.run_dir / "results.json").read_text())
    assert main(["analyze", str(tmp_path / "store")]) == 0
    after = json.loads((out.run_dir / "results.json").read_text())
    assert after["timings"] == before["timings"] and after["nemesis"] == before["nemesis"]
    assert after["stats"] == before["stats"] and after["analyzed"]["previous_valid"] is True


def test_analyze_of_something_that_is_not_a_run_is_bad_input(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 254
    assert "not a run folder" in capsys.readouterr().err
    d = tmp_path / "r"
    d.mkdir()
    (d / "history.jsonl").write_text('{"type": "ok"}\n')
    assert main(["analyze", str(d)]) == 254
    err = capsys.readouterr().err
    assert "r/history.jsonl:1: missing field" in err and "Traceback" not in err


def test_heal_undoes_what_a_killed_run_left_behind(tmp_path):
    fleet = FakeFleet(3)
    db = MemDB(fleet, seed=1)
    env = nem.Env(db, fleet.nodes, fleet.remotes, random.Random(2))
    left = nem.Nemesis.build(env, ["partition", "pause", "clock", "loss"],
                             {"targets": ["all"], "partitions": ["halves"]})
    for family in left.faults.values():  # the run dies with every fault in force
        assert not (family.start(env).get("errors"))
    assert any(fleet.cut_off(n.name) for n in fleet.nodes) and db.paused
    res = heal.heal(db, fleet.nodes, fleet.remotes)  # a new process: it knows nothing
    assert res["errors"] is None
    assert not any(fleet.cut_off(n.name) for n in fleet.nodes) and not db.paused
    clocks = [r.files[db.clock_file(r.node)] for r in fleet.remotes.values()]
    assert clocks and all(re.fullmatch(r"[+-]?0(\.0+)?(ms|s)?", c.strip()) for c in clocks), clocks
