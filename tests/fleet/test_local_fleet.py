"""A local fleet behaves like separate hosts, and ``down`` leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tester import cli, control, fleet, inventory
from tester.fleet import namespace

from .conftest import SUBNET, local_fleet, skip_unless_root_tools

pytestmark = pytest.mark.e2e


def host_state(name: str) -> dict[str, list[str]]:
    """Everything on the host that could belong to the fleet, looked up independently."""
    import subprocess

    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    mounts = Path("/proc/self/mounts").read_text()
    procs = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if f"/fleets/{name}/" in cmd or f"{name}-n" in cmd:
                procs.append(cmd)
    return {
        "links": [ln for ln in links.splitlines() if f" {name}-" in ln],
        "namespaces": [ln for ln in ns.splitlines() if ln.startswith(f"{name}-")],
        "mounts": [ln for ln in mounts.splitlines() if f"/fleets/{name}/" in ln
                   or f"/run/netns/{name}-" in ln],
        "processes": procs,
        "folder": [str(fleet.fleet_dir(name))] if fleet.fleet_dir(name).exists() else [],
    }


def nothing_left(name: str) -> bool:
    return all(not v for v in host_state(name).values())


def test_nodes_have_own_ip_hostname_private_dirs_and_no_route_off_the_bridge() -> None:
    skip_unless_root_tools()
    with local_fleet("flnet", 3) as (f, inv, remotes):
        assert [n.host for n in inv.nodes] == ["10.213.10.11", "10.213.10.12", "10.213.10.13"]
        assert inv.known_hosts == f.known_hosts
        out = control.run_all(remotes, "hostname; ip -4 -o addr show eth0; ip route")
        for n in inv.nodes:
            hostname, addr, *routes = out[n.name].stdout.splitlines()
            assert hostname == n.name
            assert f"{n.host}/24" in addr
            assert routes == [r for r in routes if r.startswith("10.213.10.0/24 dev eth0")]
            assert len(routes) == 1, f"{n.name} must have no default route: {routes}"
        import subprocess

        nat = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                             text=True).stdout
        assert "10.213.10." not in nat, "the fleet must not be NATed off the machine"
        # a fresh node has no /var/lib/raftnode until a deploy makes it; made here, it is n1's
        remotes["n1"].run("mkdir -p /var/lib/raftnode && echo n1-data > /var/lib/raftnode/probe")
        assert remotes["n2"].run("cat /var/lib/raftnode/probe", check=False).exit_code != 0
        assert not Path("/var/lib/raftnode/probe").exists()  # the host does not see it either
        # nodes reach each other over the bridge
        remotes["n1"].run("python3 -c \"import socket; socket.create_connection(('10.213.10.12', "
                          "22), timeout=2)\"")


def test_status_reports_reachable_nodes_and_their_processes(capsys) -> None:  # type: ignore[no-untyped-def]
    skip_unless_root_tools()
    with local_fleet("flst", 2) as (_f, _inv, remotes):
        remotes["n2"].run("setsid sleep 300 </dev/null >/dev/null 2>&1 &")
        rows = fleet.status("flst")
        assert [(r.name, r.reachable, r.namespace) for r in rows] == [("n1", True, True),
                                                                        ("n2", True, True)]
        assert any("sleep 300" in cmd for _pid, cmd in rows[1].processes)
        assert not any("sleep 300" in cmd for _pid, cmd in rows[0].processes)
        assert cli.main(["fleet", "status", "--name", "flst"]) == 0
        assert "sleep 300" in capsys.readouterr().out


def test_down_removes_everything_even_after_a_killed_run_and_is_idempotent(capsys) -> None:  # type: ignore[no-untyped-def]
    skip_unless_root_tools()
    name = "flkill"
    fleet.down(name)
    try:
        assert cli.main(["fleet", "up", "--name", name, "--nodes", "2", "--subnet", SUBNET]) == 0
        out = capsys.readouterr().out
        assert f"inventory:   {fleet.inventory_path(name)}" in out
        assert "known_hosts:" in out and "root@10.213.10.12" in out
        # a second up over a live fleet is refused, and says how to clean up
        assert cli.main(["fleet", "up", "--name", name, "--subnet", SUBNET]) == 254
        assert f"raftlab fleet down --name {name}" in capsys.readouterr().err
        inv = inventory.load(fleet.inventory_path(name))
        with control.connect(inv.nodes, inv.known_hosts)["n1"] as r:
            r.run("setsid sleep 300 </dev/null >/dev/null 2>&1 &")
        assert host_state(name)["namespaces"] and host_state(name)["processes"]
        # a killed run loses its bookkeeping: down must work from names alone
        shutil.rmtree(fleet.fleet_dir(name))
        removed = fleet.down(name)
        assert any("sleep 300" in r for r in removed)
        assert nothing_left(name), host_state(name)
        assert fleet.leftovers(name) == []
        assert fleet.down(name) == []
        assert cli.main(["fleet", "down", "--name", name]) == 0
    finally:
        fleet.down(name)


def test_unreachable_node_is_an_error_naming_it() -> None:
    skip_unless_root_tools()
    with local_fleet("flun", 2) as (_f, inv, remotes):
        ns = inv.node("n2").var("raftlab_namespace")
        remotes["n2"].close()
        import subprocess

        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            os.kill(int(pid), 9)
        with pytest.raises(control.Unreachable, match="n2") as e:
            control.connect(inv.nodes, inv.known_hosts, timeout=2)
        assert "n1" not in e.value.node


def test_unknown_host_key_is_refused_unless_accept_new_is_asked_for(tmp_path: Path) -> None:
    skip_unless_root_tools()
    with local_fleet("flkey", 1) as (_f, inv, _remotes):
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        with pytest.raises(control.Unreachable, match="n1.*not in known_hosts"):
            control.connect(inv.nodes, empty, timeout=3)
        rs = control.connect(inv.nodes, empty, accept_new=True, timeout=3)
        control.close_all(rs)
        assert "10.213.10.11 ssh-ed25519" in empty.read_text()
        control.close_all(control.connect(inv.nodes, empty, timeout=3))  # now known


def test_fleet_cli_says_plainly_when_not_root(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["fleet", "up", "--name", "flroot"]) == 254
    assert "needs root" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--name", "Bad_Name"], ["--subnet", "10.213.10.0/30"],
                                  ["--subnet", "8.8.8.0/24"], ["--subnet", "nonsense"]])
def test_fleet_up_rejects_bad_arguments_with_254(args: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    skip_unless_root_tools()
    assert cli.main(["fleet", "up", "--name", "flbad", *args]) == 254
    assert "raftlab fleet:" in capsys.readouterr().err
    assert nothing_left("flbad")


def test_interrupted_up_undoes_itself(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    skip_unless_root_tools()
    name = "flint"
    fleet.down(name)

    def interrupted(host: str, port: int) -> bool:
        raise KeyboardInterrupt  # Ctrl-C while waiting for the nodes' sshd

    monkeypatch.setattr(namespace, "_port_open", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            fleet.up(name, nodes=3, subnet=SUBNET)
        assert nothing_left(name), host_state(name)
    finally:
        fleet.down(name)


def test_down_cleans_up_after_up_was_killed_with_sigkill() -> None:
    skip_unless_root_tools()
    import signal
    import subprocess
    import sys
    import time

    name = "flsig"
    fleet.down(name)
    try:
        p = subprocess.Popen([sys.executable, "-m", "tester.cli", "fleet", "up", "--name", name,
                              "--nodes", "5", "--subnet", SUBNET],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not host_state(name)["namespaces"] and time.monotonic() < deadline:
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)  # no chance to clean up after itself
        p.wait()
        assert any(host_state(name).values())
        fleet.down(name)
        assert nothing_left(name), host_state(name)
    finally:
        fleet.down(name)


def test_upload_download_and_logged_commands(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    skip_unless_root_tools()
    import logging

    caplog.set_level(logging.INFO, logger="raftlab.control")
    with local_fleet("flcp", 1) as (_f, _inv, remotes):
        r = remotes["n1"]
        src = tmp_path / "up.bin"
        src.write_bytes(bytes(range(256)) * 100)
        r.run("mkdir -p /opt/raftnode")  # as a deploy would: a fresh node has none
        r.put(src, "/opt/raftnode/up.bin", mode=0o640)
        assert r.run("stat -c %a /opt/raftnode/up.bin").stdout.strip() == "640"
        r.get("/opt/raftnode/up.bin", tmp_path / "down" / "back.bin")
        assert (tmp_path / "down" / "back.bin").read_bytes() == src.read_bytes()
        with pytest.raises(control.ControlError, match="n1: download /nonexistent"):
            r.get("/nonexistent", tmp_path / "x")
        res = r.run("echo out; echo err >&2; exit 3", check=False)
        assert (res.stdout, res.stderr, res.exit_code) == ("out\n", "err\n", 3)
        with pytest.raises(control.CommandFailed, match="n1: command failed \\(exit 3\\)"):
            r.run("exit 3")
        with pytest.raises(control.CommandTimeout, match="n1: command timed out"):
            r.run("sleep 5", timeout=0.3)
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "n1: $ echo out; echo err >&2; exit 3" in logged
    assert "n1: exit 3 in" in logged and "stderr: err" in logged
    assert "n1: uploaded" in logged and "n1: downloaded" in logged


def test_a_dropped_control_connection_is_reestablished(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A fault can cut the control node's own SSH connection; healing must still get through."""
    skip_unless_root_tools()
    import logging

    caplog.set_level(logging.INFO, logger="raftlab.control")
    with local_fleet("flre", 1) as (_f, _inv, remotes):
        r = remotes["n1"]
        before = r.run("echo $PPID").stdout.strip()
        # kill the sshd process that serves this connection: the TCP connection goes down
        r.run("kill -9 $PPID", check=False, timeout=5)
        deadline = time.monotonic() + 10
        while r._client.get_transport().is_active() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.run("echo back").stdout == "back\n"
        assert r.run("echo $PPID").stdout.strip() != before
        src = tmp_path / "f"
        src.write_text("x")
        r.run("mkdir -p /opt/raftnode")
        r.put(src, "/opt/raftnode/f")  # uploads reconnect too
    assert "n1: SSH connection was closed; reconnecting" in caplog.text
