"""The run report renders in headless Chromium and shows what happened: verdict, plots with one
point per operation, the cluster timeline, and the operation that cannot be linearized."""

from __future__ import annotations

import json
import re

import pytest

from checker.history import read_jsonl
from tester import report
from tests.report.synthetic import check, make_run


@pytest.fixture(scope="module")
def violating_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    run = make_run(root, n_ops=400, violate=True, checker_result=check)
    report.write_report(run)
    return run


def completions(run) -> int:
    return sum(1 for op in read_jsonl(run / "history.jsonl")
               if op.process != "nemesis" and op.type != "invoke")


def failing_partition(run) -> dict:
    res = json.loads((run / "results.json").read_text())
    return next(p for p in res["checker"]["partitions"] if p["valid"] is False)


def test_violating_run_renders_with_no_console_errors_and_an_invalid_banner(violating_run, browser):
    page = browser.open(violating_run / "report.html")
    assert page.inner_text(".banner .verdict") == "INVALID"
    assert page.locator("#lin-views .lin").count() == 1
    assert page.locator("#keys tr.invalid").count() == 1
    browser.screenshot("violating-run")
    assert browser.errors == []
    assert all(u.startswith(("file:", "data:", "about:")) for u in browser.requests), browser.requests


def test_latency_plot_has_a_point_per_completed_operation(violating_run, browser):
    page = browser.open(violating_run / "report.html")
    assert page.get_attribute("#latency", "data-points") == str(completions(violating_run))
    bins = int(page.get_attribute("#throughput", "data-points"))
    bin_s = float(page.get_attribute("#throughput", "data-bin-seconds"))
    end_s = max(op.time for op in read_jsonl(violating_run / "history.jsonl")) / 1e9
    assert bins == max(1, -(-round(end_s * 1e6) // round(bin_s * 1e6)))


def test_timeline_has_a_lane_per_node_and_a_segment_per_role(violating_run, browser):
    run = report.load_run(violating_run)
    end = max(op.time for op in run.ops)
    lanes = report.node_lanes(run, report.fault_intervals(run.ops, ["n1", "n2", "n3"], end), end)
    assert [lane["node"] for lane in lanes] == ["n1", "n2", "n3"]
    page = browser.open(violating_run / "report.html")
    assert page.get_attribute("#timeline", "data-segments") == str(sum(len(x["segs"]) for x in lanes))
    browser.screenshot("timeline", selector="section:has(#timeline)")
    assert browser.errors == []


def test_hovering_the_failing_operation_shows_the_state_it_cannot_follow(violating_run, browser):
    part = failing_partition(violating_run)
    viol = part["violation"]
    state = viol["prefix"][-1]["state"]["text"]
    bad = next(o for o in viol["operations"] if o["id"] == viol["op"])
    page = browser.open(violating_run / "report.html")
    page.hover(".bar.failing")
    tip = page.inner_text("#tooltip")
    assert "CANNOT BE LINEARIZED" in tip
    assert f"state before it: {state}" in tip
    assert f"history index {bad['invoke']['index']}" in tip
    assert f"after step {len(viol['prefix'])}" in tip
    browser.screenshot("failing-op-hover", full_page=False)


def test_jump_to_first_error_scrolls_to_and_selects_the_failing_operation(violating_run, browser):
    page = browser.open(violating_run / "report.html")
    page.click("button.jump")
    failing = page.locator(".bar.failing")
    assert "selected" in failing.get_attribute("class")
    detail = page.locator(".lin-detail")
    assert "failing" in detail.get_attribute("class")
    assert "CANNOT BE LINEARIZED" in detail.inner_text()
    box = failing.bounding_box()
    scroller = page.locator(".lin-scroll").bounding_box()
    assert scroller["x"] <= box["x"] <= scroller["x"] + scroller["width"]
    browser.screenshot("jump-to-first-error", full_page=False)


def test_clicking_a_linearized_operation_shows_its_step_and_the_state_after_it(violating_run, browser):
    viol = failing_partition(violating_run)["violation"]
    page = browser.open(violating_run / "report.html")
    bars = page.locator(".bar")
    ops = {o["id"]: o for o in viol["operations"]}
    k = len(viol["prefix"]) // 2
    target = viol["prefix"][k]
    index = ops[target["op"]]["invoke"]["index"]
    bar = page.locator(f".bar[data-index='{index}']")
    assert bars.count() == len(viol["operations"])
    bar.click()
    text = page.inner_text(".lin-detail")
    assert f"linearized as step {k + 1} of {len(viol['prefix'])}" in text
    assert f"state after: {target['state']['text']}" in text
    assert page.locator(".lin-point").count() == len(viol["prefix"])


def test_faults_are_read_per_node_from_the_nemesis_records(violating_run):
    run = report.load_run(violating_run)
    faults = report.fault_intervals(run.ops, ["n1", "n2", "n3"], 10**10)
    got = {(iv["kind"], tuple(sorted(iv["nodes"].items()))) for iv in faults.intervals}
    assert got == {
        ("partition", (("n1", "cut off from n2, n3"), ("n2", "cut off from n1"),
                       ("n3", "cut off from n1"))),
        ("kill", (("n3", "killed"),)),
        ("pause", (("n2", "paused"),)),
        ("clock", (("n2", "clock +5 s"),)),
    }
    assert all(iv["start"] < iv["end"] for iv in faults.intervals)


def test_a_valid_run_has_a_green_banner_and_no_failure_view(tmp_path, browser):
    run = make_run(tmp_path, n_ops=200, violate=False, checker_result=check)
    page = browser.open(report.write_report(run))
    assert page.inner_text(".banner .verdict") == "VALID"
    assert page.locator("#lin-views").count() == 0
    assert page.locator("#keys tr.valid").count() == 3
    assert browser.errors == []


def test_a_run_without_results_or_node_logs_is_unknown_and_says_why(tmp_path, browser):
    run = make_run(tmp_path, n_ops=100)
    (run / "results.json").unlink()
    for f in (run / "nodes").rglob("*.log"):
        f.unlink()
    page = browser.open(report.write_report(run))
    assert page.inner_text(".banner .verdict") == "UNKNOWN"
    assert "results.json is missing" in page.inner_text(".problems")
    assert page.get_attribute("#latency", "data-points") == str(completions(run))
    assert browser.errors == []


def test_links_to_raw_history_results_and_node_logs_resolve(violating_run):
    html = (violating_run / "report.html").read_text()
    for href in ("history.jsonl", "results.json", "test.json", "nodes/n1/node.log"):
        assert f'href="{href}"' in html
        assert (violating_run / href).exists()


def test_an_interrupted_run_says_so_and_lists_its_errors(tmp_path):
    run = make_run(tmp_path, n_ops=80)
    res = json.loads((run / "results.json").read_text())
    res.update(valid="unknown", interrupted=True, partial=True, errors=["interrupted (Ctrl-C)"],
               stats={"availability": {"overall": 0.5, "during_faults": 0.25}},
               perf={"ops_per_s": 12.5, "latency_all_ms": {"0.5": 1.5, "0.99": 9.0}})
    (run / "results.json").write_text(json.dumps(res))
    html = report.write_report(run).read_text()
    assert "the run was interrupted (Ctrl-C) before it finished" in html
    assert "run error: interrupted (Ctrl-C)" in html and "the history is partial" in html
    for figure in ("50.0%", "25.0%", "12.5", "1.50 ms", "9.00 ms"):
        assert f'<div class="n">{figure}</div>' in html


def test_the_fault_schedule_and_error_markers_place_the_failure_among_the_faults(violating_run, browser):
    page = browser.open(violating_run / "report.html")
    assert page.locator("#faults tbody tr").count() == 4
    assert "n1: cut off from n2, n3" in page.text_content("#faults")
    part = failing_partition(violating_run)
    bad = next(o for o in part["violation"]["operations"] if o["id"] == part["violation"]["op"])
    errors = page.evaluate("() => window.raftlabReport.data.errors")
    assert errors == [[bad["invoke"]["time"] // 1000, part["key"]]]


def test_opening_the_report_at_first_error_selects_the_failing_operation(violating_run, browser):
    page = browser.open((violating_run / "report.html").resolve().as_uri() + "#first-error")
    assert page.locator(".bar.failing.selected").count() == 1
    assert "CANNOT BE LINEARIZED" in page.inner_text(".lin-detail")
    assert browser.errors == []


ETCD_LOG = """\
{"level":"info","ts":"2025-11-26T14:40:00.100Z","caller":"embed/etcd.go:305","msg":"starting an etcd server","name":"%(name)s"}
{"level":"info","ts":"2025-11-26T14:40:01.000Z","caller":"raft/raft.go:706","msg":"%(id)s became follower at term 1"}
%(extra)s"""


def test_etcd_logs_become_the_same_timeline_with_member_ids_named(tmp_path):
    run = make_run(tmp_path, n_ops=40)
    ids = {"n1": "aa01", "n2": "bb02", "n3": "cc03"}
    extra = {
        "n1": '{"level":"info","ts":"2025-11-26T14:40:02.000Z","msg":"aa01 became candidate at term 2"}\n'
              '{"level":"info","ts":"2025-11-26T14:40:02.010Z","msg":"aa01 became leader at term 2"}\n'
              '{"level":"info","ts":"2025-11-26T14:40:02.011Z","msg":"raft.node: aa01 elected leader aa01 at term 2"}\n',
        "n2": '{"level":"info","ts":"2025-11-26T14:40:02.020Z","msg":"raft.node: bb02 elected leader aa01 at term 2"}\n',
        "n3": 'not json at all\n',
    }
    for n in ids:
        (run / "nodes" / n / "node.log").unlink()
        (run / "nodes" / n / "etcd.log").write_text(ETCD_LOG % {"name": n, "id": ids[n], "extra": extra[n]})
    loaded = report.load_run(run)
    lanes = {lane["node"]: lane["segs"] for lane in report.node_lanes(loaded, report.fault_intervals(
        [], [], 10**10), 10**10)}
    roles = {n: [(s[2], s[3], s[4]) for s in segs] for n, segs in lanes.items()}
    assert roles["n1"] == [("follower", None, None), ("follower", 1, None), ("candidate", 2, None),
                           ("leader", 2, "n1"), ("leader", 2, "n1")]
    assert roles["n2"] == [("follower", None, None), ("follower", 1, None), ("follower", 2, "n1")]
    assert roles["n3"] == [("follower", None, None), ("follower", 1, None)]
    assert lanes["n1"][0][0] == 100_000  # placed by test.json's start time (14:40:00 UTC)


@pytest.mark.parametrize("kind, value, expected", [
    ("loss", {"target": "one", "nodes": ["n1"], "probability": 0.2}, {"n1": "loss 20% of packets"}),
    ("delay", {"target": "one", "nodes": ["n2"], "delay_ms": 50}, {"n2": "delay 50 ms"}),
    ("member", {"removed": "n2"}, {"n2": "removed"}),
    ("clock", {"kind": "strobe", "nodes": ["n3"], "delta_ms": 250.0}, {"n3": "clock strobe +250 ms"}),
    ("clock", {"kind": "bump", "offsets_ms": {"n1": -1500.0}}, {"n1": "clock −1.5 s"}),
    ("partition", {"kind": "bridge", "drops": {"n1": ["n3"], "n3": ["n1"]}},
     {"n1": "cut off from n3", "n3": "cut off from n1"}),
])
def test_each_nemesis_description_becomes_words_per_node(kind, value, expected):
    assert report.per_node_effect(kind, value, {"n1", "n2", "n3"}) == expected


def test_a_run_that_died_before_any_operation_still_gets_a_page(tmp_path, browser):
    run = tmp_path / "t" / "20251126T150000"
    run.mkdir(parents=True)
    (run / "test.json").write_text(json.dumps({"name": "t", "db": "raftnode", "nodes": ["n1"]}))
    (run / "history.jsonl").write_text("")
    page = browser.open(report.write_report(run))
    assert page.inner_text(".banner .verdict") == "UNKNOWN"
    assert page.get_attribute("#latency", "data-points") == "0"
    assert browser.errors == []


def test_the_failure_view_names_the_node_each_process_sent_to(violating_run, browser):
    page = browser.open(violating_run / "report.html")
    labels = [t for t in page.locator(".lin-labels div").all_inner_texts() if t]
    assert labels and all(re.fullmatch(r"process \d+ \u00b7 n[123]", t) for t in labels), labels
    page.hover(".bar.failing")
    tip = page.inner_text("#tooltip")
    assert re.search(r" on n[123] ", tip.splitlines()[0])  # the node that answered the bad op
    assert re.search(r" on n[123] cannot take effect", page.inner_text(".lin-summary"))
    heads = [h.text_content() for h in page.locator("table.steps th").all()]
    assert heads == ["step", "process", "node", "operation", "state after"]


def test_the_op_timeline_draws_every_completed_op_and_names_it_on_hover(violating_run, browser):
    page = browser.open(violating_run / "report.html")
    canvas = page.locator("#optimeline")
    assert canvas.get_attribute("data-ops") == str(completions(violating_run))
    assert canvas.get_attribute("data-workers") == "5"
    before = canvas.bounding_box()["height"]
    page.click("#ops-in")
    assert canvas.bounding_box()["height"] > before  # zooming in stretches time
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for dy in range(40, 400, 6):  # find a bar under the mouse in worker 0's column
        page.mouse.move(box["x"] + 96 + 20, box["y"] + dy)
        tip = page.inner_text("#tooltip") if page.is_visible("#tooltip") else ""
        if tip.startswith("process "):
            break
    assert tip.startswith("process ") and " on n" in tip and "invoked " in tip
    browser.screenshot("op-timeline", selector="section#ops")
    assert browser.errors == []


def test_availability_over_time_and_the_tables_by_f_and_by_error_are_shown(violating_run, browser):
    page = browser.open(violating_run / "report.html")
    assert int(page.get_attribute("#availability", "data-bins")) > 10
    assert page.get_attribute("#availability", "data-stalls") == "0"
    assert page.locator("#by-f tbody tr").count() == 3  # read, write, cas
    answer = page.locator("#errors tr.answer")
    assert "cas-mismatch" in answer.inner_text() and "not an outage" in answer.inner_text()
    browser.screenshot("availability", selector="section:has(#availability)")
    browser.screenshot("counts-by-f-and-error", selector="section:has(#by-f)")
    assert browser.errors == []
