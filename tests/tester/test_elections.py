"""Election safety from node logs: two leaders in one term make the run invalid."""

from __future__ import annotations

import json

from tester import elections


def write_log(d, node, events):
    (d / node).mkdir(parents=True)
    lines = [json.dumps({"ts": 1.0, "node": node, "event": "role", **e}) for e in events]
    (d / node / "node.log").write_text("\n".join(lines + ["not json", ""]) + "\n")


def test_one_leader_per_term_is_valid(tmp_path):
    write_log(tmp_path, "n1", [{"role": "leader", "term": 1}, {"role": "follower", "term": 2}])
    write_log(tmp_path, "n2", [{"role": "candidate", "term": 2}, {"role": "leader", "term": 2}])
    assert elections.check(tmp_path) == {"valid": True, "terms": 2, "violations": []}


def test_two_leaders_in_one_term_are_a_violation(tmp_path):
    write_log(tmp_path, "n1", [{"role": "leader", "term": 1}])
    write_log(tmp_path, "n3", [{"role": "leader", "term": 1}, {"role": "leader", "term": 2}])
    res = elections.check(tmp_path)
    assert res["valid"] is False
    assert res["violations"] == [{"term": 1, "leaders": ["n1", "n3"], "at": 1.0}]


def test_logs_without_role_events_give_no_verdict(tmp_path):
    (tmp_path / "n1").mkdir()
    (tmp_path / "n1" / "etcd.log").write_text("2026-11-26 etcd started\n")
    assert elections.check(tmp_path) is None
