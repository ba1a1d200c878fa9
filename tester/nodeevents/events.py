"""Node events as the checks read them: every node's events in log order, the applied entries
they list, and the findings the checks add violations to (docs/node-events.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_PER_PROPERTY = 20  # violations listed per property (all are counted)
EVENTS = frozenset({"started", "role", "election", "vote", "applied", "commit", "snapshot"})


@dataclass
class Applied:
    """One applied entry as logged: where, in which process and term, and what."""

    node: str
    incarnation: int
    index: int
    term: int
    digest: str
    result: str | None
    command: Any
    node_term: int | None  # the applying node's current term (None: not logged)
    at: float
    reapplied: bool = False  # applied by this node in an earlier incarnation already

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"node": self.node, "term": self.term, "digest": self.digest}
        if self.result is not None:
            d["result"] = self.result
        if self.command is not None:
            d["command"] = self.command
        return d


@dataclass
class Findings:
    """Violations per property, capped for results.json but counted in full."""

    listed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, prop: str, message: str, at: float, **details: Any) -> None:
        self.counts[prop] = self.counts.get(prop, 0) + 1
        rows = self.listed.setdefault(prop, [])
        if len(rows) < MAX_PER_PROPERTY:
            rows.append({"property": prop, "message": message, "at": at, **details})


def as_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def ts_of(d: dict[str, Any]) -> float:
    t = d.get("ts")
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0


def read_events(nodes_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """node -> its node events in log order, from every JSON line under ``nodes_dir/*/``.

    Log order, not timestamp order: timestamps come from node clocks that the nemesis skews.
    Lines that are not JSON objects with a known ``event`` (text logs, a line torn by kill -9)
    are skipped.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    if not nodes_dir.is_dir():
        return out
    for path in sorted(nodes_dir.glob("*/*")):
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"event"' not in line:
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and d.get("event") in EVENTS:
                    out.setdefault(str(d.get("node", path.parent.name)), []).append(d)
    return out


def describe_command(c: Any) -> str:
    if isinstance(c, dict):
        return " ".join(f"{k}={json.dumps(v)}" for k, v in c.items())
    return json.dumps(c)

