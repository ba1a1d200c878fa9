"""Draw why a history is not linearizable: a Porcupine-style, self-contained HTML view.

For each key the checker found not linearizable, the view shows one row per process with a
bar per operation (invocation to completion), the longest linearizable prefix the search found
with a point where each of its operations took effect and the model state after each step, and
the operation that cannot be linearized after that prefix, highlighted. When the checker named
a culprit (the op whose result no state explains, which may come a few ops after where the
search stopped), that op is the one highlighted, with the ops around it, and where the search
stopped is marked too. Hovering a bar shows its details; clicking it pins them; "Jump to
first error" scrolls to the failing operation.

Two users: ``raftlab check HISTORY --html FILE`` (:func:`write_html`) and the run report
(``tester.report``), which embeds :data:`STYLE`, :data:`SCRIPT` and :func:`view_data`.

The page never interprets history values as markup: the data travels as JSON in a
``<script type="application/json">`` block and is inserted with ``textContent``.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.history import NEMESIS, Op

#: At most this many operations of one key are drawn; beyond that, a window ending at the
#: failure (the part a person reads first) is kept and the rest is summarised.
MAX_VIEW_OPS = 3000
#: ops drawn after the culprit in such a window: what happened around it matters too
AFTER_CULPRIT = 20


@dataclass
class Partition:
    """The checker's verdict on one independently checked part of a history (usually a key).

    Op ids are the checker's (docs/results.md): an op's position among all client invokes of
    the history, counted from 0.
    """

    key: Any
    valid: Any  # True, False or "unknown"
    failing: int | None = None  # id of the op that cannot be linearized
    steps: list[tuple[int, str]] = field(default_factory=list)  # (op id, state after, as text)
    initial: str = "the initial state"
    operations: list[dict[str, Any]] | None = None  # the violation's operations, if given
    partials: list[list[tuple[int, str]]] = field(default_factory=list)
    note: str = ""
    why: str = ""  # why ``failing`` is the culprit, when the checker named one
    stopped: int | None = None  # id of the op the search got no further than

    @property
    def label(self) -> str:
        return key_label(self.key)


def key_label(key: Any) -> str:
    """The text that names a key in tables and anchors (a string key is shown as is)."""
    if key is None:
        return "(all)"
    return key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)


def anchor(label: str) -> str:
    """A fragment id for a key; distinct keys give distinct ids."""
    return "k" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in label)


# --------------------------------------------------------------------------- result schema


VERDICT_CLASS = {True: "valid", False: "invalid", "unknown": "unknown"}
VERDICT_TEXT = {True: "VALID", False: "INVALID", "unknown": "UNKNOWN"}


def verdict_of(v: Any) -> Any:
    """A stored verdict (true / false / "unknown" / missing) as True, False or "unknown"."""
    return v if v is True or v is False else "unknown"


def state_text(state: Any) -> str:
    """A model state ``{"value", "text"}`` as the short text a person reads."""
    if isinstance(state, dict) and isinstance(state.get("text"), str):
        return state["text"]
    return json.dumps(state, sort_keys=True, default=str)


def _steps(raw: Any) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("op"), int):
            out.append((item["op"], state_text(item.get("state"))))
    return out


def _partition(d: dict[str, Any]) -> Partition:
    part = Partition(d.get("key"), verdict_of(d.get("valid")))
    reason = d.get("reason")
    if isinstance(reason, str):
        part.note = f"undecided: {reason}" if part.valid == "unknown" else reason
    v = d.get("violation")
    if isinstance(v, dict):
        if isinstance(v.get("op"), int):
            part.failing = v["op"]
        culprit = v.get("culprit")
        if isinstance(culprit, dict) and isinstance(culprit.get("why"), str):
            part.why = culprit["why"]
        if isinstance(v.get("stopped_at"), int) and v["stopped_at"] != part.failing:
            part.stopped = v["stopped_at"]
        part.steps = _steps(v.get("prefix"))
        if "initial_state" in v:
            part.initial = state_text(v["initial_state"])
        if isinstance(v.get("operations"), list):
            part.operations = [o for o in v["operations"] if isinstance(o, dict)]
        part.partials = [_steps(p) for p in v.get("partial_linearizations") or []]
    return part


def partitions(result: Any) -> list[Partition]:
    """Per-partition verdicts and violations out of the checker's JSON result (docs/results.md)."""
    if not isinstance(result, dict) or not isinstance(result.get("partitions"), list):
        return []
    return [_partition(p) for p in result["partitions"] if isinstance(p, dict)]


# --------------------------------------------------------------------------- view data


@dataclass
class Call:
    """One client operation: its invocation and its completion (None: never answered)."""

    invoke: Op
    done: Op | None


def pair_ops(ops: Iterable[Op]) -> list[Call]:
    """Client invocations, in history order, with their completions (None: never answered)."""
    calls: list[Call] = []
    open_: dict[Any, Call] = {}
    for op in ops:
        if op.process == NEMESIS:
            continue
        if op.type == "invoke":
            c = Call(op, None)
            open_[op.process] = c
            calls.append(c)
        else:
            c = open_.pop(op.process, None)
            if c is not None:
                c.done = op
    return calls


