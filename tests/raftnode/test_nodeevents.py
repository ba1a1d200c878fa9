"""raftnode's applied-entry records: digests that agree across nodes iff the entries do."""

from __future__ import annotations

import json

from raftnode.nodeevents import applied_record, digest
from raftnode.types import Entry

PUT = {"op": "put", "key": "k", "value": 1, "client": "c1", "seq": 3}
OK = {"status": "ok", "value": 1, "error": None}


def test_a_record_holds_the_digests_of_the_entry_and_its_result_the_command_and_the_ack():
    record = applied_record(Entry(2, 7, "normal", PUT), OK, acked=2)
    index, term, d, r, command, acked = json.loads(record)
    assert (index, term, command, acked) == (7, 2, PUT, 2)
    assert d == digest(["normal", PUT]) and r == digest(OK) and len(d) == 12
    assert json.loads(applied_record(Entry(2, 7, "normal", PUT), OK))[5] is None


def test_equal_commands_agree_whatever_their_key_order_and_different_ones_do_not():
    reordered = dict(reversed(list(PUT.items())))
    same = json.loads(applied_record(Entry(2, 7, "normal", reordered), OK))
    assert same[2] == digest(["normal", PUT])
    other = json.loads(applied_record(Entry(2, 7, "normal", {**PUT, "value": 2}), OK))
    assert other[2] != same[2]
    noop = json.loads(applied_record(Entry(2, 7, "noop", None), None))
    assert noop[4] == "noop" and noop[2] != digest(["normal", None])
