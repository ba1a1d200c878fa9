"""Liveness after heal and nothing hangs, on the in-process fake: a cluster that does not
converge after the final heal is a failed run that names the node; a converged one passes;
a client call or a fault action that never returns ends the run "unknown" with the reason,
healed, with its results and report written."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tester import bounds, liveness
from tester.memdb import FakeFleet, MemDB
from tester.nemesis import Env, Fault, Nemesis
from tester.runner import RunConfig, Runner
from tester.test_cli import print_summary


def st(node: str, role: str = "follower", term: int = 3, leader: str | None = "n1",
       applied: int = 40, **kw: Any) -> dict[str, Any]:
    return {"id": node, "role": role, "term": term, "leader": leader, "applied": applied,
            "commit": applied, **kw}


def healthy() -> dict[str, Any]:
    return {"n1": st("n1", "leader"), "n2": st("n2"), "n3": st("n3")}


def texts(found: list[dict[str, Any]]) -> str:
    return " | ".join(p["text"] for p in found)


def test_a_cluster_with_one_leader_followed_by_all_at_one_index_has_converged():
    assert liveness.problems(healthy()) == []


def test_a_follower_stuck_behind_is_named_with_its_index_term_and_leader():
    sts = healthy() | {"n3": st("n3", applied=12)}
    found = liveness.problems(sts)
    assert [p["node"] for p in found] == ["n3"]
    assert "behind: applied 12" in found[0]["text"] and "leader n1 at 40" in found[0]["text"]
    assert "term 3" in found[0]["text"]


def test_no_leader_two_leaders_and_a_silent_node_are_each_reported():
    none = {n: st(n, leader=None) for n in ("n1", "n2", "n3")}
    assert texts(liveness.problems(none)) == "no node leads"
    two = healthy() | {"n2": st("n2", "leader", term=2, leader="n2")}
    assert "2 nodes say they lead" in texts(liveness.problems(two))
    silent = healthy() | {"n2": None}
    assert liveness.problems(silent) == [{"node": "n2", "text": "n2 does not answer"}]


def test_a_leader_that_cannot_commit_its_log_and_a_diverged_tail_are_reported():
    sts = {"n1": st("n1", "leader", applied=101, last_index=130),
           "n2": st("n2", applied=101, last_index=130),
           "n3": st("n3", applied=30, last_index=30)}
    found = liveness.problems(sts)
    assert found[0] == {"node": "n1", "text": "leader n1 (term 3) has committed 101 of 130 "
                                              "entries"}
    assert {p["node"] for p in found} == {"n1", "n2", "n3"}


def test_a_node_following_another_leader_or_outside_the_configuration_is_reported():
    sts = {"n1": st("n1", "leader", members=["n1", "n2"]), "n2": st("n2", leader="n3"),
           "n3": st("n3", leader=None)}
    t = texts(liveness.problems(sts))
    assert "n2 follows n3, not n1" in t
    assert "n3 not in leader n1's configuration" in t and "follows no leader" in t


def test_a_learner_left_in_the_leaders_configuration_after_the_heal_is_not_converged():
    sts = {"n1": st("n1", "leader", members=["n1", "n2", "n3"], learners=["n3"]),
           "n2": st("n2"), "n3": st("n3")}
    t = texts(liveness.problems(sts))
    assert "n3" in t and "still a learner in leader n1's configuration" in t
    assert "n2" not in t
    sts["n1"]["learners"] = []
    assert liveness.problems(sts) == []


def test_the_verdict_is_false_unless_only_nodes_the_heal_failed_on_are_at_fault():
    stuck = {"problems": [{"node": "n3", "text": "n3 does not answer"}]}
    assert liveness.verdict(stuck) is False
    assert liveness.verdict(stuck, {"n3"}) == "unknown"
    assert liveness.verdict({"problems": [], "unread_keys": ["4"]}) is False
    assert liveness.verdict({"problems": []}) is True


class _Cluster:
    """Statuses that converge after a few polls; one node may hang."""

    def __init__(self, converge_after: int, hang: str | None = None):
        self.polls, self.converge_after, self.hang = 0, converge_after, hang
        self.release = threading.Event()

    def node_status(self, node: Any, timeout: float) -> dict[str, Any] | None:
        if node.name == self.hang:
            self.release.wait(30)
            return None
        if node.name == "n1":
            self.polls += 1
        ok = self.polls > self.converge_after
        return st(node.name, "leader" if node.name == "n1" else "follower",
                  applied=40 if ok or node.name == "n1" else 7)


def test_wait_converged_returns_when_the_cluster_converges(tmp_path):
    nodes = FakeFleet(3).nodes
    res = liveness.wait_converged(_Cluster(3), nodes, bound=5.0, every=0.01)
    assert res["converged"] is True and res["polls"] == 4 and res["after_s"] < 2
    assert res["nodes"]["n2"]["applied"] == 40


def test_a_status_query_that_hangs_is_a_node_that_does_not_answer_within_the_bound():
    nodes = FakeFleet(3).nodes
    cluster = _Cluster(0, hang="n3")
    t0 = time.monotonic()
    try:
        res = liveness.wait_converged(cluster, nodes, bound=0.5, every=0.05, ask_timeout=0.2)
    finally:
        cluster.release.set()
    assert time.monotonic() - t0 < 5
    assert res["converged"] is False
    assert res["problems"] == [{"node": "n3", "text": "n3 does not answer"}]


def test_unread_keys_are_the_keys_no_final_read_read():
    from checker.history import Op

    ops = [Op(0, 1, "invoke", 0, "write", 1, "a"), Op(1, 2, "ok", 0, "write", 1, "a"),
           Op(2, 3, "invoke", 1, "write", 1, "b"), Op(3, 4, "ok", 1, "write", 1, "b"),
           Op(4, 5, "invoke", 0, "read", None, "a", extra={"final": True}),
           Op(5, 6, "ok", 0, "read", 1, "a", extra={"final": True}),
           Op(6, 7, "invoke", 1, "read", None, "b", extra={"final": True}),
           Op(7, 8, "fail", 1, "read", None, "b", extra={"final": True})]
    assert liveness.unread_keys(ops) == ["b"]


# --------------------------------------------------------------------------- the runner


def config(tmp_path, **kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(
        name="live", db="memdb", nemesis=["partition", "kill", "pause"], nemesis_interval=0.2,
        time_limit=1.0, concurrency=4, rate=500, keys=3, ops_per_key=60, seed=5,
        store=str(tmp_path / "store"), quiet=0.05, op_timeout=0.05, final_time=2.0,
        settle_timeout=0.5, hang_timeout=0.5)
    base.update(kw)
    return RunConfig(**base)


def run(tmp_path, db: MemDB, **kw: Any):
    return Runner(config(tmp_path, **kw), db, db.fleet.nodes, db.fleet.remotes).run()


def test_a_converging_store_passes_liveness_and_says_how_fast(tmp_path, capsys):
    out = run(tmp_path, MemDB(FakeFleet(3)))
    live = out.results["liveness"]
    assert out.valid is True and live["valid"] is True and live["converged"] is True
    assert live["unread_keys"] == [] and live["after_s"] <= 0.5
    print_summary(out)
    assert "liveness: ok: converged" in capsys.readouterr().out


def test_a_follower_that_never_catches_up_fails_the_run_naming_the_node(tmp_path, capsys):
    out = run(tmp_path, MemDB(FakeFleet(3), stuck="n2"))
    assert out.valid is False
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["valid"] is False and saved["checker"]["valid"] is True
    live = saved["liveness"]
    assert live["valid"] is False and live["converged"] is False and live["bound_s"] == 0.5
    assert [p["node"] for p in live["problems"]] == ["n2"]
    assert live["nodes"]["n2"]["applied"] < live["nodes"]["n1"]["applied"]
    print_summary(out)
    text = capsys.readouterr().out
    assert "verdict: INVALID" in text and "liveness: FAILED: not converged 0.5 s" in text
    assert "n2 behind: applied" in text and "leader n1" in text
    page = (out.run_dir / "report.html").read_text()
    assert "Liveness after heal" in page and "liveness after the final heal failed" in page
    assert "n2 behind: applied" in page


def test_an_adapter_without_node_status_skips_the_liveness_check(tmp_path):
    out = run(tmp_path, MemDB(FakeFleet(3), stuck="n2", status=False))
    assert out.valid is True and out.results["liveness"] is None
    assert "step settle: done" in (out.run_dir / "raftlab.log").read_text()


@pytest.mark.parametrize("hang", ["client", "pause"])
def test_a_call_that_never_returns_ends_the_run_unknown_healed_with_results(tmp_path, hang):
    db = MemDB(FakeFleet(3), hang=hang)
    t0 = time.monotonic()
    try:
        out = run(tmp_path, db, nemesis=["pause"], nemesis_interval=0.1)
        took = time.monotonic() - t0
        paused_at_end = set(db.paused)
    finally:
        db.release()
    assert db.hung.is_set()
    assert took < 1.0 + 0.05 + 0.5 + 0.5 + 8  # time limit, op timeout, bounds, the rest
    assert out.valid == "unknown"
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["valid"] == "unknown"
    who = "worker" if hang == "client" else "nemesis"
    assert any(who in e and "stuck in" in e for e in saved["errors"]), saved["errors"]
    assert (out.run_dir / "report.html").exists()
    assert not paused_at_end and not db.killed  # every fault healed
    if hang == "pause":  # the pause outlived the heal: the run healed again at the end
        assert any("never ended" in e for e in saved["errors"])
        log = (out.run_dir / "raftlab.log").read_text()
        assert "step late-heal: done" in log


def test_a_heal_that_never_returns_is_reported_and_the_other_families_still_heal():
    fleet = FakeFleet(3)
    db = MemDB(fleet)
    release = threading.Event()

    class Stuck(Fault):
        name = "partition"

        def heal(self, env: Env) -> list[str]:
            release.wait(30)
            return []

    nem = Nemesis.build(Env(db, fleet.nodes, fleet.remotes, __import__("random").Random(0)),
                        ["pause"])
    nem.faults["partition"] = Stuck({})
    db.paused.add("n2")
    try:
        res = nem.heal_all(wait=0.1, bound=0.3)
    finally:
        release.set()
    assert "did not finish in 0.3 s" in " ".join(res["errors"]["partition"])
    assert not db.paused


def test_bounds_call_names_what_did_not_finish():
    release = threading.Event()
    with pytest.raises(bounds.Stuck, match="the thing did not finish in 0.1 s"):
        bounds.call(lambda: release.wait(10), 0.1, "the thing")
    release.set()
    assert bounds.call(lambda: 7, 1.0, "x") == 7


def test_a_liveness_failure_is_a_junit_failure_that_says_so(tmp_path):
    import xml.etree.ElementTree as ET

    import yaml

    from tester import campaign
    from tester.report import summarize

    out = run(tmp_path, MemDB(FakeFleet(3), stuck="n2"))
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump({"name": "c", "dbs": ["raftnode"], "workloads": ["registers"],
                                    "nemeses": ["partition"], "seeds": 1}))
    cell = {"db": "memdb", "workload": "registers", "nemesis": "partition", "seed": 5}
    entry = campaign.Entry(cell, summarize(out.run_dir), 1.0)
    campaign.write_junit(campaign.load(path), [entry], tmp_path / "j.xml")
    failure = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message", "").startswith(
        "liveness after the final heal FAILED: not converged 0.5 s after the heal")


def test_etcd_and_raftnode_statuses_speak_the_liveness_fields(monkeypatch):
    from tester.dbs.etcd import EtcdDB, EtcdError
    from tester.dbs.raftnode import RaftnodeDB

    node = FakeFleet(1).nodes[0]
    etcd = EtcdDB()
    answer = {"header": {"member_id": "17", "raft_term": "4"}, "leader": "9",
              "raftIndex": "120", "raftTerm": "4", "raftAppliedIndex": "118"}
    monkeypatch.setattr(etcd, "_status", lambda n, timeout: answer)
    assert etcd.node_status(node, 0.5) == {"id": "17", "role": "follower", "term": 4,
                                           "leader": "9", "applied": 118, "commit": 120}

    def refuse(n: Any, timeout: float) -> Any:
        raise EtcdError("HTTP 503")

    monkeypatch.setattr(etcd, "_status", refuse)
    assert etcd.node_status(node, 0.5) is None
    raft = RaftnodeDB()
    monkeypatch.setattr(raft, "status", lambda n, timeout: {
        "id": "n1", "role": "leader", "term": 2, "leader": "n1", "commit": 9, "applied": 9,
        "last_index": 9, "snapshot_index": 0,
        "members": {"voters": {"n1": "a", "n2": "b"}, "learners": {"n3": "c"}}})
    assert raft.node_status(node, 0.5) == {"id": "n1", "role": "leader", "term": 2,
                                           "leader": "n1", "applied": 9, "commit": 9,
                                           "last_index": 9, "members": ["n1", "n2", "n3"],
                                           "learners": ["n3"]}