# A drawn op: [process row, invoke µs, complete µs or None, status, f, input, output, error,
#              invoke history index, text, longest partial linearization or None,
#              column of the invocation, column of the completion or None,
#              the node that served it or None (for a stale read, the key fact)]
# Columns order every call and return by (time, history index): histories without times
# (Porcupine's kv logs) are still drawn in their real order.
_Row = list[Any]


class HistoryIndex:
    """Lookups into one history, built once and shared by the views of all its keys."""

    def __init__(self, ops: list[Op]):
        self.ops = ops
        self._by_index: dict[int, Op] | None = None
        self._by_key: dict[str | None, list[tuple[int, Call]]] | None = None

    @property
    def by_index(self) -> dict[int, Op]:
        if self._by_index is None:
            self._by_index = {op.index: op for op in self.ops}
        return self._by_index

    def calls(self, key: Any) -> list[tuple[int, Call]]:
        """(checker op id, call) of one key, or of every key when ``key`` is None."""
        if self._by_key is None:
            self._by_key = {None: list(enumerate(pair_ops(self.ops)))}
            for i, c in self._by_key[None]:
                self._by_key.setdefault(key_label(c.invoke.key), []).append((i, c))
        return self._by_key.get(None if key is None else key_label(key), [])


def _rows_from_operations(operations: list[dict[str, Any]], hist: HistoryIndex) -> dict[int, _Row]:
    by_index = hist.by_index
    rows: dict[int, _Row] = {}
    for o in operations:
        inv, comp = o.get("invoke") or {}, o.get("complete") or None
        status = o.get("status", "ok") if comp else "pending"
        done = by_index.get(comp.get("index")) if comp else None
        invoked = by_index.get(inv.get("index"))
        rows[o["id"]] = [
            o.get("process"), int(inv.get("time", 0)) // 1000,
            int(comp["time"]) // 1000 if comp and status != "info" else None,
            status, o.get("f"), o.get("input"), o.get("output"),
            done.error if done is not None else None,
            inv.get("index"), o.get("text"), o.get("longest"),
            (int(inv.get("time", 0)), inv.get("index") or 0),
            (int(comp["time"]), comp.get("index") or 0) if comp and status != "info" else None,
            served_by(invoked, done),
        ]
    return rows


def _rows_from_history(part: Partition, hist: HistoryIndex) -> dict[int, _Row]:
    rows: dict[int, _Row] = {}
    for i, c in hist.calls(part.key):
        d = c.done
        status = "pending" if d is None else d.type
        rows[i] = [
            c.invoke.process, c.invoke.time // 1000,
            None if d is None or d.type == "info" else d.time // 1000,
            status, c.invoke.f, c.invoke.value, None if d is None else d.value,
            None if d is None else d.error, c.invoke.index, None, None,
            (c.invoke.time, c.invoke.index),
            None if d is None or d.type == "info" else (d.time, d.index),
            served_by(c.invoke, d),
        ]
    return rows


def served_by(invoke: Op | None, done: Op | None) -> str | None:
    """The node a client sent an operation to (its completion's, else its invocation's)."""
    for op in (done, invoke):
        if op is not None and op.node is not None:
            return str(op.node)
    return None


def view_data(part: Partition, ops: list[Op] | HistoryIndex) -> dict[str, Any]:
    """The compact JSON the page draws for one non-linearizable partition.

    Pass a :class:`HistoryIndex` when drawing several partitions of one history.
    """
    hist = ops if isinstance(ops, HistoryIndex) else HistoryIndex(ops)
    if part.operations is not None:
        src = _rows_from_operations(part.operations, hist)
    else:
        src = _rows_from_history(part, hist)
    ids = sorted(src, key=lambda i: (src[i][1], i))
    steps = [(i, s) for i, s in part.steps if i in src]
    fail = part.failing if part.failing in src else None
    stopped = part.stopped if part.stopped in src else None
    omitted = 0
    if len(ids) > MAX_VIEW_OPS:
        ids, steps, omitted = _window(src, ids, steps, fail, stopped)
    pos = {op_id: n for n, op_id in enumerate(ids)}
    names = sorted({src[i][0] for i in ids}, key=lambda p: (isinstance(p, str), str(p).zfill(12)))
    proc_row = {p: n for n, p in enumerate(names)}
    partial_ids: dict[int, int] = {}
    partials: list[list[list[Any]]] = []
    budget = 5 * MAX_VIEW_OPS  # steps of partial linearizations worth embedding
    instants = sorted({t for i in ids for t in (src[i][11], src[i][12]) if t is not None})
    column = {t: n for n, t in enumerate(instants)}
    rows = []
    for i in ids:
        r = list(src[i])
        r[0] = proc_row[r[0]]
        r[11] = column[r[11]]
        r[12] = None if r[12] is None else column[r[12]]
        k = r[10]
        if isinstance(k, int) and 0 <= k < len(part.partials):
            if k not in partial_ids and budget >= len(part.partials[k]):
                budget -= len(part.partials[k])
                partial_ids[k] = len(partials)
                partials.append([[pos.get(j, -1), st] for j, st in part.partials[k]])
            r[10] = partial_ids.get(k)
        else:
            r[10] = None
        rows.append(r)
    return {
        "key": part.label,
        "anchor": anchor(part.label),
        "procs": [str(p) for p in names],
        "ops": rows,
        "steps": [[pos[i], s] for i, s in steps if i in pos],
        "fail": pos.get(fail) if fail is not None else None,
        "why": part.why,
        "stopped": pos.get(stopped) if stopped is not None else None,
        "initial": part.initial,
        "partials": partials,
        "omitted": omitted,
        "note": part.note,
        "timed": any(r[1] or r[2] for r in rows),
    }


