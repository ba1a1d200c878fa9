"""The search: explanations, timeouts (also inside a slow step), the memory guard, and a
user's own model."""

from __future__ import annotations

import time

from checker import Model, check, load_model
from checker.formats import load
from tests.checker.checker_helpers import Counter, concurrent_adds, history


def test_violation_names_the_op_and_the_longest_prefix_with_states(tmp_path):
    result = check(load("examples/cas-register-invalid.jsonl"), load_model("cas-register"))
    assert result.valid is False
    v = result.partitions[0].violation
    ops = {o["id"]: o for o in v["operations"]}
    assert ops[v["op"]]["text"] == "read() -> 1"
    assert [(ops[s["op"]]["f"], s["state"]["value"]) for s in v["prefix"]] == [
        ("write", 1), ("cas", 2)]
    assert v["initial_state"] == {"value": None, "text": "nil"}
    # every op points at its longest partial linearization
    assert v["partial"] is False
    assert ops[0]["longest"] is not None
    longest = v["partial_linearizations"][ops[0]["longest"]]
    assert [s["op"] for s in longest] == [0, 1]


def test_valid_example_is_linearizable():
    result = check(load("examples/cas-register-valid.jsonl"), load_model("cas-register"))
    assert result.valid is True
    assert result.stats == {"invokes": 8, "ok": 6, "fail": 1, "info": 1, "checked": 7,
                            "partitions": 1, "nil_reads": 0}


def test_result_to_dict_is_json_ready():
    import json

    result = check(load("examples/cas-register-invalid.jsonl"), load_model("cas-register"))
    d = json.loads(json.dumps(result.to_dict()))
    assert d["valid"] is False and d["model"] == "cas-register"
    assert set(d["partitions"][0]) == {"key", "valid", "ops", "time_s", "reason", "violation"}


def test_users_own_model_checks_a_counter():
    rows = concurrent_adds(4, final_read=15)
    assert check(rows, Counter()).valid is True
    assert check(concurrent_adds(4, final_read=16), Counter()).valid is False


def test_timeout_gives_unknown_mid_search():
    t = time.monotonic()
    result = check(concurrent_adds(22, final_read=-1), Counter(), timeout=0.5)
    took = time.monotonic() - t
    assert result.valid == "unknown" and result.reason == "timeout"
    assert took < 3


class SlowStep(Model):
    name = "slow"

    def init(self, key=None):
        return 0

    def step(self, state, op):
        time.sleep(30)
        return True, state


def test_timeout_is_honoured_inside_a_slow_step():
    t = time.monotonic()
    result = check(history((0, "invoke", "x", None), (0, "ok", "x", None)), SlowStep(),
                   timeout=0.3)
    assert result.valid == "unknown" and result.reason == "timeout"
    assert time.monotonic() - t < 3


def test_memory_guard_gives_unknown():
    result = check(concurrent_adds(20, final_read=-1), Counter(), max_memory=1)
    assert result.valid == "unknown" and result.reason == "memory"


def test_parallel_partitions_agree_with_serial():
    rows = []
    for k in range(30):
        rows += [(2 * k, "invoke", "write", k, k), (2 * k + 1, "invoke", "read", None, k),
                 (2 * k, "ok", "write", k, k), (2 * k + 1, "ok", "read", k if k % 7 else -1, k)]
    ops = history(*rows)
    serial = check(ops, load_model("kv"), parallel=False)
    par = check(ops, load_model("kv"), parallel=True)
    assert serial.valid is False and par.valid is False
    assert [(p.key, p.valid) for p in serial.partitions] == [
        (p.key, p.valid) for p in par.partitions]
    assert sum(p.valid is False for p in par.partitions) == 5


def test_first_violation_skips_the_rest():
    rows = []
    for k in range(5):
        rows += [(k, "invoke", "read", None, k), (k, "ok", "read", 1, k)]
    result = check(history(*rows), load_model("kv"), first_violation=True)
    assert result.valid is False
    assert sorted(str(p.valid) for p in result.partitions) == ["False"] + ["unknown"] * 4
    assert {p.reason for p in result.partitions if p.valid == "unknown"} == {"skipped"}


def test_the_one_pass_places_a_read_at_an_earlier_state_current_during_it():
    from checker.linearizability import _partitions
    from checker.operation import pair
    from checker.search import _in_completion_order

    rows = [(0, "invoke", "write", 1), (0, "ok", "write", 1),
            (1, "invoke", "read", None),          # the read begins while 1 is current
            (2, "invoke", "write", 2), (2, "ok", "write", 2),
            (1, "ok", "read", 1)]                 # and completes after 2 was written
    model = load_model("cas-register")
    part = _partitions(model, pair(history(*rows)))[0]
    found = _in_completion_order(model, part.init, part.ops)
    assert found is not None  # no search needed
    assert [(part.ops[i].f, st) for i, st in found.linearization] == [
        ("write", 1), ("read", 1), ("write", 2)]
    stale = rows[:2] + [(2, "invoke", "write", 2), (2, "ok", "write", 2),
                        (1, "invoke", "read", None), (1, "ok", "read", 1)]
    part = _partitions(model, pair(history(*stale)))[0]
    assert _in_completion_order(model, part.init, part.ops) is None  # 1 was gone before it


def test_workers_get_only_the_partitions_the_one_pass_and_a_short_serial_search_leave(monkeypatch):
    from bench.checker import generate_kv
    from checker import linearizability

    hist = generate_kv(4000, keys=40, procs=20)
    reads = [o for o in hist if o.type == "ok" and o.f == "read"]
    reads[len(reads) // 2].value = 99  # one key goes wrong
    serial = check(hist, load_model("kv"), parallel=False)
    sent: list[int] = []
    real = linearizability._search_parallel

    def spy(model, parts, *args):
        sent.append(len(parts))
        return real(model, parts, *args)

    monkeypatch.setattr(linearizability, "PARALLEL_MIN_OPS", 100)
    monkeypatch.setattr(linearizability, "_search_parallel", spy)
    result = check(hist, load_model("kv"))  # searched here within SERIAL_FIRST_S
    assert [p.valid for p in result.partitions] == [p.valid for p in serial.partitions]
    assert result.valid is False and sent == []
    monkeypatch.setattr(linearizability, "SERIAL_FIRST_S", 0.0)  # as when the search is long
    result = check(hist, load_model("kv"))
    assert [p.valid for p in result.partitions] == [p.valid for p in serial.partitions]
    assert result.valid is False
    assert sent and 1 < sent[0] < 40  # the settled keys stayed here
