"""Raft's safety properties on node events (tester/nodeevents.py): synthetic logs for each kind
of violation, and clean logs with restarts, snapshots and a wiped rejoin that must not alarm."""

from __future__ import annotations

import json

from raftnode.nodeevents import digest
from tester import nodeevents
from tester.memdb import FakeFleet, MemDB
from tester.nodeevents.html import section
from tester.runner import Runner
from tester.test_cli import print_summary
from tests.tester.test_runner import config

NODES = ("n1", "n2", "n3")


def put(key, value):
    return {"op": "put", "key": key, "value": value}


def rec(index, term, command, result=None):
    """An applied entry as raftnode logs it (a no-op when command is None)."""
    kind, data = ("noop", None) if command is None else ("normal", command)
    res = result if result is not None else (None if command is None else
                                             {"status": "ok", "value": command["value"],
                                              "error": None})
    return [index, term, digest([kind, data]), digest(res), kind if command is None else command]


class Log:
    """Events of one node, in order, with the helpers a scenario needs."""

    def __init__(self, node):
        self.node, self.events, self.t = node, [], 100.0

    def ev(self, event, **fields):
        self.t += 0.01
        self.events.append({"ts": self.t, "node": self.node, "event": event, **fields})
        return self

    def start(self, last_index=0, snapshot_index=0, fresh=None, term=0):
        return self.ev("started", term=term, last_index=last_index, snapshot_index=snapshot_index,
                       snapshot_term=0, commit=0,
                       fresh=fresh if fresh is not None else last_index == 0)

    def applied(self, term, *entries, commit=None):
        commit = commit if commit is not None else entries[-1][0]
        return self.ev("applied", term=term, commit=commit, entries=list(entries))

    def won(self, term, last_index, last_term, votes=None):
        self.vote(term, self.node)
        self.ev("election", kind="won", term=term, last_index=last_index, last_term=last_term,
                **({"votes": sorted(votes), "voters": list(NODES)} if votes else {}))
        return self.ev("role", role="leader", term=term, leader=self.node)

    def vote(self, term, candidate):
        return self.ev("vote", term=term, **{"for": candidate})

    def commit(self, index, term, acks, entry_term=None):
        return self.ev("commit", index=index, term=term, entry_term=entry_term or term,
                       acks=sorted(acks), voters=list(NODES))


LOG_T1 = [rec(1, 1, None), rec(2, 1, put("x", 1)), rec(3, 1, put("y", 2))]
LOG_T2 = [rec(4, 2, None), rec(5, 2, put("x", 3))]


def clean_cluster():
    """n1 leads term 1; n2 leads term 2; n3 restarts, then installs a snapshot; all agree."""
    n1, n2, n3 = (Log(n).start() for n in NODES)
    n2.vote(1, "n1")
    n1.won(1, 0, 0, votes=["n1", "n2"]).commit(3, 1, ["n1", "n2"]).applied(1, *LOG_T1)
    n2.applied(1, *LOG_T1[:2]).applied(1, LOG_T1[2])
    n3.applied(1, *LOG_T1)
    n3.vote(2, "n2")
    n2.won(2, 3, 1, votes=["n2", "n3"]).commit(5, 2, ["n1", "n2", "n3"]).applied(2, *LOG_T2)
    n1.ev("role", role="follower", term=2, leader="n2").applied(2, *LOG_T2)
    # n3 restarts from its snapshot at 2 (its commit starts lower again) and re-applies 3
    n3.start(last_index=3, snapshot_index=2, term=1).applied(1, LOG_T1[2], commit=3)
    # ... then falls behind and gets the leader's snapshot at 4
    n3.ev("snapshot", index=4, term=2, kind="installed").applied(2, LOG_T2[1])
    return {"n1": n1.events, "n2": n2.events, "n3": n3.events}


def test_a_clean_cluster_with_restarts_and_snapshots_satisfies_every_property():
    res = nodeevents.check_events(clean_cluster())
    assert res["valid"] is True, res["violations"]
    assert res["properties"] == dict.fromkeys(nodeevents.PROPERTIES, 0)
    assert res["terms"] == 2 and res["incarnations"] == 4 and res["indexes"] == 5


