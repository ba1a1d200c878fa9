"""JSON histories of plain records (every field raftlab writes, and no other) are decoded by
msgspec straight into ops; they read exactly as the careful per-line reader reads them, and
whatever is not plain still gets the careful reader's verdict and error."""

from __future__ import annotations

import pytest

from checker.edn import fast_json_rows
from checker.history import HistoryError, Op, _plain_ops, loads, parse_jsonl_text

PLAIN = "\n".join([
    '{"index":0,"time":10,"type":"invoke","process":0,"f":"write","key":"x","value":1}',
    '{"index":1,"time":20,"type":"invoke","process":1,"f":"read","key":"x","value":null}',
    '{"index":2,"time":30,"type":"ok","process":0,"f":"write","key":"x","value":1,'
    '"node":"n1"}',
    '{"index":3,"time":35,"type":"info","process":"nemesis","f":"start","value":["n1"]}',
    '{"index":4,"time":40,"type":"fail","process":1,"f":"read","key":"x","value":null,'
    '"error":"timeout"}',
]) + "\n"


def careful(text: str) -> list[Op]:
    return [Op.from_dict(loads(row), None, n)
            for n, row in enumerate(text.splitlines(), start=1) if row]


def plain(text: str) -> list[Op] | None:
    rows = [r for r in text.splitlines() if r]
    return _plain_ops("[" + ",".join(rows) + "]", len(rows))


def test_plain_records_take_the_fast_path_and_read_as_the_careful_reader_reads():
    assert plain(PLAIN) == careful(PLAIN)
    assert parse_jsonl_text(PLAIN)[0] == careful(PLAIN)


def test_jepsen_edn_rewritten_as_json_takes_the_fast_path():
    edn = ("{:type :invoke, :f :cas, :key 3, :value [1 2], :process 1, :time 2000, :index 0}\n"
           "{:type :ok, :f :cas, :key 3, :value [1 2], :process 1, :time 2500, :index 1}\n")
    rows, _ = fast_json_rows(edn)
    ops = plain("\n".join(rows))
    assert ops is not None and ops[1].value == [1, 2] and ops[1].key == 3


@pytest.mark.parametrize("row", [
    '{"time":10,"type":"invoke","process":0,"f":"read"}',                   # no index
    '{"index":0,"time":1.5,"type":"invoke","process":0,"f":"read"}',        # a float time
    '{"index":0,"time":10,"type":"invoke","process":0,"f":"read","at":1}',  # an extra field
    '{"index":0,"time":10,"type":"invoke","process":0,"f":"read","value":{"a":1}}',
    '{"index":0,"time":10,"type":"invoke","process":0,"f":"read","value":"a:b"}',
    '{"index":0,"time":10,"type":"invoke","process":true,"f":"read"}',
    '{"index":0,"time":10,"type":"invoke","process":0,"f":"read"} {"index":1,"time":10,'
    '"type":"invoke","process":1,"f":"read"}',                               # two on a line
])
def test_records_that_are_not_plain_are_left_to_the_slower_readers(row):
    assert plain(row) is None


def test_extra_fields_are_kept_by_the_slower_reader():
    row = '{"index":0,"time":10,"type":"invoke","process":0,"f":"read","final":true}\n'
    assert parse_jsonl_text(row)[0][0].extra == {"final": True}


@pytest.mark.parametrize("field, value", [
    ("value", "1"), ("key", '"x"'), ("error", "null"), ("node", '"n2"'), ("index", "2"),
])
def test_a_repeated_key_in_a_plain_record_is_still_an_error_naming_the_line(field, value):
    rows = PLAIN.splitlines()
    rows[2] = rows[2][:-1] + f',"{field}":{value}' + "}"
    if field != "node":  # (the record has a node already)
        rows[2] = rows[2][:-1] + f',"{field}":{value}' + "}"
    assert plain("\n".join(rows)) is None
    with pytest.raises(HistoryError, match=rf"h.jsonl:3: .*duplicate key '{field}'"):
        parse_jsonl_text("\n".join(rows) + "\n", "h.jsonl")


@pytest.mark.parametrize("layout", ["plain", "crlf", "blank line", "no final newline"])
def test_the_whole_text_path_reads_what_the_line_by_line_path_reads(layout, monkeypatch):
    from checker import history

    rows = PLAIN.splitlines() * 3
    text = {"plain": "\n".join(rows) + "\n", "crlf": "\r\n".join(rows) + "\r\n",
            "blank line": "\n".join(rows[:4] + [""] + rows[4:]) + "\n",
            "no final newline": "\n".join(rows)}[layout]
    monkeypatch.setattr(history, "PIECE", 100)  # several pieces
    whole = history.ops_from_json_lines(text)
    assert (whole is None) == (layout == "blank line")
    ops, lines = parse_jsonl_text(text)
    assert ops == careful(text)
    assert lines == [n for n, row in enumerate(text.split("\n"), start=1) if row.strip()]


def test_a_long_comment_header_does_not_hide_the_format():
    from checker.formats import detect

    assert detect("; a comment\n" * 10_000 + PLAIN) == "jsonl"
    assert detect("; a comment\n" * 10_000 + "{:type :invoke}\n") == "edn"
