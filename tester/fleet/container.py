"""The container driver: each node a Docker (or Podman) container with its own root filesystem.

A node is a container from a Debian image with sshd, iptables, libfaketime and python3, on a
network of its own (``raftlab-NAME``, bridge ``NAME-br``), with its own PID namespace,
hostname and sshd, and the capabilities the nemesis needs (NET_ADMIN and NET_RAW for iptables
partitions and tc packet loss; clock faults are libfaketime, signals need nothing). sshd is
the container's main process, so ``docker kill`` / ``docker pause`` act on the whole node as
on a VM. Packages a playbook installs land in that container alone.

Everything the driver makes carries the label ``raftlab.fleet=NAME`` (and ``raftlab.node``),
so ``docker ps --filter label=raftlab.fleet`` shows it and ``down`` finds it without state.
Keys are the fleet's own, made on the host and mounted read-only at ``/etc/raftlab``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tester.fleet import hostnet
from tester.fleet.base import (
    Fleet,
    FleetError,
    NodeStatus,
    addresses,
    fleet_dir,
    make_keys,
    port_open,
    sh,
    wait_for_ssh,
    write_inventory,
)

ENGINES = ("docker", "podman")
#: the tag names the package set: a new set gets a new tag, so an older image is rebuilt
DEFAULT_IMAGE = "raftlab-node:bookworm-3"
LABEL = "raftlab.fleet"
CAPS = ("NET_ADMIN", "NET_RAW")
_SSHD_CONFIG = """\
Port 22
HostKey /etc/raftlab/ssh_host_ed25519_key
AuthorizedKeysFile /etc/raftlab/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 200
MaxSessions 200
AllowTcpForwarding yes
Subsystem sftp internal-sftp
PrintMotd no
"""


def engine_binary(engine: str) -> str:
    """The engine's CLI, or a FleetError saying how to get one."""
    if engine not in ENGINES:
        raise FleetError(f"--driver {engine!r}: expected namespace, docker or podman")
    path = shutil.which(engine)
    if path is None:
        raise FleetError(f"--driver {engine}: the {engine} command is not installed")
    return path


def engine_running(engine: str) -> str | None:
    """None when the engine answers, else why not (one line)."""
    try:
        p = sh([engine_binary(engine), "version", "--format", "{{.Server.Version}}"],
               check=False, timeout=10)
    except FleetError as e:
        return str(e)
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"the {engine} engine does not answer: {err}"
    return None


def _engine(engine: str, *args: str, check: bool = True, timeout: float = 120,
            input: str | None = None) -> str:
    return sh([engine_binary(engine), *args], check=check, timeout=timeout,
              input=input).stdout


def container_name(name: str, node: str) -> str:
    return f"raftlab-{name}-{node}"


def network_name(name: str) -> str:
    return f"raftlab-{name}"


def image_present(engine: str, image: str) -> bool:
    return sh([engine_binary(engine), "image", "inspect", image], check=False,
              timeout=30).returncode == 0


