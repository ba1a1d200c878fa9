"""Porcupine's public histories get the verdicts its SOURCE.md gives (read in place)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from checker import check, load_model
from checker.formats import load
from checker.models import KV

ETCD = [f"etcd_{n:03d}.log" for n in range(103) if n != 95]  # 095 is empty upstream
KV_LOGS = [f"c{c}-{v}.txt" for c in ("01", "10", "50") for v in ("ok", "bad")]


def expected_etcd(peer: Path) -> set[str]:
    src = (peer / "SOURCE.md").read_text()
    m = re.search(r"etcd linearizable[^:]*: ([\d ]+)\(", src)
    assert m, "SOURCE.md no longer lists the linearizable etcd histories"
    return {f"etcd_{n}.log" for n in m.group(1).split()}


def test_source_lists_23_linearizable_etcd_histories(peer_histories):
    assert len(expected_etcd(peer_histories)) == 23


@pytest.mark.parametrize("name", ETCD)
def test_etcd_history_gets_porcupines_verdict(peer_histories, name):
    hist = load(peer_histories / "jepsen" / name)
    assert hist.format == "porcupine-etcd"
    result = check(hist, load_model("cas-register"), timeout=60)
    assert result.valid is (name in expected_etcd(peer_histories))
    if result.valid is False:
        violation = result.partitions[0].violation
        assert violation["op"] is not None and violation["prefix"]


# Porcupine checks its 50-client logs only per key (its own unpartitioned tests stop at 10
# clients, which take it about a minute each); so do these.
UNPARTITIONED = [n for n in KV_LOGS if not n.startswith("c50")]


@pytest.mark.parametrize("name", KV_LOGS)
def test_kv_history_by_key_gets_porcupines_verdict(peer_histories, name):
    hist = load(peer_histories / "kv" / name)
    assert hist.format == "porcupine-kv" and hist.default_initial == ""
    # a bad history is settled by its first invalid partition, as in Porcupine
    result = check(hist, KV(hist.default_initial), timeout=60, explain=False,
                   first_violation=True)
    assert result.valid is name.endswith("-ok.txt")


@pytest.mark.parametrize("name", UNPARTITIONED)
def test_kv_history_as_one_partition_gets_porcupines_verdict(peer_histories, name):
    hist = load(peer_histories / "kv" / name)
    result = check(hist, KV(hist.default_initial, partitioned=False), timeout=60)
    assert result.stats["partitions"] == 1
    assert result.valid is name.endswith("-ok.txt")


@pytest.mark.parametrize("name", ["c10-ok.txt", "c10-bad.txt", "c50-ok.txt"])
def test_kv_every_partition_gets_a_verdict(peer_histories, name):
    hist = load(peer_histories / "kv" / name)
    result = check(hist, KV(hist.default_initial), timeout=60)
    verdicts = {p.key: p.valid for p in result.partitions}
    assert "unknown" not in verdicts.values()
    assert result.valid is name.endswith("-ok.txt")


def test_empty_etcd_history_is_trivially_linearizable(peer_histories):
    hist = load(peer_histories / "jepsen" / "etcd_095.log")
    assert hist.ops == []
    assert check(hist, load_model("cas-register")).valid is True
