"""append and set make lost writes visible that registers cannot see (the in-process fake).

``lost-overwritten`` shows a change until the next change of its key, which applies as if it
had never happened: a register's next write overwrites the value anyway, so registers stay
valid, while a list loses the element for good. ``lost-writes`` acknowledges adds it never
applies: the set checker names them lost.
"""

from __future__ import annotations

import json

import pytest

from tester.test_cli import print_summary
from tests.tester.test_runner import assert_healed, run


def test_registers_cannot_see_writes_lost_under_the_next_overwrite(tmp_path):
    out, _, _ = run(tmp_path, "lost-overwritten", nemesis=[], workload="registers")
    assert out.valid is True, out.results["checker"]


def test_append_names_the_element_lost_under_the_next_append(tmp_path):
    out, _, _ = run(tmp_path, "lost-overwritten", nemesis=[], workload="append")
    assert out.valid is False
    saved = json.loads((out.run_dir / "results.json").read_text())
    bad = [p for p in saved["checker"]["partitions"] if p["valid"] is False]
    assert saved["checker"]["model"] == "list-append" and bad
    found = bad[0]["violation"]["anomalies"]
    assert {a["kind"] for a in found} & {"lost", "stale", "diverged"}
    assert all(str(a["element"]) in a["text"] for a in found)


def test_append_on_a_correct_store_under_every_fault_is_valid(tmp_path):
    out, db, fleet = run(tmp_path, "correct", workload="append")
    assert out.valid is True, out.results["checker"]
    assert out.results["stats"]["by_f"]["append"]["ok"] > 50
    assert_healed(db, fleet)


def test_set_names_acknowledged_adds_that_were_lost(tmp_path, capsys):
    out, _, _ = run(tmp_path, "lost-writes", nemesis=[], workload="set")
    assert out.valid is False
    saved = json.loads((out.run_dir / "results.json").read_text())
    lost = saved["checker"]["set"]["lost"]
    assert lost["count"] > 0 and sum(map(len, lost["elements"].values())) == lost["count"]
    key, elements = next(iter(lost["elements"].items()))
    assert saved["per_key"][key] is False
    part = next(p for p in saved["checker"]["partitions"] if str(p["key"]) == key)
    assert f"lost {len(elements)}" in part["reason"] and repr(elements[0]) in part["reason"]
    report = (out.run_dir / "report.html").read_text()
    assert "Set anomalies" in report and "lost" in report and "adds were lost" in report
    print_summary(out)
    assert f"set: lost {lost['count']}, stale 0" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["correct"])
def test_set_on_a_correct_store_under_every_fault_is_valid(tmp_path, mode):
    out, db, fleet = run(tmp_path, mode, workload="set")
    assert out.valid is True, out.results["checker"]
    s = out.results["checker"]["set"]
    assert s["acknowledged"] > 50 and s["lost"]["count"] == s["stale"]["count"] == 0
    assert_healed(db, fleet)
