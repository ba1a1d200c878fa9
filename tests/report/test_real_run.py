"""The report of a real run: the tester's runner (clients, nemesis, checker, store) on the fake
in-process database with stale reads, under every fault package."""

from __future__ import annotations

import json

import pytest

from checker.history import read_jsonl
from tests.report.memruns import run_one


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return run_one({"db": "memdb-stale-reads", "workload": "registers", "seed": 3,
                    "nemesis": "partition,kill,pause,clock", "name": "real", "store": str(store)})


def test_runner_writes_a_report_that_renders_without_errors(real_run, browser):
    results = json.loads((real_run / "results.json").read_text())
    assert results["valid"] is False, "the stale-read store must be caught"
    page = browser.open(real_run / "report.html")
    assert page.inner_text(".banner .verdict") == "INVALID"
    ops = read_jsonl(real_run / "history.jsonl")
    done = sum(1 for op in ops if op.process != "nemesis" and op.type != "invoke")
    assert page.get_attribute("#latency", "data-points") == str(done)
    bad = [p for p in results["checker"]["partitions"] if p["valid"] is False]
    assert page.locator("#lin-views .lin").count() == len(bad)
    page.click("button.jump")
    assert "CANNOT BE LINEARIZED" in page.inner_text(".lin-detail")
    browser.screenshot("real-run")
    assert browser.errors == []


def test_real_nemesis_records_shade_the_plots(real_run, browser):
    page = browser.open(real_run / "report.html")
    faults = page.evaluate("() => window.raftlabReport.data.faults.map(f => f[4])")
    nemesis = {op.f.split("-", 1)[1] for op in read_jsonl(real_run / "history.jsonl")
               if op.process == "nemesis" and op.f.startswith("start-") and op.type != "invoke"
               and op.error is None}
    assert nemesis and set(faults) == nemesis
    legend = page.inner_text("#fault-legend")
    assert all(k in legend for k in nemesis)


def test_many_bad_keys_stay_collapsed_until_asked_for(real_run, browser):
    from playwright.sync_api import expect  # the browser fixture has made sure it is there

    results = json.loads((real_run / "results.json").read_text())
    bad = [p for p in results["checker"]["partitions"] if p["valid"] is False]
    if len(bad) < 2:
        pytest.skip("this seed produced a single bad key")
    page = browser.open(real_run / "report.html")
    assert page.locator("details.lin[open]").count() == 1
    assert page.locator(".lin-content svg").count() == 1  # only the open one is drawn
    page.locator("#keys a[href^='#lin-']").nth(1).click()
    # the key opens on the hash change that follows the click: wait for it, do not race it
    expect(page.locator("details.lin[open]")).to_have_count(2)
    expect(page.locator(".lin-content svg")).to_have_count(2)
    page.click("#first-error")
    assert page.locator(".bar.failing.selected").count() == 1
    assert browser.errors == []


def test_failure_views_beyond_the_size_budget_are_listed_not_drawn(real_run, monkeypatch):
    from tester import report

    results = json.loads((real_run / "results.json").read_text())
    bad = sorted((str(p["key"]) for p in results["checker"]["partitions"] if p["valid"] is False),
                 key=report.natural)
    monkeypatch.setattr(report, "VIEW_BUDGET", 1)  # room for one view only
    html = report.render_report(report.load_run(real_run))
    data = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert [v["key"] for v in data["lin"]] == bad[:1]
    if len(bad) > 1:
        assert f"{len(bad) - 1} more non-linearizable keys are not drawn" in html
        assert html.count("show the failure</a>") == 1
