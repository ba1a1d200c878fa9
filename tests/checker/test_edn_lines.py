"""Jepsen's line-per-op EDN read straight into ops gives exactly the ops and lines the full
reader gives, compiled or interpreted; whatever it does not read itself goes to the full
reader, a line or the whole text at a time."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.formats import parse, read_edn_fully
from checker.history import HistoryError, Op

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> list[ModuleType]:
    """checker.edn_lines as raftlab imports it (compiled when built), and from its source."""
    from checker import edn_lines  # (after checker's guard: never a stale build)

    spec = importlib.util.spec_from_file_location("edn_lines_source",
                                                  ROOT / "checker" / "edn_lines.py")
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    return [edn_lines, source] if edn_lines.COMPILED else [source]


MODULES = _modules()
IDS = ["compiled", "interpreted"] if len(MODULES) == 2 else ["interpreted"]


def typed(v: Any) -> Any:
    """A value with the type of every part spelled out (True == 1 in Python)."""
    if isinstance(v, (dict, MappingProxyType)):
        return ("map", sorted((typed(k), typed(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", [typed(x) for x in v])
    return (type(v).__name__, v)


def ops_typed(ops: list[Op]) -> list[Any]:
    return [typed([o.index, o.time, o.type, o.process, o.f, o.value, o.key, o.error, o.node,
                   o.extra]) for o in ops]


def full(text: str) -> Any:
    """The full reader's ops and lines, or its error message."""
    try:
        ops, lines = read_edn_fully(text, "h.edn")
    except HistoryError as e:
        return str(e)
    return ops_typed(ops), lines


def fast(module: ModuleType, text: str) -> Any:
    got = module.ops_from_edn_lines(text, "h.edn")
    return None if got is None else (ops_typed(got[0]), got[1])


COMMON = """\
{:type :invoke, :f :read, :value nil, :process 0, :time 1000, :index 0}
{:type :invoke, :f :cas, :key 12, :value [1 2], :process 1, :time 2000, :index 1}
{:type :ok, :f :read, :value [12 -3], :process 0, :time 3000, :index 2}
{:type :info, :f :start, :value :partition, :process :nemesis, :time 3500, :index 3}
{:type :fail, :f :cas, :value [1 2], :process 1, :time 4000, :index 4, :error :mismatch}
{:index 5, :time 4100, :type :invoke, :process 2, :f :append, :value [[:append 1 3] [:r 2 nil]]}
{:type :ok, :process 2, :f :txn, :value [true false "a b"], :node "n1", :time 4200}
{:process 0, :type :invoke, :f :put, :key "6", :value "x 0 1 y"}
{:type :ok, :f :read, :value ["a, b} {:c" "]"], :process 0, :error "#{;}"}
{:type :ok :f :read :value [1,2] :process 0,,  :time 5}
{:type :ok, :f :read, :value [+5 -0 007 -12 123456789012345678901234567890], :process 0}
"""


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_common_lines_are_read_by_the_line_reader_itself(module):
    for n, line in enumerate(COMMON.splitlines()):
        op = module._line(line, 0, len(line), n, {})
        assert op is not None, line
    assert fast(module, COMMON) == full(COMMON)


# Each line the line reader leaves to the full reader, and the whole history still reads as
# the full reader reads it
ODD_LINES = [
    r'{:type :ok, :f :read, :value "say \"hi\"\n", :process 0}',  # escapes
    "{:type :ok, :f :read, :value {:a [1 {:b 2}]}, :process 0}",  # nested map
    "{:type :ok, :f :read, :value #{1 2}, :process 0}",           # a set
    "{:type :ok, :f :read, :value (1 2), :process 0}",            # a list
    '{:type :ok, :f :read, :value #inst "2024-01-01", :process 0}',  # a tagged literal
    "#jepsen.history.Op{:type :ok, :f :read, :value 1, :process 0}",
    "{:type :ok, :f :read, :value 1.5, :process 0}",              # a float
    "{:type :ok, :f :read, :value 1/2, :process 0}",              # a ratio
    "{:type :ok, :f :read, :value 5N, :process 0}",               # a big integer
    "{:type :ok, :f :read, :value x, :process 0}",                # a symbol
    "{:type :ok, :f :read, :value \\c, :process 0}",              # a character
    "{:type :ok, :f :read, :value 1, :process 0} ; a comment",
    "{:type :ok, :f :read, :value #_ 7 1, :process 0}",           # a discarded form
    "{:type :ok, :f :read, :value  1, :process 0}",               # other spacing
    "  {:type :ok, :f :read, :value 1, :process 0}",
    "{:type :ok, :f :read, :value 1, :process 0, :at 17}",        # a field ops do not know
    '{"type" :ok, :f :read, :value 1, :process 0}',               # a string key
    "{:type :ok, :f :read, :value 1, :process 0, :time nil}",     # Jepsen's nil time
    "{:type :ok, :f :read, :value 1, :process 0, :time 12.7}",
]