def test_two_leaders_in_one_term_violate_election_safety():
    logs = clean_cluster()
    logs["n3"] += Log("n3").won(2, 5, 2, votes=["n1", "n3"]).events
    logs["n1"] += Log("n1").vote(2, "n3").events
    res = nodeevents.check_events(logs)
    assert res["valid"] is False and res["properties"]["election-safety"] == 1
    v = res["violations"][0]
    assert v["term"] == 2 and v["leaders"] == ["n2", "n3"]
    assert nodeevents.elections(res)["violations"] == [{"term": 2, "leaders": ["n2", "n3"],
                                                         "at": v["at"]}]


def test_following_a_node_that_did_not_lead_the_term_violates_follower_leader():
    logs = clean_cluster()
    # n3 is in term 2 (led by n2) but takes n1, the leader of term 1, for its leader
    logs["n3"] += Log("n3").ev("role", role="follower", term=2, leader="n1").events
    res = nodeevents.check_events(logs)
    assert res["properties"]["follower-leader"] == 1, res["violations"]
    assert "it led term 1" in res["violations"][0]["message"]
    # a leader whose node log is missing proves nothing either way
    logs["n3"] += Log("n3").ev("role", role="follower", term=2, leader="n9").events
    assert nodeevents.check_events(logs)["properties"]["follower-leader"] == 1


def test_a_second_vote_in_one_term_violates_vote_once_also_across_a_restart():
    n1 = Log("n1").start().vote(3, "n2").start(last_index=0, term=0, fresh=False).vote(3, "n3")
    res = nodeevents.check_events({"n1": n1.events})
    assert res["properties"]["vote-once"] == 1
    assert res["violations"][0]["candidates"] == ["n2", "n3"]
    candidate = Log("n1").start().vote(3, "n1").vote(3, "n2")
    assert nodeevents.check_events({"n1": candidate.events})["properties"]["vote-once"] == 1
    wiped = Log("n1").start().vote(3, "n2").start(fresh=True).vote(3, "n3")
    assert nodeevents.check_events({"n1": wiped.events})["valid"] is True


def test_winning_without_a_majority_or_with_votes_never_cast_violates_election_quorum():
    short = Log("n1").start().won(1, 0, 0, votes=["n1"])
    res = nodeevents.check_events({"n1": short.events})
    assert res["properties"]["election-quorum"] == 1 and "1 of 3" in res["violations"][0]["message"]
    n2 = Log("n2").start().vote(1, "n3")  # n2 logs its votes, and voted for n3
    counted = Log("n1").start().won(1, 0, 0, votes=["n1", "n2"])
    res = nodeevents.check_events({"n1": counted.events, "n2": n2.events})
    assert res["properties"]["election-quorum"] == 1
    assert res["violations"][0]["unbacked"] == ["n2"]


def test_committing_without_a_majority_or_an_old_term_entry_violates_the_commit_rule():
    n1 = Log("n1").start().won(2, 3, 1).commit(4, 2, ["n1"]).commit(3, 2, ["n1", "n2"],
                                                                   entry_term=1)
    res = nodeevents.check_events({"n1": n1.events})
    assert res["properties"]["commit-rule"] == 2
    minority, old_term = [v for v in res["violations"] if v["property"] == "commit-rule"]
    assert minority["acks"] == ["n1"] and "not a majority" in minority["message"]
    assert old_term["entry_term"] == 1 and "Figure" not in old_term["message"]
    assert res["properties"]["commit-monotonic"] == 1  # and it went from 4 back to 3


def test_answering_ok_for_a_proposal_replaced_by_another_entry_violates_the_ack_rule():
    replaced = rec(4, 2, put("x", 3)) + [1]  # n1 proposed at 4 in term 1; term 2's entry won
    n1 = Log("n1").start().applied(1, *LOG_T1).applied(2, replaced)
    res = nodeevents.check_events({"n1": n1.events})
    assert res["properties"]["ack-rule"] == 1
    assert res["violations"][0]["proposal_term"] == 1 and res["violations"][0]["term"] == 2
    own = rec(4, 2, put("x", 3)) + [2]
    ok = Log("n1").start().applied(1, *LOG_T1).applied(2, own)
    assert nodeevents.check_events({"n1": ok.events})["valid"] is True


