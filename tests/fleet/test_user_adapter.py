"""A user's own adapter, loaded by import path, drives its system on a real fleet."""

from __future__ import annotations

import pytest

from tester import control
from tester.db import DB, Client, load_db

from .conftest import local_fleet, skip_unless_root_tools


def test_example_adapter_loads_by_import_path_and_satisfies_the_protocols() -> None:
    db = load_db("tester.dbs.example:SingleServerDB")
    assert isinstance(db, DB)
    assert db.name == "example-kv"
    from tester.dbs.example import ExampleClient

    assert isinstance(ExampleClient(("127.0.0.1", 7400)), Client)


@pytest.mark.e2e
def test_example_adapter_serves_every_client_and_a_killed_server_fails_reads() -> None:
    skip_unless_root_tools()
    db = load_db("tester.dbs.example:SingleServerDB")
    with local_fleet("flex", 2) as (_f, inv, remotes):
        control.on_all(remotes, lambda r: db.setup(r, r.node, inv.nodes, {}))
        db.wait_ready(remotes, inv.nodes, timeout=10)
        c1, c2 = db.client({}), db.client({})
        c1.open(inv.node("n1"))
        c2.open(inv.node("n2"))
        assert c1.invoke("write", "x", 1, 2) == ("ok", 1, None)
        assert c2.invoke("cas", "x", [1, 2], 2) == ("ok", [1, 2], None)
        assert c1.invoke("cas", "x", [1, 3], 2) == ("fail", [1, 3], "cas-mismatch")
        assert c2.invoke("read", "x", None, 2) == ("ok", 2, None)
        db.kill(remotes["n1"], inv.node("n1"))
        assert c1.invoke("read", "x", None, 2)[0] == "fail"
        assert c2.invoke("write", "x", 5, 2)[0] == "info"
        control.on_all(remotes, lambda r: db.teardown(r, r.node))
