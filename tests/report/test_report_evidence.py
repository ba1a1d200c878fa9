"""The report's evidence for someone deciding what went wrong: availability over time and the
stalls in it, fails and infos by error, latency and throughput by ``f``, the node of each op."""

from __future__ import annotations

import json

from checker.history import Op, write_jsonl
from checker.visualize import pair_ops
from tester import report

S = 1_000_000_000


def history(stall: tuple[float, float] | None = None, fail_every: int = 0) -> list[Op]:
    """Two workers on n1 and n2 asking every 50 ms for 8 s; during ``stall`` (seconds) every
    request waits until the stall ends. A partition cuts n1 off from 3 s to 5 s."""
    events: list[tuple[int, dict]] = [
        (3 * S, dict(process="nemesis", type="invoke", f="start-partition")),
        (3 * S + 1, dict(process="nemesis", type="info", f="start-partition",
                         value={"drops": {"n1": ["n2", "n3"]}})),
        (5 * S, dict(process="nemesis", type="invoke", f="stop-partition")),
        (5 * S + 1, dict(process="nemesis", type="info", f="stop-partition")),
    ]
    n = 0
    for proc, node in ((0, "n1"), (1, "n2")):
        t = proc * 10_000_000
        while t < 8 * S:
            f = ("read", "write", "cas")[n % 3]
            n += 1
            done = t + 2_000_000 + (n % 5) * 1_000_000
            if stall and stall[0] * S <= t < stall[1] * S:
                done = int(stall[1] * S) + n % 7
            typ, err = "ok", None
            if f == "cas" and fail_every and n % fail_every == 0:
                typ, err = "fail", "cas-mismatch"
            value = [1, 2] if f == "cas" else (n if f == "write" else None)
            events.append((t, dict(process=proc, type="invoke", f=f, key="k1", value=value,
                                   node=node)))
            events.append((done, dict(process=proc, type=typ, f=f, key="k1",
                                      value=3 if f == "read" else value, error=err, node=node)))
            t = done + 50_000_000
    events.sort(key=lambda e: e[0])
    return [Op.from_dict({**d, "index": i, "time": t}) for i, (t, d) in enumerate(events)]


def test_a_two_second_stall_after_a_leader_is_cut_off_is_named_with_its_fault(tmp_path):
    ops = history(stall=(3.0, 5.0))
    (a, b), = report.stalls(pair_ops(ops))
    assert 3.0 <= a / S < 3.1 and 5.0 <= b / S < 5.01
    run = tmp_path / "t" / "20261130T154337.102Z"
    run.mkdir(parents=True)
    write_jsonl(ops, run / "history.jsonl")
    (run / "test.json").write_text(json.dumps({"name": "t", "concurrency": 2}))
    (run / "results.json").write_text(json.dumps({"valid": True}))
    page = report.write_report(run).read_text()
    assert "1 stall of 1 s or more" in page
    assert "s</b> without an answer, 3.0" in page and "faults in force: partition" in page


def test_steady_answers_are_no_stall_and_a_quiet_pause_of_the_clients_is_none_either():
    assert report.stalls(pair_ops(history())) == []
    calls = [c for c in pair_ops(history()) if c.done.time < 2 * S or c.invoke.time > 4 * S]
    assert report.stalls(calls) == []  # nobody asked between 2 s and 4 s


def test_cas_mismatches_are_answers_not_outages():
    calls = pair_ops(history(fail_every=3))
    rows = report.by_error(calls)
    assert rows == [{"f": "cas", "type": "fail", "error": "cas-mismatch",
                     "count": rows[0]["count"], "answer": True}] and rows[0]["count"] > 10
    assert report.stalls(calls) == []


def test_latency_and_throughput_are_given_per_f():
    calls = pair_ops(history(fail_every=3))
    rows = {r["f"]: r for r in report.by_f(calls, 8 * S)}
    assert sorted(rows) == ["cas", "read", "write"]
    assert rows["cas"]["fail"] > 0 and rows["read"]["fail"] == 0
    n = rows["read"]["ok"]
    assert abs(rows["read"]["per_s"] - n / 8) < 1e-9
    assert 2.0 <= rows["read"]["latency_ms"]["0.5"] <= 6.0


def test_each_op_carries_the_node_that_served_it():
    cols = report.op_columns(pair_ops(history()))
    assert sorted(cols["nodes"]) == ["n1", "n2"]
    pairs = zip(cols["proc"], cols["node"], strict=True)
    by_proc = {cols["procs"][p]: cols["nodes"][nd] for p, nd in pairs}
    assert by_proc == {"0": "n1", "1": "n2"}


def test_errors_that_are_not_strings_are_grouped_and_never_taken_for_answers():
    ops = history()
    ops = [op if op.type != "ok" or op.f != "write" else
           Op(op.index, op.time, "fail", op.process, op.f, op.value, op.key,
              ["not-leader", {"term": 3}], op.node) for op in ops]  # Jepsen-style vectors
    calls = pair_ops(ops)
    rows = report.by_error(calls)
    assert rows[0]["error"] == '["not-leader", {"term": 3}]' and rows[0]["answer"] is False
    assert sum(report.op_columns(calls)["ans"]) == 0
