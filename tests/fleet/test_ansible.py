"""ansible-playbook deploys raftnode to the local fleet, and the tester tests it as it stands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tester import control
from tester.db import DBError
from tester.dbs.raftnode import RaftnodeDB

from .conftest import local_fleet, skip_unless_root_tools

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def playbook(inventory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    return subprocess.run([str(PLAYBOOK), "-i", str(inventory), str(ROOT / "ansible/site.yml"),
                           *extra], capture_output=True, text=True, env=env, timeout=240)


def raftnode_pids(remotes: dict[str, control.Remote]) -> dict[str, str]:
    out = control.run_all(remotes, "/opt/raftnode/raftnodectl status", check=False)
    return {k: r.stdout.strip() for k, r in out.items()}


def test_playbook_deploys_raftnode_and_tester_uses_it_without_redeploying() -> None:
    skip_unless_root_tools()
    if not PLAYBOOK.exists():
        pytest.skip("ansible-playbook is not installed in the venv (pip install -e '.[dev]')")
    with local_fleet("flans", 3) as (f, inv, remotes):
        db = RaftnodeDB(deploy=False)
        # nothing deployed yet: the no-deploy check names the node and says what to do
        with pytest.raises(DBError, match="n1: raftnode is not deployed.*ansible-playbook"):
            db.setup(remotes["n1"], inv.node("n1"), inv.nodes, {})

        run = playbook(f.inventory)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert "failed=0" in run.stdout and "unreachable=0" in run.stdout
        pids = raftnode_pids(remotes)
        assert all(p.startswith("running ") for p in pids.values()), pids

        # a second run changes nothing and leaves the running cluster alone (idempotent)
        again = playbook(f.inventory)
        assert again.returncode == 0, again.stdout[-3000:]
        assert all(" changed=0 " in ln for ln in again.stdout.splitlines()
                   if ln.startswith("n") and " ok=" in ln), again.stdout[-1500:]
        assert raftnode_pids(remotes) == pids

        control.on_all(remotes, lambda r: db.setup(r, r.node, inv.nodes, {}))
        db.wait_ready(remotes, inv.nodes, timeout=20)
        assert raftnode_pids(remotes) == pids  # checked and connected, not redeployed
        c = db.client({})
        c.open(inv.node("n1"))
        assert c.invoke("write", "k", "from-ansible", 5) == ("ok", "from-ansible", None)
        c.close()
        c.open(inv.node("n3"))
        assert c.invoke("read", "k", None, 5) == ("ok", "from-ansible", None)
        c.close()
        # the adapter's faults work on the Ansible-started process too
        lead = db.leader(inv.nodes)
        assert lead is not None
        db.kill(remotes[lead], inv.node(lead))
        assert raftnode_pids(remotes)[lead] == "stopped"
        db.start(remotes[lead], inv.node(lead))
        db.wait_ready(remotes, inv.nodes, timeout=20)
        # teardown with deploy=False leaves the deployment (and its data) alone
        control.on_all(remotes, lambda r: db.teardown(r, r.node))
        assert all(p.startswith("running ") for p in raftnode_pids(remotes).values())

        stop = playbook(f.inventory, "-e", "raftnode_state=stopped", "--tags", "service")
        assert stop.returncode == 0, stop.stdout[-3000:]
        assert set(raftnode_pids(remotes).values()) == {"stopped"}
