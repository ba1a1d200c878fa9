"""The search agrees with brute force on small random histories, valid or not.

Brute force tries every order of the ok ops plus any subset of the info ops that respects
real time, stepping the model: no cache, no guards, no pruning, no greedy reads. Agreement
on thousands of random histories is evidence that the search's reductions are exact.
"""

from __future__ import annotations

from itertools import combinations, permutations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker import check, load_model
from checker.history import Op
from checker.operation import pair

VALUES = st.sampled_from([None, 0, 1, 2])
WORDS = st.sampled_from(["a", "b", "ab"])


@st.composite
def small_history(draw, kv: bool):
    n = draw(st.integers(1, 7))
    ops = []
    for _ in range(n):
        if kv:
            f = draw(st.sampled_from(["get", "put", "append", "cas"]))
            value = {"get": None, "put": draw(WORDS), "append": draw(WORDS),
                     "cas": [draw(st.sampled_from(["", "a", "b", "ab"])), draw(WORDS)]}[f]
            out = draw(st.sampled_from(["", "a", "b", "ab", "ba", "aab"])) if f == "get" else value
        else:
            f = draw(st.sampled_from(["read", "write", "cas"]))
            value = {"read": None, "write": draw(VALUES), "cas": [draw(VALUES), draw(VALUES)]}[f]
            out = draw(VALUES) if f == "read" else value
        status = draw(st.sampled_from(["ok", "ok", "info", "fail", "none"]))
        ops.append((f, value, out, status))
    # an interleaving of the 2n events in which each invoke precedes its completion
    order = draw(st.permutations([(i, e) for i in range(n) for e in (0, 1)]))
    seen: set[int] = set()
    events = []
    for i, _ in order:
        events.append((i, 0 if i not in seen else 1))
        seen.add(i)
    records = []
    for i, kind in events:
        f, value, out, status = ops[i]
        if kind == 0:
            records.append(Op(index=len(records), time=0, type="invoke", process=i, f=f,
                              value=value))
        elif status != "none":
            records.append(Op(index=len(records), time=0, type=status, process=i, f=f,
                              value=out))
    return records


def brute_force(records: list[Op], model) -> bool:
    ops = [o for o in pair(records) if o.status != "fail"]
    ok = [o for o in ops if o.ok]
    info = [o for o in ops if not o.ok]
    for k in range(len(info) + 1):
        for extra in combinations(info, k):
            chosen = ok + list(extra)
            for order in permutations(chosen):
                if _legal(order, model):
                    return True
    return False


def _legal(order, model) -> bool:
    for a_pos, a in enumerate(order):
        for b in order[a_pos + 1:]:
            if b.ret is not None and b.ret < a.call:
                return False  # b completed before a was invoked, yet comes after it
    state = model.init(None)
    for o in order:
        legal, state = model.step(state, o)
        if not legal:
            return False
    return True


SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(small_history(kv=False))
def test_cas_register_search_agrees_with_brute_force(records):
    model = load_model("cas-register")
    assert check(records, model).valid is brute_force(records, model)


@SETTINGS
@given(small_history(kv=True))
def test_kv_append_search_agrees_with_brute_force(records):
    model = load_model("kv", "")
    assert check(records, model).valid is brute_force(records, model)
