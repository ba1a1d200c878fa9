"""Workloads: unique values per key, bounded keys, reproducible, with the right model."""

from __future__ import annotations

import pytest

from tester import generator as g
from tester import workloads as wl


def ops_of(w: wl.Workload, n: int = 2000, seed: int = 3) -> list[dict]:
    return [op for _, _, op in g.simulate(g.Limit(n, w.generator), range(4), seed=seed)]


def test_write_values_are_unique_per_key():
    ops = ops_of(wl.registers(keys=4, ops_per_key=None))
    seen: dict = {}
    for op in ops:
        new = op["value"] if op["f"] == "write" else op["value"][1] if op["f"] == "cas" else None
        if new is not None:
            assert new not in seen.setdefault(op["key"], set()), op
            seen[op["key"]].add(new)


def test_keys_are_retired_after_ops_per_key():
    ops = ops_of(wl.registers(keys=3, ops_per_key=50), n=1000)
    per_key: dict = {}
    for op in ops:
        per_key[op["key"]] = per_key.get(op["key"], 0) + 1
    assert max(per_key.values()) <= 50
    assert len(per_key) >= 1000 // 50


def test_registers_mix_reads_writes_and_cas_for_the_cas_register_model():
    w = wl.registers()
    fs = {op["f"] for op in ops_of(w, 500)}
    assert fs == {"read", "write", "cas"} and w.model == "cas-register"


def test_kv_uses_a_fixed_key_set_with_deletes():
    w = wl.kv(keys=4)
    ops = ops_of(w, 500)
    assert {op["key"] for op in ops} == {0, 1, 2, 3}
    assert "delete" in {op["f"] for op in ops} and w.model == "kv"


def test_final_reads_read_every_used_key_and_retry_failures():
    w = wl.registers(keys=3, ops_per_key=None)
    ops_of(w, 100)
    final = w.final_reads(attempts=2)
    fails = {0}
    out = []
    ctx = g.Context(0.0, 0, __import__("random").Random(0), (0,))
    while True:
        r = final.next(ctx)
        if r is None:
            break
        out.append(r["key"])
        final.update(ctx, dict(r, type="fail" if r["key"] in fails else "ok"))
    assert sorted(out) == [0, 0, 1, 2]


def test_unknown_workload_names_the_choices():
    with pytest.raises(ValueError, match="registers, kv, append, set"):
        wl.make("bank", 3, None)


def test_register_is_an_alias_of_registers():
    assert wl.make("register", 3, None).name == "registers"


@pytest.mark.parametrize("make, f", [(wl.append, "append"), (wl.set_workload, "add")])
def test_appended_and_added_elements_are_unique_per_key_and_keys_retire(make, f):
    w = make(keys=3, ops_per_key=40)
    ops = ops_of(w, 1200)
    assert {op["f"] for op in ops} == {"read", f}
    seen: dict = {}
    for op in ops:
        if op["f"] == f:
            assert isinstance(op["value"], int)
            assert op["value"] not in seen.setdefault(op["key"], set()), op
            seen[op["key"]].add(op["value"])
        else:
            assert op["value"] is None
    assert max(sum(1 for op in ops if op["key"] == k) for k in seen) <= 40


def test_append_is_judged_by_list_append_and_set_by_the_set_checker():
    a, s = wl.make("append", 2, 10), wl.make("set", 2, 10)
    assert (a.model, a.checker) == ("list-append", "linearizability")
    assert s.checker == "set" and wl.make("list-append", 2, 10).name == "append"
    assert wl.WORKLOADS == ("registers", "kv", "append", "set")


def test_an_adapter_that_lists_its_workloads_refuses_the_others_by_name():
    class Narrow:
        name = "narrowdb"
        workloads = ("registers",)

    wl.require(Narrow(), "register")
    wl.require(object(), "set")  # an adapter that does not say supports them all
    with pytest.raises(ValueError, match="--db narrowdb does not support --workload append"):
        wl.require(Narrow(), "append")


def test_campaigns_accept_the_new_workload_names(tmp_path):
    from tester import campaign

    path = tmp_path / "c.yml"
    path.write_text('{"name": "w", "dbs": ["raftnode"], "workloads": ["append", "set"], '
                    '"nemeses": ["none"], "seeds": [1]}')
    cells = campaign.load(path).matrix()
    assert [c["workload"] for c in cells] == ["append", "set"]