def test_different_entries_at_one_index_violate_state_machine_safety_naming_both():
    logs = clean_cluster()
    logs["n3"] += Log("n3").applied(2, rec(6, 2, put("z", 7))).events
    logs["n1"] += Log("n1").applied(3, rec(6, 3, put("z", 8))).events
    res = nodeevents.check_events(logs)
    assert res["properties"]["state-machine-safety"] == 1, res["violations"]
    v = res["violations"][0]
    assert v["index"] == 6 and v["nodes"] == ["n1", "n3"]
    assert sorted((e["term"], e["command"]["value"]) for e in v["entries"]) == [(2, 7), (3, 8)]
    assert "index 6" in v["message"] and '"z"' in v["message"]


def test_one_entry_with_different_results_shows_diverged_state_machines():
    logs = clean_cluster()
    cas = {"op": "cas", "key": "x", "expected": 3, "value": 4}
    logs["n1"] += Log("n1").applied(2, rec(6, 2, cas)).events
    mismatch = {"status": "fail", "value": 1, "error": "cas-mismatch"}
    logs["n2"] += Log("n2").applied(2, rec(6, 2, cas, result=mismatch)).events
    res = nodeevents.check_events(logs)
    assert res["properties"]["state-machine-safety"] == 1
    assert "different results" in res["violations"][0]["message"]


def test_a_node_that_disagrees_with_its_own_earlier_process_is_named_by_restart():
    lost = {"status": "fail", "value": None, "error": "cas-mismatch"}
    cas = {"op": "cas", "key": "x", "expected": 1, "value": 5}
    n1 = Log("n1").start().applied(1, *LOG_T1, rec(4, 1, cas)).start(last_index=4, term=1)
    n1.ev("snapshot", index=3, term=1, kind="restored").applied(1, rec(4, 1, cas, result=lost))
    res = nodeevents.check_events({"n1": n1.events})
    rows = res["violations"][0]["entries"]
    assert sorted(r["nodes"] for r in rows) == [["n1"], ["n1 after restart 1"]]


def test_a_commit_index_going_back_within_one_process_is_a_violation():
    n1 = Log("n1").start().applied(1, *LOG_T1).ev("commit", index=2)
    res = nodeevents.check_events({"n1": n1.events})
    assert res["properties"]["commit-monotonic"] == 1
    assert res["violations"][0]["previous"] == 3 and res["violations"][0]["index"] == 2


def test_a_gap_in_applied_indexes_is_a_violation_but_a_snapshot_install_is_not():
    gap = Log("n1").start().applied(1, *LOG_T1[:2]).applied(2, LOG_T2[1])
    res = nodeevents.check_events({"n1": gap.events})
    assert res["properties"]["applied-contiguous"] == 1
    assert res["violations"][0]["expected"] == 3 and res["violations"][0]["index"] == 5
    ok = Log("n1").start().applied(1, *LOG_T1[:2]).ev("snapshot", index=4, term=2,
                                                       kind="installed").applied(2, LOG_T2[1])
    assert nodeevents.check_events({"n1": ok.events})["valid"] is True


def test_a_restart_that_recovers_less_than_it_applied_violates_durability():
    n1 = Log("n1").start().applied(1, *LOG_T1).start(last_index=2, snapshot_index=0, term=1)
    res = nodeevents.check_events({"n1": n1.events})
    assert res["properties"]["durability"] == 1
    assert "applied up to index 3" in res["violations"][0]["message"]
    wiped = Log("n1").start().applied(1, *LOG_T1).start(fresh=True)
    assert nodeevents.check_events({"n1": wiped.events})["valid"] is True


