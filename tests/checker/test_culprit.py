"""The op blamed for a violation is the one whose result no state explains, not where the
search happened to stop: measured on generated histories with one planted anomaly each."""

from __future__ import annotations

from checker import check, load_model
from tests.checker.planted import KINDS, generate

PER_KIND = 25


def _blamed_invoke(result) -> int:
    v = result.partitions[0].violation
    blamed = next(o for o in v["operations"] if o["id"] == v["op"])
    return blamed["invoke"]["index"]


def test_the_planted_anomaly_is_blamed_in_at_least_95_percent_of_histories():
    hits, total = {k: 0 for k in KINDS}, 0
    for kind in KINDS:
        seed = n = 0
        while n < PER_KIND:
            seed += 1
            planted = generate(kind, seed)
            if planted is None:
                continue  # no place for this anomaly in this seed's history
            ops, target = planted
            result = check(ops, load_model("cas-register", 0))
            assert result.valid is False, (kind, seed)
            hits[kind] += _blamed_invoke(result) == target
            n += 1
        total += n
    assert sum(hits.values()) >= 0.95 * total, hits
    assert all(h >= 0.8 * PER_KIND for h in hits.values()), hits


def test_the_culprit_says_why_and_where_the_search_stopped_and_partials_are_kept():
    ops, target = generate("stale-read", 1)
    v = check(ops, load_model("cas-register", 0)).partitions[0].violation
    assert v["culprit"]["op"] == v["op"] and "no state explains it" in v["culprit"]["why"]
    assert isinstance(v["stopped_at"], int)
    assert v["partial_linearizations"]  # each op's longest partial linearization stays
    assert any(o["longest"] is not None for o in v["operations"])


def test_without_explanations_no_culprit_is_searched_for():
    ops, _ = generate("never-written", 1)
    v = check(ops, load_model("cas-register", 0), explain=False).partitions[0].violation
    assert v["culprit"] is None and v["op"] == v["stopped_at"]


def test_the_view_draws_the_culprit_where_the_search_stopped_and_the_ops_after_it(monkeypatch):
    from checker import visualize

    ops, target = generate("stale-read", 3, n_ops=120)
    result = check(ops, load_model("cas-register", 0)).to_dict()
    part = visualize.partitions(result)[0]
    assert part.why and part.failing is not None
    # a window smaller than the history: it must still hold the culprit and what follows
    monkeypatch.setattr(visualize, "MAX_VIEW_OPS", 30)
    view = visualize.view_data(part, ops)
    drawn = [row[8] for row in view["ops"]]
    assert view["why"] == part.why and view["ops"][view["fail"]][8] == target
    after = [i for i in drawn if i > target]
    assert len(after) >= 5, drawn
    # here the search stopped a few ops before the stale read: both are drawn
    assert view["stopped"] is not None and view["stopped"] != view["fail"]
    page = visualize.render_html(result, ops)
    assert '"why":"no state explains it' in page
