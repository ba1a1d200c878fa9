"""Jepsen client semantics in the workers: ok/fail/info, timed-out reads, fresh processes."""

from __future__ import annotations

from typing import Any

from checker.history import read_jsonl
from tester.memdb import fake_nodes
from tester.runner import ClientWorker, Recorder, RunConfig


class ScriptedClient:
    """Answers each invoke from a script; an exception in the script is raised."""

    opened = 0

    def __init__(self, script: list[Any]):
        self.script = script

    def open(self, node: Any) -> None:
        ScriptedClient.opened += 1
        if self.script and self.script[0] == "refuse-open":
            self.script.pop(0)
            raise ConnectionRefusedError("refused")

    def invoke(self, f: str, key: Any, value: Any, timeout: float):
        r = self.script.pop(0)
        if isinstance(r, BaseException):
            raise r
        return r

    def close(self) -> None:
        pass


class ScriptedDB:
    def __init__(self, script: list[Any]):
        self.script = script

    def client(self, opts: dict) -> ScriptedClient:
        return ScriptedClient(self.script)


def worker(tmp_path, script: list[Any], concurrency: int = 4) -> tuple[ClientWorker, Recorder]:
    rec = Recorder(tmp_path / "history.jsonl")
    cfg = RunConfig(concurrency=concurrency)
    return ClientWorker(1, fake_nodes(3)[1], ScriptedDB(script), cfg, rec,
                        frozenset({"read"})), rec


def test_ok_completion_records_the_returned_value(tmp_path):
    w, rec = worker(tmp_path, [("ok", 7, None)])
    done = w.perform({"f": "read", "key": 1, "value": None})
    assert done["type"] == "ok" and done["value"] == 7
    inv, comp = rec.ops
    assert (inv.type, comp.type, comp.value, comp.process, comp.node) == ("invoke", "ok", 7, 1, "n2")
    assert comp.time >= inv.time


def test_a_timed_out_read_is_a_fail_and_keeps_the_process(tmp_path):
    w, rec = worker(tmp_path, [("info", None, "timeout")])
    assert w.perform({"f": "read", "key": 1, "value": None})["type"] == "fail"
    assert w.process == 1


def test_an_indeterminate_write_is_info_and_the_worker_continues_as_a_new_process(tmp_path):
    w, rec = worker(tmp_path, [("info", 3, "timeout"), ("ok", 4, None)], concurrency=4)
    opened = ScriptedClient.opened
    assert w.perform({"f": "write", "key": 1, "value": 3})["type"] == "info"
    assert w.process == 5  # 1 + concurrency
    w.perform({"f": "write", "key": 1, "value": 4})
    assert ScriptedClient.opened == opened + 2  # a fresh client after the info
    assert [op.process for op in rec.ops] == [1, 1, 5, 5]


def test_an_exception_after_sending_is_info(tmp_path):
    w, rec = worker(tmp_path, [ConnectionResetError("reset by peer")])
    done = w.perform({"f": "cas", "key": 1, "value": [1, 2]})
    assert done["type"] == "info" and "reset by peer" in done["error"]


def test_a_refused_connection_is_a_definite_fail(tmp_path):
    w, rec = worker(tmp_path, ["refuse-open"])
    done = w.perform({"f": "write", "key": 1, "value": 1})
    assert done["type"] == "fail" and done["error"].startswith("connect")
    assert w.process == 1


def test_history_is_flushed_as_ops_complete(tmp_path):
    w, rec = worker(tmp_path, [("ok", 1, None), ("ok", None, None)])
    w.perform({"f": "write", "key": 1, "value": 1})
    w.perform({"f": "read", "key": 1, "value": None})
    on_disk = read_jsonl(tmp_path / "history.jsonl")  # read before close: already flushed
    assert [op.type for op in on_disk] == ["invoke", "ok", "invoke", "ok"]
    assert [op.index for op in on_disk] == [0, 1, 2, 3]