def test_a_later_leader_without_a_committed_entry_violates_leader_completeness():
    logs = clean_cluster()
    # n1 applied index 5 while in term 2; n3 wins term 3 with a log ending at 4
    logs["n3"] += Log("n3").won(3, 4, 2).events
    res = nodeevents.check_events(logs)
    assert res["properties"]["leader-completeness"] == 1, res["violations"]
    v = res["violations"][0]
    assert v["leader"] == "n3" and v["term"] == 3 and v["index"] == 5
    assert v["entry"]["committed_by_term"] == 2
    # a higher last term with an index reaching the entry: fine
    logs["n3"][-3:] = Log("n3").won(3, 5, 2).events
    assert nodeevents.check_events(logs)["valid"] is True


def test_a_leader_of_the_committing_term_itself_may_have_won_without_the_entry():
    n1 = Log("n1").start().won(1, 0, 0).applied(1, *LOG_T1)
    assert nodeevents.check_events({"n1": n1.events})["valid"] is True


def test_reapplying_after_a_restart_with_a_forgotten_term_proves_no_commit_term():
    # n2 applied the term-1 entries in term 3, so they were committed by term 3 only: the
    # leader of term 2 (n1) may lack them. n2's re-application after a restart that forgot its
    # term (term 0) must not count as "committed by term 1".
    n2 = Log("n2").start().applied(3, *LOG_T1).start(last_index=3, term=0).applied(0, *LOG_T1)
    n1 = Log("n1").start().won(2, 0, 0)
    assert nodeevents.check_events({"n1": n1.events, "n2": n2.events})["valid"] is True


def test_node_logs_are_read_in_order_skipping_text_and_torn_lines(tmp_path):
    for node, events in clean_cluster().items():
        (tmp_path / node).mkdir()
        lines = [json.dumps(e) for e in events]
        (tmp_path / node / "node.log").write_text("\n".join(lines) + '\n{"ts": 1, "event": "appl')
        (tmp_path / node / "stdout.log").write_text("Traceback: not an event\n")
    res = nodeevents.check(tmp_path)
    assert res["valid"] is True
    assert "Every property holds" in section(res)
    assert nodeevents.check(tmp_path / "missing") is None and section(None) == ""


def test_logs_without_node_events_give_no_verdict(tmp_path):
    (tmp_path / "n1").mkdir()
    (tmp_path / "n1" / "etcd.log").write_text('{"level":"info","msg":"starting an etcd server"}\n')
    assert nodeevents.check(tmp_path) is None
    assert nodeevents.elections(None) is None


def test_malformed_applied_entries_are_counted_not_trusted():
    n1 = Log("n1").start().applied(1, *LOG_T1).ev("applied", term=1, commit=4,
                                                   entries=[["4", 1, "d"], "x"])
    res = nodeevents.check_events({"n1": n1.events})
    assert res["valid"] is True and res["malformed"] == 2


class DivergedRemote:
    """A fake remote whose node log says the nodes applied different entries at index 2."""

    def __init__(self, inner, node):
        self.inner, self.node = inner, node

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get(self, remote, local):
        value = 1 if self.node == "n1" else 2
        log = Log(self.node).start().applied(1, rec(1, 1, None), rec(2, 1, put("k", value)))
        with open(local, "w", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(e) + "\n" for e in log.events))


def test_a_linearizable_run_with_diverged_node_logs_is_invalid_and_says_why(tmp_path, capsys):
    fleet = FakeFleet(3)
    remotes = {n: DivergedRemote(r, n) for n, r in fleet.remotes.items()}
    db = MemDB(fleet, mode="correct", seed=1)
    out = Runner(config(tmp_path, nemesis=[], time_limit=0.5), db, fleet.nodes, remotes).run()
    assert out.results["checker"]["valid"] is True
    assert out.valid is False
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["node_events"]["properties"]["state-machine-safety"] == 1
    assert saved["elections"] == {"valid": True, "terms": 0, "violations": []}
    page = (out.run_dir / "report.html").read_text()
    assert "the nodes&#x27; logs break Raft&#x27;s safety: state-machine-safety (1)" in page
    section = page[page.index('id="node-events"'):]
    assert "index 2: different entries applied" in section and "<td>n1</td>" in section
    print_summary(out)
    printed = capsys.readouterr().out
    assert "verdict: INVALID" in printed
    assert "node events violate: state-machine-safety (1)" in printed
    assert "index 2: different entries applied" in printed
