"""Liveness after heal: once every fault is healed, the cluster must converge within a bound.

A Raft cluster whose faults are all healed has no excuse to stay broken: within a few
election timeouts it must have one leader that every node follows, every node must have
applied the same log, and every key must be readable again. A cluster that never gets there
-- no leader, a follower stuck behind for good, a node that never catches up after its
restart -- has a defect that no linearizability checker sees (a stuck cluster answers
nothing, and nothing is not wrong). This module asks each node its status through the
adapter's optional ``node_status`` (``tester/db.py``), says what keeps the cluster from
converging, node by node, and turns that into a verdict: not converged is a detected defect,
``False``.

The status of a node (what ``node_status`` returns; absent fields are not checked):
``id`` (the node's own name for itself), ``role``, ``term``, ``leader`` (the id it follows),
``applied``, ``commit``, ``last_index``, ``members`` (ids in the configuration in effect) and
``learners`` (those of them that do not vote: every node a run adds back is to vote, so a
learner left after the settle is a promotion that never came).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from checker.verdict import UNKNOWN, Verdict
from tester import bounds

log = logging.getLogger("raftlab")

#: a node's status as the adapter reports it, or None when the node did not answer
Status = dict[str, Any] | None
#: what keeps the cluster from converging: {"node": name or None, "text": ...}
Problem = dict[str, Any]

FIELDS = ("role", "term", "leader", "applied", "commit", "last_index")


def offered(db: Any) -> bool:
    """Whether the adapter can say each node's status (``node_status``)."""
    return callable(getattr(db, "node_status", None))


def poll(db: Any, nodes: list[Any], timeout: float) -> dict[str, Status]:
    """Every node's status, asked in parallel; a node that does not answer within
    ``timeout`` (or whose adapter call raises or hangs) is None."""
    def one(node: Any) -> Status:
        st = db.node_status(node, timeout)
        return dict(st) if isinstance(st, dict) else None

    out: dict[str, Status] = {}
    for node, o in zip(nodes, bounds.each(nodes, one, timeout + 1.0, "status"), strict=True):
        if o.error is not None:  # an adapter error is a node that did not answer
            log.debug("%s: status failed: %s", node.name, o.error)
        out[node.name] = o.value if o.done and o.error is None else None
    return out


def _describe(st: dict[str, Any]) -> str:
    """A node's status in a few words: role, term, leader and indexes."""
    parts = [str(st.get("role", "?")), f"term {st.get('term', '?')}",
             f"leader {st.get('leader') or 'none'}", f"applied {st.get('applied', '?')}"]
    parts += [f"{k.replace('_', ' ')} {st[k]}" for k in ("commit", "last_index")
              if st.get(k) is not None]
    return ", ".join(parts)


def problems(statuses: dict[str, Status]) -> list[Problem]:
    """What keeps the cluster from having converged, node by node ([] once it has).

    Converged: every node answers; exactly one leader, which every node follows, at one
    term; the leader has committed and applied its whole log; every node has applied (and
    holds) exactly that log; every node is in the leader's configuration."""
    out: list[Problem] = []
    answered = {n: st for n, st in statuses.items() if st is not None}
    out += [{"node": n, "text": f"{n} does not answer"}
            for n, st in statuses.items() if st is None]
    by_id = {str(st.get("id", n)): n for n, st in answered.items()}
    leaders = sorted(n for n, st in answered.items() if st.get("role") == "leader")
    if len(leaders) != 1:
        what = (f"{len(leaders)} nodes say they lead: "
                + "; ".join(f"{n} ({_describe(answered[n])})" for n in leaders)
                if leaders else "no node leads")
        return out + [{"node": None, "text": what}]
    lead = leaders[0]
    ls = answered[lead]
    lid = str(ls.get("id", lead))
    last = ls.get("last_index")
    target = ls.get("applied")
    if ls.get("commit") is not None and ls.get("applied") != ls.get("commit"):
        out.append({"node": lead, "text": f"leader {lead} has applied {ls.get('applied')} of "
                                          f"{ls.get('commit')} committed entries"})
    if last is not None and ls.get("commit") is not None and ls["commit"] != last:
        out.append({"node": lead, "text": f"leader {lead} (term {ls.get('term')}) has "
                                          f"committed {ls['commit']} of {last} entries"})
        target = last
    members = ls.get("members")
    learners = {str(m) for m in ls.get("learners") or ()}
    for n, st in sorted(answered.items()):
        if n == lead:
            continue
        why = []
        if members is not None and str(st.get("id", n)) not in {str(m) for m in members}:
            why.append(f"not in leader {lead}'s configuration")
        elif str(st.get("id", n)) in learners:  # every node the run adds back is to vote
            why.append(f"still a learner in leader {lead}'s configuration, never promoted")
        if st.get("leader") is None or str(st.get("leader")) != lid:
            named = by_id.get(str(st.get("leader")), st.get("leader"))
            why.append(f"follows {named or 'no leader'}, not {lead}")
        if st.get("term") != ls.get("term"):
            why.append(f"at term {st.get('term')}, leader {lead} at {ls.get('term')}")
        behind = st.get("applied") != target or (
            last is not None and st.get("last_index") is not None and st["last_index"] != last)
        if behind:
            why.append(f"behind: applied {st.get('applied')}"
                       + (f", log ends at {st.get('last_index')}"
                          if st.get("last_index") is not None else "")
                       + f"; leader {lead} at {target}")
        if why:
            out.append({"node": n, "text": f"{n} {'; '.join(why)} ({_describe(st)})"})
    return out


