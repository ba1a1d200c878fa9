"""Nothing from a run is ever interpreted as markup or script: a hostile key, value or setting
shows up as text, and no element or script it spells out comes to life."""

from __future__ import annotations

import json

from checker import visualize
from checker.history import read_jsonl
from tester import report
from tests.report.synthetic import check, make_run

HOSTILE = '</script><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\u2028&amp;'


def test_hostile_key_value_and_setting_render_as_text(tmp_path, browser):
    run = make_run(tmp_path, n_ops=300, violate=True, keys=["k0", HOSTILE, "k2"], hostile=HOSTILE,
                   checker_result=check)
    res = json.loads((run / "results.json").read_text())
    assert [p["key"] for p in res["checker"]["partitions"] if p["valid"] is False] == [HOSTILE]
    html = report.write_report(run).read_text()
    assert "<img" not in html and "</script><img" not in html
    page = browser.open(run / "report.html")
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 3  # the data block and the two inline scripts
    assert HOSTILE in page.inner_text("#keys")
    assert HOSTILE in page.text_content("#config")  # inside a closed <details>
    assert HOSTILE in page.inner_text(".lin > summary code")
    page.click("button.jump")
    assert page.locator(".bar.failing.selected").count() == 1
    browser.screenshot("hostile-values")
    assert browser.errors == []


def test_script_data_cannot_close_its_script_element():
    s = visualize.json_for_script({"v": HOSTILE})
    assert "<" not in s and ">" not in s and "&" not in s and "\u2028" not in s
    assert json.loads(s) == {"v": HOSTILE}


def test_index_pages_escape_run_names(tmp_path):
    run = make_run(tmp_path, n_ops=50, name="evil", extra_test={"name": HOSTILE, "db": HOSTILE})
    html = report.render_index("runs", [report.summarize(run)], tmp_path)
    assert "<img" not in html and HOSTILE not in html
    assert report.esc(HOSTILE) in html
    assert len(read_jsonl(run / "history.jsonl")) > 0
