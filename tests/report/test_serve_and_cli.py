"""``raftlab serve`` browses a store (loopback by default, runs coloured by verdict, files
served as they are) and ``raftlab report`` regenerates a run's page."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tester import serve
from tester.cli import main
from tests.report.synthetic import make_run


def result(valid):
    return lambda ops: {"valid": valid, "partitions": [{"key": "k0", "valid": valid}]}


@pytest.fixture
def store(tmp_path):
    make_run(tmp_path, n_ops=60, name="good", checker_result=result(True))
    make_run(tmp_path, n_ops=60, name="bad", checker_result=result(False))
    make_run(tmp_path, n_ops=60, name="hmm", checker_result=result("unknown"))
    main(["report", str(tmp_path / "good" / "latest")])
    return tmp_path


@pytest.fixture
def server(store):
    srv, thread = serve.serve_in_thread(store)
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def test_serve_binds_loopback_by_default():
    srv = serve.make_server(".", port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()


def test_the_index_lists_every_run_coloured_by_its_verdict(server, browser):
    status, ctype, html = get(server + "/")
    assert status == 200 and ctype.startswith("text/html")
    page = browser.open(server + "/")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 3
    got = {rows.nth(i).locator("td").nth(1).inner_text(): rows.nth(i).get_attribute("class")
           for i in range(3)}
    assert got == {"good": "valid", "bad": "invalid", "hmm": "unknown"}
    page.click("text=good")
    assert page.inner_text(".banner .verdict") == "VALID"
    browser.screenshot("serve-index-then-report", full_page=False)
    assert browser.errors == []


def test_serve_gives_raw_files_and_nothing_outside_the_store(server, store):
    run = (store / "good" / "latest").resolve().relative_to(store).as_posix()
    status, ctype, body = get(f"{server}/{run}/history.jsonl")
    assert status == 200 and ctype.startswith("text/plain") and '"invoke"' in body
    status, _, body = get(f"{server}/{run}/")  # a run without report.html: its folder
    assert "history.jsonl" in body
    with pytest.raises(urllib.error.HTTPError) as e:
        get(server + "/../../../etc/passwd")
    assert e.value.code == 404


def test_serve_a_missing_directory_exits_254(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 254
    assert "no such directory" in capsys.readouterr().err


def test_report_command_rewrites_the_page_of_a_run_or_of_the_latest_run(store, capsys):
    latest = (store / "bad" / "latest").resolve()
    assert not (latest / "report.html").exists()
    assert main(["report", str(store / "bad")]) == 0
    assert (latest / "report.html").exists()
    assert capsys.readouterr().out.strip() == str(latest / "report.html")
    (latest / "report.html").write_text("stale")
    assert main(["report", str(latest)]) == 0
    assert "INVALID" in (latest / "report.html").read_text()


def test_report_command_on_something_that_is_not_a_run_exits_254(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 254
    assert "no such directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 254
    err = capsys.readouterr().err
    assert "not a run folder" in err and "Traceback" not in err


def test_the_index_links_campaign_pages(store, tmp_path):
    camp = store / "campaigns" / "gate" / "20251126T150000"
    camp.mkdir(parents=True)
    (camp / "index.html").write_text("<html></html>")
    srv, thread = serve.serve_in_thread(store)
    try:
        _, _, html = get(f"http://127.0.0.1:{srv.server_address[1]}/")
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)
    assert 'href="campaigns/gate/20251126T150000/index.html"' in html


def test_the_index_follows_a_run_whose_results_change(server, store):
    import json
    import os

    _, _, before = get(server + "/")
    assert before.count('<tr class="unknown">') == 1
    res_path = (store / "hmm" / "latest").resolve() / "results.json"
    res = json.loads(res_path.read_text())
    res["valid"] = True
    res_path.write_text(json.dumps(res))
    st = res_path.stat()
    os.utime(res_path, (st.st_atime, st.st_mtime + 5))
    _, _, after = get(server + "/")
    assert after.count('<tr class="unknown">') == 0 and after.count('<tr class="valid">') == 2


def test_a_run_with_unsafe_switches_says_so_in_the_index_and_banner(tmp_path):
    from tester import report

    run = make_run(tmp_path, n_ops=40, extra_test={"unsafe": ["local-reads"]},
                   checker_result=result(False))
    assert report.summarize(run).db == "raftnode (unsafe: local-reads)"
    assert "raftnode (unsafe: local-reads)" in report.write_report(run).read_text()
