"""The list-append model: appends of one element, reads of the whole list, and explanations
that name the element behind a violation."""

from __future__ import annotations

import random

import pytest

from checker.history import HistoryError
from checker.linearizability import check
from checker.models import ListAppend, infer_model, load_model
from checker.operation import pair
from tests.checker.checker_helpers import history


def app(p, e, typ="ok"):
    return [(p, "invoke", "append", e, "k"), (p, typ, "append", e, "k")]


def rd(p, out):
    return [(p, "invoke", "read", None, "k"), (p, "ok", "read", out, "k")]


def verdict(*groups):
    rows = [r for g in groups for r in g]
    return check(history(*rows), load_model("list-append"))


def anomalies(result):
    return [(a["kind"], a["element"]) for p in result.violations
            for a in p.violation["anomalies"]]


def test_concurrent_appends_in_either_order_are_linearizable():
    rows = [(0, "invoke", "append", 1, "k"), (1, "invoke", "append", 2, "k"),
            (0, "ok", "append", 1, "k"), (1, "ok", "append", 2, "k")]
    assert verdict(rows, rd(2, [2, 1])).valid is True
    assert verdict(rows, rd(2, [1, 2])).valid is True
    assert verdict(rd(0, None), app(0, 1), rd(0, [1])).valid is True


def test_an_append_lost_under_later_appends_is_named_lost():
    r = verdict(app(0, 1), app(0, 2), rd(1, [1, 2]), app(0, 3), rd(1, [1, 3]))
    assert r.valid is False and ("lost", 2) in anomalies(r)


def test_a_stale_read_names_the_element_it_missed():
    r = verdict(app(0, 1), app(0, 2), rd(1, [1]), rd(1, [1, 2]))
    assert r.valid is False and ("stale", 2) in anomalies(r)


def test_appends_applied_against_real_time_are_named_reordered():
    r = verdict(app(0, 1), app(0, 2), rd(1, [2, 1]))
    assert r.valid is False and ("reordered", 1) in anomalies(r)
    r = verdict(app(0, 1), app(1, 2), rd(2, [1, 2]), rd(2, [2, 1]))
    assert ("reordered", 1) in anomalies(r)


def test_an_append_applied_twice_and_a_value_never_appended_are_named():
    r = verdict(app(0, 1, typ="info"), rd(1, [1, 1]))
    assert r.valid is False and ("duplicated", 1) in anomalies(r)
    r = verdict(app(0, 1, typ="fail"), rd(1, [1]), app(0, 2), rd(1, [1, 2, 9]))
    assert {("never-written", 1), ("never-written", 9)} <= set(anomalies(r))


def test_info_appends_may_take_effect_late_or_never_and_unseen_ones_are_pruned():
    r = verdict(app(0, 1, typ="info"), app(1, 2), rd(2, [2]), rd(2, [2, 1]))
    assert r.valid is True
    ops = pair(history(*app(0, 1, typ="info"), *app(1, 2), *rd(2, [2])))
    kept = ListAppend().prune([o for o in ops if o.status != "fail"])
    assert [o.input for o in kept if o.f == "append"] == [2]


def test_randomly_interleaved_correct_histories_are_linearizable():
    """A correct list: every op takes effect at an instant inside its span."""
    rng = random.Random(5)
    for _ in range(30):
        state: list[int] = []
        rows, pending, nxt = [], {}, 1
        for _step in range(60):
            p = rng.randrange(4)
            if p in pending:
                f, v = pending.pop(p)
                if f == "append":
                    state.append(v)
                    rows.append((p, "ok", "append", v, "k"))
                else:
                    rows.append((p, "ok", "read", list(state), "k"))
            elif rng.random() < 0.5:
                pending[p] = ("append", nxt)
                rows.append((p, "invoke", "append", nxt, "k"))
                nxt += 1
            else:
                pending[p] = ("read", None)
                rows.append((p, "invoke", "read", None, "k"))
        assert check(history(*rows), load_model("list-append")).valid is True


def test_shapes_the_model_cannot_judge_are_input_errors():
    with pytest.raises(HistoryError, match="one element"):
        verdict([(0, "invoke", "append", [1, 2], "k"), (0, "ok", "append", [1, 2], "k")])
    with pytest.raises(HistoryError, match="returns a list"):
        verdict(rd(0, 5))


def test_element_appends_are_recognised_as_list_append_histories():
    ops = pair(history(*app(0, 1), *rd(1, [1])))
    assert infer_model(ops) == "list-append"
    strings = pair(history((0, "invoke", "append", "ab", "k"), (0, "ok", "append", "ab", "k")))
    assert infer_model(strings) == "kv"  # Porcupine's concatenation