def wait_converged(db: Any, nodes: list[Any], bound: float, stop: threading.Event | None = None,
                   every: float = 0.2, ask_timeout: float = 1.0) -> dict[str, Any]:
    """Poll every node until the cluster has converged or ``bound`` seconds have passed.

    Returns the ``liveness`` part of results.json (docs/results.md) without its verdict:
    ``converged``, ``after_s`` (when it converged), ``bound_s``, ``problems`` and each node's
    last status (``nodes``)."""
    t0 = time.monotonic()
    stop = stop or threading.Event()
    polls = 0
    while True:
        statuses = poll(db, nodes, min(ask_timeout, max(0.2, bound)))
        polls += 1
        found = problems(statuses)
        elapsed = time.monotonic() - t0
        if not found or elapsed >= bound or stop.is_set():
            break
        stop.wait(min(every, max(0.0, bound - elapsed)))
    converged = not found
    if converged:
        log.info("liveness: converged %.2f s after the heal (%d polls)", elapsed, polls)
    else:
        log.error("liveness: not converged %.2f s after the heal: %s", elapsed,
                  "; ".join(p["text"] for p in found))
    return {"converged": converged, "after_s": round(elapsed, 3) if converged else None,
            "bound_s": bound, "polls": polls, "interrupted": bool(stop.is_set() and found),
            "problems": found,
            "nodes": {n: ({k: st.get(k) for k in ("id", *FIELDS, "members") if k in st}
                          if st is not None else None) for n, st in statuses.items()}}


def unread_keys(ops: list[Any]) -> list[str]:
    """Keys the clients used that no final read (``final`` ops) read successfully."""
    used: dict[str, None] = {}
    read: set[str] = set()
    for op in ops:
        if op.process == "nemesis" or op.key is None:
            continue
        if op.extra.get("final"):
            if op.type == "ok":
                read.add(str(op.key))
        else:
            used.setdefault(str(op.key))
    return [k for k in used if k not in read]


def verdict(result: dict[str, Any], excused: set[str] | frozenset[str] = frozenset()) -> Verdict:
    """False when the cluster did not converge or a key could not be read afterwards;
    "unknown" when every problem lies on a node the tester itself failed to heal (``excused``)
    or the wait was cut short; True otherwise."""
    if result.get("interrupted"):
        return UNKNOWN
    found = result.get("problems") or []
    if found and all(p.get("node") in excused for p in found):
        return UNKNOWN
    return not (found or result.get("unread_keys"))


def headline(result: dict[str, Any] | None) -> str:
    """One line for the terminal and the report: the liveness verdict and why (the
    problems themselves are listed apart, one a line)."""
    if not isinstance(result, dict):
        return ""
    v = result.get("valid")
    word = "ok" if v is True else "FAILED" if v is False else "unknown"
    keys = result.get("unread_keys") or []
    if result.get("converged") and not keys:
        return (f"{word}: converged {result.get('after_s')} s after the heal "
                f"(bound {result.get('bound_s')} s)")
    if result.get("converged"):
        return (f"{word}: converged {result.get('after_s')} s after the heal, but "
                f"{len(keys)} key(s) could not be read afterwards: "
                + ", ".join(map(str, keys[:10])))
    if result.get("interrupted"):
        return f"{word}: the wait for convergence was cut short"
    why = "" if word == "FAILED" else (
        " (the problems lie on nodes the heal failed on, or a fault outlived the heal)")
    return f"{word}: not converged {result.get('bound_s')} s after the heal{why}"
