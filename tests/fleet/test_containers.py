"""Container fleets, and namespace fleets beside a running Docker daemon (tests/fleet/dockerd).

The tests' own dockerd (iptables on: FORWARD DROP, br_netfilter) runs in a network namespace
of its own, and so do the raftlab commands here: a docker fleet ``ctr`` (10.213.69.0/24) and a
namespace fleet ``ctr2`` (10.213.67.0/24) side by side. The node image is built from Debian
packages the first time (``raftlab fleet image build``) and kept in the daemon's data root.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
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


def _flat_repo(d: Path, packages: list[str]) -> None:
    """A trusted flat apt repository of ``packages`` (downloaded on the host) in ``d``."""
    subprocess.run(["apt-get", "download", *packages], cwd=d, check=True, capture_output=True)
    stanzas = []
    for deb in sorted(d.glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                                 check=True).stdout.strip()
        data = deb.read_bytes()
        stanzas.append(f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    (d / "Packages").write_text("\n".join(stanzas))


def test_ansible_installs_packages_on_each_container_node_and_deploys_raftnode(
        beside_docker: dockerd.Netns, tmp_path: Path) -> None:
    """site.yml against the docker fleet: apt installs land in each container, not the host."""
    playbook = Path(sys.executable).with_name("ansible-playbook")
    if not playbook.exists():
        pytest.skip("ansible-playbook is not installed in the venv")
    ns, gateway = beside_docker, "10.213.69.1"
    _flat_repo(tmp_path, ["procps", "python3-apt", "python-apt-common", "distro-info-data"])
    with open(tmp_path / "http.log", "wb") as log:
        server = subprocess.Popen([*dockerd.enter(ns.name), sys.executable, "-m", "http.server",
                                   "--bind", gateway, "8089", "--directory", str(tmp_path)],
                                  stdout=log, stderr=log)
    try:
        hosts = [f"10.213.69.1{i}" for i in (1, 2, 3)]
        for h in hosts:  # the node's only package source is the control node; procps is gone
            prep = ssh(ns, DOCKER, h, f"echo 'deb [trusted=yes] http://{gateway}:8089 ./' > "
                                      "/etc/apt/sources.list && rm -f /etc/apt/sources.list.d/* "
                                      "&& apt-get purge -y -q procps >/dev/null && "
                                      "! dpkg -s procps >/dev/null 2>&1")
            assert prep.returncode == 0, prep.stderr
        run = ns.run([str(playbook), "-i", str(fleet.inventory_path(DOCKER)),
                      str(dockerd.ROOT / "ansible/site.yml")], timeout=400)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert "failed=0" in run.stdout and "unreachable=0" in run.stdout
        for h in hosts:
            st = ssh(ns, DOCKER, h, "dpkg -s procps | grep -c 'install ok installed'; "
                                    "/opt/raftnode/raftnodectl status")
            assert st.stdout.split()[:2] == ["1", "running"], st.stdout + st.stderr
    finally:
        server.terminate()
        server.wait(10)
