"""The report's "Raft safety on node events" section: each violated property with its nodes,
index and the entries they applied, or one line saying what was checked."""

from __future__ import annotations

import html
import json
from typing import Any

from tester.nodeevents.checks import PROPERTIES


def _esc(v: Any) -> str:
    return html.escape(v if isinstance(v, str) else json.dumps(v, default=str), quote=True)


def _entries(v: dict[str, Any]) -> str:
    """The applied entries a violation is about, one row each."""
    rows = v.get("entries") or ([v["entry"]] if isinstance(v.get("entry"), dict) else [])
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{_esc(', '.join(r.get('nodes') or [r.get('node', '?')]))}</td>"
        f"<td>{_esc(r.get('term'))}</td><td><code>{_esc(r.get('digest', ''))}</code></td>"
        f"<td><code>{_esc(r.get('result', ''))}</code></td>"
        f"<td><code>{_esc(r.get('command', ''))}</code></td></tr>" for r in rows)
    return ("<table class=\"grid\"><thead><tr><th>nodes</th><th>term</th><th>digest</th>"
            f"<th>result</th><th>command</th></tr></thead><tbody>{body}</tbody></table>")


def section(result: dict[str, Any] | None) -> str:
    """HTML for results.json's ``node_events`` (empty when the nodes logged none)."""
    if not isinstance(result, dict):
        return ""
    counts = result.get("properties") or {}
    facts = (f"{result.get('nodes', 0)} nodes, {result.get('incarnations', 0)} processes, "
             f"{result.get('terms', 0)} terms with a leader, {result.get('indexes', 0)} log "
             "indexes applied")
    if result.get("valid") is True:
        return ("<section id=\"node-events\"><h2>Raft safety on node events</h2>"
                f"<p class=\"hint\">Every property holds ({_esc(', '.join(PROPERTIES))}) over "
                f"{_esc(facts)}.</p></section>")
    items = []
    for v in result.get("violations") or []:
        where = ", ".join(f"{k} {_esc(v[k])}" for k in ("index", "term") if k in v)
        items.append(f"<li><b>{_esc(v.get('property'))}</b> ({where}; nodes "
                     f"{_esc(', '.join(v.get('nodes') or []))}): {_esc(v.get('message'))}"
                     f"{_entries(v)}</li>")
    shown = len(result.get("violations") or [])
    total = sum(n for n in counts.values() if isinstance(n, int))
    more = (f"<p class=\"hint\">{total - shown} more not listed (results.json counts them per "
            "property).</p>" if total > shown else "")
    broken = ", ".join(f"{p} ({n})" for p, n in counts.items() if n)
    return ("<section id=\"node-events\"><h2>Raft safety on node events</h2>"
            f"<p class=\"hint\">Violated: {_esc(broken)}; over {_esc(facts)}.</p>"
            f"<ul class=\"violations\">{''.join(items)}</ul>{more}</section>")
