"""Real fleets as people have them: a bastion, ~/.ssh/config, a sudo user, a key in an agent.

One local fleet (name ``bas``, 10.213.68.0/24): n1 is the bastion; the control node's SSH to
n2-n4 is rejected on the host, so they are reached only through n1. Every node has a user
``raft`` with passwordless sudo (each node's own /etc, thanks to its overlay). The inventory
names neither user nor key: ~/.ssh/config (here ``$RAFTLAB_SSH_CONFIG``) supplies the user and
the ProxyJump, and the key comes from an ssh-agent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tester import control, fleet, inventory

from .conftest import skip_unless_root_tools

pytestmark = pytest.mark.e2e
NAME, SUBNET = "bas", "10.213.68.0/24"
BASTION, HIDDEN = "10.213.68.11", ["10.213.68.12", "10.213.68.13", "10.213.68.14"]
ROOT = Path(__file__).resolve().parents[2]
TAG = "raftlab-test-bastion"


def _iptables(op: str, ip: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", op, "OUTPUT", "-d", ip, "-p", "tcp", "--dport",
                           "22", "-m", "comment", "--comment", TAG, "-j", "REJECT"],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def bastion_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fleet, the sudo users, the host rules and the agent; all undone afterwards."""
    skip_unless_root_tools("sudo", "ssh-agent", "ssh-add", "useradd")
    tmp = tmp_path_factory.mktemp("bastion")
    agent: dict[str, str] = {}
    try:
        with fleet.session(NAME, nodes=4, subnet=SUBNET) as (f, inv, remotes):
            control.run_all(remotes, "useradd -M -d /tmp -s /bin/sh -p '*' raft && "
                                     "echo 'raft ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/raft && "
                                     "chmod 440 /etc/sudoers.d/raft")
            control.close_all(remotes)  # from here on, the control node's SSH is rejected
            time.sleep(0.2)
            for ip in HIDDEN:
                assert _iptables("-A", ip).returncode == 0
            out = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True,
                                 check=True).stdout
            for part in out.replace(";", "\n").splitlines():
                k, _, v = part.strip().partition("=")
                if k in ("SSH_AUTH_SOCK", "SSH_AGENT_PID"):
                    agent[k] = v
            subprocess.run(["ssh-add", "-q", str(f.key_file)], env={**os.environ, **agent},
                           check=True)
            (tmp / "ssh_config").write_text(
                f"Host {' '.join(HIDDEN)}\n    ProxyJump {BASTION}\n\n"
                "Host 10.213.68.*\n    User raft\n")
            doc = yaml.safe_load(f.inventory.read_text())
            hosts = doc["all"]["hosts"]
            del hosts["n1"]
            for h in hosts.values():
                del h["ansible_user"], h["ansible_ssh_private_key_file"]
            doc["all"]["vars"].pop("ansible_ssh_common_args")
            (tmp / "inventory.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
            env = {"RAFTLAB_SSH_CONFIG": str(tmp / "ssh_config"), **agent}
            old = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                yield tmp / "inventory.yml"
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
    finally:
        for ip in HIDDEN:
            while _iptables("-D", ip).returncode == 0:
                pass
        if agent.get("SSH_AGENT_PID"):
            subprocess.run(["kill", agent["SSH_AGENT_PID"]], check=False)


def test_hidden_nodes_are_unreachable_directly_and_reached_through_the_bastion(
        bastion_fleet: Path) -> None:
    inv = inventory.load(bastion_fleet)
    n2 = inv.node("n2")
    assert n2.key_file is None and "user" not in n2.explicit
    direct = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                             "-o", f"UserKnownHostsFile={inv.known_hosts}",
                             "-i", str(fleet.fleet_dir(NAME) / "id_ed25519"),
                             f"root@{n2.host}", "true"], capture_output=True, text=True)
    assert direct.returncode != 0  # the host rejects the control node's own SSH
    with control.Remote(n2, inv.known_hosts) as r:
        assert r.user == "raft"  # from the ssh config, as ssh would
        res = r.run("id -un; echo $SUDO_USER; hostname")
        assert res.stdout.split() == ["root", "raft", "n2"]  # raft's login, root by sudo -n
        peers = r.run("ss -Htn state established '( sport = :22 )'").stdout.split("\n")
        assert {ln.split()[-1].rsplit(":", 1)[0] for ln in peers if ln.strip()} == {BASTION}
        r.run("mkdir -p /var/lib/raftnode")  # a fresh node has none until a deploy
        r.write("/var/lib/raftnode/probe", "through sudo\n", mode=0o600)
        assert r.run("stat -c '%U %a' /var/lib/raftnode/probe").stdout.split() == ["root",
                                                                                    "600"]
        got = bastion_fleet.parent / "probe"
        r.get("/var/lib/raftnode/probe", got)
        assert got.read_text() == "through sudo\n"


def test_a_wrong_bastion_host_key_is_refused(bastion_fleet: Path, tmp_path: Path) -> None:
    inv = inventory.load(bastion_fleet)
    lines = inv.known_hosts.read_text().splitlines()
    forged = [ln for ln in lines if not ln.startswith(BASTION + " ")]
    other = next(ln for ln in lines if ln.startswith(HIDDEN[0] + " ")).split(None, 1)[1]
    (tmp_path / "kh").write_text("\n".join([*forged, f"{BASTION} {other}"]) + "\n")
    with pytest.raises(control.Unreachable, match=f"n2: .*{BASTION}.*does not match"):
        control.Remote(inv.node("n2"), tmp_path / "kh", timeout=5)


@pytest.mark.parametrize(("unsafe", "verdict"), [(None, 0), ("local-reads", 1)])
def test_raftlab_test_through_the_bastion(bastion_fleet: Path, tmp_path: Path,
                                          unsafe: str | None, verdict: int) -> None:
    args = [sys.executable, "-m", "tester.cli", "test", "--inventory", str(bastion_fleet),
            "--db", "raftnode", "--nemesis", "partition", "--nemesis-interval", "2",
            "--time-limit", "12", "--rate", "200", "--seed", "1", "--op-timeout", "1",
            "--store", str(tmp_path)]
    if unsafe:
        args += ["--unsafe", unsafe]
    run = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == verdict, run.stdout[-2000:] + run.stderr[-3000:]
    log = next(tmp_path.glob("*/*/raftlab.log")).read_text()
    assert "n2: $ sudo -n sh -c" in log  # every step ran as raft through sudo, via n1 (the
    # host rejects any other way to n2-n4's sshd)
