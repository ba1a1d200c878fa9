"""Local fleets: N SSH-reachable nodes on this machine, driven by the tester like real VMs.

Two drivers make the nodes: ``namespace`` (Linux namespaces around the host's own files; the
fastest, see :mod:`tester.fleet.namespace`) and ``docker``/``podman`` (containers with their
own root filesystem, see :mod:`tester.fleet.container`). Both write the same Ansible
inventory, and ``down`` removes whatever a fleet of that name left behind, from names and
labels alone, so it also cleans up after a killed run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from tester import inventory as inv
from tester.fleet import container, namespace
from tester.fleet.base import (
    DEFAULT_NAME,
    STATE_ROOT,
    Fleet,
    FleetError,
    NodeStatus,
    NotRoot,
    check_name,
    driver_of,
    fleet_dir,
    inventory_path,
)
from tester.fleet.namespace import missing_tools, require_root

DRIVERS = ("namespace", *container.ENGINES)

__all__ = ["DEFAULT_NAME", "DRIVERS", "STATE_ROOT", "Fleet", "FleetError",
           "NodeStatus", "NotRoot", "check_name", "down", "fleet_dir", "inventory_path",
           "leftovers", "missing_tools", "require_root", "session", "status", "up"]


def up(name: str = DEFAULT_NAME, nodes: int = 5, subnet: str | None = None,
       log: Callable[[str], None] = lambda s: None, ssh_timeout: float = 15.0,
       driver: str = "namespace", image: str | None = None) -> Fleet:
    """Create the fleet and return where its inventory is; undo everything on failure.

    ``subnet`` None picks a free /24 in 10.213.0.0/16.
    """
    check_name(name)
    require_root()
    if driver not in DRIVERS:
        raise FleetError(f"--driver {driver!r}: expected one of {', '.join(DRIVERS)}")
    if not 1 <= nodes <= 200:
        raise FleetError(f"--nodes {nodes}: expected 1-200")
    if namespace.existing_namespaces(name) or namespace.existing_links(name) \
            or fleet_dir(name).exists():
        raise FleetError(f"fleet {name!r} is already up (or left over from a killed run); "
                         f"run: raftlab fleet down --name {name}")
    if driver != "namespace":
        why = container.engine_running(driver)
        if why:
            raise FleetError(f"--driver {driver}: {why}")
    try:
        if driver == "namespace":
            return namespace.up(name, nodes, subnet, log, ssh_timeout)
        return container.up(name, nodes, subnet, log, ssh_timeout, engine=driver,
                            image=image or container.DEFAULT_IMAGE)
    except BaseException:
        down(name)
        raise


def _engines(name: str) -> list[str]:
    """The container engines that may hold the fleet's containers."""
    made_by = driver_of(name)
    if made_by == "namespace":
        return []
    if made_by in container.ENGINES:
        return [made_by]
    return [e for e in container.ENGINES
            if shutil.which(e) and container.engine_running(e) is None]


def down(name: str = DEFAULT_NAME, log: Callable[[str], None] = lambda s: None) -> list[str]:
    """Remove every process, container, namespace, link, rule, mount and file of the fleet.

    Idempotent, and works from names and labels alone, so it also cleans up after a run that
    was killed mid-way; it repeats until a pass finds nothing, since a killed ``up`` may leave
    an ``ip`` child that is still adding links. Returns only once every process of the fleet
    is gone, with what was removed (empty when there was nothing).
    """
    check_name(name)
    require_root()
    engines = _engines(name)
    removed: list[str] = []
    for attempt in range(20):
        found = [r for e in engines for r in container.down_pass(name, e)]
        found += namespace.down_pass(name)
        removed += found
        if not found and attempt > 0:
            break
        time.sleep(0.05 if found else 0.02)
    d = fleet_dir(name)
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)
        removed.append(f"folder {d}")
    for r in removed:
        log(f"removed {r}")
    return removed


def leftovers(name: str) -> list[str]:
    """What of the fleet still exists (containers, namespaces, links, mounts, processes...)."""
    found = [r for e in _engines(name) for r in container.leftovers(name, e)]
    found += namespace.leftovers(name)
    if fleet_dir(name).exists():
        found.append(f"folder {fleet_dir(name)}")
    return found


@contextmanager
def session(name: str, nodes: int = 5, subnet: str | None = None, driver: str = "namespace",
            image: str | None = None) -> Iterator[tuple[Fleet, inv.Inventory, dict[str, Any]]]:
    """A fresh fleet with SSH connections to every node, removed afterwards whatever happens.

    Leftovers of an earlier, killed run under the same name are removed first. Tests and
    benchmarks use this so that no fleet outlives them.
    """
    from tester import control  # paramiko is only needed once a fleet is driven

    down(name)
    remotes: dict[str, Any] = {}
    try:
        f = up(name, nodes=nodes, subnet=subnet, driver=driver, image=image)
        inventory = inv.load(f.inventory)
        remotes = control.connect(inventory.nodes, inventory.known_hosts)
        yield f, inventory, remotes
    finally:
        control.close_all(remotes)
        down(name)


def status(name: str = DEFAULT_NAME, timeout: float = 5.0) -> list[NodeStatus]:
    """Each node of the fleet: present, reachable over SSH, its processes."""
    check_name(name)
    require_root()
    path = inventory_path(name)
    if not path.exists():
        raise FleetError(f"fleet {name!r} is not up (no {path}); run: raftlab fleet up "
                         f"--name {name}")
    from tester import control  # paramiko is imported only when needed

    fleet = inv.load(path)

    def probe(node: inv.Node) -> str | None:
        try:
            with control.Remote(node, fleet.known_hosts, timeout=timeout) as r:
                r.run("true", timeout=timeout)
            return None
        except control.ControlError as e:
            return str(e)

    with ThreadPoolExecutor(max_workers=max(1, min(32, len(fleet.nodes)))) as pool:
        reach = dict(zip([n.name for n in fleet.nodes], pool.map(probe, fleet.nodes),
                         strict=True))
    made_by = driver_of(name) or "namespace"
    if made_by in container.ENGINES:
        return container.status_rows(made_by, reach, fleet.nodes)
    return namespace.status_rows(name, reach, fleet.nodes)
