"""The key-value state machine: operations, client sessions (exactly once), snapshots."""

from __future__ import annotations

import json

from raftnode.statemachine import KVStateMachine, StateMachine


def test_put_get_delete_and_missing_key_reads_none():
    sm = KVStateMachine()
    assert sm.apply({"op": "put", "key": "x", "value": [1, 2]})["status"] == "ok"
    assert sm.get("x") == [1, 2]
    assert sm.apply({"op": "get", "key": "x"}) == {"status": "ok", "value": [1, 2], "error": None}
    assert sm.apply({"op": "delete", "key": "x"})["status"] == "ok"
    assert sm.get("x") is None
    assert sm.apply({"op": "write", "key": "y", "value": 3})["status"] == "ok"
    assert sm.read("y") == 3


def test_cas_succeeds_only_on_the_expected_value_and_reports_the_current_one():
    sm = KVStateMachine()
    sm.apply({"op": "put", "key": "x", "value": 1})
    assert sm.apply({"op": "cas", "key": "x", "expected": 2, "value": 3}) == {
        "status": "fail", "value": 1, "error": "cas-mismatch"}
    assert sm.apply({"op": "cas", "key": "x", "expected": 1, "value": 3})["status"] == "ok"
    assert sm.get("x") == 3
    assert sm.apply({"op": "cas", "key": "new", "expected": None, "value": 0})["status"] == "ok"


def test_malformed_commands_fail_without_changing_state():
    sm = KVStateMachine()
    for bad in ("nope", {"op": "put"}, {"op": "frob", "key": "x"}, {"op": "put", "key": 5}):
        assert sm.apply(bad)["error"] == "bad-request"
    assert sm.data == {}


def test_retried_command_of_a_session_returns_the_cached_result_and_applies_once():
    sm = KVStateMachine()
    sm.apply({"op": "put", "key": "x", "value": 1})
    cas = {"op": "cas", "key": "x", "expected": 1, "value": 2, "client": "c1", "seq": 1}
    first = sm.apply(cas)
    sm.apply({"op": "put", "key": "x", "value": 1, "client": "c2", "seq": 1})
    again = sm.apply(dict(cas))  # the client timed out and retried
    assert first == again == {"status": "ok", "value": 2, "error": None}
    assert sm.get("x") == 1  # the retry did not apply the cas a second time


def test_older_sequence_numbers_of_a_session_are_refused():
    sm = KVStateMachine()
    sm.apply({"op": "put", "key": "x", "value": 1, "client": "c", "seq": 5})
    r = sm.apply({"op": "put", "key": "x", "value": 9, "client": "c", "seq": 4})
    assert r["status"] == "fail" and sm.get("x") == 1


def test_unsafe_no_sessions_applies_a_retried_command_again():
    sm = StateMachine(unsafe={"no-sessions"})
    sm.apply({"op": "put", "key": "x", "value": 1})
    cas = {"op": "cas", "key": "x", "expected": 1, "value": 2, "client": "c1", "seq": 1}
    assert sm.apply(cas)["status"] == "ok"
    assert sm.apply(dict(cas))["error"] == "cas-mismatch"  # a retry is a new command


def test_sessions_are_expired_oldest_first_beyond_the_limit():
    sm = KVStateMachine(max_sessions=2)
    for i, c in enumerate(["a", "b", "c"]):
        sm.apply({"op": "put", "key": "k", "value": i, "client": c, "seq": 1})
    assert sorted(sm.sessions) == ["b", "c"]


def test_snapshot_is_json_and_restores_data_and_sessions():
    sm = KVStateMachine()
    sm.apply({"op": "put", "key": "x", "value": {"n": 1}, "client": "c", "seq": 1}, index=4)
    image = json.loads(json.dumps(sm.snapshot()))
    other = KVStateMachine()
    other.restore(image)
    assert other.data == {"x": {"n": 1}} and other.applied == 4
    retry = other.apply({"op": "put", "key": "x", "value": {"n": 1}, "client": "c", "seq": 1})
    assert retry["status"] == "ok" and other.sessions["c"][0] == 1
    image["data"]["x"]["n"] = 99
    assert other.get("x") == {"n": 1}  # restore copied, not aliased


def test_append_adds_one_element_at_the_end_and_a_retry_of_the_session_applies_once():
    sm = KVStateMachine()
    assert sm.apply({"op": "append", "key": "l", "value": 1, "client": "c", "seq": 1}) == {
        "status": "ok", "value": None, "error": None}
    sm.apply({"op": "append", "key": "l", "value": 2, "client": "d", "seq": 1})
    sm.apply({"op": "append", "key": "l", "value": 1, "client": "c", "seq": 1})  # a retry
    assert sm.get("l") == [1, 2]
    sm.apply({"op": "put", "key": "x", "value": 5})
    assert sm.apply({"op": "append", "key": "x", "value": 1})["error"] == "not-a-list"


def test_append_never_changes_a_list_already_handed_out():
    sm = KVStateMachine()
    sm.apply({"op": "append", "key": "l", "value": 1})
    read, image = sm.get("l"), sm.snapshot()
    sm.apply({"op": "append", "key": "l", "value": 2})
    assert read == [1] and image["data"]["l"] == [1]
    other = KVStateMachine()
    other.restore(image)
    other.apply({"op": "append", "key": "l", "value": 3})
    assert other.get("l") == [1, 3] and sm.get("l") == [1, 2]


def test_unsafe_no_sessions_applies_a_retried_append_twice():
    sm = StateMachine(unsafe={"no-sessions"})
    for _ in range(2):
        sm.apply({"op": "append", "key": "l", "value": 7, "client": "c", "seq": 1})
    assert sm.get("l") == [7, 7]
