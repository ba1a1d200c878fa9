"""Bad input never gives a traceback: one line naming what and where, exit 254."""

from __future__ import annotations

import socket
import threading

import pytest

from tester.cli import main


def run(capfd, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own errors
        code = int(e.code)
    return code, capfd.readouterr().err


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_serve_on_a_port_out_of_range_names_the_port(capfd, tmp_path):
    code, err = run(capfd, "serve", str(tmp_path), "--port", "99999")
    assert code == 254
    assert "--port: '99999' is not a port number 0-65535" in one_line(err)


def test_a_db_that_names_a_module_not_a_class_is_bad_input(capfd):
    code, err = run(capfd, "test", "--fleet", "x", "--db", "os:path")
    assert code == 254
    assert one_line(err) == ("raftlab test: --db 'os:path': os.path is a module, not a class; "
                             "name the adapter class, e.g. package.module:MyDB")


def test_an_inventory_that_is_not_utf8_names_the_file_and_line(capfd, tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_bytes(b"all:\n  hosts:\n    n\xff1: {}\n")
    code, err = run(capfd, "test", "--inventory", str(inv))
    assert code == 254
    assert f"{inv}:3: not UTF-8 text (byte 0xff" in one_line(err)


@pytest.fixture
def not_ssh():
    """A TCP port that answers like a web server, not like sshd (the handshake fails)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(10)

    def answer() -> None:
        try:
            conn, _ = srv.accept()
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    srv.close()
    t.join(5)


def test_unreachable_hosts_are_one_line_naming_each_node_once(capfd, tmp_path, not_ssh):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n"
                   f"    n1: {{ansible_host: 127.0.0.1, ansible_port: {closed.getsockname()[1]}}}\n"
                   f"    n2: {{ansible_host: 127.0.0.1, ansible_port: {not_ssh}}}\n")
    try:
        code, err = run(capfd, "test", "--inventory", str(inv), "--time-limit", "1")
    finally:
        closed.close()
    assert code == 254
    line = one_line(err)  # paramiko's own log of the failed handshake is not printed
    assert line.startswith(f"raftlab test: {inv}: cannot reach the fleet: n1: cannot connect")
    assert "Connection refused" in line and "n2: cannot connect" in line
    assert "no SSH server answered" in line
    assert "n1: n1:" not in line and "n2: n2:" not in line


def test_nodes_on_the_command_line_reach_the_same_check(capfd):
    code, err = run(capfd, "test", "--nodes", "127.0.0.1:1", "--username", "admin")
    assert code == 254
    assert "--nodes 127.0.0.1:1: cannot reach the fleet: 127.0.0.1: cannot connect" in one_line(err)


def test_every_unknown_nemesis_option_is_listed_sorted(capfd):
    code, err = run(capfd, "test", "--fleet", "x", "--nemesis-opt", "zeta=1",
                    "--nemesis-opt", "partitions=[\"one\"]", "--nemesis-opt", "alpha=2")
    assert code == 254
    assert one_line(err).startswith("raftlab test: --nemesis-opt: unknown keys alpha, zeta; "
                                    "expected clock_kinds,")


def test_a_missing_private_key_is_named(capfd, tmp_path):
    code, err = run(capfd, "test", "--nodes", "n1,n2", "--ssh-private-key",
                    str(tmp_path / "id_none"))
    assert code == 254
    assert f"--ssh-private-key {tmp_path / 'id_none'}: no such file" in one_line(err)
