"""raftnode stays linearizable under kill -9 and SIGSTOP, judged by raftlab's own checker.

A small Jepsen run without the fleet: 6 client threads do random read/write/cas on 3 keys
against a 3-node loopback cluster while a nemesis kills (kill -9 + restart) and pauses
(SIGSTOP/SIGCONT) random nodes and the leader. Completions follow Jepsen's rules: a write
without an answer is ``info`` (and its worker continues as a new process), a read without
one is ``fail``. The same run with the ``local-reads`` switch must be caught.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from checker.formats import load
from checker.history import Op, write_jsonl
from checker.linearizability import check
from checker.models import load_model
from raftnode.client import Client
from raftnode.localcluster import LocalCluster

WORKERS = 6
DURATION_S = 10.0


class Recorder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic_ns()

    def __call__(self, type_: str, process: int | str, f: str, value=None, key=None, error=None) -> None:
        with self.lock:
            self.ops.append(Op(index=len(self.ops), time=time.monotonic_ns() - self.t0, type=type_,
                               process=process, f=f, value=value, key=key, error=error))


def worker(cl: LocalCluster, rec: Recorder, w: int, stop: float) -> None:
    rng = random.Random(w)
    process = w
    client = Client(cl.addrs[rng.choice(list(cl.addrs))], timeout=2.0)
    while time.monotonic() < stop:
        key, f = f"k{rng.randrange(3)}", rng.choice(["read", "write", "cas"])
        value = None if f == "read" else rng.randrange(5) if f == "write" else [rng.randrange(5), rng.randrange(5)]
        rec("invoke", process, f, value, key)
        if f == "read":
            r = client.get(key)
        elif f == "write":
            r = client.put(key, value)
        else:
            r = client.cas(key, value[0], value[1])
        if r["status"] == "ok":
            rec("ok", process, f, r["value"] if f == "read" else value, key)
        elif r["status"] == "fail" or f == "read":
            rec("fail", process, f, value, key, r.get("error"))
        else:
            rec("info", process, f, value, key, r.get("error"))
            process += WORKERS  # Jepsen: a crashed process never invokes again
        if r["status"] != "ok" and r.get("error") in ("connection-refused", "connection-lost", "timeout"):
            client.close()
            client = Client(cl.addrs[rng.choice(list(cl.addrs))], timeout=2.0)
    client.close()


def nemesis(cl: LocalCluster, rec: Recorder, stop: float) -> None:
    rng = random.Random(42)
    while time.monotonic() < stop - 1.5:
        time.sleep(0.7)
        node = rng.choice(list(cl.addrs))
        kind = rng.choice(["kill", "kill-leader", "pause"])
        if kind == "kill-leader":
            with contextlib.suppress(TimeoutError):  # mid-election: any node will do
                node = cl.wait_leader(timeout=2)
        rec("info", "nemesis", kind, node)
        if kind == "pause":
            cl.procs[node].send_signal(signal.SIGSTOP)
            time.sleep(rng.uniform(0.2, 1.0))
            cl.procs[node].send_signal(signal.SIGCONT)
        else:
            cl.kill(node)
            time.sleep(rng.uniform(0.2, 1.0))
            cl.start(node)


@pytest.mark.parametrize("unsafe", [(), ("local-reads",)], ids=["safe", "local-reads"])
def test_three_nodes_stay_linearizable_under_kills_and_pauses_unless_unsafe(
    tmp_path: Path, unsafe: tuple[str, ...]
) -> None:
    rec = Recorder()
    with LocalCluster(tmp_path / "cluster", 3, unsafe=unsafe) as cl:
        cl.wait_leader()
        stop = time.monotonic() + DURATION_S
        threads = [threading.Thread(target=worker, args=(cl, rec, w, stop)) for w in range(WORKERS)]
        threads.append(threading.Thread(target=nemesis, args=(cl, rec, stop)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    path = tmp_path / "history.jsonl"
    write_jsonl(rec.ops, path)
    oks = sum(1 for o in rec.ops if o.type == "ok")
    faults = sum(1 for o in rec.ops if o.process == "nemesis")
    assert oks > 500 and faults >= 5, (oks, faults)  # the run did work and did hurt
    result = check(load(path), load_model("cas-register"), timeout=120)
    if unsafe:  # the same run must catch reads served from a paused or lagging node's state
        assert result.valid is False, "local-reads went unnoticed"
    else:
        assert result.valid is True, f"not linearizable: see {path}"
