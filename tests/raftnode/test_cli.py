"""The raftnode command's exit codes: 0 ok, 1 definite failure, 2 unknown outcome, 254 bad args."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from raftnode.cli import main
from raftnode.localcluster import LocalCluster, free_ports


@pytest.mark.parametrize(
    "argv, complaint",
    [
        (["serve", "--id", "n1", "--listen", "127.0.0.1:1", "--peers", "n1", "--data-dir", "d"], "ID=HOST:PORT"),
        (["serve", "--id", "n9", "--listen", "h:1", "--peers", "n1=h:1", "--data-dir", "d"], "not in --peers"),
        (["serve", "--id", "n1", "--listen", "h:1", "--peers", "n1=h:1", "--data-dir", "d",
          "--unsafe", "fast-mode"], "fast-mode"),
        (["serve", "--id", "n1", "--listen", "h:1", "--peers", "n1=h:1", "--data-dir", "d",
          "--election-timeout-ms", "300-150"], "300-150"),
        (["serve", "--id", "n1", "--listen", "h:1", "--peers", "n1=h:1", "--data-dir", "d",
          "--secret-file", "/nonexistent/secret"], "/nonexistent/secret"),
        (["client", "--addr", "localhost", "get", "k"], "HOST:PORT"),
        (["client", "--addr", "h:1", "frobnicate"], "frobnicate"),
        (["client", "--addr", "h:1", "add-member", "--id", "n4"], "--addr"),
        (["client", "--addr", "h:1", "--client", "c1", "put", "k", "1"], "--seq"),
        ([], "COMMAND"),
    ],
)
def test_bad_arguments_exit_254_naming_the_problem(argv, complaint, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    assert code == 254
    assert complaint in capsys.readouterr().err


def test_client_prints_json_and_exits_by_outcome(tmp_path: Path, capsys) -> None:
    with LocalCluster(tmp_path, 1) as cl:
        cl.wait_leader()
        addr = cl.addrs["n1"]
        assert main(["client", "--addr", addr, "put", "k", "word"]) == 0  # not JSON: a string
        assert json.loads(capsys.readouterr().out)["value"] == "word"
        assert main(["client", "--addr", addr, "cas", "k", '"other"', "[1, 2]"]) == 1
        out = json.loads(capsys.readouterr().out)
        assert (out["error"], out["value"]) == ("cas-mismatch", "word")
        assert main(["client", "--addr", addr, "cas", "k", '"word"', "[1, 2]"]) == 0
        capsys.readouterr()
        assert main(["client", "--addr", addr, "get", "k"]) == 0
        assert json.loads(capsys.readouterr().out)["value"] == [1, 2]
        assert main(["client", "--addr", addr, "status"]) == 0
        st = json.loads(capsys.readouterr().out)["value"]
        assert st["role"] == "leader" and st["members"]["voters"] == {"n1": addr}
        # membership changes are idempotent (a retry after "unknown" must not fail)
        assert main(["client", "--addr", addr, "remove-member", "--id", "n7"]) == 0
        assert json.loads(capsys.readouterr().out)["value"]["voters"] == {"n1": addr}
        assert main(["client", "--addr", addr, "remove-member", "--id", "n1"]) == 1
        out = json.loads(capsys.readouterr().out)
        assert out["error"] == "membership-rejected" and "last voter" in out["message"]


def test_a_write_without_an_answer_is_unknown_and_a_read_fails(capsys) -> None:
    """A server that accepts but never answers: the write may have happened (2), a read not (1)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    conns = []
    t = threading.Thread(target=lambda: [conns.append(srv.accept()) for _ in range(2)], daemon=True)
    t.start()
    addr = f"127.0.0.1:{srv.getsockname()[1]}"
    try:
        assert main(["client", "--addr", addr, "--timeout", "0.3", "put", "k", "1"]) == 2
        assert json.loads(capsys.readouterr().out)["status"] == "unknown"
        assert main(["client", "--addr", addr, "--timeout", "0.3", "get", "k"]) == 1
    finally:
        srv.close()
        for c, _ in conns:
            c.close()


def test_connection_refused_is_a_definite_failure(capsys) -> None:
    (port,) = free_ports(1)
    assert main(["client", "--addr", f"127.0.0.1:{port}", "put", "k", "1"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "connection-refused"


def test_serve_on_a_busy_port_exits_1_with_a_message(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    addr = f"127.0.0.1:{busy.getsockname()[1]}"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "raftnode.cli", "serve", "--id", "n1", "--listen", addr,
             "--peers", f"n1={addr}", "--data-dir", str(tmp_path / "d")],
            capture_output=True, text=True, timeout=30,
        )
    finally:
        busy.close()
    assert proc.returncode == 1 and "cannot start" in proc.stderr and "Traceback" not in proc.stderr


def test_append_through_any_node_grows_the_list_in_order(tmp_path: Path, capsys) -> None:
    """Followers forward an append with its value; the list reads back in append order."""
    with LocalCluster(tmp_path, 3) as cl:
        cl.wait_leader()
        for i, n in enumerate(("n1", "n2", "n3", "n1"), start=1):
            assert main(["client", "--addr", cl.addrs[n], "append", "l", str(i)]) == 0
        capsys.readouterr()
        assert main(["client", "--addr", cl.addrs["n2"], "get", "l"]) == 0
        assert json.loads(capsys.readouterr().out)["value"] == [1, 2, 3, 4]


def test_a_supervisor_polling_the_pid_file_never_sees_it_empty(tmp_path: Path) -> None:
    """raftnodectl writes the pid, then raftnode rewrites it while the tester polls
    ``raftnodectl status``: an emptied file would read as a node that died at start."""
    import os

    from raftnode.server import write_pid_file

    path = tmp_path / "raftnode.pid"
    write_pid_file(str(path))
    expected, seen, stop = f"{os.getpid()}\n", [], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            text = path.read_text()
            if text != expected:
                seen.append(text)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for _ in range(1000):
            write_pid_file(str(path))
    finally:
        stop.set()
        reader.join()
    assert seen == []
    assert [p.name for p in tmp_path.iterdir()] == ["raftnode.pid"]  # no temporary file left
