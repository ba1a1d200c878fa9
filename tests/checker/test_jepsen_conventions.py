"""Jepsen's and Knossos' conventions as a Jepsen user meets them in ``raftlab check``: nil
reads, empty histories, the independent-workload hint, skipped partitions, text output."""

from __future__ import annotations

import json

from checker import check, load_model
from checker.formats import parse
from tester.cli import main

# a Knossos-style cas-register history (initial value 0): reads that returned nil, a read
# with no :value at all, and an :info read, none of which says anything about the value
KNOSSOS = """\
[{:process 0, :type :invoke, :f :write, :value 3}
 {:process 0, :type :ok, :f :write, :value 3}
 {:process 1, :type :invoke, :f :read, :value nil}
 {:process 1, :type :ok, :f :read, :value nil}
 {:process 2, :type :invoke, :f :read}
 {:process 2, :type :ok, :f :read}
 {:process 3, :type :invoke, :f :read, :value nil}
 {:process 3, :type :info, :f :read, :value nil}
 {:process 0, :type :invoke, :f :cas, :value [3 4]}
 {:process 0, :type :ok, :f :cas, :value [3 4]}
 {:process 1, :type :invoke, :f :read, :value nil}
 {:process 1, :type :ok, :f :read, :value 4}]
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_nil_reads_in_jepsen_edn_are_unknown_as_in_knossos(tmp_path, capsys):
    path = _write(tmp_path, "history.edn", KNOSSOS)
    assert main(["check", path, "--model", "cas-register", "--initial", "0"]) == 0
    out = capsys.readouterr().out
    assert "nil reads unknown (2)" in out  # the :info read is dropped anyway


def test_nil_reads_as_values_make_the_same_history_not_linearizable(tmp_path, capsys):
    path = _write(tmp_path, "history.edn", KNOSSOS)
    code = main(["check", path, "--model", "cas-register", "--initial", "0",
                 "--nil-reads", "value", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["histories"][0]["nil_reads"] == "value"


def test_raftlab_jsonl_reads_nil_as_a_value_by_default():
    rows = [{"type": "invoke", "process": 0, "f": "write", "value": 1},
            {"type": "ok", "process": 0, "f": "write", "value": 1},
            {"type": "invoke", "process": 0, "f": "read", "value": None},
            {"type": "ok", "process": 0, "f": "read", "value": None}]
    hist = parse("\n".join(json.dumps(r) for r in rows), "h.jsonl")
    result = check(hist, load_model("cas-register"))
    assert result.valid is False and result.nil_reads == "value"
    again = check(hist, load_model("cas-register"), nil_reads="unknown")
    assert again.valid is True and again.stats["nil_reads"] == 1
    assert again.to_dict()["nil_reads"] == "unknown"


def test_a_history_without_client_operations_is_unknown_nothing_was_tested(tmp_path, capsys):
    empty = _write(tmp_path, "empty.jsonl", "")
    comments = _write(tmp_path, "comments.edn", "; nothing ran\n;; at all\n")
    nemesis = _write(tmp_path, "nemesis.edn",
                     "{:process :nemesis, :type :info, :f :start, :value nil}\n")
    for path in (empty, comments, nemesis):
        assert main(["check", path]) == 2, path
        assert "nothing was tested" in capsys.readouterr().out
        assert main(["check", path, "--allow-empty"]) == 0, path
        capsys.readouterr()


def test_key_value_pairs_without_independent_get_a_hint(tmp_path, capsys):
    path = _write(tmp_path, "history.edn",
                  "{:process 0, :type :invoke, :f :write, :value [1 5]}\n"
                  "{:process 0, :type :ok, :f :write, :value [1 5]}\n"
                  "{:process 0, :type :invoke, :f :read, :value [1 nil]}\n"
                  "{:process 0, :type :ok, :f :read, :value [1 6]}\n")
    main(["check", path, "--model", "register"])
    assert "hint: every client value is a [key value] pair" in capsys.readouterr().out
    main(["check", path, "--model", "register", "--independent"])
    assert "hint" not in capsys.readouterr().out


def test_first_violation_reports_unsearched_keys_as_skipped(tmp_path, capsys):
    rows = []
    for key in range(3):  # keys 1 and 2 are longer: key 0 is searched first
        for _ in range(1 + 3 * key):
            rows += [{"type": "invoke", "process": key, "f": "write", "key": key, "value": 1},
                     {"type": "ok", "process": key, "f": "write", "key": key, "value": 1}]
    rows += [{"type": "invoke", "process": 9, "f": "read", "key": 0, "value": None},
             {"type": "ok", "process": 9, "f": "read", "key": 0, "value": 7}]
    path = _write(tmp_path, "h.jsonl", "\n".join(json.dumps(r) for r in rows))
    assert main(["check", path, "--model", "kv", "--first-violation"]) == 1
    out = capsys.readouterr().out
    assert "1 not, 0 unknown, 2 skipped" in out
    assert "key 1: skipped [" in out and "key 2: skipped [" in out


def test_text_names_process_and_key_and_sorts_keys_naturally(tmp_path, capsys):
    rows = []
    for n, key in enumerate(["k10", "k2", "k1"]):
        rows += [{"type": "invoke", "process": n, "f": "write", "key": key, "value": 1},
                 {"type": "ok", "process": n, "f": "write", "key": key, "value": 1}]
    rows += [{"type": "invoke", "process": 5, "f": "read", "key": "k2", "value": None},
             {"type": "ok", "process": 5, "f": "read", "key": "k2", "value": 49}]
    path = _write(tmp_path, "h.jsonl", "\n".join(json.dumps(r) for r in rows))
    assert main(["check", path, "--model", "kv"]) == 1
    out = capsys.readouterr().out
    assert 'process 5, key "k2": read() -> 49' in out
    assert out.index('key "k1":') < out.index('key "k2":') < out.index('key "k10":')


def test_check_operations_takes_a_plain_list_as_porcupine_does():
    from checker import check_operations

    model = load_model("cas-register", 0)
    good = [(0, 0, 10, ("write", 1), None),
            (1, 5, 15, ("read", None), 1),        # overlaps the write: may see it
            (2, 20, None, ("write", 2), None),    # crashed: may take effect, or never
            (1, 30, 40, ("read", None), 1)]
    assert check_operations(model, good).valid is True
    stale = [(0, 0, 10, ("write", 1), None), (1, 20, 30, ("read", None), 0)]
    assert check_operations(model, stale).valid is False
    keyed = [(0, 0, 10, ("write", "x", 1), None), (1, 20, 30, ("read", "y", None), None)]
    assert check_operations(load_model("kv"), keyed).valid is True


def test_the_html_view_says_which_nil_read_convention_applied(tmp_path, capsys):
    path = _write(tmp_path, "history.edn", KNOSSOS)
    page = tmp_path / "view.html"
    main(["check", path, "--model", "cas-register", "--initial", "0", "--html", str(page)])
    assert "nil reads: unknown (Knossos: legal in any state)" in page.read_text()
    main(["check", path, "--model", "cas-register", "--initial", "0", "--nil-reads", "value",
          "--html", str(page)])
    assert "nil reads: a value (the key was absent)" in page.read_text()
