"""The set checker on hand-made histories: lost, stale and never-written elements by name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from checker.history import Op
from checker.set import check_set


class H:
    """A tiny history builder: ``h.add(p, e)``, ``h.read(p, [..])``, one op at a time or
    overlapping with ``begin``/``end``."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def _rec(self, typ: str, p: int, f: str, value: Any, **extra: Any) -> None:
        self.ops.append(Op(len(self.ops), len(self.ops), typ, p, f, value, "k", None, None,
                           dict(extra)))

    def begin(self, p: int, f: str, value: Any = None, **extra: Any) -> H:
        self._rec("invoke", p, f, value, **extra)
        return self

    def end(self, p: int, f: str, value: Any = None, typ: str = "ok", **extra: Any) -> H:
        self._rec(typ, p, f, value, **extra)
        return self

    def add(self, p: int, e: Any, typ: str = "ok") -> H:
        return self.begin(p, "add", e).end(p, "add", e, typ)

    def read(self, p: int, out: list[Any], final: bool = False) -> H:
        extra = {"final": True} if final else {}
        return self.begin(p, "read", None, **extra).end(p, "read", out, **extra)


def test_a_clean_history_with_info_adds_present_or_absent_is_valid():
    h = H().add(0, 1).add(1, 2, typ="info").add(2, 3, typ="info").read(0, [1, 3])
    h.add(3, 4).read(0, [1, 3, 4], final=True)
    r = check_set(h.ops)
    assert r.valid is True
    d = r.to_dict()
    assert d["set"]["lost"]["count"] == 0 and d["set"]["recovered"] == 1
    assert d["partitions"][0]["set"]["final_size"] == 3


def test_an_acknowledged_add_missing_from_the_final_read_is_lost_by_name():
    h = H().add(0, 1).add(0, 2).add(0, 3).read(1, [1, 3], final=True)
    r = check_set(h.ops)
    assert r.valid is False and r.keys[0].lost == [2]
    d = r.to_dict()
    assert d["set"]["lost"] == {"count": 1, "elements": {"k": [2]}}
    assert "lost 1: 2" in d["partitions"][0]["reason"]
    assert "acknowledged" in d["partitions"][0]["set"]["details"][0]["text"]


def test_an_element_seen_then_gone_for_good_is_lost_even_if_its_add_was_info():
    h = H().add(0, 1, typ="info").read(1, [1]).read(1, [], final=True)
    r = check_set(h.ops)
    assert r.keys[0].lost == [1] and "returned it" in r.keys[0].details[0]["text"]


def test_a_read_missing_an_element_added_before_it_began_is_stale():
    h = H().add(0, 1).read(1, []).read(1, [1], final=True)
    k = check_set(h.ops).keys[0]
    assert k.valid is False and k.stale == [1] and k.lost == [] and k.stale_reads == 1


def test_an_element_that_disappears_after_being_seen_and_comes_back_is_stale():
    h = H().add(0, 1, typ="info").read(1, [1]).read(2, []).read(1, [1], final=True)
    k = check_set(h.ops).keys[0]
    assert k.stale == [1] and "returned it" in k.details[0]["text"]


def test_a_read_concurrent_with_an_add_may_or_may_not_see_it():
    h = H().begin(0, "add", 1).read(1, []).end(0, "add", 1).read(1, [1], final=True)
    assert check_set(h.ops).valid is True


@pytest.mark.parametrize("typ, why", [(None, "no add of it was attempted"),
                                      ("fail", "its add failed")])
def test_an_element_no_add_could_have_written_is_never_written(typ, why):
    h = H()
    if typ:
        h.add(0, 9, typ=typ)
    h.read(1, [9], final=True)
    k = check_set(h.ops).keys[0]
    assert k.valid is False and k.never_written == [9] and why in k.details[0]["text"]


def test_without_a_final_read_acknowledged_adds_leave_the_verdict_unknown():
    h = H().read(1, []).add(0, 1)
    r = check_set(h.ops)
    assert r.valid == "unknown" and r.to_dict()["reason"] == "no final read"


def test_the_last_read_after_every_add_serves_as_the_final_read_without_a_flag():
    h = H().add(0, 1).add(0, 2).read(1, [1])
    assert check_set(h.ops).keys[0].lost == [2]


def test_keys_are_judged_apart_and_other_operations_are_refused():
    h = H().add(0, 1).read(1, [1], final=True)
    other = Op(len(h.ops), 99, "invoke", 5, "add", 1, "j")
    done = Op(len(h.ops) + 1, 100, "ok", 5, "add", 1, "j")
    fin = [Op(len(h.ops) + 2, 101, "invoke", 5, "read", None, "j", extra={"final": True}),
           Op(len(h.ops) + 3, 102, "ok", 5, "read", [], "j", extra={"final": True})]
    r = check_set([*h.ops, other, done, *fin])
    assert [k.valid for k in r.keys] == [True, False] and r.valid is False
    with pytest.raises(ValueError, match="'write'"):
        check_set([Op(0, 0, "invoke", 0, "write", 1, "k")])


def test_raftlab_check_model_set_judges_a_stored_history(tmp_path, capsys):
    from checker.history import write_jsonl
    from tester.cli import main as raftlab

    h = H().add(0, 1).add(0, 2).read(1, [1], final=True)
    path = tmp_path / "history.jsonl"
    write_jsonl(h.ops, path)
    assert raftlab(["check", str(path), "--model", "set", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["histories"][0]["set"]["lost"] == {"count": 1, "elements": {"k": [2]}}
    write_jsonl(H().add(0, 1).read(1, [1], final=True).ops, path)
    assert raftlab(["check", str(path), "--model", "set"]) == 0
    assert "model set" in capsys.readouterr().out
    write_jsonl([Op(0, 0, "invoke", 0, "write", 1, "k")], path)
    assert raftlab(["check", str(path), "--model", "set"]) == 254
    assert "add and read" in capsys.readouterr().err
