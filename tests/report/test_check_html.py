"""``checker.visualize.write_html``: the standalone view behind ``raftlab check --html``."""

from __future__ import annotations

from pathlib import Path

from checker import visualize
from tests.report.synthetic import check, make_history


def test_standalone_view_of_a_violation_renders_and_jumps_to_the_error(tmp_path, browser):
    ops, _ = make_history(300, seed=3, violate=True)
    result = check(ops)
    out = visualize.write_html(result, ops, tmp_path / "check.html")
    page = browser.open(out)
    assert page.inner_text(".banner .verdict") == "INVALID"
    page.click("button.jump")
    assert "CANNOT BE LINEARIZED" in page.inner_text(".lin-detail")
    page.hover(".bar.failing")
    assert "state before it:" in page.inner_text("#tooltip")
    browser.screenshot("check-html", full_page=False)
    assert browser.errors == []


def test_standalone_view_of_a_valid_history_says_there_is_nothing_to_draw(tmp_path, browser):
    ops, _ = make_history(100, seed=4)
    out = visualize.write_html(check(ops), ops, tmp_path / "ok.html")
    page = browser.open(out)
    assert page.inner_text(".banner .verdict") == "VALID"
    assert "no counterexample" in page.inner_text("main")
    assert browser.errors == []


def test_a_violation_without_operations_is_drawn_from_the_history(tmp_path):
    """Results that carry only the op ids (no ``operations`` list) still give a full view."""
    ops, result = make_history(300, seed=5, violate=True)
    [part] = [p for p in visualize.partitions(result) if p.valid is False]
    assert part.operations is None
    view = visualize.view_data(part, ops)
    assert view["fail"] is not None and len(view["steps"]) == len(part.steps)
    failing = view["ops"][view["fail"]]
    assert failing[4] == "read"


def test_a_huge_partition_is_cut_to_a_window_that_ends_at_the_failure():
    ops, result = make_history(12000, seed=6, violate=True, keys=["k0", "k1"], duration_s=60)
    [part] = [p for p in visualize.partitions(result) if p.valid is False]
    view = visualize.view_data(part, ops)
    assert len(view["ops"]) <= visualize.MAX_VIEW_OPS + 1
    assert view["fail"] is not None and view["omitted"] > 0
    assert len(view["steps"]) + view["omitted"] == len(part.steps)


def test_a_porcupine_kv_history_without_timestamps_is_drawn_in_history_order(tmp_path, browser, peer_histories):
    from checker import check, load_model
    from checker.formats import load

    hist = load(str(peer_histories / "kv" / "c10-bad.txt"))
    result = check(hist, load_model("kv"), timeout=60).to_dict()
    assert result["valid"] is False
    out = visualize.write_html(result, hist.ops, tmp_path / "c10-bad.html")
    page = browser.open(out)
    page.click("#first-error")
    page.hover(".bar.failing")  # nothing drawn over it: every call and return has its column
    assert "CANNOT BE LINEARIZED" in page.inner_text("#tooltip")
    assert "no timestamps" in page.inner_text("#tooltip")
    xs = page.evaluate("""() => [...document.querySelectorAll('details[open] .bar rect')]
        .map(r => [r.getAttribute('y'), +r.getAttribute('x'), +r.getAttribute('x') + +r.getAttribute('width')])""")
    rows: dict[str, list[tuple[float, float]]] = {}
    for y, x0, x1 in xs:
        rows.setdefault(y, []).append((x0, x1))
    for spans in rows.values():  # one process never has two operations at once
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    browser.screenshot("porcupine-kv", full_page=False)
    assert browser.errors == []


def test_the_failing_operation_can_be_reached_by_keyboard(tmp_path, browser):
    ops, _ = make_history(200, seed=8, violate=True)
    page = browser.open(visualize.write_html(check(ops), ops, tmp_path / "k.html"))
    page.focus(".bar.failing")
    page.keyboard.press("Enter")
    assert "CANNOT BE LINEARIZED" in page.inner_text(".lin-detail")
    assert "process" in page.get_attribute(".bar.failing", "aria-label")


def test_selecting_an_operation_shows_its_own_longest_partial_linearization(tmp_path, browser, peer_histories):
    from checker import check, load_model
    from checker.formats import load

    hist = load(str(peer_histories / "kv" / "c10-bad.txt"))
    result = check(hist, load_model("kv"), timeout=60).to_dict()
    views = {}
    for part in visualize.partitions(result):
        if part.valid is False:
            views[part.label] = visualize.view_data(part, hist.ops)
    # an operation whose longest partial linearization is not the prefix drawn for its key
    key, row, partial = next(
        (k, r, v["partials"][r[10]]) for k, v in views.items() for r in v["ops"]
        if r[10] is not None and [s[0] for s in v["partials"][r[10]]] != [s[0] for s in v["steps"]])
    page = browser.open(visualize.write_html(result, hist.ops, tmp_path / "p.html"))
    page.locator(f"#lin-{visualize.anchor(key)} > summary").click()
    page.locator(f"#lin-{visualize.anchor(key)} .bar[data-index='{row[8]}']").click()
    assert page.locator(f"#lin-{visualize.anchor(key)} .partial circle").count() == len(partial)
    assert "longest partial linearization containing it" in page.inner_text(
        f"#lin-{visualize.anchor(key)} .lin-detail")
    assert browser.errors == []


def test_write_html_takes_the_check_result_object_too(tmp_path):
    from checker import check as run_check
    from checker import load_model

    ops, _ = make_history(120, seed=9, violate=True)
    client = [op for op in ops if op.process != "nemesis"]
    result = run_check(client, load_model("cas-register"), timeout=30)
    a = visualize.write_html(result, ops, tmp_path / "a.html", title="t").read_text()
    b = visualize.write_html(result.to_dict(), ops, tmp_path / "b.html", title="t").read_text()
    assert a == b and a.count("\"anchor\"") == 1  # the one bad key is drawn


def test_several_histories_get_one_page_each_next_to_the_target():
    assert visualize.html_path("out/check.html", "h/a.jsonl", many=False).as_posix() == "out/check.html"
    assert visualize.html_path("out/check.html", "h/etcd_002.log", many=True).as_posix() == \
        "out/check-etcd_002.html"


def test_raftlab_check_html_draws_the_violation_of_a_history_file(tmp_path, browser):
    import shutil

    from tester.cli import main

    example = Path(__file__).resolve().parents[2] / "examples" / "cas-register-invalid.jsonl"
    out = tmp_path / "check.html"
    assert main(["check", str(example), "--html", str(out)]) == 1
    page = browser.open(out)
    assert page.inner_text(".banner .verdict") == "INVALID"
    page.click("#first-error")
    assert "CANNOT BE LINEARIZED" in page.inner_text(".lin-detail")
    assert browser.errors == []
    both = tmp_path / "two"
    both.mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        shutil.copy(example, both / name)
    assert main(["check", str(both), "--html", str(tmp_path / "many.html")]) == 1
    assert (tmp_path / "many-a.html").exists() and (tmp_path / "many-b.html").exists()
