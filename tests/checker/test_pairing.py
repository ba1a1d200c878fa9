"""Pairing invokes with completions: Jepsen's process rules, as input errors with lines."""

from __future__ import annotations

import pytest

from checker.formats import parse
from checker.history import HistoryError
from checker.operation import pair
from tests.checker.checker_helpers import history


def test_invoke_while_in_flight_names_file_and_line():
    text = ('{"type":"invoke","process":3,"f":"write","value":1}\n'
            '{"type":"invoke","process":3,"f":"read","value":null}\n')
    hist = parse(text, "h.jsonl")
    with pytest.raises(HistoryError) as e:
        pair(hist.ops, hist.lines, hist.path)
    assert (e.value.path, e.value.line) == ("h.jsonl", 2)
    assert "process 3" in e.value.reason and "in flight" in e.value.reason


def test_completion_without_invoke_is_an_error():
    with pytest.raises(HistoryError, match="without an invoke"):
        pair(history((0, "ok", "read", 1)))


def test_completion_with_another_f_is_an_error():
    with pytest.raises(HistoryError, match="does not match"):
        pair(history((0, "invoke", "read", None), (0, "ok", "write", 1)))


def test_statuses_and_unknown_outputs():
    ops = pair(history(
        (0, "invoke", "write", 1), (0, "ok", "write", 1),
        (1, "invoke", "write", 2), (1, "fail", "write", 2),
        (2, "invoke", "write", 3), (2, "info", "write", 3),
        (3, "invoke", "read", None),
        ("nemesis", "info", "start", None),
    ))
    assert [(o.status, o.ret is None) for o in ops] == [
        ("ok", False), ("fail", True), ("info", True), ("info", True)]
    assert [o.id for o in ops] == [0, 1, 2, 3]


def test_process_may_invoke_again_after_its_info():
    ops = pair(history((0, "invoke", "write", 1), (0, "info", "write", 1),
                       (0, "invoke", "read", None), (0, "ok", "read", 1)))
    assert [o.status for o in ops] == ["info", "ok"]
