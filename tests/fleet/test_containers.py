"""Container fleets, and namespace fleets beside a running Docker daemon (tests/fleet/dockerd).

The tests' own dockerd (iptables on: FORWARD DROP, br_netfilter) runs in a network namespace
of its own, and so do the raftlab commands here: a docker fleet ``ctr`` (10.213.69.0/24) and a
namespace fleet ``ctr2`` (10.213.67.0/24) side by side. The node image is built from Debian
packages the first time (``raftlab fleet image build``) and kept in the daemon's data root.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tester import fleet

from . import dockerd
from .conftest import skip_unless_root_tools

pytestmark = pytest.mark.e2e
DOCKER, DOCKER_SUBNET = "ctr", "10.213.69.0/24"
NS, NS_SUBNET = "ctr2", "10.213.67.0/24"


def _host_firewall() -> tuple[str, bool]:
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    policy = next(ln for ln in rules.splitlines() if ln.startswith("-P FORWARD"))
    return policy, "DOCKER" in rules


@pytest.fixture(scope="module")
def beside_docker() -> Iterator[dockerd.Netns]:
    """dockerd in its namespace with both fleets up; all removed, the host's firewall as found."""
    skip_unless_root_tools("iptables")
    if dockerd.missing():
        pytest.skip(f"needs {', '.join(dockerd.missing())} (run scripts/bootstrap.sh)")
    before = _host_firewall()
    with dockerd.daemon() as ns:
        try:
            for args in (["--driver", "docker", "--name", DOCKER, "--subnet", DOCKER_SUBNET],
                         ["--name", NS, "--subnet", NS_SUBNET]):
                up = ns.raftlab("fleet", "up", "--nodes", "3", *args)
                assert up.returncode == 0, up.stderr
            yield ns
        finally:
            downs = [ns.raftlab("fleet", "down", "--name", n) for n in (DOCKER, NS)]
        assert all(d.returncode == 0 for d in downs), [d.stderr for d in downs]
        assert ns.run(["docker", "ps", "-aq", "--filter", "label=raftlab.fleet"]).stdout == ""
        assert ns.run(["docker", "network", "ls", "-q", "--filter",
                       "label=raftlab.fleet"]).stdout == ""
    assert _host_firewall() == before


def ssh(ns: dockerd.Netns, name: str, host: str, cmd: str, timeout: float = 30
        ) -> subprocess.CompletedProcess[str]:
    d = fleet.fleet_dir(name)
    return ns.run(["ssh", "-i", str(d / "id_ed25519"), "-o", "BatchMode=yes", "-o",
                   "ConnectTimeout=3", "-o", f"UserKnownHostsFile={d / 'known_hosts'}",
                   f"root@{host}", cmd], timeout=timeout)


def test_container_nodes_have_their_own_root_pids_and_labels(beside_docker: dockerd.Netns
                                                              ) -> None:
    ns = beside_docker
    assert ns.run(["iptables", "-w", "-S", "FORWARD"]).stdout.startswith("-P FORWARD DROP")
    labels = ns.run(["docker", "ps", "--filter", f"label=raftlab.fleet={DOCKER}", "--format",
                     "{{.Label \"raftlab.node\"}}"]).stdout.split()
    assert sorted(labels) == ["n1", "n2", "n3"]
    n1, n2 = "10.213.69.11", "10.213.69.12"
    out = ssh(ns, DOCKER, n1, "hostname; ps -eo pid=,comm= | head -1; "
                              "touch /usr/local/bin/only-on-n1; id -u")
    assert out.stdout.split() == ["n1", "1", "sshd", "0"], out.stderr
    assert ssh(ns, DOCKER, n2, "test -e /usr/local/bin/only-on-n1").returncode == 1
    assert not Path("/usr/local/bin/only-on-n1").exists()  # nor on the host
    # the engine's own pause stops the whole node, as a paused VM
    assert ns.run(["docker", "pause", f"raftlab-{DOCKER}-n3"]).returncode == 0
    try:
        assert ssh(ns, DOCKER, "10.213.69.13", "true", timeout=10).returncode != 0
    finally:
        ns.run(["docker", "unpause", f"raftlab-{DOCKER}-n3"])
    assert ssh(ns, DOCKER, "10.213.69.13", "true").returncode == 0
    st = ns.raftlab("fleet", "status", "--name", DOCKER)
    assert st.returncode == 0 and "sshd" in st.stdout, st.stdout + st.stderr


@pytest.mark.parametrize("name", [DOCKER, NS])
@pytest.mark.parametrize(("unsafe", "verdict"), [(None, 0), ("local-reads", 1)])
def test_raftlab_test_beside_docker(beside_docker: dockerd.Netns, tmp_path: Path, name: str,
                                    unsafe: str | None, verdict: int) -> None:
    args = ["test", "--fleet", name, "--db", "raftnode", "--nemesis", "partition",
            "--nemesis-interval", "2", "--time-limit", "12", "--rate", "200", "--seed", "1",
            "--op-timeout", "1", "--store", str(tmp_path)]
    run = beside_docker.raftlab(*args, *(["--unsafe", unsafe] if unsafe else []))
    assert run.returncode == verdict, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads(next(tmp_path.glob("*/latest/results.json")).read_text())
    assert results["valid"] is (verdict == 0)
