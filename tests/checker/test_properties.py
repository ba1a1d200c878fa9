"""Property tests: a sequential execution given overlapping timings is always linearizable;
changing one read to a value never written never is; and the one pass settles the same
partitions whether or not it builds its witness, which replays legally."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker import check, load_model
from checker.history import Op

OP = st.tuples(
    st.sampled_from(["read", "write", "cas"]),
    st.integers(0, 3),  # value / cas old
    st.integers(0, 3),  # cas new
    st.integers(0, 25),  # how long before its linearization point it was invoked
    st.integers(0, 25),  # how long after it completed
    st.sampled_from(["ok", "ok", "ok", "info", "none"]),  # how it completed
    st.booleans(),  # an info op: did it take effect?
    st.integers(0, 2),  # key
)


def execute(spec: list[tuple], keyed: bool) -> tuple[list[Op], list[int]]:
    """Run the ops one after another (linearization point i*10), then lay out invoke and
    completion records around those points. Returns the records and the positions of the
    ok reads (candidates for corruption)."""
    regs: dict[int, int | None] = {}
    events = []
    for i, (f, a, b, before, after, how, applied, key) in enumerate(spec):
        key = key if keyed else 0
        t = i * 10
        cur = regs.get(key)
        status = how if how != "none" else "info"
        takes_effect = status == "ok" or applied
        if f == "read":
            inv, out = None, cur
        elif f == "write":
            inv = out = a
            if takes_effect:
                regs[key] = a
        else:
            inv = out = [a, b]
            if cur != a:
                status = "fail" if status == "ok" else status
            elif takes_effect:
                regs[key] = b
        k = key if keyed else None
        events.append((t - before, 0, i, "invoke", inv, f, k))
        if how != "none":
            events.append((t + after, 1, i, status, out, f, k))
    events.sort()
    ops, reads = [], []
    for n, (t, _, i, typ, value, f, k) in enumerate(events):
        ops.append(Op(index=n, time=t + 100, type=typ, process=i, f=f, value=value, key=k))
        if typ == "ok" and f == "read":
            reads.append(n)
    return ops, reads


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(OP, min_size=1, max_size=30), st.booleans())
def test_sequential_execution_with_overlapping_timings_is_linearizable(spec, keyed):
    ops, _ = execute(spec, keyed)
    result = check(ops, load_model("kv" if keyed else "cas-register"), timeout=30)
    assert result.valid is True


@SETTINGS
@given(st.lists(OP, min_size=1, max_size=30), st.booleans(), st.data())
def test_a_read_of_a_value_never_written_is_never_linearizable(spec, keyed, data):
    ops, reads = execute(spec, keyed)
    if not reads:
        return
    n = data.draw(st.sampled_from(reads))
    ops[n].value = 99  # no op ever writes 99
    result = check(ops, load_model("kv" if keyed else "cas-register"), timeout=30)
    assert result.valid is False
    bad = [p for p in result.partitions if p.valid is False]
    assert len(bad) == 1 and bad[0].violation["op"] is not None


@SETTINGS
@given(st.lists(OP, min_size=1, max_size=30), st.booleans(), st.data())
def test_the_one_pass_settles_the_same_partitions_with_or_without_its_witness(spec, keyed,
                                                                              data):
    from checker.linearizability import _partitions
    from checker.operation import pair
    from checker.search import _in_completion_order

    ops, reads = execute(spec, keyed)
    if reads and data.draw(st.booleans()):
        ops[data.draw(st.sampled_from(reads))].value = data.draw(st.integers(0, 3))
    model = load_model("kv" if keyed else "cas-register")
    for part in _partitions(model, pair(ops)):
        full = _in_completion_order(model, part.init, part.ops)
        bare = _in_completion_order(model, part.init, part.ops, witness=False)
        assert (full is None) == (bare is None)
        if full is not None:
            assert bare.valid is True and bare.linearization is None
            state = part.init  # the witness replays: every step legal, every ok op once
            for i, after in full.linearization:
                legal, state = model.step(state, part.ops[i])
                assert legal and state == after
            taken = [i for i, _ in full.linearization]
            assert len(set(taken)) == len(taken)
            assert {i for i, o in enumerate(part.ops) if o.ok} <= set(taken)
