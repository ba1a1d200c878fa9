"""Election safety from the node logs: at most one leader per term (Raft's §5.2 property).

Some bugs break Raft without a client ever seeing it in a short run -- e.g. a node that forgets
its vote after a crash (``volatile-vote``) lets two nodes lead the same term. The node log
contract (docs/raftnode.md: ``{"event": "role", "role": "leader", "term": T, "node": ...}``)
makes that visible, so the runner checks it next to linearizability and the worst verdict
wins. Logs without role events (e.g. etcd's) give no verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def leaders_by_term(nodes_dir: Path) -> dict[int, dict[str, float]]:
    """term -> {node: when (its log's ts) it became leader}, from every JSON line under nodes/."""
    out: dict[int, dict[str, float]] = {}
    if not nodes_dir.is_dir():
        return out
    for path in sorted(nodes_dir.glob("*/*")):
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"role"' not in line:
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if (isinstance(d, dict) and d.get("event") == "role"
                        and d.get("role") == "leader" and isinstance(d.get("term"), int)):
                    ts = d.get("ts") if isinstance(d.get("ts"), (int, float)) else 0.0
                    node = str(d.get("node", path.parent.name))
                    out.setdefault(d["term"], {}).setdefault(node, float(ts))
    return out


def check(nodes_dir: Path) -> dict[str, Any] | None:
    """``{"valid", "terms", "violations": [{"term", "leaders", "at"}]}``, or None without role
    events. ``at``: when the second leader of the term took over (node wall clock, seconds)."""
    terms = leaders_by_term(nodes_dir)
    if not terms:
        return None
    bad = [{"term": t, "leaders": sorted(n), "at": sorted(n.values())[1]}
           for t, n in sorted(terms.items()) if len(n) > 1]
    return {"valid": not bad, "terms": len(terms), "violations": bad}