def _window(src: dict[int, _Row], ids: list[int], steps: list[tuple[int, str]],
            fail: int | None, stopped: int | None = None
            ) -> tuple[list[int], list[tuple[int, str]], int]:
    """Keep the end of a long partition: the last steps of the prefix, where the search
    stopped, and the failure with a few ops after it."""
    tail = steps[-(MAX_VIEW_OPS // 2):]
    omitted = len(steps) - len(tail)
    anchors = [i for i, _ in tail] + [i for i in (fail, stopped) if i is not None]
    if fail is not None:
        at = ids.index(fail)
        anchors += ids[at + 1:at + 1 + AFTER_CULPRIT]
    if not anchors:
        anchors = ids[-(MAX_VIEW_OPS // 2):]
    lo = min(src[i][1] for i in anchors)
    hi = max(src[i][2] if src[i][2] is not None else src[i][1] for i in anchors)
    near = [i for i in ids if src[i][1] <= hi and (src[i][2] is None or src[i][2] >= lo)]
    keep = set(near[-MAX_VIEW_OPS:]) | set(anchors)
    return [i for i in ids if i in keep], tail, omitted


# --------------------------------------------------------------------------- HTML


def json_for_script(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: nothing can close it."""
    s = json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=False)
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page(title: str, body: str, css: str = "", scripts: str = "") -> str:
    """A complete self-contained HTML page; the CSP forbids any network access."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{html.escape(title)}</title><style>{BASE_STYLE}{css}</style></head>"
        f"<body>{body}{scripts}</body></html>\n"
    )


def render_html(result: Any, ops: list[Op], title: str = "raftlab check") -> str:
    """A standalone page for a checked history: verdict and every failing key's view."""
    verdict = verdict_of(result.get("valid")) if isinstance(result, dict) else "unknown"
    parts = partitions(result)
    hist = HistoryIndex(ops)
    views = [view_data(p, hist) for p in parts if p.valid is False]
    cls, word = VERDICT_CLASS[verdict], VERDICT_TEXT[verdict]
    bad = [p.label for p in parts if p.valid is False]
    unknown = [p.label for p in parts if p.valid == "unknown"]
    lines = [f"{len(parts)} partition{'s' if len(parts) != 1 else ''} checked"]
    if bad:
        lines.append("not linearizable: " + ", ".join(bad[:20]) + (" …" if len(bad) > 20 else ""))
    if unknown:
        lines.append("undecided: " + ", ".join(unknown[:20]) + (" …" if len(unknown) > 20 else ""))
    nil_reads = result.get("nil_reads") if isinstance(result, dict) else None
    if nil_reads in NIL_READS_TEXT:
        lines.append(NIL_READS_TEXT[nil_reads])
    body = (
        f"<header class=\"banner {cls}\"><div class=\"verdict\">{word}</div><div>"
        f"<h1>{html.escape(title)}</h1><p class=\"why\">{html.escape('; '.join(lines))}</p>"
        f"</div>{FIRST_ERROR_LINK if views else ''}</header><main><section id=\"failures\"><div id=\"lin-views\"></div></section>"
        "</main><div id=\"tooltip\" role=\"tooltip\"></div>"
    )
    if not views:
        body = body.replace("<div id=\"lin-views\"></div>",
                            "<p>No key failed the check, so there is no counterexample to draw.</p>")
    scripts = (
        f"<script type=\"application/json\" id=\"lin-data\">{json_for_script(views)}</script>"
        f"<script>{SCRIPT}</script>"
    )
    return page(f"{title}: {word}", body, STYLE, scripts)


#: how the page says which convention applied to reads that returned nil
NIL_READS_TEXT = {"unknown": "nil reads: unknown (Knossos: legal in any state)",
                  "value": "nil reads: a value (the key was absent)"}


#: The banner's link to the first violation (the page's script makes it open and scroll).
FIRST_ERROR_LINK = "<a class=\"first-error\" id=\"first-error\" href=\"#first-error\">Jump to first error</a>"


def html_path(target: str | os.PathLike[str], history: str | os.PathLike[str],
              many: bool) -> Path:
    """Where ``raftlab check --html TARGET`` draws ``history``: TARGET itself, or with several
    histories TARGET's name plus the history's (``out.html`` -> ``out-etcd_002.html``)."""
    t = Path(target)
    if not many:
        return t
    return t.with_name(f"{t.stem}-{Path(history).stem}{t.suffix or '.html'}")


def write_html(result: Any, ops: list[Op], path: str | os.PathLike[str],
               title: str | None = None) -> Path:
    """Write the standalone view of ``result`` for the history ``ops``.

    ``result`` is a :class:`checker.CheckResult` or its JSON form (``to_dict()``,
    docs/results.md).
    """
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    out = Path(path)
    out.write_text(render_html(result, list(ops), title or f"raftlab check {out.stem}"),
                   encoding="utf-8")
    return out


_WS = re.compile(r"\s+")

BASE_STYLE = _WS.sub(" ", """
:root{--ok:#2563eb;--fail:#dc2626;--info:#d97706;--valid:#15803d;--invalid:#b91c1c;
--unknown:#b45309;--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg)}
main{max-width:1400px;margin:0 auto;padding:8px 24px 48px}
h1{margin:0;font-size:22px} h2{font-size:17px;margin:28px 0 10px} h3{font-size:15px;margin:18px 0 8px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
a{color:#1d4ed8}
.banner{display:flex;gap:24px;align-items:center;padding:18px 24px;color:#fff}
.banner.valid{background:linear-gradient(90deg,#166534,#15803d)}
.banner.invalid{background:linear-gradient(90deg,#991b1b,#dc2626)}
.banner.unknown{background:linear-gradient(90deg,#92400e,#d97706)}
.banner .verdict{font-size:30px;font-weight:800;letter-spacing:.06em;padding:6px 16px;
border:3px solid rgba(255,255,255,.85);border-radius:8px;white-space:nowrap}
.banner .why{margin:2px 0 6px;opacity:.95}
.facts{display:flex;flex-wrap:wrap;gap:6px 16px}.fact b{opacity:.75;font-weight:600;margin-right:4px}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:700;color:#fff}
.pill.valid{background:var(--valid)}.pill.invalid{background:var(--invalid)}
.pill.unknown{background:var(--unknown)}
table.grid{border-collapse:collapse;background:#fff;width:100%}
table.grid th,table.grid td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;
vertical-align:top}
table.grid th{background:#f1f5f9;font-weight:600;position:sticky;top:0}
table.grid.small{width:auto;font-size:13px}
.banner .pill{background:rgba(255,255,255,.92)}.banner .pill.valid{color:var(--valid)}
.banner .pill.invalid{color:var(--invalid)}.banner .pill.unknown{color:var(--unknown)}
tr.invalid td{background:#fef2f2}tr.unknown td{background:#fffbeb}
tr.invalid td:first-child{box-shadow:inset 4px 0 var(--invalid)}
tr.unknown td:first-child{box-shadow:inset 4px 0 var(--unknown)}
tr.valid td:first-child{box-shadow:inset 4px 0 var(--valid)}
#tooltip{position:fixed;z-index:10;pointer-events:none;display:none;max-width:520px;
background:#111827;color:#f9fafb;padding:8px 10px;border-radius:6px;font-size:12.5px;
box-shadow:0 4px 14px rgba(0,0,0,.3);white-space:pre-wrap}
button{font:inherit;cursor:pointer;border:1px solid #cbd5e1;background:#fff;border-radius:6px;
padding:4px 12px}
button.primary{background:var(--invalid);border-color:var(--invalid);color:#fff;font-weight:600}
""")

STYLE = _WS.sub(" ", """
.lin{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:14px 0}
.lin>summary{display:flex;gap:10px;align-items:center;cursor:pointer;font-weight:600;
padding:2px 0;list-style-position:outside}
.lin>summary code{font-size:13px}.lin-gist{font-weight:400;color:var(--muted)}
.lin-content{margin-top:8px}.lin-tools{margin-bottom:6px}
.banner a.first-error{margin-left:auto;background:#fff;color:var(--invalid);font-weight:700;
padding:8px 16px;border-radius:6px;text-decoration:none;white-space:nowrap}
.lin-summary{margin:4px 0 10px}
.lin-body{display:flex;border:1px solid var(--line);border-radius:6px;overflow:hidden}
.lin-labels{flex:none;background:#f8fafc;border-right:1px solid var(--line)}
.lin-labels div{font:12px ui-monospace,monospace;padding:0 8px;display:flex;align-items:center;
white-space:nowrap}
.lin-scroll{overflow:auto;flex:1;max-height:520px}
.lin svg text{font:11px ui-monospace,monospace;pointer-events:none}
.lin .bar{cursor:pointer}
.lin .bar rect{stroke-width:1}
.lin .bar:hover rect,.lin .bar.selected rect,.lin .bar:focus rect{stroke-width:2.5;stroke:#111827}
.lin .bar:focus{outline:none}
.lin .bar.failing rect{stroke-width:2.5}
.lin .bar.flash rect{animation:flash 0.5s ease-in-out 3}
@keyframes flash{50%{fill:#fde047}}
.lin-detail{margin-top:10px;padding:8px 12px;background:#f8fafc;border-left:4px solid #94a3b8;
white-space:pre-wrap;font:12.5px ui-monospace,monospace;min-height:2.5em}
.lin-detail.failing{border-left-color:var(--invalid);background:#fef2f2}
.lin table.steps{font-size:12.5px;width:auto;min-width:60%}
.lin table.steps tr.failing td{background:#fee2e2;font-weight:600}
.lin table.steps tr.selected td{background:#fef9c3}
.lin .steps-wrap{max-height:320px;overflow:auto}
.lin .legend-row{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:var(--muted);margin:6px 0}
.lin .sw{display:inline-block;width:14px;height:10px;border:1px solid #555;margin-right:4px;
vertical-align:middle}
""")

SCRIPT = r"""
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var ROW = 26, STEP = 26, PAD = 14;
  var COL = {
    lin: ["#bbf7d0", "#15803d"], fail: ["#fecaca", "#b91c1c"], failed: ["#f3f4f6", "#9ca3af"],
    rest: ["#e0e7ff", "#6366f1"], info: ["#fef3c7", "#d97706"]
  };
  function fmt(v) {
    if (v === undefined) return "";
    var s;
    try { s = JSON.stringify(v); } catch (e) { s = String(v); }
    if (s === undefined) s = String(v);
    return s.length > 200 ? s.slice(0, 199) + "\u2026" : s;
  }
  function isRead(f) { return f === "read" || f === "get" || f === "r"; }
  function isWrite(f) { return f === "write" || f === "put" || f === "w"; }
  function describe(op) {
    var f = op[4], v = op[5], out = op[6], type = op[3];
    var s;
    if (op[9]) s = op[9];
    else if (isRead(f)) s = "read \u2192 " + (type === "ok" ? fmt(out) : "?");
    else if (isWrite(f)) s = "write " + fmt(v);
    else if (f === "cas" && Array.isArray(v) && v.length === 2) s = "cas " + fmt(v[0]) + "\u2192" + fmt(v[1]);
    else {
      s = f + (v === null || v === undefined ? "" : " " + fmt(v));
      if (type === "ok" && out !== null && out !== undefined && fmt(out) !== fmt(v)) s += " \u2192 " + fmt(out);
    }
    if (type === "fail") s += " (fail)";
    else if (type === "info" || type === "pending") s += " (" + type + ")";
    return s;
  }
  // which node served an op: for a stale read, the node that answered is the key fact
  function where(op) { return op[13] ? " on " + op[13] : ""; }
  function short(op) {
    var f = op[4], v = op[5], out = op[6];
    if (isRead(f)) return "R " + (op[3] === "ok" ? fmt(out) : "?");
    if (isWrite(f)) return "W " + fmt(v);
    if (f === "cas" && Array.isArray(v) && v.length === 2) return "C " + fmt(v[0]) + "\u2192" + fmt(v[1]);
    return v === null || v === undefined ? f : f + " " + fmt(v);
  }
  function secs(us) { return (us / 1e6).toFixed(4) + " s"; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function tooltip() { return document.getElementById("tooltip"); }
  function showTip(ev, text) {
    var t = tooltip(); if (!t) return;
    t.textContent = text; t.style.display = "block";
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = t.offsetWidth, h = t.offsetHeight;
    if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - w - 14);
    if (y + h > window.innerHeight - 4) y = Math.max(4, ev.clientY - h - 14);
    t.style.left = x + "px"; t.style.top = y + "px";
  }
  function hideTip() { var t = tooltip(); if (t) t.style.display = "none"; }

  function renderView(box, view) {
    var ops = view.ops, steps = view.steps, failIdx = view.fail;
    var stepOf = {};
    steps.forEach(function (s, k) { stepOf[s[0]] = k; });
    // compressed time: every distinct call/return instant gets its own column
    var endCol = 0;
    ops.forEach(function (o) { endCol = Math.max(endCol, o[11] + 1, o[12] === null ? 0 : o[12] + 1); });
    function xs(o) { return PAD + o[11] * STEP; }
    function xe(o) { return PAD + (o[12] === null ? endCol : o[12]) * STEP + STEP * 0.6; }
    var nproc = view.procs.length;
    var width = PAD * 2 + (endCol + 1) * STEP, height = nproc * ROW + 24;

    var h = el("div", "lin-tools");
    var jump = el("button", "primary jump", "Jump to first error");
    h.appendChild(jump); box.appendChild(h);

    var summary = el("p", "lin-summary");
    var last = steps.length ? steps[steps.length - 1][1] : view.initial;
    var txt = "The longest linearizable prefix found has " + (steps.length + view.omitted) + " operation" +
      ((steps.length + view.omitted) === 1 ? "" : "s") + ".";
    if (failIdx !== null && failIdx !== undefined && view.why) {
      var fo = ops[failIdx];
      if (view.stopped !== null && view.stopped !== undefined) txt += " The search got no further than process " +
        view.procs[ops[view.stopped][0]] + "'s " + describe(ops[view.stopped]) + " (marked \u201csearch stopped\u201d).";
      txt += " The op to look at: process " + view.procs[fo[0]] + "'s " + describe(fo) + where(fo) + " cannot take effect; " + view.why + ".";
    } else if (failIdx !== null && failIdx !== undefined) {
      var fo = ops[failIdx];
      txt += " After it the state is " + last + ", and process " +
        view.procs[fo[0]] + "'s " + describe(fo) + where(fo) + " cannot take effect next: no order of the concurrent operations explains it.";
    }
    if (view.omitted) txt += " (" + view.omitted + " earlier steps are not drawn.)";
    if (view.note) txt += " " + view.note;
    summary.textContent = txt; box.appendChild(summary);

    var legend = el("div", "legend-row");
    [["lin", "linearized (in order)"], ["fail", "cannot be linearized"], ["rest", "not in the prefix"],
     ["info", "indeterminate / never answered"], ["failed", "failed (no effect)"]].forEach(function (p) {
      var s = el("span"); var sw = el("span", "sw"); sw.style.background = COL[p[0]][0];
      sw.style.borderColor = COL[p[0]][1]; s.appendChild(sw); s.appendChild(document.createTextNode(p[1]));
      legend.appendChild(s);
    });
    box.appendChild(legend);

    var body = el("div", "lin-body");
    var labels = el("div", "lin-labels");
    var spacer = el("div"); spacer.style.height = "24px"; labels.appendChild(spacer);
    // a row's node: the one its process sent every drawn op to (a worker keeps its node)
    var rowNode = view.procs.map(function () { return undefined; });
    ops.forEach(function (o) { var r = o[0]; rowNode[r] = rowNode[r] === undefined || rowNode[r] === o[13] ? o[13] : null; });
    view.procs.forEach(function (p, r) { var d = el("div", "", "process " + p + (rowNode[r] ? " \u00b7 " + rowNode[r] : "")); d.style.height = ROW + "px"; labels.appendChild(d); });
    var scroll = el("div", "lin-scroll");
    var svg = svgEl("svg", { width: width, height: height, role: "img" });
    for (var i = 0; i < nproc; i++) {
      svg.appendChild(svgEl("rect", { x: 0, y: 24 + i * ROW, width: width, height: ROW, fill: i % 2 ? "#f8fafc" : "#ffffff" }));
    }
    var detail = el("div", "lin-detail", "Hover an operation for its details; click to pin them.");
    var bars = [];
    // linearization points: each at or after its invocation and after the previous point
    function points(path) {
      var out = [], prev = -1;
      path.forEach(function (s) {
        var o = ops[s[0]];
        if (!o) return;  // a step outside the drawn window
        var x = Math.min(Math.max(xs(o) + 3, prev + 4), xe(o) - 2);
        out.push([x, 24 + o[0] * ROW + 4]); prev = x;  // on the bar's top edge, clear of its label
      });
      return out;
    }
    var pts = points(steps);
    var prev = pts.length ? pts[pts.length - 1][0] : -1;
    var failX = null;
    if (failIdx !== null && failIdx !== undefined) {
      failX = Math.max(xs(ops[failIdx]) + 3, prev + 4);
      svg.appendChild(svgEl("line", { x1: failX, x2: failX, y1: 18, y2: height, stroke: "#dc2626", "stroke-dasharray": "4 3", "stroke-width": 1.5 }));
      var lab = svgEl("text", { x: failX + 4, y: 13, fill: "#b91c1c" }); lab.textContent = view.why ? "culprit" : "first error"; svg.appendChild(lab);
    }
    if (view.stopped !== null && view.stopped !== undefined) {
      var stopX = xs(ops[view.stopped]) + 3;
      svg.appendChild(svgEl("line", { x1: stopX, x2: stopX, y1: 18, y2: height, stroke: "#6b7280", "stroke-dasharray": "2 3", "stroke-width": 1 }));
      var slab = svgEl("text", { x: stopX + 4, y: 13, fill: "#4b5563" }); slab.textContent = "search stopped"; svg.appendChild(slab);
    }
    function info(i) {
      var o = ops[i], lines = [];
      lines.push("process " + view.procs[o[0]] + " \u00b7 " + describe(o) + where(o) + "   [history index " + o[8] + "]");
      if (view.timed) lines.push("invoked " + secs(o[1]) + (o[2] === null ? ", no definite completion" : ", completed " + secs(o[2]) + " (" + ((o[2] - o[1]) / 1000).toFixed(2) + " ms)"));
      else lines.push(o[2] === null && o[3] !== "ok" ? "no definite completion" : "(this history has no timestamps: columns follow its order)");
      if (o[7] !== null && o[7] !== undefined) lines.push("error: " + fmt(o[7]));
      if (i === failIdx) {
        lines.push("CANNOT BE LINEARIZED after step " + steps.length + ".");
        lines.push("state before it: " + last);
        lines.push("this operation is not a legal next step from that state, and no reordering");
        lines.push("of the operations concurrent with it makes it one.");
        if (view.why) lines.push("The culprit: " + view.why + ".");
      } else if (stepOf[i] !== undefined) {
        var k = stepOf[i];
        lines.push("linearized as step " + (k + 1 + view.omitted) + " of " + (steps.length + view.omitted));
        lines.push("state after: " + steps[k][1]);
      } else if (o[3] === "fail") {
        lines.push("failed: it never took effect, so it is not linearized");
      } else {
        lines.push("not part of the longest linearizable prefix");
      }
      var part = o[10] !== null && o[10] !== undefined ? view.partials[o[10]] : null;
      if (part && i !== failIdx) {
        var at = -1;
        part.forEach(function (st, n) { if (st[0] === i) at = n; });
        lines.push("longest partial linearization containing it: " + part.length + " steps" +
          (at >= 0 ? ", it is step " + (at + 1) + ", state after: " + part[at][1] : ""));
      }
      return lines.join("\n");
    }
    var selectedRow = null;
    // Porcupine's habit: a selected operation shows the longest partial linearization that
    // contains it, when that is not the prefix already drawn
    var overlay = null;
    function showPartial(i) {
      if (overlay) { overlay.remove(); overlay = null; }
      var k = ops[i][10];
      if (k === null || k === undefined || !view.partials[k]) return;
      var path = view.partials[k];
      var same = path.length === steps.length && path.every(function (st, n) { return st[0] === steps[n][0]; });
      if (same) return;
      var p = points(path);
      overlay = svgEl("g", { "class": "partial", "pointer-events": "none" });
      overlay.appendChild(svgEl("polyline", { points: p.map(function (q) { return q[0] + "," + q[1]; }).join(" "), fill: "none", stroke: "#7c3aed", "stroke-width": 1.5, "stroke-dasharray": "4 3" }));
      p.forEach(function (q) { overlay.appendChild(svgEl("circle", { cx: q[0], cy: q[1], r: 3, fill: "#7c3aed" })); });
      svg.appendChild(overlay);
    }
    function select(i) {
      showPartial(i);
      bars.forEach(function (b) { b.classList.remove("selected"); });
      if (bars[i]) bars[i].classList.add("selected");
      detail.textContent = info(i);
      detail.className = "lin-detail" + (i === failIdx ? " failing" : "");
      if (selectedRow) selectedRow.classList.remove("selected");
      var row = rowsByOp[i];
      if (row) { row.classList.add("selected"); selectedRow = row; }
    }
    ops.forEach(function (o, i) {
      var kind = i === failIdx ? "fail" : stepOf[i] !== undefined ? "lin" : o[3] === "fail" ? "failed" : (o[3] === "info" || o[3] === "pending") ? "info" : "rest";
      var g = svgEl("g", { "class": "bar" + (i === failIdx ? " failing" : ""), "data-op": i, "data-index": o[8] });
      g.id = "op-" + view.anchor + "-" + i;
      var x = xs(o), w = Math.max(6, xe(o) - x), y = 24 + o[0] * ROW + 4;
      var rect = svgEl("rect", { x: x, y: y, width: w, height: ROW - 8, rx: 3, fill: COL[kind][0], stroke: COL[kind][1] });
      if (kind === "failed") rect.setAttribute("stroke-dasharray", "3 2");
      if (o[2] === null) rect.setAttribute("stroke-dasharray", "6 3");
      g.appendChild(rect);
      var label = short(o);
      var fit = Math.floor((w - 6) / 6.6);
      if (fit >= 3) {
        var t = svgEl("text", { x: x + 4, y: y + ROW / 2 + 0 });
        t.textContent = label.length > fit ? label.slice(0, fit - 1) + "\u2026" : label;
        g.appendChild(t);
      }
      g.addEventListener("mouseenter", function (ev) { showTip(ev, info(i)); });
      g.addEventListener("mousemove", function (ev) { showTip(ev, info(i)); });
      g.addEventListener("mouseleave", hideTip);
      g.addEventListener("click", function () { select(i); });
      g.setAttribute("tabindex", "0");  // reachable by keyboard: Tab, then Enter shows details
      g.setAttribute("aria-label", "process " + view.procs[o[0]] + ": " + describe(o) + where(o));
      g.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(i); } });
      svg.appendChild(g); bars[i] = g;
    });
    if (pts.length) {
      svg.appendChild(svgEl("polyline", { points: pts.map(function (p) { return p[0] + "," + p[1]; }).join(" "), fill: "none", stroke: "#15803d", "stroke-width": 1.2, "stroke-opacity": 0.7, "pointer-events": "none" }));
      pts.forEach(function (p, k) {
        svg.appendChild(svgEl("circle", { cx: p[0], cy: p[1], r: 3.5, fill: "#15803d", "class": "lin-point", "pointer-events": "none" }));
        if (steps.length <= 400) {
          var n = svgEl("text", { x: p[0] - 3, y: p[1] - 4, fill: "#166534" }); n.textContent = String(k + 1 + view.omitted); svg.appendChild(n);
        }
      });
    }
    if (failX !== null) {
      svg.appendChild(svgEl("circle", { cx: failX, cy: 24 + ops[failIdx][0] * ROW + 4, r: 5, fill: "#dc2626", stroke: "#fff", "stroke-width": 1.5, "pointer-events": "none" }));
    }
    scroll.appendChild(svg); body.appendChild(labels); body.appendChild(scroll); box.appendChild(body);
    box.appendChild(detail);

    var det = el("details"); det.open = steps.length <= 60;
    det.appendChild(el("summary", "", "Linearization: " + (steps.length + view.omitted) + " steps and the state after each"));
    var wrap = el("div", "steps-wrap");
    var table = el("table", "grid steps");
    var thead = el("thead"), hr = el("tr");
    ["step", "process", "node", "operation", "state after"].forEach(function (c) { hr.appendChild(el("th", "", c)); });
    thead.appendChild(hr); table.appendChild(thead);
    var tbody = el("tbody"), rowsByOp = {};
    function addRow(cells, cls, i) {
      var tr = el("tr", cls || "");
      cells.forEach(function (c) { var td = el("td"); td.appendChild(el("code", "", c)); tr.appendChild(td); });
      tr.addEventListener("click", function () { select(i); bars[i].scrollIntoView({ block: "nearest", inline: "center" }); });
      tbody.appendChild(tr); rowsByOp[i] = tr;
    }
    steps.forEach(function (s, k) { var o = ops[s[0]]; addRow([String(k + 1 + view.omitted), String(view.procs[o[0]]), o[13] || "", describe(o), s[1]], "", s[0]); });
    if (failIdx !== null && failIdx !== undefined) {
      var fo2 = ops[failIdx];
      addRow(["\u2717", String(view.procs[fo2[0]]), fo2[13] || "", describe(fo2), view.why ? "the culprit: " + view.why : "cannot be linearized"], "failing", failIdx);
    }
    table.appendChild(tbody); wrap.appendChild(table); det.appendChild(wrap); box.appendChild(det);

    function jumpToError() {
      if (failIdx === null || failIdx === undefined) return;
      var b = bars[failIdx];
      box.scrollIntoView({ block: "start" });
      scroll.scrollLeft = Math.max(0, xs(ops[failIdx]) - scroll.clientWidth / 2);
      scroll.scrollTop = Math.max(0, 24 + ops[failIdx][0] * ROW - scroll.clientHeight / 2);
      select(failIdx);
      b.classList.remove("flash"); void b.getBoundingClientRect(); b.classList.add("flash");
    }
    if (failIdx === null || failIdx === undefined) jump.disabled = true;
    else requestAnimationFrame(function () {  // start with the failure in view, the prefix to its left
      scroll.scrollLeft = Math.max(0, xs(ops[failIdx]) - scroll.clientWidth * 0.7);
    });
    jump.addEventListener("click", jumpToError);
    return { jump: jumpToError, select: select };
  }

  // One collapsible section per key; a section's drawing is built the first time it opens,
  // so a run with many bad keys stays quick to load.
  function section(container, view, open) {
    var det = el("details", "lin"); det.id = "lin-" + view.anchor;
    var sum = el("summary");
    sum.appendChild(el("span", "", "key ")); sum.appendChild(el("code", "", view.key));
    sum.appendChild(el("span", "pill invalid", "NOT LINEARIZABLE"));
    var n = view.steps.length + view.omitted;
    var what = view.fail === null || view.fail === undefined ? "" : view.why ? "; the culprit: process " + view.procs[view.ops[view.fail][0]] + "'s " + describe(view.ops[view.fail]) + where(view.ops[view.fail]) : ", then process " + view.procs[view.ops[view.fail][0]] + "'s " + describe(view.ops[view.fail]) + where(view.ops[view.fail]) + " cannot be linearized";
    sum.appendChild(el("span", "lin-gist", n + "-operation linearizable prefix" + what));
    det.appendChild(sum);
    var body = el("div", "lin-content"); det.appendChild(body);
    var handle = null;
    function ensure() { if (!handle) handle = renderView(body, view); return handle; }
    det.addEventListener("toggle", function () { if (det.open) ensure(); });
    if (open) { det.open = true; ensure(); }
    container.appendChild(det);
    return {
      element: det,
      jump: function () { det.open = true; ensure().jump(); },
      select: function (i) { det.open = true; ensure().select(i); }
    };
  }

  function render(container, views) {
    var handles = views.map(function (v, i) { return section(container, v, i === 0); });
    window.raftlabLin.views = handles;
    function follow() {
      handles.forEach(function (h) { if ("#" + h.element.id === location.hash) { h.element.open = true; h.element.scrollIntoView(); } });
      if (location.hash === "#first-error" && handles.length) handles[0].jump();
    }
    window.addEventListener("hashchange", follow);
    follow();
    return handles;
  }
  window.raftlabLin = { render: render, describe: describe, fmt: fmt, showTip: showTip, hideTip: hideTip, views: [] };
  var data = document.getElementById("lin-data");
  var target = document.getElementById("lin-views");
  if (data && target) render(target, JSON.parse(data.textContent));
  var firstError = document.getElementById("first-error");
  if (firstError) firstError.addEventListener("click", function (ev) {
    if (window.raftlabLin.views.length) { ev.preventDefault(); window.raftlabLin.views[0].jump(); }
  });
})();
"""