@pytest.mark.parametrize("module", MODULES, ids=IDS)
@pytest.mark.parametrize("odd", ODD_LINES)
def test_a_line_of_any_other_shape_is_read_by_the_full_reader(module, odd):
    assert module._line(odd, 0, len(odd), 0, {}) is None
    text = COMMON + odd + "\n" + COMMON
    got = fast(module, text)
    assert got is not None and got == full(text)


# Texts the full reader must read whole: what it says (ops or the error naming the line) is
# what a user gets
WHOLE = [
    "[" + COMMON + "]",                                              # one vector
    "(" + COMMON + ")",
    COMMON + "{:type :ok, :f :read,\n :value 1, :process 0}\n",      # a map across lines
    COMMON + '{:type :ok, :f :read, :value "two\nlines", :process 0}\n',
    COMMON + "#_\n{:type :ok, :f :read, :value 1, :process 0}\n",
    COMMON + "{:type :ok, :f :read, :value 1, :value 2, :process 0}\n",  # a duplicate key
    COMMON + "{:type :ok, :f :read, :value 1}\n",                    # no process
    COMMON + "{:type :done, :f :read, :value 1, :process 0}\n",      # a bad type
    COMMON + "{:type :ok, :f :read, :value 1, :process true}\n",
    COMMON + "{:type :ok, :f :read, :value ##NaN, :process 0}\n",
    COMMON + "{:type :ok, :f :read, :value 1, :process 0} {:a 1}\n",  # two forms on a line
    COMMON + "42\n",
    COMMON + "{:type :ok, :f :read, :value [1 2, :process 0}\n",     # unclosed
]


@pytest.mark.parametrize("module", MODULES, ids=IDS)
@pytest.mark.parametrize("text", WHOLE)
def test_a_text_that_is_not_one_form_a_line_or_is_bad_goes_whole_to_the_full_reader(
        module, text):
    assert fast(module, text) is None
    try:
        hist = parse(text, "h.edn", "edn")
    except HistoryError as e:
        assert str(e) == full(text)
    else:
        assert (ops_typed(hist.ops), hist.lines) == full(text)


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_blank_lines_comments_and_crlf_keep_the_full_readers_lines(module):
    text = ("; Jepsen history\n\n" + COMMON.replace("\n", "\r\n", 3) + "   \n;; end\n"
            + "{:type :ok, :f :read, :value 1, :process 0}")  # no final line end
    got = fast(module, text)
    assert got is not None and got == full(text)
    assert got[1][:2] == [3, 4]


@pytest.mark.parametrize("module", MODULES, ids=IDS)
@pytest.mark.parametrize("name", ["c01-ok.txt", "c01-bad.txt", "c10-ok.txt", "c10-bad.txt",
                                  "c50-ok.txt", "c50-bad.txt"])
def test_porcupines_kv_logs_read_as_the_full_reader_reads_them(module, peer_histories, name):
    text = (peer_histories / "kv" / name).read_text()
    got = fast(module, text)
    assert got is not None and len(got[1]) > 50 and got == full(text)


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_keywords_share_one_string_each(module):
    ops, _ = module.ops_from_edn_lines(COMMON * 2)
    again = len(COMMON.splitlines())
    assert ops[0].type is ops[again].type and ops[0].f is ops[again].f


