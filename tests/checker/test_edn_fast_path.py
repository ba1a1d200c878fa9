"""The fast EDN path for Jepsen's line-per-op histories reads exactly what the full reader
reads, and hands everything else to it."""

from __future__ import annotations

import json

import pytest

from checker.edn import Reader, fast_json_pieces, fast_json_rows
from checker.formats import parse

JEPSEN = """\
{:type :invoke, :f :read, :value nil, :process 0, :time 1000, :index 0}
{:type :invoke, :f :cas, :value [1 2], :process 1, :time 2000, :index 1}
{:type :ok, :f :read, :value 3, :process 0, :time 3000, :index 2}
{:type :info, :f :start-partition, :value [:isolated nil], :process :nemesis, :time 3500}

{:type :fail, :f :cas, :value (1 2), :process 1, :time 4000, :index 3, :error :mismatch}
"""


def _full(text: str) -> list:
    return [form for _, form in Reader(text).records()]


def fast_records(text: str) -> list | None:
    fast = fast_json_rows(text)
    if fast is None:
        return None
    try:
        return [json.loads(row) for row in fast[0]]
    except ValueError:
        return None


@pytest.mark.parametrize("text", [
    JEPSEN,
    "{:a [nil nil nil], :b :read-only, :c :read}\n{:a [:append 1], :b [[:r 1 nil]]}\n",
    "{:a -1.5e3, :b :x/y, :c true, :d false}\n",
    # keywords holding "nil", and nil values beside them
    "{:a :vanilla, :nil-count nil, :b [nil :nil-x nil], :c (nil)}\n",
    "{:f :read-only, :g :read, :h [:read :read-only]}\n",
    # :type and :f are rewritten with their values, unless a value is not a keyword
    "{:type :invoke, :f 5, :value :x}\n{:type :ok, :f :read, :value [:y :z :read]}\n",
    "{:f :cas, :type :fail}\n{:type :info, :f :cas-x}\n",
])
def test_line_per_op_histories_take_the_fast_path_and_read_the_same(text):
    assert fast_records(text) == _full(text)


@pytest.mark.parametrize("text", [
    "{:a 1 :b 2}",                  # no commas between entries
    "{:a 1, :b foo}",               # a symbol
    "{:a 1, :b 1/2}",               # a ratio
    "{:a 1, :b 5N}",                # a big integer
    "{:a 1,  :b 2}",                # other spacing
    "{:a [1  2]}",
    "{:a 1, :b {:c 1}}",            # nested map
    '{:a "text, :b 1"}',            # a string
    "{:a #{1 2}}",                  # a set
    "[{:a 1}\n{:a 2}]",             # one vector holding the history
    "; a comment\n{:a 1}",
])
def test_anything_else_is_left_to_the_full_reader(text):
    assert fast_records(text) is None


@pytest.mark.parametrize("late", [
    "{:type :invoke, :f :reader, :process 0}",        # a value the first lines lack
    "{:type :invoke, :f :read, :process 0, :at 1}",   # a key they lack
    "{:at 1, :type :invoke, :f :read, :process 0}",   # a first key they lack
    "{:type :invoke, :f :write, :process 0}",         # an :f they lack
])
def test_a_keyword_the_first_and_last_lines_lack_is_left_to_the_full_reader(late):
    pair = "{:type :invoke, :f :read, :process 0}\n{:type :ok, :f :read, :process 0}\n"
    text = pair * 100 + late + "\n" + pair * 100
    assert fast_records(text) is None
    assert parse(text, "h.edn").ops == parse(text + ";\n", "h.edn").ops


def test_a_late_info_keeps_the_fast_path():
    pair = "{:type :invoke, :f :read, :process 0}\n{:type :ok, :f :read, :process 0}\n"
    text = pair * 200 + "{:type :info, :f :read, :process 1}\n" + pair * 200
    assert fast_records(text) == _full(text)


def test_a_duplicate_key_is_still_an_error_naming_the_line():
    with pytest.raises(ValueError, match=r"h.edn:2: .*duplicate map key :a"):
        parse("{:a 1, :b 2}\n{:a 1, :a 2}\n", "h.edn")


def test_lines_and_defaults_are_the_full_readers():
    hist = parse(JEPSEN, "h.edn")
    assert hist.lines == [1, 2, 3, 4, 6]
    nemesis = hist.ops[3]
    assert nemesis.index == 3 and nemesis.process == "nemesis" and nemesis.value == ["isolated", None]
    assert hist.ops[4].error == "mismatch" and hist.ops[4].value == [1, 2]


def test_the_whole_text_rewrite_keeps_each_map_on_its_line(monkeypatch):
    from checker import edn

    monkeypatch.setattr(edn, "_REWRITE_CHARS", 50)  # several pieces
    text = "".join(line + "\n" for line in JEPSEN.splitlines() if line) * 3
    pieces = list(fast_json_pieces(text))
    assert len(pieces) > 1 and None not in pieces
    assert [json.loads(row) for row in "\n".join(pieces).split("\n")] == _full(text)
    assert parse(text, "h.edn").ops == parse(text + ";\n", "h.edn").ops


def test_a_blank_line_leaves_the_whole_text_rewrite_for_the_line_by_line_one():
    hist = parse(JEPSEN, "h.edn")  # JEPSEN has a blank line
    assert hist.lines == [1, 2, 3, 4, 6] and hist.ops == parse(JEPSEN + ";\n", "h.edn").ops