def up(name: str, nodes: int, subnet: str | None, log: Callable[[str], None],
       ssh_timeout: float, engine: str = "docker", image: str = DEFAULT_IMAGE) -> Fleet:
    """Create the container fleet (the caller undoes a failure with ``down``)."""
    why = engine_running(engine)
    if why:
        raise FleetError(f"--driver {engine}: {why}")
    if not image_present(engine, image):
        hint = ("raftlab fleet image build" if image == DEFAULT_IMAGE
                else f"{engine} pull {image}")
        raise FleetError(f"--image {image}: not present in {engine}; make it with: {hint}")
    d = fleet_dir(name)
    d.mkdir(parents=True, mode=0o700)
    (d / "driver").write_text(f"{engine}\n")
    names = [f"n{i}" for i in range(1, nodes + 1)]
    key = make_keys(d, names, f"raftlab-{name}")
    br = f"{name}-br"
    labels = ["--label", f"{LABEL}={name}"]
    with hostnet.reserve(subnet) as net:
        gateway, ips = addresses(net, nodes)
        # Docker takes the bridge's name; Podman (4.3, Debian 12) names it itself
        bridge_opt = ("--opt", f"com.docker.network.bridge.name={br}") if engine == "docker" \
            else ()
        _engine(engine, "network", "create", "--driver", "bridge", "--subnet", str(net),
                "--gateway", gateway, *bridge_opt, *labels, network_name(name))
    if engine == "podman":
        br = _engine(engine, "network", "inspect", "--format", "{{.NetworkInterface}}",
                     network_name(name)).strip() or br
    if hostnet.allow_bridge(name, br):
        log(f"fleet {name}: the host filters forwarded bridge traffic; added an ACCEPT rule "
            f"for {br}")
    for node in names:
        nd = d / "nodes" / node
        etc = nd / "etc"
        etc.mkdir()
        for f in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
            shutil.copy2(nd / f, etc / f)
        shutil.copy2(d / "authorized_keys", etc / "authorized_keys")
        (etc / "sshd_config").write_text(_SSHD_CONFIG)

    def start(i_node: tuple[int, str]) -> None:
        i, node = i_node
        caps = [a for c in CAPS for a in ("--cap-add", c)]
        _engine(engine, "run", "--detach", "--name", container_name(name, node),
                "--hostname", node, "--network", network_name(name), "--ip", ips[i],
                *caps, *labels, "--label", f"raftlab.node={node}",
                "--volume", f"{d / 'nodes' / node / 'etc'}:/etc/raftlab:ro",
                image, "/bin/sh", "-c",
                "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f /etc/raftlab/sshd_config")

    with ThreadPoolExecutor(max_workers=min(8, nodes)) as pool:
        list(pool.map(start, enumerate(names)))
    wait_for_ssh(names, ips, ssh_timeout, probe=port_open)
    path, known, inv_nodes = write_inventory(
        name, engine, names, ips, gateway,
        [{"raftlab_container": container_name(name, node)} for node in names])
    log(f"fleet {name}: {nodes} {engine} containers up on {net} ({image})")
    return Fleet(name=name, inventory=path, known_hosts=known, key_file=key, nodes=inv_nodes,
                 driver=engine, subnet=str(net))


def down_pass(name: str, engine: str) -> list[str]:
    """Remove the fleet's containers and network (found by label); returns what went."""
    if engine_running(engine) is not None:
        return []
    removed = []
    ids = _engine(engine, "ps", "--all", "--quiet", "--filter", f"label={LABEL}={name}",
                  check=False).split()
    if ids:
        _engine(engine, "rm", "--force", "--volumes", *ids, check=False)
        removed += [f"{engine} container {i}" for i in ids]
    nets = _engine(engine, "network", "ls", "--quiet", "--filter", f"label={LABEL}={name}",
                   check=False).split()
    if nets:
        _engine(engine, "network", "rm", *nets, check=False)
        removed += [f"{engine} network {n}" for n in nets]
    return removed


def leftovers(name: str, engine: str) -> list[str]:
    if engine_running(engine) is not None:
        return []
    ids = _engine(engine, "ps", "--all", "--quiet", "--filter", f"label={LABEL}={name}",
                  check=False).split()
    nets = _engine(engine, "network", "ls", "--quiet", "--filter", f"label={LABEL}={name}",
                   check=False).split()
    return [f"{engine} container {i}" for i in ids] + [f"{engine} network {n}" for n in nets]


def status_rows(engine: str, reach: dict[str, str | None], nodes: list) -> list[NodeStatus]:  # type: ignore[type-arg]
    out = []
    for node in nodes:
        cname = node.var("raftlab_container", "")
        state = _engine(engine, "inspect", "--format", "{{json .State.Status}}", cname,
                        check=False).strip()
        running = state == json.dumps("running")
        procs: list[tuple[int, str]] = []
        if running:
            rows = _engine(engine, "top", cname, "-eo", "pid,args", check=False).splitlines()
            for row in rows[1:]:
                pid, _, cmd = row.strip().partition(" ")
                if pid.isdigit():
                    procs.append((int(pid), cmd.strip()))
        out.append(NodeStatus(name=node.name, host=node.host, namespace=running,
                              reachable=reach[node.name] is None, error=reach[node.name],
                              processes=procs))
    return out


def remove_built_image(engines: tuple[str, ...] | list[str], image: str = DEFAULT_IMAGE
                       ) -> list[str]:
    """Remove the node image from each engine that has it, only if raftlab built it."""
    removed = []
    for engine in engines:
        if shutil.which(engine) is None or engine_running(engine) is not None \
                or not image_present(engine, image):
            continue
        fmt = "{{index .Config.Labels \"" + LABEL + ".image\"}}"
        if _engine(engine, "image", "inspect", "--format", fmt, image, check=False).strip() == "1":
            _engine(engine, "image", "rm", "--force", image)
            removed.append(f"{engine} image {image}")
    return removed
