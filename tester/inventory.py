"""The fleet description: an Ansible-format YAML inventory, read by the tester and Ansible alike.

One file describes a fleet, whether it is the local namespace fleet or real VMs, so that
``ansible-playbook -i inventory.yml`` and ``raftlab test --inventory inventory.yml`` agree on
hosts, users, ports and keys. Supported shape (the YAML inventory plugin's)::

    all:
      vars: {ansible_user: root, ansible_ssh_private_key_file: /path/key}
      hosts:
        n1: {ansible_host: 10.0.0.11, ansible_port: 22, raft_port: 7000}
      children:
        db: {hosts: {n2: {ansible_host: 10.0.0.12}}}

Variables inherit from ``all`` to groups to hosts (nearest wins), as in Ansible.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class InventoryError(ValueError):
    """A malformed inventory; the message names the file, the host and the field."""


@dataclass(frozen=True)
class Node:
    """One host of the fleet, as the tester reaches it over SSH."""

    name: str
    host: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    vars: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # which of port, user, key the inventory set itself; the rest may come from ~/.ssh/config
    explicit: frozenset[str] = field(default=frozenset({"port", "user", "key"}), compare=False,
                                     hash=False)

    def var(self, key: str, default: Any = None) -> Any:
        """A per-node variable (inherited from groups and ``all``), or ``default``."""
        return self.vars.get(key, default)


@dataclass(frozen=True)
class Inventory:
    """The hosts of a fleet in file order, plus where the file and its known_hosts live."""

    nodes: list[Node]
    path: Path | None = None
    known_hosts: Path | None = None

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r} in the inventory")

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]


def load(path: str | Path) -> Inventory:
    """Read and validate an inventory file; raise InventoryError naming host and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InventoryError(f"{p}: cannot read inventory: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise InventoryError(f"{p}:{line}: not UTF-8 text (byte {e.object[e.start]:#04x} at "
                             f"offset {e.start}); save the inventory as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InventoryError(f"{p}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    inv = parse(data, source=str(p))
    _check_key_files(inv, str(p), "field 'ansible_ssh_private_key_file'")
    known = inv.nodes[0].var("raftlab_known_hosts") if inv.nodes else None
    kh = Path(known) if known else (p.parent / "known_hosts")
    return Inventory(nodes=inv.nodes, path=p, known_hosts=kh if kh.exists() else None)


def _check_key_files(inv: Inventory, source: str, field_: str) -> None:
    for n in inv.nodes:
        if n.key_file and not Path(n.key_file).expanduser().exists():
            raise InventoryError(f"{source}: host {n.name!r}, {field_}: "
                                 f"no such file {n.key_file!r}")


def from_nodes(spec: str, user: str = "root", key_file: str | None = None) -> Inventory:
    """Jepsen's quick alternative to an inventory: ``--nodes n1,n2:2222 --username admin
    --ssh-private-key ~/.ssh/id``. Each entry is a host name or IP (its node name), with an
    optional ``:port``; validated as an inventory's hosts are."""
    hosts: dict[str, dict[str, Any]] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        host, colon, port = entry.rpartition(":") if entry.count(":") == 1 else ("", "", entry)
        host = host if colon else entry
        if host in hosts:
            raise InventoryError(f"--nodes: {host!r} is listed twice")
        hosts[host] = {"ansible_host": host, **({"ansible_port": port} if colon else {})}
    if not hosts:
        raise InventoryError("--nodes: expected a comma list of hosts, e.g. n1,n2,n3")
    common: dict[str, Any] = {"ansible_user": user}
    if key_file:
        common["ansible_ssh_private_key_file"] = key_file
    inv = parse({"all": {"vars": common, "hosts": hosts}}, source="--nodes")
    _check_key_files(inv, "--nodes", "--ssh-private-key")
    return inv


def parse(data: Any, source: str = "<inventory>") -> Inventory:
    """Validate an already-parsed inventory document (see the module docstring)."""
    if not isinstance(data, dict) or "all" not in data:
        raise InventoryError(f"{source}: expected a mapping with a top-level 'all' group")
    hosts: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    _walk(data["all"], "all", {}, hosts, order, source)
    if not order:
        raise InventoryError(f"{source}: the inventory lists no hosts")
    nodes = [_node(name, hosts[name], source) for name in order]
    seen: dict[tuple[str, int], str] = {}
    for n in nodes:  # two names for one machine would make faults hit the wrong node
        other = seen.setdefault((n.host, n.port), n.name)
        if other != n.name:
            raise InventoryError(f"{source}: host {n.name!r}, field 'ansible_host': "
                                 f"{n.host}:{n.port} is already host {other!r}")
    return Inventory(nodes=nodes)


def _walk(group: Any, gname: str, inherited: dict[str, Any], hosts: dict[str, dict[str, Any]],
          order: list[str], source: str) -> None:
    if group is None:
        return
    if not isinstance(group, dict):
        raise InventoryError(f"{source}: group {gname!r}: expected a mapping, got {_kind(group)}")
    unknown = set(group) - {"vars", "hosts", "children"}
    if unknown:
        raise InventoryError(
            f"{source}: group {gname!r}: unknown key(s) {sorted(unknown)} "
            "(expected vars, hosts, children)")
    gvars = group.get("vars") or {}
    if not isinstance(gvars, dict):
        raise InventoryError(f"{source}: group {gname!r}, field 'vars': expected a mapping")
    merged = {**inherited, **gvars}
    ghosts = group.get("hosts") or {}
    if not isinstance(ghosts, dict):
        raise InventoryError(f"{source}: group {gname!r}, field 'hosts': expected a mapping "
                             f"of host name to variables, got {_kind(ghosts)}")
    for hname, hvars in ghosts.items():
        name = str(hname)
        if not _HOST_NAME.match(name):
            raise InventoryError(f"{source}: host {name!r}: not a valid host name")
        if hvars is None:
            hvars = {}
        if not isinstance(hvars, dict):
            raise InventoryError(f"{source}: host {name!r}: expected a mapping of variables, "
                                 f"got {_kind(hvars)}")
        if name not in hosts:
            hosts[name] = {}
            order.append(name)
        # a host listed in several groups collects all their variables; its own win
        hosts[name] = {**merged, **hosts[name], **hvars}
    children = group.get("children") or {}
    if not isinstance(children, dict):
        raise InventoryError(f"{source}: group {gname!r}, field 'children': expected a mapping")
    for cname, child in children.items():
        _walk(child, str(cname), merged, hosts, order, source)


# Ansible's older spellings, still accepted by it
_ALIASES = {"ansible_ssh_host": "ansible_host", "ansible_ssh_port": "ansible_port",
            "ansible_ssh_user": "ansible_user"}


def _node(name: str, v: dict[str, Any], source: str) -> Node:
    def bad(fieldname: str, why: str) -> InventoryError:
        return InventoryError(f"{source}: host {name!r}, field {fieldname!r}: {why}")

    for old, new in _ALIASES.items():
        if old in v and new not in v:
            v = {**v, new: v[old]}

    host = v.get("ansible_host", name)
    if not isinstance(host, str) or not host.strip():
        raise bad("ansible_host", f"expected a host name or IP address, got {host!r}")
    if any(c.isspace() for c in host):
        raise bad("ansible_host", f"contains whitespace: {host!r}")
    if host[0].isdigit() and host.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise bad("ansible_host", f"not a valid IP address: {host!r}") from None
    port = v.get("ansible_port", 22)
    if isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).isdigit() \
            or not 1 <= int(port) <= 65535:
        raise bad("ansible_port", f"expected a port number 1-65535, got {port!r}")
    user = v.get("ansible_user", "root")
    if not isinstance(user, str) or not user or any(c.isspace() for c in user):
        raise bad("ansible_user", f"expected a user name, got {user!r}")
    key = v.get("ansible_ssh_private_key_file")
    if key is not None and (not isinstance(key, str) or not key):
        raise bad("ansible_ssh_private_key_file", f"expected a file path, got {key!r}")
    extra = {k: val for k, val in v.items()
             if k not in ("ansible_host", "ansible_port", "ansible_user",
                          "ansible_ssh_private_key_file", *_ALIASES)}
    given = {"ansible_port": "port", "ansible_user": "user",
             "ansible_ssh_private_key_file": "key"}
    return Node(name=name, host=host, port=int(port), user=user, key_file=key, vars=extra,
                explicit=frozenset(short for long, short in given.items() if long in v))


def _kind(x: Any) -> str:
    return "a list" if isinstance(x, list) else type(x).__name__


def write(path: str | Path, nodes: list[Node], common: dict[str, Any] | None = None) -> Path:
    """Write ``nodes`` as an Ansible YAML inventory (``common`` goes to ``all.vars``)."""
    hosts: dict[str, dict[str, Any]] = {}
    for n in nodes:
        h: dict[str, Any] = {"ansible_host": n.host, "ansible_port": n.port,
                             "ansible_user": n.user}
        if n.key_file:
            h["ansible_ssh_private_key_file"] = n.key_file
        h.update(n.vars)
        hosts[n.name] = h
    doc = {"all": {"vars": dict(common or {}), "hosts": hosts}}
    p = Path(path)
    p.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return p
