"""History importers: detection, EDN, Porcupine's logs, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.edn import EdnError, Reader
from checker.formats import detect, history_files, load, parse
from checker.history import HistoryError


def test_edn_reads_keywords_nil_strings_numbers_vectors_and_nested_maps():
    text = '{:a :kw, :b nil, :c "s\\"x", :d -3, :e 1.5, :f [1 [2]], :g {:h #{1}}, :i true}'
    (line, form), = Reader(text).records()
    assert line == 1
    assert form == {"a": "kw", "b": None, "c": 's"x', "d": -3, "e": 1.5, "f": [1, [2]],
                    "g": {"h": [1]}, "i": True}


def test_edn_skips_comments_and_discards_and_reads_tagged_literals():
    text = "; a comment\n#_ {:skipped 1}\n#jepsen.history.Op{:type :ok}\n"
    assert [f for _, f in Reader(text).records()] == [{"type": "ok"}]


def test_edn_error_names_the_line():
    with pytest.raises(EdnError) as e:
        list(Reader('{:a 1}\n{:b "unterminated}\n').records())
    assert e.value.line == 2


EDN_VECTOR = """[{:process 0, :type :invoke, :f :write, :value 1}
 {:process 0, :type :ok, :f :write, :value 1}
 {:process :nemesis, :type :info, :f :start, :value nil}
 {:process 1, :type :invoke, :f :cas, :value [1 2]}]
"""


def test_edn_history_as_one_vector_keeps_each_maps_line():
    hist = parse(EDN_VECTOR, "h.edn")
    assert hist.format == "edn"
    assert [o.type for o in hist.ops] == ["invoke", "ok", "info", "invoke"]
    assert hist.ops[2].process == "nemesis"
    assert hist.ops[3].value == [1, 2]
    assert hist.lines == [1, 2, 3, 4]


def test_edn_history_one_map_a_line():
    text = "{:process 0 :type :invoke :f :read :value nil}\n\n{:process 0 :type :ok :f :read :value 3}\n"
    hist = parse(text)
    assert hist.format == "edn" and hist.lines == [1, 3] and hist.ops[1].value == 3


def test_bad_edn_record_names_file_and_line():
    with pytest.raises(HistoryError) as e:
        parse("{:process 0 :type :invoke :f :read}\n{:process 0 :type :done :f :read}\n", "x.edn")
    assert (e.value.path, e.value.line) == ("x.edn", 2)
    assert "type" in e.value.reason


def test_porcupine_etcd_lines_with_tabs_or_spaces():
    text = ("INFO  jepsen.util - 2\t:invoke\t:write\t4\n"
            "INFO  jepsen.util - 2    :ok    :write    4\n"
            "INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]\n"
            "INFO  jepsen.util - 3\t:info\t:cas\t:timed-out\n")
    hist = parse(text)
    assert hist.format == "porcupine-etcd" and hist.default_model == "cas-register"
    assert [(o.process, o.type, o.f, o.value) for o in hist.ops] == [
        (2, "invoke", "write", 4), (2, "ok", "write", 4),
        (3, "invoke", "cas", [1, 2]), (3, "info", "cas", "timed-out")]


def test_porcupine_etcd_garbage_line_names_the_line():
    with pytest.raises(HistoryError) as e:
        parse("INFO  jepsen.util - 2\t:invoke\t:write\t4\nWARN something else\n", "e.log",
              "porcupine-etcd")
    assert e.value.line == 2


def test_porcupine_kv_is_detected_with_empty_string_initial():
    text = '{:process 0, :type :invoke, :f :append, :key "1", :value "x"}\n'
    hist = parse(text)
    assert hist.format == "porcupine-kv" and hist.default_model == "kv"
    assert hist.default_initial == ""


def test_detect_picks_jsonl_edn_and_etcd():
    assert detect('{"type":"invoke","process":0,"f":"read"}\n') == "jsonl"
    assert detect("; comment\n[{:type :invoke}]") == "edn"
    assert detect("{:type :invoke, :process 0}") == "edn"
    assert detect("INFO  jepsen.util - 1\t:invoke\t:read\tnil") == "porcupine-etcd"
    assert detect("\n\n") is None


def test_jsonl_error_names_the_line_counting_blank_lines(tmp_path):
    p = tmp_path / "h.jsonl"
    p.write_text('{"type":"invoke","process":0,"f":"read"}\n\n{"type":"ok","process":0}\n')
    with pytest.raises(HistoryError) as e:
        load(p)
    assert e.value.line == 3 and "'f'" in e.value.reason


def test_unreadable_file_is_a_history_error(tmp_path):
    with pytest.raises(HistoryError):
        load(tmp_path / "missing.jsonl")
    p = tmp_path / "bin.jsonl"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HistoryError, match="UTF-8"):
        load(p)


def test_history_files_of_a_run_folder_is_its_history(tmp_path):
    run = tmp_path / "reports" / "t" / "20260101T000000"
    (run / "nodes").mkdir(parents=True)
    (run / "history.jsonl").write_text("")
    (run / "raftlab.log").write_text("not a history")
    (tmp_path / "reports" / "t" / "latest").symlink_to(run)
    assert history_files(str(tmp_path / "reports")) == [str(run / "history.jsonl")]


def test_bundled_edn_example_checks_and_a_torn_read_of_it_does_not():
    from checker import check, load_model

    path = "examples/multi-register.edn"
    hist = load(path)
    model = load_model("multi-register", {"x": 0, "y": 0})
    assert hist.format == "edn" and check(hist, model).valid is True
    text = Path(path).read_text().replace("[[:read :x 2] [:read :y 1]]",
                                          "[[:read :x 2] [:read :y 0]]")
    assert check(parse(text, path), model).valid is False