# Random op maps, printed as Clojure prints them or not quite: whatever the line reader
# reads itself must be what the full reader reads, and bad input must keep its error
_ATOMS = st.sampled_from([
    "nil", "true", "false", ":ok", ":read", ":a/b", ":x#y", ":", "sym", "-", "+", "1.5",
    "-2.0e3", "1/2", "5N", "+7", "-0", "007", "-12", "1_0", "##Inf", '""', '"a, b}"',
    r'"q\"x"', r'"\n"', '#inst "2020"', "#{1 2}", "#{1 1}", "{:a 1}", "{:a 1 :a 2}",
    "\\c", "#_ 1 2", "[]", "()", "[1,2]", "[:a:b]", '["a""b"]', "1e", "٣"])
_VALUES = st.recursive(
    _ATOMS | st.integers(-2**70, 2**70).map(str)
    | st.text(st.sampled_from('ab ,{}[]:#;\\"'), max_size=4).map(lambda s: f'"{s}"'),
    lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + " ".join(xs) + "]"),
    max_leaves=6)
_PLAIN = (st.integers(-2**70, 2**70).map(str) | st.sampled_from(["nil", ":x", '"a b"'])
          | st.lists(st.integers(-9, 99).map(str), max_size=3).map(
              lambda xs: "[" + " ".join(xs) + "]"))
_FIELDS = {  # mostly what an op holds, now and then something else
    ":type": st.sampled_from([":invoke", ":ok", ":fail", ":info"] * 3
                             + [":done", '"ok"', "nil"]),
    ":f": st.sampled_from([":read", ":write", ":cas"] * 3 + ['""', '"read"', "5", ":"]),
    ":process": st.sampled_from(["0", "3", ":nemesis"] * 3 + ["-1", "true", "nil", '"x"']),
    ":time": st.sampled_from(["0", "17"] * 3 + ["nil", "1.5", "-3"]),
    ":index": st.sampled_from(["0", "4"] * 3 + ["nil", ":a"]),
    ":value": _PLAIN | _PLAIN | _VALUES, ":key": _PLAIN | _PLAIN | _VALUES,
    ":error": _VALUES,
    ":node": st.sampled_from(['"n1"', ":n1", "nil", "3"]),
    ":at": _VALUES, '"f"': _VALUES,
}


@st.composite
def _line(draw: Any) -> str:
    required = [":type", ":f", ":process"]
    others = [k for k in _FIELDS if k not in required]
    names = draw(st.lists(st.sampled_from(others * 8 + required), max_size=3,
                          unique=True))  # now and then a field twice
    entries = required * (draw(st.integers(0, 5)) > 0) + names
    entries = draw(st.permutations(entries))
    sep = draw(st.sampled_from([", "] * 12 + [" ", ",", "  ", ",\n "]))
    body = sep.join(f"{k} {draw(_FIELDS[k])}" for k in entries)
    return "{" + body + draw(st.sampled_from(["}"] * 12 + ["} ; c", "}  ", "}\r", "} 1"]))


_TEXTS = st.lists(st.one_of(_line(), _line(), _line(), _line(), _line(), _line(),
                            st.sampled_from(["", "; note", "  ", "[", "]"])),
                  min_size=1, max_size=4).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_random_lines_read_as_the_full_reader_reads_them(text):
    want = full(text)
    for module in MODULES:
        got = fast(module, text)
        assert got is None or got == want
    try:
        hist = parse(text, "h.edn", "edn")
    except HistoryError as e:
        assert str(e) == want
    else:
        assert (ops_typed(hist.ops), hist.lines) == want


_PURE = """
import json, sys
from checker.formats import parse
from checker import edn_lines
hist = parse(sys.stdin.read(), "h.edn")
print(json.dumps([edn_lines.COMPILED, [o.to_dict() for o in hist.ops], hist.lines]))
"""


def test_the_interpreted_build_reads_the_same_ops_by_the_text_rewrite():
    env = dict(os.environ, RAFTLAB_PURE="1")
    text = COMMON + ODD_LINES[0] + "\n"
    r = subprocess.run([sys.executable, "-c", _PURE], input=text, cwd=ROOT, env=env,
                       text=True, capture_output=True, check=True)
    compiled, ops, lines = json.loads(r.stdout)
    hist = parse(text, "h.edn")
    assert compiled is False
    assert (ops, lines) == ([o.to_dict() for o in hist.ops], hist.lines)
